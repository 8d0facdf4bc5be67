import { hash } from 'node:crypto';
import type { RelayKeyRef } from '../key-source.ts';
import type { ActiveSecret, ManagedKeyStore } from './store.ts';

/**
 * The managed keys every request is checked against, in memory: SHA-256 of the presented key, then one
 * Map lookup (the hot path never waits on the database). The database's key version is read every
 * POLL_MS; when it moved, every live secret is loaded again, so a key created, rotated or revoked on
 * another replica is seen here within POLL_MS plus one query. A change made here is loaded at once.
 *
 * A key presented moments after another replica made it may not be loaded yet: `refresh()` reads the
 * version again (a check that starts after the call, shared by every caller waiting meanwhile, at most
 * one per MIN_CHECK_GAP_MS, so wrong keys cannot turn into a flood of queries) and the caller looks again.
 */

export const POLL_MS = 250;
const MIN_CHECK_GAP_MS = 25;

interface Entry extends RelayKeyRef {
  expiresAt?: number;
}

export interface ManagedKeyCache {
  /** The live key whose secret this is (its last use noted), or undefined. Synchronous. */
  lookup(presented: string): RelayKeyRef | undefined;
  /** The live key with this id, or undefined. Synchronous. */
  byId(id: string): RelayKeyRef | undefined;
  /** Live labels, for refusing a clash. */
  labels(): ReadonlySet<string>;
  /** Reads the database's key version (a read that starts after this call) and reloads when it moved. */
  refresh(): Promise<void>;
  /** Loads every live secret now (after a change made on this replica). */
  reload(): Promise<void>;
  /** The poll's clock: epoch ms, at most POLL_MS old (cheap enough for every request). */
  coarseNow(): number;
  close(): void;
}

export interface CacheOptions {
  store: ManagedKeyStore;
  /** Notes a managed key's use (id, coarse epoch ms). */
  onUse: (id: string, at: number) => void;
  /** Called on every poll tick, after the check (writes last-use times, say). */
  onTick?: () => void;
  /** The database could not be read (said once per outage): the last keys loaded stay in force meanwhile. */
  onError: (err: unknown) => void;
  /** The database answers again after onError. */
  onRecover?: () => void;
  now?: () => number;
}

export const secretHash = (presented: string) => hash('sha256', presented, 'base64url');

export async function managedKeyCache(opts: CacheOptions): Promise<ManagedKeyCache> {
  const { store, onUse } = opts;
  const now = opts.now ?? Date.now;
  let bySecret = new Map<string, Entry>();
  let byId = new Map<string, RelayKeyRef>();
  let version = -1;
  let clock = now();
  let failing = false;

  const load = async () => {
    const seen = await store.version();
    install(await store.activeSecrets(now()));
    version = seen;
  };
  const install = (secrets: ActiveSecret[]) => {
    const secretsNext = new Map<string, Entry>();
    const idsNext = new Map<string, RelayKeyRef>();
    for (const s of secrets) {
      const ref = idsNext.get(s.id) ?? { id: s.id, label: s.label };
      idsNext.set(s.id, ref);
      secretsNext.set(s.hash, s.expiresAt === undefined ? ref : { ...ref, expiresAt: s.expiresAt });
    }
    bySecret = secretsNext;
    byId = idsNext;
  };
  const check = async () => {
    try {
      if ((await store.version()) !== version) await load();
      if (failing) opts.onRecover?.();
      failing = false;
    } catch (err) {
      if (!failing) opts.onError(err);
      failing = true;
    }
  };

  // One check at a time; callers arriving while one runs share the next one.
  let current: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  let lastStartedAt = -Infinity;
  const refresh = () =>
    (next ??= (async () => {
      await current;
      // Real time, not the injected clock: this only spaces queries out.
      const wait = lastStartedAt + MIN_CHECK_GAP_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next = undefined;
      lastStartedAt = performance.now();
      const running = (current = check());
      await running;
      if (current === running) current = undefined;
    })());

  await load();
  const timer = setInterval(() => {
    clock = now();
    void refresh().then(opts.onTick);
  }, POLL_MS);
  timer.unref();

  return {
    lookup(presented) {
      const entry = bySecret.get(secretHash(presented));
      if (entry === undefined || (entry.expiresAt !== undefined && now() >= entry.expiresAt)) return undefined;
      onUse(entry.id, clock);
      return byId.get(entry.id);
    },
    byId: (id) => byId.get(id),
    labels: () => new Set([...byId.values()].map((ref) => ref.label)),
    refresh,
    reload: load,
    coarseNow: () => clock,
    close: () => clearInterval(timer),
  };
}
