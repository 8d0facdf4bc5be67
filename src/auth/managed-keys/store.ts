import type { SqlEngine } from '../oauth/sql-engine.ts';

/**
 * Managed relay keys in the relay's database (the ledger's: SQLite file or PostgreSQL). A key is a row
 * with a stable id and a label; its secret is kept only as a SHA-256 hash (secrets are 256-bit random
 * values, so a plain hash cannot be reversed). A rotation moves the current hash to `previous_*` with an
 * expiry (the overlap), so one old secret at most keeps working for a while. Every change bumps one
 * version number in the same transaction: a replica learns that something changed by reading one row.
 */

export interface StoredKey {
  id: string;
  label: string;
  createdAt: number;
  rotatedAt?: number;
  revokedAt?: number;
}

/** A secret hash that opens the relay, and whose key it is. */
export interface ActiveSecret {
  hash: string;
  id: string;
  label: string;
  /** Set on a previous secret still in its overlap after a rotation. */
  expiresAt?: number;
}

export interface ManagedKeyStore {
  version(): Promise<number>;
  /** Every secret that may still be used at `now`: each live key's current one, and previous ones in their overlap. */
  activeSecrets(now: number): Promise<ActiveSecret[]>;
  /** Every managed key, revoked ones too, oldest first. */
  list(): Promise<StoredKey[]>;
  /** Last use (epoch ms) by key id, for RELAY_KEY and managed keys alike. */
  lastUse(): Promise<Map<string, number>>;
  /** False when a live key already has this label. */
  create(key: { id: string; label: string; secretHash: string; createdAt: number }): Promise<boolean>;
  /** The live key's new secret; the current one stays valid until `previousExpiresAt` (none: refused at once). False when no live key has this id. */
  rotate(id: string, secretHash: string, now: number, previousExpiresAt?: number): Promise<boolean>;
  /** False when no live key has this id. */
  revoke(id: string, now: number): Promise<boolean>;
  recordUse(uses: ReadonlyMap<string, number>): Promise<void>;
  close(): Promise<void>;
}

const BUMP = { sql: 'UPDATE relay_key_state SET version = version + 1 WHERE id = 1' };
const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));

export function managedKeyStore(db: SqlEngine): ManagedKeyStore {
  const liveLabelTaken = async (label: string) => (await db.rows('SELECT id FROM relay_keys WHERE label = ? AND revoked_at IS NULL', [label])).length > 0;
  return {
    async version() {
      const [row] = await db.rows('SELECT version FROM relay_key_state WHERE id = 1');
      return Number(row?.version ?? 0);
    },

    async activeSecrets(now) {
      const rows = await db.rows('SELECT id, label, secret_hash, previous_secret_hash, previous_expires_at FROM relay_keys WHERE revoked_at IS NULL');
      const out: ActiveSecret[] = [];
      for (const r of rows) {
        const id = String(r.id);
        const label = String(r.label);
        if (r.secret_hash !== null) out.push({ hash: String(r.secret_hash), id, label });
        const expiresAt = num(r.previous_expires_at);
        if (r.previous_secret_hash !== null && expiresAt !== undefined && expiresAt > now) out.push({ hash: String(r.previous_secret_hash), id, label, expiresAt });
      }
      return out;
    },

    async list() {
      const rows = await db.rows('SELECT id, label, created_at, rotated_at, revoked_at FROM relay_keys ORDER BY created_at, id');
      return rows.map((r) => ({ id: String(r.id), label: String(r.label), createdAt: Number(r.created_at), rotatedAt: num(r.rotated_at), revokedAt: num(r.revoked_at) }));
    },

    async lastUse() {
      const rows = await db.rows('SELECT key_id, last_used_at FROM relay_key_use');
      return new Map(rows.map((r) => [String(r.key_id), Number(r.last_used_at)]));
    },

    async create({ id, label, secretHash, createdAt }) {
      if (await liveLabelTaken(label)) return false;
      try {
        await db.transaction([{ sql: 'INSERT INTO relay_keys (id, label, secret_hash, created_at) VALUES (?, ?, ?, ?)', params: [id, label, secretHash, createdAt] }, BUMP]);
      } catch (err) {
        // Two admins creating the same label at once: the unique index refuses the second.
        if (await liveLabelTaken(label)) return false;
        throw err;
      }
      return true;
    },

    async rotate(id, secretHash, now, previousExpiresAt) {
      const update =
        previousExpiresAt === undefined
          ? { sql: 'UPDATE relay_keys SET secret_hash = ?, previous_secret_hash = NULL, previous_expires_at = NULL, rotated_at = ? WHERE id = ? AND revoked_at IS NULL', params: [secretHash, now, id] }
          : {
              sql: 'UPDATE relay_keys SET previous_secret_hash = secret_hash, previous_expires_at = ?, secret_hash = ?, rotated_at = ? WHERE id = ? AND revoked_at IS NULL',
              params: [previousExpiresAt, secretHash, now, id],
            };
      const [changed] = await db.transaction([update, BUMP]);
      return changed > 0;
    },

    async revoke(id, now) {
      const [changed] = await db.transaction([
        { sql: 'UPDATE relay_keys SET revoked_at = ?, secret_hash = NULL, previous_secret_hash = NULL, previous_expires_at = NULL WHERE id = ? AND revoked_at IS NULL', params: [now, id] },
        BUMP,
      ]);
      return changed > 0;
    },

    async recordUse(uses) {
      if (uses.size === 0) return;
      // Replicas write in any order: a row only ever moves forward in time.
      await db.transaction(
        [...uses].map(([id, at]) => ({
          sql: `INSERT INTO relay_key_use (key_id, last_used_at) VALUES (?, ?)
                ON CONFLICT (key_id) DO UPDATE SET last_used_at = CASE WHEN excluded.last_used_at > relay_key_use.last_used_at THEN excluded.last_used_at ELSE relay_key_use.last_used_at END`,
          params: [id, at],
        })),
      );
    },

    close: () => db.close(),
  };
}
