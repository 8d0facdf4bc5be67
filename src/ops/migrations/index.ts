/**
 * Versioned migrations of the usage ledger, one entry per version, the same logical schema written
 * once per engine. Each is applied at most once, in order, inside a transaction, and recorded in
 * `schema_migrations`. Never edit a released migration: add the next version.
 *
 * Engine differences are only in types: Postgres keeps `time` as `timestamptz`, SQLite as INTEGER
 * milliseconds since the epoch (so range queries compare integers).
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'create usage_log',
    sqlite: `
      CREATE TABLE usage_log (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        key_label TEXT NOT NULL,
        operation TEXT NOT NULL,
        status INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        upstream_ms INTEGER,
        upstream_request_id TEXT,
        model TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        total_tokens INTEGER
      );
      CREATE INDEX usage_log_time_idx ON usage_log (time);
      CREATE INDEX usage_log_key_label_time_idx ON usage_log (key_label, time);
    `,
    postgres: `
      CREATE TABLE usage_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time TIMESTAMPTZ NOT NULL,
        key_label TEXT NOT NULL,
        operation TEXT NOT NULL,
        status INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        upstream_ms INTEGER,
        upstream_request_id TEXT,
        model TEXT,
        input_tokens BIGINT,
        output_tokens BIGINT,
        total_tokens BIGINT
      );
      CREATE INDEX usage_log_time_idx ON usage_log (time);
      CREATE INDEX usage_log_key_label_time_idx ON usage_log (key_label, time);
    `,
  },
  {
    // The (key_label, time) index cost the relay more than it saved: every row updated a third B-tree
    // (measured on SQLite: ~20% of the ledger thread's CPU and ~25% of the bytes it wrote per row), while
    // a query for one key over a time range reads at most the rows the same query for all keys reads
    // through usage_log_time_idx, and totals for all keys are the common query.
    version: 2,
    name: 'drop usage_log_key_label_time_idx',
    sqlite: 'DROP INDEX IF EXISTS usage_log_key_label_time_idx;',
    postgres: 'DROP INDEX IF EXISTS usage_log_key_label_time_idx;',
  },
  {
    // What each request cost at the price table's prices, in whole micro-dollars (USD 10⁻⁶); NULL when it
    // spent tokens on a model the table has no price for (or spent nothing). Rows written before this
    // version have no cost. (Version 3 is taken by the OAuth tables, written at the same time.)
    version: 4,
    name: 'add usage_log.cost_micros',
    sqlite: 'ALTER TABLE usage_log ADD COLUMN cost_micros INTEGER;',
    postgres: 'ALTER TABLE usage_log ADD COLUMN cost_micros BIGINT;',
  },
];

/** The columns of `usage_log` written by `insert`, in parameter order. */
export const USAGE_COLUMNS = [
  'time',
  'key_label',
  'operation',
  'status',
  'latency_ms',
  'upstream_ms',
  'upstream_request_id',
  'model',
  'input_tokens',
  'output_tokens',
  'total_tokens',
  'cost_micros',
] as const;
