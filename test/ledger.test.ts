import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { createLedger, openLedgerStore, type LedgerStore, type UsageRow } from '../src/ops/ledger.ts';
import { MIGRATIONS } from '../src/ops/migrations/index.ts';

/**
 * Each engine runs the same suite. `target()` gives a fresh, empty database (a new SQLite file, or a
 * new Postgres schema), which `open()` opens — again and again, to see what a closed ledger left.
 */
interface Target {
  open(): Promise<LedgerStore>;
  migrations(): Promise<number[]>;
}

// ---- SQLite: a temp dir per run ----
const tmp = mkdtempSync(join(tmpdir(), 'ledger-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let sqliteCount = 0;
function sqliteTarget(): Target {
  const path = join(tmp, `db${++sqliteCount}`, 'nested', 'usage.sqlite');
  return {
    open: () => openLedgerStore({ sqlitePath: path }),
    async migrations() {
      const db = new DatabaseSync(path);
      try {
        return db.prepare('SELECT version FROM schema_migrations ORDER BY version').all().map((r) => Number(r.version));
      } finally {
        db.close();
      }
    },
  };
}

// ---- Postgres: TEST_DATABASE_URL, a fresh schema per test, all dropped at the end ----
/**
 * The Postgres tests need TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:55432/postgres).
 * Each test gets its own schema `ledger_test_<run>_<n>`, dropped afterwards.
 */
function testDatabaseUrl(): string | undefined {
  const url = process.env.TEST_DATABASE_URL;
  if (url === undefined || url === '') {
    console.warn('ledger.test.ts: TEST_DATABASE_URL is not set — the PostgreSQL ledger tests are SKIPPED');
    return undefined;
  }
  return url;
}
const PG_URL = testDatabaseUrl();
const runId = randomBytes(4).toString('hex');
const pgSchemas: string[] = [];
function pgTarget(): Target {
  const schema = `ledger_test_${runId}_${pgSchemas.length + 1}`;
  pgSchemas.push(schema);
  return {
    open: () => openLedgerStore({ databaseUrl: PG_URL, sqlitePath: join(tmp, 'unused.sqlite'), schema }),
    async migrations() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
        return rows.map((r) => Number(r.version));
      } finally {
        await client.end();
      }
    },
  };
}
afterAll(async () => {
  if (PG_URL === undefined || pgSchemas.length === 0) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (const s of pgSchemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await client.end();
  }
});

// ---- the suite ----

const T0 = Date.UTC(2030, 0, 1);
const minutes = (n: number) => new Date(T0 + n * 60_000);
function row(over: Partial<UsageRow> = {}): UsageRow {
  return { time: minutes(0), keyLabel: 'alice', operation: 'createResponse', status: 200, latencyMs: 120, ...over };
}

/** Wraps a store to fail on demand and to watch inserts. */
function instrumented(store: LedgerStore) {
  const state = { fail: false, calls: [] as number[], active: 0, maxActive: 0, delayMs: 0 };
  const wrapped: LedgerStore = {
    migrate: () => store.migrate(),
    totals: (q) => store.totals(q),
    spendSince: (month, day) => store.spendSince(month, day),
    close: () => store.close(),
    async insert(rows) {
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      try {
        if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
        state.calls.push(rows.length);
        if (state.fail) throw new Error('store down');
        await store.insert(rows);
      } finally {
        state.active--;
      }
    },
  };
  return { state, store: wrapped };
}

const ALL = { from: minutes(-1e6), to: minutes(1e6) };

function ledgerSuite(target: () => Target) {
  test('migrate is idempotent and recorded in schema_migrations', async () => {
    const t = target();
    const store = await t.open(); // migrates
    await store.migrate();
    await store.migrate();
    await store.close();
    const again = await t.open();
    await again.close();
    expect(await t.migrations()).toEqual(MIGRATIONS.map((m) => m.version));
  });

  test('record → flush → totals, grouped by key label, operation and model; filtered by [from, to) and key label', async () => {
    const store = await target().open();
    const ledger = createLedger(store, { flushIntervalMs: 60_000 });
    ledger.record(row({ time: minutes(0), model: 'gpt-4o', inputTokens: 10, outputTokens: 5, totalTokens: 15, costMicros: 75, upstreamMs: 80, upstreamRequestId: 'req_1' }));
    ledger.record(row({ time: minutes(1), model: 'gpt-4o', inputTokens: 1, outputTokens: 2, totalTokens: 3, costMicros: 23, status: 499 }));
    ledger.record(row({ time: minutes(2), model: 'gpt-4o-mini', inputTokens: 100, totalTokens: 100, costMicros: 15 }));
    ledger.record(row({ time: minutes(3), operation: 'listModels' })); // no model, no tokens
    ledger.record(row({ time: minutes(3), keyLabel: 'bob', model: 'gpt-4o', status: 429 }));
    ledger.record(row({ time: minutes(10), keyLabel: 'bob', model: 'gpt-4o', inputTokens: 7, outputTokens: 7, totalTokens: 14 })); // tokens without a price
    expect(ledger.queueDepth).toBe(6);
    await ledger.flush();
    expect(ledger.queueDepth).toBe(0);

    const bobTotal = { keyLabel: 'bob', operation: 'createResponse', model: 'gpt-4o', requests: 2, errors: 1, inputTokens: 7, outputTokens: 7, totalTokens: 14, costMicros: 0, unpricedRequests: 1 };
    expect(await ledger.totals(ALL)).toEqual([
      { keyLabel: 'alice', operation: 'createResponse', model: 'gpt-4o', requests: 2, errors: 1, inputTokens: 11, outputTokens: 7, totalTokens: 18, costMicros: 98, unpricedRequests: 0 },
      { keyLabel: 'alice', operation: 'createResponse', model: 'gpt-4o-mini', requests: 1, errors: 0, inputTokens: 100, outputTokens: 0, totalTokens: 100, costMicros: 15, unpricedRequests: 0 },
      { keyLabel: 'alice', operation: 'listModels', model: null, requests: 1, errors: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, costMicros: 0, unpricedRequests: 0 },
      bobTotal,
    ]);
    // [from, to): the row at `from` counts, the row at `to` does not
    const window = await ledger.totals({ from: minutes(1), to: minutes(10) });
    expect(window.map((t) => [t.keyLabel, t.operation, t.model, t.requests])).toEqual([
      ['alice', 'createResponse', 'gpt-4o', 1],
      ['alice', 'createResponse', 'gpt-4o-mini', 1],
      ['alice', 'listModels', null, 1],
      ['bob', 'createResponse', 'gpt-4o', 1],
    ]);
    const bob = await ledger.totals({ ...ALL, keyLabel: 'bob' });
    expect(bob).toEqual([bobTotal]);
    expect(await ledger.totals({ ...ALL, keyLabel: 'nobody' })).toEqual([]);
    expect(await ledger.totals({ from: minutes(100), to: minutes(200) })).toEqual([]);
    await ledger.close();
  });

  test('group_by: UTC days, any subset of day, key, operation, model; costs summed, unpriced requests counted', async () => {
    const store = await target().open();
    const ledger = createLedger(store, { flushIntervalMs: 60_000 });
    const DAY = 1440;
    ledger.record(row({ time: minutes(-1), model: 'gpt-5', totalTokens: 10, inputTokens: 10, costMicros: 13 })); // 2029-12-31 23:59 UTC
    ledger.record(row({ time: minutes(0), model: 'gpt-5', totalTokens: 20, inputTokens: 20, costMicros: 25 }));
    ledger.record(row({ time: minutes(DAY - 1), keyLabel: 'bob', model: 'gpt-5', totalTokens: 5, inputTokens: 5, costMicros: 6 }));
    ledger.record(row({ time: minutes(DAY), model: 'odd-model', totalTokens: 9, inputTokens: 9 }));
    const byDay = await ledger.totals({ ...ALL, groupBy: ['day'] });
    expect(byDay.map((t) => [t.day, t.keyLabel, t.requests, t.totalTokens, t.costMicros, t.unpricedRequests])).toEqual([
      ['2029-12-31', undefined, 1, 10, 13, 0],
      ['2030-01-01', undefined, 2, 25, 31, 0],
      ['2030-01-02', undefined, 1, 9, 0, 1],
    ]);
    const byDayAndKey = await ledger.totals({ ...ALL, groupBy: ['key', 'day'] });
    expect(byDayAndKey.map((t) => [t.day, t.keyLabel, t.costMicros])).toEqual([
      ['2029-12-31', 'alice', 13],
      ['2030-01-01', 'alice', 25],
      ['2030-01-01', 'bob', 6],
      ['2030-01-02', 'alice', 0],
    ]);
    expect(byDayAndKey[0]).not.toHaveProperty('operation');
    const all = await ledger.totals({ ...ALL, groupBy: [] });
    expect(all).toEqual([{ requests: 4, errors: 0, inputTokens: 44, outputTokens: 0, totalTokens: 44, costMicros: 44, unpricedRequests: 1 }]);
    expect(await ledger.totals({ from: minutes(5000), to: minutes(6000), groupBy: [] })).toEqual([]);
    await ledger.close();
  });

  test('spendSince: each label\'s tokens and cost today and cost this month, what limit counters start from', async () => {
    const store = await target().open();
    const ledger = createLedger(store, { flushIntervalMs: 60_000 });
    const monthStart = new Date(Date.UTC(2030, 0, 1));
    const dayStart = new Date(Date.UTC(2030, 0, 20));
    const at = (iso: string) => new Date(iso);
    ledger.record(row({ time: at('2029-12-31T23:59:59Z'), totalTokens: 1000, costMicros: 1_000_000 })); // last month: not counted
    ledger.record(row({ time: at('2030-01-05T10:00:00Z'), totalTokens: 100, costMicros: 400 }));
    ledger.record(row({ time: at('2030-01-20T00:00:00Z'), totalTokens: 10, costMicros: 30 }));
    ledger.record(row({ time: at('2030-01-20T12:00:00Z'), totalTokens: 5 })); // unpriced: tokens, no cost
    ledger.record(row({ time: at('2030-01-19T23:00:00Z'), keyLabel: 'bob', totalTokens: 7, costMicros: 9 }));
    const spend = await ledger.spendSince(monthStart, dayStart);
    expect(spend.sort((a, b) => a.keyLabel.localeCompare(b.keyLabel))).toEqual([
      { keyLabel: 'alice', dayTokens: 15, dayCostMicros: 30, monthCostMicros: 430 },
      { keyLabel: 'bob', dayTokens: 0, dayCostMicros: 0, monthCostMicros: 9 },
    ]);
    await ledger.close();
  });

  test('totals flushes first', async () => {
    const store = await target().open();
    const ledger = createLedger(store, { flushIntervalMs: 60_000 });
    ledger.record(row({ inputTokens: 3 }));
    const [t] = await ledger.totals(ALL);
    expect(t!.inputTokens).toBe(3);
    await ledger.close();
  });

  test('batching: reaching batchSize flushes without waiting for the timer, one INSERT per batch', async () => {
    const { state, store } = instrumented(await target().open());
    const ledger = createLedger(store, { batchSize: 3, flushIntervalMs: 60_000 });
    ledger.record(row());
    ledger.record(row());
    await new Promise((r) => setTimeout(r, 20));
    expect(state.calls).toEqual([]);
    ledger.record(row());
    await vi_waitFor(() => ledger.queueDepth === 0);
    expect(state.calls).toEqual([3]);
    for (let i = 0; i < 7; i++) ledger.record(row());
    await ledger.flush();
    expect(state.calls.reduce((a, b) => a + b, 0)).toBe(10);
    expect(Math.max(...state.calls)).toBeLessThanOrEqual(3);
    expect((await ledger.totals(ALL))[0]!.requests).toBe(10);
    await ledger.close();
  });

  test('under steady load only full batches are written between timer ticks (rows arriving during a write wait for the next)', async () => {
    const { state, store } = instrumented(await target().open());
    state.delayMs = 20;
    const ledger = createLedger(store, { batchSize: 5, flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) ledger.record(row()); // a full batch: its write starts
    for (let i = 0; i < 2; i++) ledger.record(row()); // arrive while it is being written
    await vi_waitFor(() => state.calls.length === 1 && state.active === 0);
    await new Promise((r) => setTimeout(r, 40));
    expect(state.calls).toEqual([5]); // not [5, 2]
    expect(ledger.queueDepth).toBe(2);
    for (let i = 0; i < 3; i++) ledger.record(row());
    await vi_waitFor(() => state.calls.length === 2 && state.active === 0);
    expect(state.calls).toEqual([5, 5]);
    ledger.record(row());
    await ledger.flush(); // an explicit flush writes the partial batch
    expect(state.calls).toEqual([5, 5, 1]);
    expect(ledger.queueDepth).toBe(0);
    await ledger.close();
  });

  test('the timer flushes on its own', async () => {
    const { state, store } = instrumented(await target().open());
    const ledger = createLedger(store, { flushIntervalMs: 30 });
    ledger.record(row());
    await vi_waitFor(() => ledger.queueDepth === 0);
    expect(state.calls).toEqual([1]);
    await ledger.close();
  });

  test('never two flushes at once', async () => {
    const { state, store } = instrumented(await target().open());
    state.delayMs = 15;
    const ledger = createLedger(store, { batchSize: 5, flushIntervalMs: 5 });
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      ledger.record(row());
      if (i % 3 === 0) flushes.push(ledger.flush());
    }
    await Promise.all(flushes);
    await ledger.flush();
    expect(state.maxActive).toBe(1);
    expect((await ledger.totals(ALL))[0]!.requests).toBe(40);
    await ledger.close();
  });

  test('close() writes everything queued: no row lost', async () => {
    const t = target();
    const ledger = createLedger(await t.open(), { batchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 1234; i++) ledger.record(row({ keyLabel: `k${i % 7}`, inputTokens: 1 }));
    await ledger.close();
    await ledger.close(); // idempotent
    const store = await t.open();
    const totals = await store.totals(ALL);
    expect(totals.reduce((a, r) => a + r.requests, 0)).toBe(1234);
    expect(totals.reduce((a, r) => a + r.inputTokens, 0)).toBe(1234);
    await store.close();
  });

  test('close() waits for a flush in progress, and reports what a store that stays down loses', async () => {
    const { state, store } = instrumented(await target().open());
    state.delayMs = 30;
    const errors: number[] = [];
    const ledger = createLedger(store, { batchSize: 2, flushIntervalMs: 60_000, onError: (_e, n) => errors.push(n) });
    ledger.record(row());
    ledger.record(row()); // a flush starts
    ledger.record(row());
    await ledger.close();
    expect(state.calls).toEqual([2, 1]);
    expect(errors).toEqual([]);

    const t2 = instrumented(await target().open());
    t2.state.fail = true;
    const lost: [string, number][] = [];
    const down = createLedger(t2.store, { flushIntervalMs: 60_000, onError: (e, n) => lost.push([(e as Error).message, n]) });
    for (let i = 0; i < 5; i++) down.record(row());
    await down.close();
    expect(t2.state.calls).toEqual([5, 5]); // the final flush and one retry
    expect(lost).toEqual([
      ['store down', 0],
      ['store down', 0],
      ['store down', 5],
    ]);
    expect(down.queueDepth).toBe(0);
  });

  test('a failing store keeps rows for the next flush; past maxQueue the oldest are dropped and reported', async () => {
    const { state, store } = instrumented(await target().open());
    const errors: [string, number][] = [];
    const ledger = createLedger(store, {
      batchSize: 4,
      maxQueue: 8,
      flushIntervalMs: 60_000,
      onError: (err, dropped) => errors.push([(err as Error).message, dropped]),
    });
    state.fail = true;
    for (let i = 0; i < 3; i++) ledger.record(row({ inputTokens: i }));
    await expect(ledger.flush()).rejects.toThrow('store down');
    expect(ledger.queueDepth).toBe(3);
    expect(errors).toEqual([['store down', 0]]);

    for (let i = 3; i < 11; i++) ledger.record(row({ inputTokens: i })); // 11 > 8: rows 0..2 go
    await vi_waitFor(() => errors.length >= 3); // batchSize triggered a flush, which failed
    expect(ledger.queueDepth).toBe(8);
    expect(errors.slice(1)).toEqual([
      ['store down', 0],
      ['store down', 3],
    ]);

    state.fail = false;
    await ledger.flush();
    expect(ledger.queueDepth).toBe(0);
    const [t] = await ledger.totals(ALL);
    expect(t!.requests).toBe(8);
    expect(t!.inputTokens).toBe(3 + 4 + 5 + 6 + 7 + 8 + 9 + 10); // the newest survived
    await ledger.close();
  });

  test('the failed batch is retried first, in order', async () => {
    const { state, store } = instrumented(await target().open());
    const ledger = createLedger(store, { batchSize: 2, flushIntervalMs: 60_000, onError: () => {} });
    const seen: number[][] = [];
    const inner = store.insert;
    store.insert = async (rows) => {
      seen.push(rows.map((r) => r.latencyMs));
      return inner(rows);
    };
    state.fail = true;
    ledger.record(row({ latencyMs: 1 }));
    await ledger.flush().catch(() => {});
    state.fail = false;
    ledger.record(row({ latencyMs: 2 })); // reaches batchSize: flushes [1, 2]
    ledger.record(row({ latencyMs: 3 }));
    await ledger.flush();
    expect(seen).toEqual([[1], [1, 2], [3]]);
    await ledger.close();
  });

  test('record() never throws, even after close, and odd values cannot poison a batch', async () => {
    const store = await target().open();
    const reports: number[] = [];
    const ledger = createLedger(store, { flushIntervalMs: 60_000, onError: (_e, n) => reports.push(n) });
    ledger.record(
      row({
        keyLabel: 'a\u0000b',
        model: 'm\ud800'.padEnd(500, 'x'),
        latencyMs: Number.NaN,
        upstreamMs: 12.7,
        inputTokens: 1.5,
        outputTokens: -3,
        totalTokens: Number.POSITIVE_INFINITY,
        time: new Date(Number.NaN),
      }),
    );
    ledger.record(row({ time: minutes(5), status: 500, latencyMs: 1e12 }));
    await ledger.flush();
    const totals = await store.totals({ from: new Date(0), to: new Date(8.64e15) });
    expect(totals.reduce((a, r) => a + r.requests, 0)).toBe(2);
    const odd = totals.find((r) => r.keyLabel === 'ab')!;
    expect(odd.model!.length).toBe(200);
    expect(odd.inputTokens).toBe(2);
    await ledger.close();
    expect(() => ledger.record(row())).not.toThrow();
    await new Promise((r) => setTimeout(r, 0));
    expect(reports).toEqual([1]);
    await ledger.flush(); // harmless after close
  });
}

/** Polls until `cond` holds (vitest's vi.waitFor without the import dance). */
async function vi_waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ledger on SQLite', () => {
  ledgerSuite(sqliteTarget);

  test('a version-1 ledger is upgraded in place: rows kept, the per-key index dropped, every totals query still served by the time index', async () => {
    const path = join(tmp, 'v1', 'usage.sqlite');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(tmp, 'v1'), { recursive: true });
    const old = new DatabaseSync(path);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    old.exec(MIGRATIONS[0]!.sqlite);
    old.prepare('INSERT INTO schema_migrations VALUES (1, ?, 0)').run(MIGRATIONS[0]!.name);
    old.prepare("INSERT INTO usage_log (time, key_label, operation, status, latency_ms) VALUES (?, 'alice', 'createEmbedding', 200, 3)").run(minutes(0).getTime());
    old.close();

    const store = await openLedgerStore({ sqlitePath: path });
    expect((await store.totals(ALL)).map((r) => [r.keyLabel, r.requests])).toEqual([['alice', 1]]);
    expect((await store.totals({ ...ALL, keyLabel: 'alice' })).map((r) => r.requests)).toEqual([1]);
    await store.close();

    const db = new DatabaseSync(path);
    try {
      const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_log'").all().map((r) => r.name);
      expect(indexes).toEqual(['usage_log_time_idx']);
      for (const [where, params] of [
        ['time >= ? AND time < ?', [0, 1]],
        ['time >= ? AND time < ? AND key_label = ?', [0, 1, 'alice']],
      ] as const) {
        const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT COUNT(*) FROM usage_log WHERE ${where}`).all(...params).map((r) => String(r.detail));
        expect(plan.join(' ')).toMatch(/USING (COVERING )?INDEX usage_log_time_idx/);
      }
    } finally {
      db.close();
    }
  });

  test('openLedgerStore creates the directory and uses WAL', async () => {
    const path = join(tmp, 'a', 'b', 'c', 'ledger.db');
    const store = await openLedgerStore({ sqlitePath: path });
    await store.close();
    expect(existsSync(path)).toBe(true);
    const db = new DatabaseSync(path);
    expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    db.close();
  });
});

describe.skipIf(PG_URL === undefined)('ledger on PostgreSQL (TEST_DATABASE_URL)', () => {
  ledgerSuite(pgTarget);

  test('an invalid schema name is refused before any SQL', async () => {
    await expect(openLedgerStore({ databaseUrl: PG_URL, sqlitePath: 'x', schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/invalid ledger schema/);
  });

  test('several relays migrating at once agree', async () => {
    const t = pgTarget();
    const stores = await Promise.all([t.open(), t.open(), t.open()]);
    await Promise.all(stores.map((s) => s.close()));
    expect(await t.migrations()).toEqual(MIGRATIONS.map((m) => m.version));
  });
});
