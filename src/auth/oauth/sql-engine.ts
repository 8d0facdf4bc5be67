import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import pg from 'pg';
import { migratePostgres, migrateSqlite } from '../../ops/migrations/run.ts';

/**
 * The two engines of the grant store. SQLite: its own connection to the ledger's file, on the relay's
 * thread: OAuth statements are rare (a consent, a token exchange) and small, and token checks are mostly
 * answered from the verifier's cache. PostgreSQL: a small pool of its own.
 */

/** Runs SQL written with `?` placeholders. */
export interface SqlEngine {
  rows(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Number of rows the statement changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

export function sqliteEngine(path: string): SqlEngine {
  const db = new DatabaseSync(path);
  // The ledger's thread writes to the same file in batches: wait for its lock instead of failing.
  db.exec('PRAGMA busy_timeout = 2000');
  if (path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
  migrateSqlite(db);
  const statements = new Map<string, StatementSync>();
  const prepared = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = db.prepare(sql)));
    return statement;
  };
  let open = true;
  return {
    async rows(sql, params = []) {
      return prepared(sql).all(...(params as SQLInputValue[])) as Record<string, unknown>[];
    },
    async run(sql, params = []) {
      return Number(prepared(sql).run(...(params as SQLInputValue[])).changes);
    },
    async close() {
      if (open) db.close();
      open = false;
    },
  };
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function postgresEngine(connectionString: string, schema?: string): Promise<SqlEngine> {
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name: ${schema}`);
  const pool = new pg.Pool({
    connectionString,
    max: 4,
    connectionTimeoutMillis: 5_000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000,
    allowExitOnIdle: true,
    application_name: 'openai-relay-oauth',
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
  });
  pool.on('error', () => {});
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await migratePostgres(client, schema);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
    await pool.end();
    throw err;
  }
  client.release();
  // `?` placeholders become `$n` (the store's SQL has no `?` inside string literals).
  const numbered = new Map<string, string>();
  const text = (sql: string) => {
    let out = numbered.get(sql);
    if (out === undefined) {
      let n = 0;
      numbered.set(sql, (out = sql.replace(/\?/g, () => `$${++n}`)));
    }
    return out;
  };
  let closed: Promise<void> | undefined;
  return {
    async rows(sql, params = []) {
      return (await pool.query(text(sql), params)).rows;
    },
    async run(sql, params = []) {
      return (await pool.query(text(sql), params)).rowCount ?? 0;
    },
    close: () => (closed ??= pool.end()),
  };
}
