import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { rowValues, sortTotals, type LedgerStore, type UsageQuery, type UsageRow, type UsageTotal } from './ledger.ts';
import { MIGRATIONS, USAGE_COLUMNS } from './migrations/index.ts';

/**
 * The ledger in a SQLite file (node:sqlite, WAL mode). Writes are synchronous but small and batched:
 * one prepared multi-row INSERT per batch in one transaction. `time` is stored as epoch milliseconds.
 */

/** SQLite allows 32,766 bound parameters per statement; stay well under it. */
const MAX_ROWS_PER_STATEMENT = Math.floor(30_000 / USAGE_COLUMNS.length);

export function createSqliteStore(path: string): LedgerStore {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA busy_timeout = 2000');
  if (path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
  // WAL + NORMAL: durable against process crashes, a power cut may lose the last commits.
  db.exec('PRAGMA synchronous = NORMAL');

  const inserts = new Map<number, StatementSync>();
  let open = true;

  function insertStatement(n: number): StatementSync {
    let stmt = inserts.get(n);
    if (stmt === undefined) {
      const tuple = `(${USAGE_COLUMNS.map(() => '?').join(', ')})`;
      stmt = db.prepare(`INSERT INTO usage_log (${USAGE_COLUMNS.join(', ')}) VALUES ${Array(n).fill(tuple).join(', ')}`);
      // Keep the cache small: the usual sizes are batchSize and a few tails.
      if (inserts.size >= 16) inserts.clear();
      inserts.set(n, stmt);
    }
    return stmt;
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
      if (rows.length === 0) return;
      inTransaction(() => {
        for (let i = 0; i < rows.length; i += MAX_ROWS_PER_STATEMENT) {
          const chunk = rows.slice(i, i + MAX_ROWS_PER_STATEMENT);
          const params: (number | string | null)[] = [];
          for (const row of chunk) {
            const v = rowValues(row);
            params.push(v[0].getTime(), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]);
          }
          insertStatement(chunk.length).run(...params);
        }
      });
    },

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
      inserts.clear();
      db.close();
    },
  };
}
