import { parentPort, workerData } from 'node:worker_threads';
import { createSqliteStore } from './ledger-sqlite.ts';

/**
 * The SQLite ledger's own thread: node:sqlite is synchronous, so its inserts run here, never on the
 * thread that relays requests. Messages: {id, op, arg} in, {id, result} or {id, error} out.
 */
const store = createSqliteStore(workerData.path as string);

parentPort!.on('message', async ({ id, op, arg }: { id: number; op: 'migrate' | 'insertPacked' | 'totals' | 'close'; arg?: unknown }) => {
  try {
    const result =
      op === 'migrate'
        ? await store.migrate()
        : op === 'insertPacked'
          ? store.insertPackedSync(arg as Uint8Array)
          : op === 'totals'
            ? await store.totals(arg as never)
            : await store.close();
    parentPort!.postMessage({ id, result });
  } catch (err) {
    parentPort!.postMessage({ id, error: { message: (err as Error)?.message ?? String(err) } });
  }
});
