import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PackedRows, unpackRows } from './ledger-rows.ts';
import { sqliteRowValues } from './ledger-values.ts';
import type { LabelSpend, LedgerStore, UsageQuery, UsageRow, UsageTotal } from './ledger-values.ts';

export type { LabelSpend, LedgerStore, UsageGroup, UsageQuery, UsageRow, UsageTotal } from './ledger-values.ts';

/**
 * The usage ledger: one row per relayed request (who, what, how long, which model, how many tokens),
 * so a team sharing one OpenAI key knows who spent what.
 *
 * `record()` is the only call on the request path: it pushes onto an in-memory queue and returns. The
 * queue is written in batches off the hot path — every `flushIntervalMs`, or as soon as `batchSize`
 * rows are waiting — one transaction per batch. Between timer ticks only full batches are written: under
 * steady load the writer would otherwise send the few rows that arrived during each write as a batch of
 * their own, back to back (measured: ~23 rows a batch at 14k requests/s). A batch the store refuses stays
 * at the front of the queue and is retried on the next flush; only when the queue would exceed
 * `maxQueue` are the oldest rows dropped, and `onError` says how many. `close()` writes what is left
 * (graceful shutdown loses nothing while the store is reachable).
 */

export interface Ledger {
  /** Never throws, never awaits: pushes onto the in-memory queue. */
  record(row: UsageRow): void;
  /** Rows recorded but not yet written (including a batch being written). */
  readonly queueDepth: number;
  /** Writes everything queued now. Rejects when the store refuses a batch (the rows stay queued). */
  flush(): Promise<void>;
  /** Flushes first (a failed flush does not stop the query), then queries the store. */
  totals(q: UsageQuery): Promise<UsageTotal[]>;
  /** Each label's tokens and cost since `dayStart` and cost since `monthStart`; flushes first too. */
  spendSince(monthStart: Date, dayStart: Date): Promise<LabelSpend[]>;
  /** Final flush, then closes the store. Idempotent. Rows recorded afterwards are dropped and reported. */
  close(): Promise<void>;
}

export interface LedgerOptions {
  /**
   * Rows per transaction, and the queue length that triggers a flush. Default 2000: each transaction
   * rewrites the partly filled pages at the end of the table and its index, so SQLite wrote ~395 bytes a
   * row at 500 rows a batch and ~320 at 2000 (~8% less CPU); at 16k requests/s that is still eight
   * writes a second, and a queue of ~260 KB off V8's heap.
   */
  batchSize?: number;
  /** Flush period; the timer is unref'd. Default 1000. */
  flushIntervalMs?: number;
  /** Most rows kept while the store is failing; past it the oldest are dropped. Default 100,000. */
  maxQueue?: number;
  /**
   * Called (never from `record()`) when a batch fails — `dropped` 0 — and when rows were dropped:
   * `dropped` is how many since the last report. Defaults to a line on stderr.
   */
  onError?: (err: unknown, dropped: number) => void;
}

export const LEDGER_DEFAULTS = { batchSize: 2000, flushIntervalMs: 1000, maxQueue: 100_000 } as const;

export function createLedger(store: LedgerStore, opts: LedgerOptions = {}): Ledger {
  const batchSize = positiveInt(opts.batchSize, LEDGER_DEFAULTS.batchSize);
  const flushIntervalMs = positiveInt(opts.flushIntervalMs, LEDGER_DEFAULTS.flushIntervalMs);
  const maxQueue = Math.max(positiveInt(opts.maxQueue, LEDGER_DEFAULTS.maxQueue), batchSize);
  const onError = opts.onError ?? defaultOnError;

  // The queue: chunks of packed rows (see ledger-rows.ts), oldest first, each one batch at most. While
  // a write runs, `inflight` is the front chunk; rows recorded meanwhile go into later chunks.
  const chunks: PackedRows[] = [];
  /** A written chunk kept for reuse: under steady load no chunk is allocated after the first two. */
  let spare: PackedRows | undefined;
  let queued = 0;
  let inflight: PackedRows | undefined;
  /** Rows of the chunk being written that trim() dropped meanwhile: lost only if that write fails. */
  let inflightDropped = 0;
  let running: Promise<void> | undefined;
  /** The running drain writes everything queued, not only full batches (timer, flush(), close()). */
  let wantAll = false;
  let droppedUnreported = 0;
  let lastError: unknown;
  let closing: Promise<void> | undefined;
  let storeClosed = false;

  const timer = setInterval(() => {
    if (running === undefined && queued > 0) startDrain(true).catch(() => {});
  }, flushIntervalMs);
  timer.unref();

  function report(err: unknown, dropped: number): void {
    try {
      onError(err, dropped);
    } catch {
      // A broken reporter must not break the ledger.
    }
  }

  function reportDrops(): void {
    if (droppedUnreported === 0) return;
    const n = droppedUnreported;
    droppedUnreported = 0;
    report(lastError ?? new Error('usage ledger queue full'), n);
  }

  /**
   * Drops the oldest rows until the queue fits in maxQueue. Rows of the batch being written count as
   * dropped only if that write fails.
   */
  function trim(): void {
    let i = 0;
    while (queued > maxQueue) {
      const chunk = chunks[i]!;
      const n = Math.min(queued - maxQueue, chunk.live);
      chunk.start += n;
      queued -= n;
      if (chunk === inflight) {
        inflightDropped += n;
        i++;
      } else {
        droppedUnreported += n;
        if (chunk.live === 0) chunks.splice(i, 1);
      }
    }
  }

  function record(row: UsageRow): void {
    try {
      if (storeClosed) {
        // Deferred: record() itself never runs foreign code.
        queueMicrotask(() => report(new Error('usage ledger is closed'), 1));
        return;
      }
      let last = chunks[chunks.length - 1];
      if (last === undefined || last.sealed) {
        last = spare ?? new PackedRows(batchSize);
        spare = undefined;
        chunks.push(last);
      }
      last.push(sqliteRowValues(row));
      queued++;
      trim();
      if (running === undefined && queued >= batchSize) startDrain(false).catch(() => {});
    } catch {
      // never throws
    }
  }

  async function drain(): Promise<void> {
    while (chunks.length > 0 && (wantAll || queued >= batchSize)) {
      const chunk = chunks[0]!;
      chunk.sealed = true;
      inflight = chunk;
      inflightDropped = 0;
      try {
        const bytes = chunk.liveBytes();
        await (store.insertPacked ? store.insertPacked(bytes) : store.insert(unpackRows(bytes)));
      } catch (err) {
        // The chunk stays at the front of the queue (minus what trim() dropped meanwhile), and takes new
        // rows again until it is full: the retry is one batch of the oldest rows, as before the failure.
        droppedUnreported += inflightDropped;
        inflight = undefined;
        inflightDropped = 0;
        chunk.sealed = chunk.full;
        if (chunk.live === 0) chunks.shift();
        lastError = err;
        report(err, 0);
        reportDrops();
        throw err;
      }
      chunks.shift();
      queued -= chunk.live;
      inflight = undefined;
      inflightDropped = 0;
      chunk.reset();
      spare = chunk;
      reportDrops();
    }
  }

  function flush(): Promise<void> {
    return startDrain(true);
  }

  function startDrain(all: boolean): Promise<void> {
    if (storeClosed) return Promise.resolve();
    if (running !== undefined) {
      if (!all) return running;
      wantAll = true;
      // The running drain may have just decided to stop: whatever it leaves is written next.
      return running.then(
        () => startDrain(true),
        () => startDrain(true),
      );
    }
    wantAll = all;
    running = drain().finally(() => {
      running = undefined;
      wantAll = false;
    });
    return running;
  }

  async function totals(q: UsageQuery): Promise<UsageTotal[]> {
    await flush().catch(() => {});
    return store.totals(q);
  }

  async function spendSince(monthStart: Date, dayStart: Date): Promise<LabelSpend[]> {
    await flush().catch(() => {});
    return store.spendSince(monthStart, dayStart);
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      clearInterval(timer);
      // Write until nothing is left (rows may still arrive meanwhile); a failing store gets one retry.
      let failure: unknown;
      let failures = 0;
      while (queued > 0 && failures < 2) {
        try {
          await flush();
        } catch (err) {
          failure = err;
          failures++;
        }
      }
      storeClosed = true;
      const left = queued;
      if (left > 0) {
        chunks.length = 0;
        queued = 0;
        report(failure, left);
      }
      await store.close();
    })();
    return closing;
  }

  return {
    record,
    get queueDepth() {
      return queued;
    },
    flush,
    totals,
    spendSince,
    close,
  };
}

function defaultOnError(err: unknown, dropped: number): void {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(
    dropped > 0
      ? `usage ledger: dropped ${dropped} row(s): ${message}\n`
      : `usage ledger: write failed, will retry: ${message}\n`,
  );
}

function positiveInt(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 1 ? Math.floor(v) : fallback;
}

export interface OpenLedgerStoreOptions {
  /** A postgres:// URL: the ledger lives in PostgreSQL. Otherwise in the SQLite file below. */
  databaseUrl?: string;
  /** SQLite database file; its directory is created. */
  sqlitePath: string;
  /** SQLite only: false runs it on the calling thread (default: its own worker thread; `:memory:` never). */
  sqliteThread?: boolean;
  /** Postgres only: keep the tables in this schema (created if missing) instead of `public`. */
  schema?: string;
}

/** Opens the store DATABASE_URL names (else the SQLite file) and applies pending migrations. */
export async function openLedgerStore(opts: OpenLedgerStoreOptions): Promise<LedgerStore> {
  let store: LedgerStore;
  if (opts.databaseUrl !== undefined && opts.databaseUrl !== '') {
    const { createPostgresStore } = await import('./ledger-postgres.ts');
    store = createPostgresStore({ connectionString: opts.databaseUrl, schema: opts.schema });
  } else {
    if (opts.sqlitePath !== ':memory:') mkdirSync(dirname(resolve(opts.sqlitePath)), { recursive: true });
    if (opts.sqliteThread === false || opts.sqlitePath === ':memory:') {
      const { createSqliteStore } = await import('./ledger-sqlite.ts');
      store = createSqliteStore(opts.sqlitePath);
    } else {
      // A file ledger writes on its own thread: SQLite's synchronous inserts stay off the request path.
      const { createSqliteThreadStore } = await import('./ledger-sqlite-thread.ts');
      store = createSqliteThreadStore(opts.sqlitePath);
    }
  }
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
