/**
 * Versioned migrations of the relay's database (the usage ledger, the OAuth grants of /mcp, managed relay keys), one entry per version, the same logical schema written
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
    // OAuth for /mcp (src/auth/oauth/): registered clients, grants (one per consent), their codes and
    // tokens. Codes, tokens and client secrets are stored as SHA-256 hashes only; times are epoch ms in
    // both engines. A grant names the relay key it was granted with by key id (src/auth/key-source.ts),
    // never by the key.
    version: 3,
    name: 'create oauth tables',
    sqlite: oauthTables('INTEGER'),
    postgres: oauthTables('BIGINT'),
  },
  {
    // What each request cost at the price table's prices, in whole micro-dollars (USD 10⁻⁶); NULL when it
    // spent tokens on a model the table has no price for (or spent nothing). Rows written before this
    // version have no cost.
    version: 4,
    name: 'add usage_log.cost_micros',
    sqlite: 'ALTER TABLE usage_log ADD COLUMN cost_micros INTEGER;',
    postgres: 'ALTER TABLE usage_log ADD COLUMN cost_micros BIGINT;',
  },
  {
    // Relay keys managed through the admin API (src/auth/managed-keys/): a stable id and label per key,
    // its secret as a SHA-256 hash (and, for an overlap after a rotation, the one before it), and a
    // version every change bumps, so replicas notice a change by reading one row. Last use is kept for
    // RELAY_KEY keys too (by their key id). Times are epoch ms in both engines.
    version: 5,
    name: 'create relay key tables',
    sqlite: relayKeyTables('INTEGER'),
    postgres: relayKeyTables('BIGINT'),
  },
];

function relayKeyTables(int64: string): string {
  return `
    CREATE TABLE relay_keys (
      id TEXT PRIMARY KEY,
      label TEXT NOT NULL,
      secret_hash TEXT,
      previous_secret_hash TEXT,
      previous_expires_at ${int64},
      created_at ${int64} NOT NULL,
      rotated_at ${int64},
      revoked_at ${int64}
    );
    CREATE UNIQUE INDEX relay_keys_active_label_idx ON relay_keys (label) WHERE revoked_at IS NULL;
    CREATE TABLE relay_key_use (
      key_id TEXT PRIMARY KEY,
      last_used_at ${int64} NOT NULL
    );
    CREATE TABLE relay_key_state (
      id INTEGER PRIMARY KEY,
      version ${int64} NOT NULL
    );
    INSERT INTO relay_key_state (id, version) VALUES (1, 0);
  `;
}

function oauthTables(int64: string): string {
  return `
    CREATE TABLE oauth_clients (
      client_id TEXT PRIMARY KEY,
      secret_hash TEXT,
      metadata TEXT NOT NULL,
      created_at ${int64} NOT NULL,
      used_at ${int64}
    );
    CREATE TABLE oauth_grants (
      grant_id TEXT PRIMARY KEY,
      client_id TEXT NOT NULL,
      key_id TEXT NOT NULL,
      scope TEXT NOT NULL,
      resource TEXT NOT NULL,
      redirect_uri TEXT NOT NULL,
      code_challenge TEXT NOT NULL,
      created_at ${int64} NOT NULL,
      revoked_at ${int64}
    );
    CREATE TABLE oauth_codes (
      code_hash TEXT PRIMARY KEY,
      grant_id TEXT NOT NULL,
      expires_at ${int64} NOT NULL,
      used_at ${int64}
    );
    CREATE TABLE oauth_tokens (
      token_hash TEXT PRIMARY KEY,
      grant_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      expires_at ${int64} NOT NULL,
      used_at ${int64}
    );
    CREATE INDEX oauth_tokens_grant_idx ON oauth_tokens (grant_id);
    CREATE INDEX oauth_tokens_expires_idx ON oauth_tokens (expires_at);
    CREATE TABLE oauth_secrets (
      name TEXT PRIMARY KEY,
      value TEXT NOT NULL
    );
  `;
}

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
