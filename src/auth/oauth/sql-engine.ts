import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import pg from 'pg';
import { inSqliteTransaction, migratePostgres, migrateSqlite } from '../../ops/migrations/run.ts';

/**
 * The two engines of the grant store (and of managed relay keys). SQLite: its own connection to the
 * ledger's file, on the relay's thread: these statements are rare (a consent, a token exchange, a key
 * created) and small, and checks are mostly answered from in-memory caches. PostgreSQL: a small pool of
 * its own.
 */

/** Runs SQL written with `?` placeholders. */
export interface SqlEngine {
  rows(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Number of rows the statement changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /** Runs the statements in order in one transaction (all or none); the rows each one changed. */
  transaction(statements: readonly { sql: string; params?: unknown[] }[]): Promise<number[]>;
  close(): Promise<void>;
}

export interface OpenSqlEngineOptions {
  /** postgres:// URL; otherwise the SQLite file. */
  databaseUrl?: string;
  sqlitePath: string;
  /** Postgres only: the schema (tests). */
  schema?: string;
}

/** The database DATABASE_URL names (else the SQLite file, its directory created), migrated. */
export async function openSqlEngine(opts: OpenSqlEngineOptions): Promise<SqlEngine> {
  if (opts.databaseUrl) return postgresEngine(opts.databaseUrl, opts.schema);
  if (opts.sqlitePath !== ':memory:') mkdirSync(dirname(resolve(opts.sqlitePath)), { recursive: true });
  return sqliteEngine(opts.sqlitePath);
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
    async transaction(statements) {
      // Synchronous from BEGIN to COMMIT: no other statement of this connection can run in between.
      const changed: number[] = [];
      inSqliteTransaction(db, () => {
        for (const { sql, params = [] } of statements) changed.push(Number(prepared(sql).run(...(params as SQLInputValue[])).changes));
      }, 'IMMEDIATE');
      return changed;
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
    async transaction(statements) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const changed: number[] = [];
        for (const { sql, params = [] } of statements) changed.push((await client.query(text(sql), params)).rowCount ?? 0);
        await client.query('COMMIT');
        return changed;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr as Error));
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: () => (closed ??= pool.end()),
  };
}
