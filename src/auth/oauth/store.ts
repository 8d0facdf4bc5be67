import type { ClientMetadata } from './client-metadata.ts';
import type { OpenSqlEngineOptions, SqlEngine } from './sql-engine.ts';

/**
 * The OAuth grant store, in the relay's database (the usage ledger's: SQLite file or PostgreSQL), so
 * grants survive restarts and every replica sees the same ones. Codes, tokens and client secrets are
 * kept as SHA-256 hashes (they are 256-bit random values: a plain hash cannot be reversed). One
 * implementation over a two-call SQL engine (sql-engine.ts); every statement stands alone and is
 * atomic, which is all the flows need: a code or refresh token is spent by one conditional UPDATE.
 */

export interface StoredClient {
  clientId: string;
  /** For clients registered with client_secret_post/basic. */
  secretHash?: string;
  metadata: ClientMetadata;
  createdAt: number;
}

/** One consent: a client, a relay key, a resource. Its codes and tokens die with it. */
export interface Grant {
  grantId: string;
  clientId: string;
  keyId: string;
  scope: string;
  resource: string;
  redirectUri: string;
  codeChallenge: string;
  createdAt: number;
  revokedAt?: number;
}

export interface TokenRecord {
  kind: 'access' | 'refresh';
  expiresAt: number;
  usedAt?: number;
  grant: Grant;
}

/** A code or refresh token being spent: fresh, spent before (a replay), or not valid at all. */
export type Spend = { kind: 'ok'; grant: Grant } | { kind: 'reused'; grantId: string } | { kind: 'invalid' };

export interface GrantStore {
  saveClient(client: StoredClient): Promise<void>;
  findClient(clientId: string): Promise<StoredClient | undefined>;
  /** Stores a new grant and its one code (and marks the client as used). */
  createGrant(grant: Grant, code: { hash: string; expiresAt: number }): Promise<void>;
  redeemCode(hash: string, now: number): Promise<Spend>;
  addTokens(grantId: string, tokens: { hash: string; kind: 'access' | 'refresh'; expiresAt: number }[]): Promise<void>;
  /** Spends a refresh token (the caller then adds the next pair). */
  spendRefreshToken(hash: string, now: number): Promise<Spend>;
  /** A token of any kind with its grant (revoked or not), or undefined. */
  findToken(hash: string): Promise<TokenRecord | undefined>;
  revokeGrant(grantId: string, now: number): Promise<void>;
  /** Deletes what can no longer be used: expired codes and tokens, dead grants, clients never used. */
  purge(now: number, horizons: { unusedClientMs: number }): Promise<void>;
  /** A named secret shared by every replica, made by `create` the first time. */
  secret(name: string, create: () => string): Promise<string>;
  close(): Promise<void>;
}

/** Opens the database DATABASE_URL names (else the SQLite file) and applies pending migrations. */
export async function openGrantStore(opts: OpenSqlEngineOptions): Promise<GrantStore> {
  const { openSqlEngine } = await import('./sql-engine.ts');
  return grantStore(await openSqlEngine(opts));
}

const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));

function grantOf(r: Record<string, unknown>): Grant {
  return {
    grantId: String(r.grant_id),
    clientId: String(r.client_id),
    keyId: String(r.key_id),
    scope: String(r.scope),
    resource: String(r.resource),
    redirectUri: String(r.redirect_uri),
    codeChallenge: String(r.code_challenge),
    createdAt: Number(r.created_at),
    revokedAt: num(r.revoked_at),
  };
}

const GRANT_COLUMNS = 'g.grant_id, g.client_id, g.key_id, g.scope, g.resource, g.redirect_uri, g.code_challenge, g.created_at, g.revoked_at';

export function grantStore(db: SqlEngine): GrantStore {
  const grant = async (grantId: string) => {
    const [row] = await db.rows(`SELECT ${GRANT_COLUMNS} FROM oauth_grants g WHERE g.grant_id = ?`, [grantId]);
    return row ? grantOf(row) : undefined;
  };

  /** A conditional UPDATE spends the value once; a second try finds it spent and reports a replay. */
  async function spend(table: 'oauth_codes' | 'oauth_tokens', column: string, hash: string, now: number, extra = ''): Promise<Spend> {
    const [spent] = await db.rows(
      `UPDATE ${table} SET used_at = ? WHERE ${column} = ? AND used_at IS NULL AND expires_at > ?${extra} RETURNING grant_id`,
      [now, hash, now],
    );
    if (spent) {
      const found = await grant(String(spent.grant_id));
      return found && found.revokedAt === undefined ? { kind: 'ok', grant: found } : { kind: 'invalid' };
    }
    const [row] = await db.rows(`SELECT grant_id, used_at FROM ${table} WHERE ${column} = ?${extra}`, [hash]);
    return row && row.used_at !== null ? { kind: 'reused', grantId: String(row.grant_id) } : { kind: 'invalid' };
  }

  return {
    async saveClient(c) {
      await db.run('INSERT INTO oauth_clients (client_id, secret_hash, metadata, created_at) VALUES (?, ?, ?, ?)', [
        c.clientId,
        c.secretHash ?? null,
        JSON.stringify(c.metadata),
        c.createdAt,
      ]);
    },
    async findClient(clientId) {
      const [row] = await db.rows('SELECT client_id, secret_hash, metadata, created_at FROM oauth_clients WHERE client_id = ?', [clientId]);
      if (!row) return undefined;
      return {
        clientId: String(row.client_id),
        secretHash: row.secret_hash === null ? undefined : String(row.secret_hash),
        metadata: JSON.parse(String(row.metadata)) as ClientMetadata,
        createdAt: Number(row.created_at),
      };
    },
    async createGrant(g, code) {
      await db.run(
        'INSERT INTO oauth_grants (grant_id, client_id, key_id, scope, resource, redirect_uri, code_challenge, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [g.grantId, g.clientId, g.keyId, g.scope, g.resource, g.redirectUri, g.codeChallenge, g.createdAt],
      );
      await db.run('INSERT INTO oauth_codes (code_hash, grant_id, expires_at) VALUES (?, ?, ?)', [code.hash, g.grantId, code.expiresAt]);
      await db.run('UPDATE oauth_clients SET used_at = ? WHERE client_id = ? AND used_at IS NULL', [g.createdAt, g.clientId]);
    },
    redeemCode: (hash, now) => spend('oauth_codes', 'code_hash', hash, now),
    async addTokens(grantId, tokens) {
      for (const t of tokens) {
        await db.run('INSERT INTO oauth_tokens (token_hash, grant_id, kind, expires_at) VALUES (?, ?, ?, ?)', [t.hash, grantId, t.kind, t.expiresAt]);
      }
    },
    spendRefreshToken: (hash, now) => spend('oauth_tokens', 'token_hash', hash, now, " AND kind = 'refresh'"),
    async findToken(hash) {
      const [row] = await db.rows(
        `SELECT t.kind, t.expires_at, t.used_at, ${GRANT_COLUMNS} FROM oauth_tokens t JOIN oauth_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = ?`,
        [hash],
      );
      if (!row) return undefined;
      return { kind: row.kind === 'refresh' ? 'refresh' : 'access', expiresAt: Number(row.expires_at), usedAt: num(row.used_at), grant: grantOf(row) };
    },
    async revokeGrant(grantId, now) {
      await db.run('UPDATE oauth_grants SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL', [now, grantId]);
    },
    async purge(now, { unusedClientMs }) {
      await db.run('DELETE FROM oauth_codes WHERE expires_at < ?', [now]);
      await db.run('DELETE FROM oauth_tokens WHERE expires_at < ?', [now]);
      // A grant lives while it has a code or token left; a revoked one only until its tokens expire.
      await db.run(
        `DELETE FROM oauth_grants WHERE created_at < ?
           AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.grant_id)
           AND NOT EXISTS (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = oauth_grants.grant_id)`,
        [now],
      );
      await db.run('DELETE FROM oauth_clients WHERE used_at IS NULL AND created_at < ?', [now - unusedClientMs]);
    },
    async secret(name, create) {
      await db.run('INSERT INTO oauth_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, create()]);
      const [row] = await db.rows('SELECT value FROM oauth_secrets WHERE name = ?', [name]);
      return String(row.value);
    },
    close: () => db.close(),
  };
}
