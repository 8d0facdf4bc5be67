import pg from 'pg';
import { afterAll } from 'vitest';

/**
 * Fresh PostgreSQL schemas for one test file (`<prefix>_<pid>_<n>`), dropped after the file, once what
 * was registered with `closeLater` (stores holding connections) has been closed.
 */
export function useFreshSchemas(prefix: string, pgUrl: string | undefined) {
  const run = `${process.pid}_${Date.now() % 100_000}`;
  const names: string[] = [];
  const closers: (() => unknown)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
    if (!pgUrl || names.length === 0) return;
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    try {
      for (const name of names) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    } finally {
      await client.end();
    }
  });
  return {
    /** A new schema name, dropped after the file. */
    next(): string {
      const name = `${prefix}_${run}_${names.length + 1}`;
      names.push(name);
      return name;
    },
    /** Drops `name` too after the file (a schema named elsewhere). */
    adopt(name: string): void {
      if (!names.includes(name)) names.push(name);
    },
    closeLater(close: () => unknown): void {
      closers.push(close);
    },
  };
}
