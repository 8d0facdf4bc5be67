import pg from 'pg';
import { rowValues, type LabelSpend, type LedgerStore, type UsageQuery, type UsageRow, type UsageTotal } from './ledger-values.ts';
import { spendFromRows, spendSql, totalsFromRows, totalsSql } from './ledger-queries.ts';
import { USAGE_COLUMNS } from './migrations/index.ts';
import { migratePostgres } from './migrations/run.ts';

/**
 * The ledger in PostgreSQL through a small `pg` Pool. Parameterized queries only; the one identifier
 * ever put into SQL text (the optional schema) is validated and quoted.
 */

export interface PostgresStoreOptions {
  connectionString: string;
  /** Keep the tables in this schema (created by migrate) instead of `public`. */
  schema?: string;
  /** Pool size; the ledger never runs two writes at once, 2 leaves room for a totals query. */
  max?: number;
}

/** Postgres allows 65,535 bound parameters per statement. */
const MAX_ROWS_PER_STATEMENT = Math.floor(60_000 / USAGE_COLUMNS.length);
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function createPostgresStore(opts: PostgresStoreOptions): LedgerStore {
  const schema = opts.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`invalid ledger schema name: ${schema}`);
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 2,
    connectionTimeoutMillis: 5_000,
    // A hung database must not hang a flush (and so graceful shutdown) forever.
    query_timeout: 15_000,
    idleTimeoutMillis: 30_000,
    allowExitOnIdle: true,
    application_name: 'openai-relay-ledger',
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client losing its connection must not crash the process: the next query reports it.
  pool.on('error', () => {});
  let closed: Promise<void> | undefined;

  async function inTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  return {
    async migrate() {
      await inTransaction((client) => migratePostgres(client, schema));
    },

    async insert(rows: UsageRow[]) {
      if (rows.length === 0) return;
      await inTransaction(async (client) => {
        for (let i = 0; i < rows.length; i += MAX_ROWS_PER_STATEMENT) {
          const chunk = rows.slice(i, i + MAX_ROWS_PER_STATEMENT);
          const params: unknown[] = [];
          const tuples: string[] = [];
          for (const row of chunk) {
            const base = params.length;
            params.push(...rowValues(row));
            tuples.push(`(${USAGE_COLUMNS.map((_, j) => `$${base + j + 1}`).join(', ')})`);
          }
          await client.query(`INSERT INTO usage_log (${USAGE_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`, params);
        }
      });
    },

    async totals(q: UsageQuery): Promise<UsageTotal[]> {
      const { text, params } = totalsSql('postgres', q);
      // COUNT is bigint and SUM(bigint) numeric: pg hands both over as strings, read as numbers.
      return totalsFromRows(q, (await pool.query<Record<string, unknown>>(text, params)).rows);
    },

    async spendSince(monthStart: Date, dayStart: Date): Promise<LabelSpend[]> {
      const { text, params } = spendSql('postgres', monthStart, dayStart);
      return spendFromRows((await pool.query<Record<string, unknown>>(text, params)).rows);
    },

    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}
