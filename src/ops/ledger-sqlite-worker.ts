import { parentPort, workerData } from 'node:worker_threads';
import { createSqliteStore } from './ledger-sqlite.ts';

/**
 * The SQLite ledger's own thread: node:sqlite is synchronous, so its inserts run here, never on the
 * thread that relays requests. Messages: {id, op, arg} in, {id, result} or {id, error} out.
 */
const store = createSqliteStore(workerData.path as string);

type Op = 'migrate' | 'insertPacked' | 'totals' | 'spendSince' | 'close';

parentPort!.on('message', async ({ id, op, arg }: { id: number; op: Op; arg?: unknown }) => {
  try {
    const since = arg as { monthStart: Date; dayStart: Date };
    const result =
      op === 'migrate'
        ? await store.migrate()
        : op === 'insertPacked'
          ? store.insertPackedSync(arg as Uint8Array)
          : op === 'totals'
            ? await store.totals(arg as never)
            : op === 'spendSince'
              ? await store.spendSince(since.monthStart, since.dayStart)
              : await store.close();
    parentPort!.postMessage({ id, result });
  } catch (err) {
    parentPort!.postMessage({ id, error: { message: (err as Error)?.message ?? String(err) } });
  }
});
