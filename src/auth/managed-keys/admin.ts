import { RESERVED_LABELS } from '../../config.ts';
import { RelayError } from '../../core/errors.ts';
import { LABEL_PATTERN, type NamedRelayKey } from '../../ops/keys.ts';
import { randomValue, sha256 } from '../oauth/secrets.ts';
import { CONFIG_ID_PREFIX, keyId, MANAGED_KEY_PREFIX } from '../key-source.ts';
import type { ManagedKeyCache } from './cache.ts';
import type { LastUse } from './last-use.ts';
import type { ManagedKeyStore } from './store.ts';

/**
 * What an admin does with keys, for the API (routes/keys.ts) and the admin page alike: list them (never a
 * secret), create one (its secret returned once), rotate (a new secret under the same id, the old one
 * refused after an optional overlap), revoke. RELAY_KEY's keys are listed as read-only: they change only
 * with the configuration. Refusals are RelayErrors with a sentence saying what to do.
 */

export interface KeyInfo {
  id: string;
  label: string;
  source: 'managed' | 'relay_key';
  readOnly: boolean;
  /** Epoch ms; undefined for RELAY_KEY keys (they are as old as the configuration). */
  createdAt?: number;
  rotatedAt?: number;
  revokedAt?: number;
  lastUsedAt?: number;
}

/** A key with its secret: the only time the secret is ever shown. */
export interface IssuedKey {
  id: string;
  label: string;
  key: string;
  createdAt: number;
  rotatedAt?: number;
  /** After a rotation with an overlap: until when the previous secret still works (epoch ms). */
  previousExpiresAt?: number;
}

export interface KeyAdmin {
  list(): Promise<KeyInfo[]>;
  create(label: unknown): Promise<IssuedKey>;
  rotate(id: string, overlapSeconds?: number): Promise<IssuedKey>;
  revoke(id: string): Promise<KeyInfo>;
}

/** The longest a rotated-out secret may keep working. */
export const MAX_OVERLAP_SECONDS = 7 * 86_400;

export interface KeyAdminDeps {
  configKeys: readonly NamedRelayKey[];
  store: ManagedKeyStore;
  cache: ManagedKeyCache;
  lastUse: LastUse;
  /** Key lifecycle events for the log (ids and labels, never a secret). */
  onEvent: (event: string, fields: Record<string, unknown>) => void;
  now?: () => number;
}

const newSecret = () => randomValue(MANAGED_KEY_PREFIX);

export function keyAdmin(deps: KeyAdminDeps): KeyAdmin {
  const { configKeys, store, cache, onEvent } = deps;
  const now = deps.now ?? Date.now;
  const configLabels = new Set(configKeys.map((k) => k.label));

  const notFound = (id: string) =>
    new RelayError(404, `No live managed key has the id "${id}": it may have been revoked already. List the keys with GET /v1/relay/keys.`, { code: 'key_not_found', param: 'id' });
  const readOnly = (id: string) =>
    new RelayError(409, `The key "${id}" comes from RELAY_KEY, so it is read-only here: change RELAY_KEY and restart the relay to rotate or remove it.`, {
      type: 'invalid_request_error',
      code: 'key_read_only',
      param: 'id',
    });

  async function find(id: string) {
    if (id.startsWith(CONFIG_ID_PREFIX)) {
      const ids = await Promise.all(configKeys.map((k) => keyId(k.key)));
      if (ids.includes(id)) throw readOnly(id);
      throw notFound(id);
    }
    const key = (await store.list()).find((k) => k.id === id && k.revokedAt === undefined);
    if (!key) throw notFound(id);
    return key;
  }

  function checkLabel(raw: unknown): string {
    const label = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
    if (!LABEL_PATTERN.test(label)) {
      throw new RelayError(400, 'label must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit (it names the caller in logs, metrics, limits and usage).', {
        code: 'invalid_label',
        param: 'label',
      });
    }
    if (RESERVED_LABELS.has(label)) throw new RelayError(400, `The label "${label}" is reserved for the relay's own records; choose another.`, { code: 'invalid_label', param: 'label' });
    if (configLabels.has(label)) {
      throw new RelayError(409, `The label "${label}" belongs to a key in RELAY_KEY; choose another label (each label names one caller in usage and limits).`, {
        type: 'invalid_request_error',
        code: 'label_in_use',
        param: 'label',
      });
    }
    return label;
  }

  const labelTaken = (label: string) =>
    new RelayError(409, `A live key is already labelled "${label}": rotate it for a new secret, or revoke it first to reuse the label.`, {
      type: 'invalid_request_error',
      code: 'label_in_use',
      param: 'label',
    });

  return {
    async list() {
      // This replica's latest uses first (the others write theirs every few seconds).
      await deps.lastUse.flush(true).catch(() => {});
      const [managed, uses, configIds] = await Promise.all([store.list(), store.lastUse(), Promise.all(configKeys.map((k) => keyId(k.key)))]);
      const fromConfig: KeyInfo[] = configKeys.map((k, i) => ({ id: configIds[i]!, label: k.label, source: 'relay_key', readOnly: true, lastUsedAt: uses.get(configIds[i]!) }));
      const fromStore: KeyInfo[] = managed.map((k) => ({ ...k, source: 'managed', readOnly: false, lastUsedAt: uses.get(k.id) }));
      return [...fromConfig, ...fromStore];
    },

    async create(rawLabel) {
      const label = checkLabel(rawLabel);
      const key = newSecret();
      const created = { id: randomValue('key_', 12), label, secretHash: sha256(key), createdAt: now() };
      if (!(await store.create(created))) throw labelTaken(label);
      await cache.reload();
      onEvent('relay key created', { keyId: created.id, label });
      return { id: created.id, label, key, createdAt: created.createdAt };
    },

    async rotate(id, overlapSeconds = 0) {
      if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_OVERLAP_SECONDS) {
        throw new RelayError(400, `overlap_seconds must be a whole number from 0 (the old secret is refused at once) to ${MAX_OVERLAP_SECONDS} (7 days).`, {
          code: 'invalid_overlap',
          param: 'overlap_seconds',
        });
      }
      const found = await find(id);
      const key = newSecret();
      const at = now();
      const previousExpiresAt = overlapSeconds > 0 ? at + overlapSeconds * 1000 : undefined;
      if (!(await store.rotate(id, sha256(key), at, previousExpiresAt))) throw notFound(id);
      await cache.reload();
      onEvent('relay key rotated', { keyId: id, label: found.label, overlapSeconds });
      return { id, label: found.label, key, createdAt: found.createdAt, rotatedAt: at, previousExpiresAt };
    },

    async revoke(id) {
      const found = await find(id);
      const at = now();
      if (!(await store.revoke(id, at))) throw notFound(id);
      await cache.reload();
      onEvent('relay key revoked', { keyId: id, label: found.label });
      return { ...found, source: 'managed', readOnly: false, revokedAt: at };
    },
  };
}
