import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { sortTotals, sqliteRowValues, type LedgerStore, type SqliteRowValues, type UsageQuery, type UsageRow, type UsageTotal } from './ledger.ts';
import { MIGRATIONS, USAGE_COLUMNS } from './migrations/index.ts';
import { decodePackedRows } from './ledger-rows.ts';

/**
 * The ledger in a SQLite file (node:sqlite, WAL mode). Writes are synchronous but small and batched:
 * one transaction per batch, one prepared INSERT run per row. `time` is stored as epoch milliseconds.
 */

export interface SqliteStore extends LedgerStore {
  /** `insertPacked`, synchronously (the ledger thread's call). */
  insertPackedSync(bytes: Uint8Array): void;
}

export function createSqliteStore(path: string): SqliteStore {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA busy_timeout = 2000');
  if (path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
  // WAL + NORMAL: durable against process crashes, a power cut may lose the last commits.
  db.exec('PRAGMA synchronous = NORMAL');

  // One prepared single-row INSERT, run once per row inside the batch's transaction. As fast per row
  // as a multi-row statement, and no statement is prepared per batch size (preparing a 500-row,
  // 5,500-parameter INSERT for each odd-sized tail had cost more than the inserts themselves).
  // Prepared on first use: the table exists only once migrate() has run.
  let insertRow: StatementSync | undefined;
  let open = true;

  /** Runs `write` with a function inserting one row of column values, in one transaction. */
  function insertAll(write: (insert: (v: SqliteRowValues) => void) => void): void {
    insertRow ??= db.prepare(`INSERT INTO usage_log (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})`);
    const stmt = insertRow;
    inTransaction(() => write((v) => stmt.run(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10])));
  }

  function insertPackedSync(bytes: Uint8Array): void {
    if (bytes.byteLength > 0) insertAll((insert) => decodePackedRows(bytes, insert));
  }

  function inTransaction(fn: () => void, mode = ''): void {
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

  return {
    async migrate() {
      inTransaction(() => {
        db.exec(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
        );
        const done = new Set(
          db.prepare('SELECT version FROM schema_migrations').all().map((r) => Number(r.version)),
        );
        const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
        for (const m of MIGRATIONS) {
          if (done.has(m.version)) continue;
          db.exec(m.sqlite);
          record.run(m.version, m.name, Date.now());
        }
      }, 'IMMEDIATE');
    },

    async insert(rows: UsageRow[]) {
      if (rows.length > 0) insertAll((insert) => rows.forEach((row) => insert(sqliteRowValues(row))));
    },

    async insertPacked(bytes: Uint8Array) {
      insertPackedSync(bytes);
    },

    insertPackedSync,

    async totals(q: UsageQuery): Promise<UsageTotal[]> {
      const params: (number | string)[] = [q.from.getTime(), q.to.getTime()];
      let where = 'time >= ? AND time < ?';
      if (q.keyLabel !== undefined) {
        where += ' AND key_label = ?';
        params.push(q.keyLabel);
      }
      const rows = db
        .prepare(
          `SELECT key_label, operation, model, COUNT(*) AS requests,
                  SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
                  COALESCE(SUM(input_tokens), 0) AS input_tokens,
                  COALESCE(SUM(output_tokens), 0) AS output_tokens,
                  COALESCE(SUM(total_tokens), 0) AS total_tokens
             FROM usage_log WHERE ${where}
            GROUP BY key_label, operation, model`,
        )
        .all(...params);
      return sortTotals(
        rows.map((r) => ({
          keyLabel: String(r.key_label),
          operation: String(r.operation),
          model: r.model === null ? null : String(r.model),
          requests: Number(r.requests),
          errors: Number(r.errors),
          inputTokens: Number(r.input_tokens),
          outputTokens: Number(r.output_tokens),
          totalTokens: Number(r.total_tokens),
        })),
      );
    },

    async close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
}
