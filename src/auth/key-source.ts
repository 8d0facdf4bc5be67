import { scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { relayKeyring } from '../core/auth.ts';
import type { NamedRelayKey } from '../ops/keys.ts';

/**
 * Where relay keys come from, for what outlives a request: an OAuth grant names the key it was granted
 * with by the key's id, and every use of the grant looks the id up again, so a key that is no longer
 * configured takes its grants with it. The sources are RELAY_KEY and the keys managed through the admin
 * API (kept in the database), together in a KeyDirectory.
 */
export interface RelayKeyRef {
  /** Stable for the same key, different for a different key under the same label (a rotated key). */
  id: string;
  /** Names the caller in logs, metrics, limits and usage. */
  label: string;
}

export interface KeySource {
  /** The key a person presented (compared in constant time), or undefined. */
  match(presented: string): Promise<RelayKeyRef | undefined>;
  /** The key with this id while it is still configured, or undefined. */
  byId(id: string): Promise<RelayKeyRef | undefined>;
}

/** RELAY_KEY keys' ids start so; managed keys' ids start with `key_`. */
export const CONFIG_ID_PREFIX = 'cfg_';

/** Worked out once per process: the OAuth grants, the key list and last-use times all ask. */
const keyIds = new Map<string, Promise<string>>();

const scryptAsync = promisify(scrypt) as (password: string, salt: string, keylen: number, options: object) => Promise<Buffer>;

/**
 * A configured key's id: scrypt of the key (fixed salt, so every replica derives the same id). The id is
 * stored in the database with each grant; being a slow hash, it does not make a weak key easier to guess
 * for someone who reads the database. Computed on first use, once per key (about 16 MB and tens of
 * milliseconds each, on libuv's thread pool).
 */
export function keyId(key: string): Promise<string> {
  let id = keyIds.get(key);
  if (id === undefined) {
    id = scryptAsync(key, 'openai-relay/relay-key-id/v1', 24, { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }).then((b) => `${CONFIG_ID_PREFIX}${b.toString('base64url')}`);
    keyIds.set(key, id);
  }
  return id;
}

/** The keys of RELAY_KEY: a constant-time keyring and their ids (computed on first use). */
function configKeys(keys: readonly NamedRelayKey[]) {
  const keyring = relayKeyring(keys.map((k) => k.key));
  let refs: Promise<RelayKeyRef[]> | undefined;
  let byIdMap: Promise<Map<string, RelayKeyRef>> | undefined;
  const all = () => (refs ??= Promise.all(keys.map(async (k) => ({ id: await keyId(k.key), label: k.label }))));
  return {
    keyring,
    all,
    async byId(id: string) {
      byIdMap ??= all().then((list) => new Map(list.map((ref) => [ref.id, ref])));
      return (await byIdMap).get(id);
    },
  };
}

/** The keys of RELAY_KEY (in memory; ids computed on first use). */
export function configKeySource(keys: readonly NamedRelayKey[]): KeySource {
  const config = configKeys(keys);
  return {
    async match(presented) {
      const index = config.keyring.match(presented);
      return index === -1 ? undefined : (await config.all())[index];
    },
    byId: config.byId,
  };
}

/** The shape of a managed key's secret (src/auth/managed-keys/): `rly_sk_` and 256 random bits, base64url. */
export const MANAGED_KEY_PREFIX = 'rly_sk_';
const MANAGED_KEY_SHAPE = /^rly_sk_[A-Za-z0-9_-]{43}$/;

/** Managed keys as the directory sees them: an in-memory cache of the database, and where uses are noted. */
export interface ManagedKeyLookup {
  lookup(presented: string): RelayKeyRef | undefined;
  byId(id: string): RelayKeyRef | undefined;
  refresh(): Promise<void>;
  /** A RELAY_KEY key (by position) was used just now. */
  configUsed(index: number): void;
}

/**
 * Every key the relay accepts: RELAY_KEY's (checked first, in constant time, as before), then the managed
 * ones when the admin API is on (SHA-256, then one Map lookup).
 */
export interface KeyDirectory extends KeySource {
  /** The presented key's label, from memory, or undefined. The request path's check: synchronous. */
  labelOf(presented: string): string | undefined;
  /** After a miss: true when the key may have been made moments ago on another replica (then `refresh()` and ask again). */
  mightBeNew(presented: string): boolean;
  refresh(): Promise<void>;
}

export function keyDirectory(keys: readonly NamedRelayKey[], managed?: ManagedKeyLookup): KeyDirectory {
  const config = configKeys(keys);
  const mightBeNew = (presented: string) => managed !== undefined && MANAGED_KEY_SHAPE.test(presented);
  const refresh = () => managed?.refresh() ?? Promise.resolve();
  return {
    labelOf(presented) {
      const index = config.keyring.match(presented);
      if (index === -1) return managed?.lookup(presented)?.label;
      managed?.configUsed(index);
      return keys[index]!.label;
    },
    mightBeNew,
    refresh,
    async match(presented) {
      const index = config.keyring.match(presented);
      if (index !== -1) return (await config.all())[index];
      if (!managed) return undefined;
      const found = managed.lookup(presented);
      if (found || !mightBeNew(presented)) return found;
      await refresh();
      return managed.lookup(presented);
    },
    async byId(id) {
      return id.startsWith(CONFIG_ID_PREFIX) ? config.byId(id) : managed?.byId(id);
    },
  };
}
