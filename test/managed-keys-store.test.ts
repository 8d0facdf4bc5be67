import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { managedKeyCache, secretHash, type ManagedKeyCache } from '../src/auth/managed-keys/cache.ts';
import { lastUseRecorder } from '../src/auth/managed-keys/last-use.ts';
import { managedKeyStore, type ManagedKeyStore } from '../src/auth/managed-keys/store.ts';
import { keyDirectory, MANAGED_KEY_PREFIX } from '../src/auth/key-source.ts';
import { openSqlEngine } from '../src/auth/oauth/sql-engine.ts';
import { useFreshSchemas } from './helpers/pg-schemas.ts';

/**
 * Managed keys below the API, on both engines: SQLite (a temporary file) and PostgreSQL (TEST_DATABASE_URL,
 * a fresh schema per test, dropped at the end). The store keeps hashes only and bumps its version on every
 * change; the cache answers from memory, sees another process's change after a version check, and spaces
 * the checks a flood of wrong keys would ask for.
 */
const PG_URL = process.env.TEST_DATABASE_URL || undefined;
if (!PG_URL) console.warn('managed-keys-store.test.ts: TEST_DATABASE_URL is not set — the PostgreSQL managed key tests are SKIPPED.');

const schemas = useFreshSchemas('keys_test', PG_URL);
const closers = { push: schemas.closeLater };

/** Two stores on one database, as two replicas (or two processes on one SQLite file) would have. */
const engines = [
  {
    name: 'SQLite',
    skip: false,
    place: () => join(mkdtempSync(join(tmpdir(), 'relay-keys-')), 'usage.sqlite'),
    open: async (place: string) => managedKeyStore(await openSqlEngine({ sqlitePath: place })),
  },
  {
    name: 'PostgreSQL',
    skip: !PG_URL,
    place: () => schemas.next(),
    open: async (schema: string) => managedKeyStore(await openSqlEngine({ databaseUrl: PG_URL, sqlitePath: 'unused', schema })),
  },
];

const T0 = 1_800_000_000_000;
const secret = (n: number) => `${MANAGED_KEY_PREFIX}${String(n).padStart(43, 'x')}`;

for (const engine of engines) {
  describe.skipIf(engine.skip)(`managed key store: ${engine.name}`, () => {
    const open = async (place = engine.place()) => {
      const store = await engine.open(place);
      closers.push(() => store.close());
      return { store, place };
    };

    test('create, rotate with and without an overlap, revoke: hashes only, the version moving each time', async () => {
      const { store } = await open();
      const v0 = await store.version();
      expect(await store.create({ id: 'key_a', label: 'alice', secretHash: secretHash(secret(1)), createdAt: T0 })).toBe(true);
      expect(await store.version()).toBe(v0 + 1);
      expect(await store.activeSecrets(T0)).toEqual([{ hash: secretHash(secret(1)), id: 'key_a', label: 'alice' }]);

      expect(await store.rotate('key_a', secretHash(secret(2)), T0 + 1, T0 + 1000)).toBe(true);
      expect(await store.activeSecrets(T0 + 999)).toEqual([
        { hash: secretHash(secret(2)), id: 'key_a', label: 'alice' },
        { hash: secretHash(secret(1)), id: 'key_a', label: 'alice', expiresAt: T0 + 1000 },
      ]);
      expect(await store.activeSecrets(T0 + 1000)).toEqual([{ hash: secretHash(secret(2)), id: 'key_a', label: 'alice' }]);
      // A second rotation in the overlap: only the secret just replaced keeps working.
      expect(await store.rotate('key_a', secretHash(secret(3)), T0 + 2)).toBe(true);
      expect((await store.activeSecrets(T0 + 3)).map((s) => s.hash)).toEqual([secretHash(secret(3))]);
      expect(await store.version()).toBe(v0 + 3);

      expect(await store.revoke('key_a', T0 + 5)).toBe(true);
      expect(await store.revoke('key_a', T0 + 6)).toBe(false);
      expect(await store.rotate('key_a', secretHash(secret(4)), T0 + 7)).toBe(false);
      expect(await store.activeSecrets(T0 + 8)).toEqual([]);
      expect(await store.list()).toEqual([{ id: 'key_a', label: 'alice', createdAt: T0, rotatedAt: T0 + 2, revokedAt: T0 + 5 }]);
    });

    test('one live key per label (also when two create it at once); a revoked key frees its label', async () => {
      const { store, place } = await open();
      const other = (await open(place)).store;
      const results = await Promise.all([
        store.create({ id: 'key_1', label: 'bob', secretHash: 'h1', createdAt: T0 }),
        other.create({ id: 'key_2', label: 'bob', secretHash: 'h2', createdAt: T0 }),
      ]);
      expect(results.sort()).toEqual([false, true]);
      const live = (await store.list()).find((k) => k.revokedAt === undefined)!;
      expect(await store.revoke(live.id, T0 + 1)).toBe(true);
      expect(await other.create({ id: 'key_3', label: 'bob', secretHash: 'h3', createdAt: T0 + 2 })).toBe(true);
    });

    test('last use only moves forward, whichever replica writes last', async () => {
      const { store } = await open();
      await store.recordUse(new Map([['key_a', T0 + 10], ['cfg_b', T0 + 5]]));
      await store.recordUse(new Map([['key_a', T0 + 7]]));
      expect(await store.lastUse()).toEqual(new Map([['key_a', T0 + 10], ['cfg_b', T0 + 5]]));
    });

    test("a cache sees another replica's change after a version check; a miss reads the version once more", async () => {
      const { store, place } = await open();
      const other = (await open(place)).store;
      const used: string[] = [];
      const cache = await managedKeyCache({ store, onUse: (id) => used.push(id), onError: (err) => { throw err; } });
      closers.push(() => cache.close());
      expect(cache.lookup(secret(7))).toBeUndefined();
      await other.create({ id: 'key_7', label: 'carol', secretHash: secretHash(secret(7)), createdAt: Date.now() });
      await cache.refresh();
      expect(cache.lookup(secret(7))).toEqual({ id: 'key_7', label: 'carol' });
      expect(cache.byId('key_7')).toEqual({ id: 'key_7', label: 'carol' });
      expect(used).toEqual(['key_7']);
      await other.revoke('key_7', Date.now());
      await cache.refresh();
      expect(cache.lookup(secret(7))).toBeUndefined();
      expect(cache.byId('key_7')).toBeUndefined();
    });
  });
}

describe('the cache and the directory', () => {
  /** A store that counts version reads, over a list of secrets the test changes. */
  function fakeStore(answerAfterMs = 0) {
    const state = { version: 0, versionReads: 0, secrets: [] as { hash: string; id: string; label: string; expiresAt?: number }[] };
    const store = {
      // The version as it was when asked, answered a little later (a query on its way).
      version: () => {
        state.versionReads++;
        const seen = state.version;
        return new Promise((resolve) => setTimeout(() => resolve(seen), answerAfterMs));
      },
      activeSecrets: async () => state.secrets,
    } as unknown as ManagedKeyStore;
    return { state, store };
  }

  test('misses share version checks: a flood of wrong keys reads the version at most once per 25 ms', async () => {
    const { state, store } = fakeStore();
    const cache: ManagedKeyCache = await managedKeyCache({ store, onUse: () => {}, onError: () => {} });
    closers.push(() => cache.close());
    state.versionReads = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 200 }, () => cache.refresh()));
    await Promise.all(Array.from({ length: 200 }, () => cache.refresh()));
    const elapsed = performance.now() - started;
    // The first check at once, then at most one more per 25 ms, however many asked.
    expect(state.versionReads).toBeLessThanOrEqual(2 + Math.floor(elapsed / 25));
    expect(state.versionReads).toBeGreaterThanOrEqual(2);
  });

  test('a check asked for after a change sees it (it starts after the call)', async () => {
    const { state, store } = fakeStore(20);
    const cache = await managedKeyCache({ store, onUse: () => {}, onError: () => {} });
    closers.push(() => cache.close());
    const reads = state.versionReads;
    const running = cache.refresh();
    await new Promise((r) => setTimeout(r, 5)); // its version read is on its way
    expect(state.versionReads).toBe(reads + 1);
    state.secrets = [{ hash: secretHash(secret(9)), id: 'key_9', label: 'dave' }];
    state.version++;
    const after = cache.refresh();
    await running;
    expect(cache.lookup(secret(9))).toBeUndefined(); // the running check read the version before the change
    await after;
    expect(cache.lookup(secret(9))).toEqual({ id: 'key_9', label: 'dave' });
  });

  test('the directory: RELAY_KEY keys first, then managed ones; only managed-shaped misses ask for a refresh; uses are noted', async () => {
    const { state, store } = fakeStore();
    state.secrets = [{ hash: secretHash(secret(1)), id: 'key_1', label: 'erin' }];
    const cache = await managedKeyCache({ store, onUse: () => {}, onError: () => {} });
    closers.push(() => cache.close());
    const uses = new Map<string, number>();
    const recorder = lastUseRecorder({ recordUse: async (m: Map<string, number>) => m.forEach((v, k) => uses.set(k, v)) } as unknown as ManagedKeyStore, async () => ['cfg_alice'], 1);
    let refreshes = 0;
    const directory = keyDirectory([{ label: 'alice', key: 'alice-key-0123456789abcdef' }], {
      lookup: cache.lookup,
      byId: cache.byId,
      refresh: () => (refreshes++, cache.refresh()),
      configUsed: (index) => recorder.config(index, 42),
    });
    expect(directory.labelOf('alice-key-0123456789abcdef')).toBe('alice');
    expect(directory.labelOf(secret(1))).toBe('erin');
    expect(directory.labelOf(secret(2))).toBeUndefined();
    expect(directory.mightBeNew(secret(2))).toBe(true);
    expect(directory.mightBeNew('alice-key-0123456789abcdeX')).toBe(false);
    expect(await directory.match('not-a-managed-key-000000')).toBeUndefined();
    expect(refreshes).toBe(0);
    expect(await directory.match(secret(2))).toBeUndefined();
    expect(refreshes).toBe(1);
    expect(await directory.byId('key_1')).toEqual({ id: 'key_1', label: 'erin' });
    await recorder.flush(true);
    expect(uses).toEqual(new Map([['cfg_alice', 42]]));
  });
});
