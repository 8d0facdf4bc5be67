/**
 * What a usage row is, what the ledger asks of a store, and the column values both engines write:
 * shared by the ledger's queue (ledger.ts) and the stores (SQLite, PostgreSQL), which import nothing else
 * from each other.
 */

export interface UsageRow {
  /** Request start. */
  time: Date;
  /** Relay key label ('-' when auth is off). Never the key itself. */
  keyLabel: string;
  /** operationId, e.g. createResponse. */
  operation: string;
  /** HTTP status sent to the caller (499: the client closed the connection). */
  status: number;
  latencyMs: number;
  /** Time to upstream response headers. */
  upstreamMs?: number;
  upstreamRequestId?: string;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  /** What the request cost, in whole micro-dollars; absent when unknown (no price) or nothing was spent. */
  costMicros?: number;
}

/** What usage totals can be grouped by; `day` is the UTC day. */
export type UsageGroup = 'day' | 'key' | 'operation' | 'model';
export const USAGE_GROUPS: readonly UsageGroup[] = ['day', 'key', 'operation', 'model'];

/** Rows with `from <= time < to`, optionally of one key label, grouped by `groupBy` (default: key, operation, model). */
export interface UsageQuery {
  from: Date;
  to: Date;
  keyLabel?: string;
  groupBy?: readonly UsageGroup[];
}

/** One group's totals; the grouping fields are present when grouped by them. */
export interface UsageTotal {
  /** The UTC day, YYYY-MM-DD. */
  day?: string;
  keyLabel?: string;
  operation?: string;
  model?: string | null;
  requests: number;
  /** Requests answered with status >= 400 (499 included). */
  errors: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  /** The sum of the known costs, in micro-dollars. */
  costMicros: number;
  /** Requests that spent tokens but have no cost (a model without a price): costMicros leaves them out. */
  unpricedRequests: number;
}

/** What each label spent today and this month (UTC), by the ledger: what limit counters start from. */
export interface LabelSpend {
  keyLabel: string;
  dayTokens: number;
  dayCostMicros: number;
  monthCostMicros: number;
}

export interface LedgerStore {
  /** Applies pending migrations; idempotent and safe to run from several processes at once. */
  migrate(): Promise<void>;
  /** Writes all rows in one transaction (all or nothing). */
  insert(rows: UsageRow[]): Promise<void>;
  /**
   * Optional: `insert` for rows as the ledger queues them, packed (ledger-rows.ts). A store that can
   * write packed rows without turning them back into objects (the SQLite thread) saves the main thread
   * that work; the ledger calls `insert` with unpacked rows otherwise.
   */
  insertPacked?(bytes: Uint8Array): Promise<void>;
  /** Sorted by day, key label, operation, then model (null first). */
  totals(q: UsageQuery): Promise<UsageTotal[]>;
  /** Per label: tokens and cost since `dayStart`, cost since `monthStart` (which is not later). */
  spendSince(monthStart: Date, dayStart: Date): Promise<LabelSpend[]>;
  close(): Promise<void>;
}

const MAX_TEXT = 200;
const NEEDS_CLEANING = /[\u0000\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

type Cleaned<T> = [T, string, string, number, number, number | null, string | null, string | null, number | null, number | null, number | null, number | null];

/** A row as the 12 column values of `USAGE_COLUMNS`, cleaned so that no row can poison a batch. */
export function rowValues(row: UsageRow): Cleaned<Date> {
  return cleaned(row, row.time instanceof Date && !Number.isNaN(row.time.getTime()) ? row.time : new Date());
}

/** A row as the values of `USAGE_COLUMNS`, `time` in epoch ms (SQLite's form): what crosses to the ledger thread. */
export type SqliteRowValues = Cleaned<number>;

export function sqliteRowValues(row: UsageRow): SqliteRowValues {
  const ms = row.time instanceof Date ? row.time.getTime() : Number.NaN;
  return cleaned(row, Number.isNaN(ms) ? Date.now() : ms);
}

function cleaned<T>(row: UsageRow, time: T): Cleaned<T> {
  return [
    time,
    text(row.keyLabel) ?? '-',
    text(row.operation) ?? 'unknown',
    int32(row.status) ?? 0,
    int32(row.latencyMs) ?? 0,
    int32(row.upstreamMs),
    text(row.upstreamRequestId),
    text(row.model),
    count(row.inputTokens),
    count(row.outputTokens),
    count(row.totalTokens),
    count(row.costMicros),
  ];
}

function text(v: unknown): string | null {
  if (typeof v !== 'string' || v === '') return null;
  // Postgres text refuses NUL; lone surrogates would not survive UTF-8 either.
  const short = v.length > MAX_TEXT ? v.slice(0, MAX_TEXT) : v;
  // Nearly every value is plain (labels, operation ids, model names): one scan, no copies.
  if (!NEEDS_CLEANING.test(short)) return short;
  return short.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\uFFFD');
}

function int32(v: unknown): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  return Math.min(Math.max(Math.round(v), 0), 2_147_483_647);
}

function count(v: unknown): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return null;
  return Math.min(Math.round(v), Number.MAX_SAFE_INTEGER);
}

/** Deterministic order independent of the database's collation. */
export function sortTotals(rows: UsageTotal[]): UsageTotal[] {
  const cmp = (a: string | null | undefined, b: string | null | undefined) =>
    a === b ? 0 : a === undefined || a === null ? -1 : b === undefined || b === null ? 1 : a < b ? -1 : a > b ? 1 : 0;
  return rows.sort((a, b) => cmp(a.day, b.day) || cmp(a.keyLabel, b.keyLabel) || cmp(a.operation, b.operation) || cmp(a.model, b.model));
}
