import type { DatabaseSync } from 'node:sqlite';
import type pg from 'pg';
import { MIGRATIONS } from './index.ts';

/**
 * Applies the pending MIGRATIONS, in order, each recorded in `schema_migrations`, all in one
 * transaction. Every store that opens the database runs this first (the usage ledger, the OAuth grant
 * store): it is idempotent, and safe when several stores or relays start at once.
 */

export function migrateSqlite(db: DatabaseSync): void {
  // IMMEDIATE: the write lock is taken before the check, so two connections never both apply a version.
  inSqliteTransaction(
    db,
    () => {
      db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      const done = new Set(db.prepare('SELECT version FROM schema_migrations').all().map((r) => Number(r.version)));
      const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        db.exec(m.sqlite);
        record.run(m.version, m.name, Date.now());
      }
    },
    'IMMEDIATE',
  );
}

/** Runs `fn` in one SQLite transaction (`mode`: '', 'IMMEDIATE', 'EXCLUSIVE'): all of it or none. */
export function inSqliteTransaction(db: DatabaseSync, fn: () => void, mode = ''): void {
  db.exec(`BEGIN ${mode}`);
  try {
    fn();
    db.exec('COMMIT');
  } catch (err) {
    try {
      db.exec('ROLLBACK');
    } catch {
      // already rolled back
    }
    throw err;
  }
}

/** `client` is inside a transaction; `schema` (already validated) is created when given. */
export async function migratePostgres(client: pg.PoolClient, schema: string | undefined): Promise<void> {
  // Several relays may start at once: one migrates, the others wait and then see it done.
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`openai-relay-ledger:${schema ?? 'public'}`]);
  if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
       version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
  );
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
  const done = new Set(rows.map((r) => Number(r.version)));
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    await client.query(m.postgres);
    await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
  }
}
