import { scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { relayKeyring } from '../core/auth.ts';
import type { NamedRelayKey } from '../ops/keys.ts';

/**
 * Where relay keys come from, for what outlives a request: an OAuth grant names the key it was granted
 * with by the key's id, and every use of the grant looks the id up again, so a key that is no longer
 * configured takes its grants with it. Today's source is RELAY_KEY; another (admin-managed keys kept in
 * the database) plugs in by implementing the same two calls.
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

const scryptAsync = promisify(scrypt) as (password: string, salt: string, keylen: number, options: object) => Promise<Buffer>;

/**
 * A configured key's id: scrypt of the key (fixed salt, so every replica derives the same id). The id is
 * stored in the database with each grant; being a slow hash, it does not make a weak key easier to guess
 * for someone who reads the database. Computed on first use, once per key (about 16 MB and tens of
 * milliseconds each, on libuv's thread pool).
 */
export function keyId(key: string): Promise<string> {
  return scryptAsync(key, 'openai-relay/relay-key-id/v1', 24, { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }).then((b) => `cfg_${b.toString('base64url')}`);
}

/** The keys of RELAY_KEY (in memory; ids computed on first use). */
export function configKeySource(keys: readonly NamedRelayKey[]): KeySource {
  const keyring = relayKeyring(keys.map((k) => k.key));
  let refs: Promise<RelayKeyRef[]> | undefined;
  let byIdMap: Promise<Map<string, RelayKeyRef>> | undefined;
  const all = () => (refs ??= Promise.all(keys.map(async (k) => ({ id: await keyId(k.key), label: k.label }))));
  return {
    async match(presented) {
      const index = keyring.match(presented);
      return index === -1 ? undefined : (await all())[index];
    },
    async byId(id) {
      byIdMap ??= all().then((list) => new Map(list.map((ref) => [ref.id, ref])));
      return (await byIdMap).get(id);
    },
  };
}
