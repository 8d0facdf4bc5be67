import { Worker } from 'node:worker_threads';
import { sqliteRowValues, type LedgerStore, type UsageQuery, type UsageRow, type UsageTotal } from './ledger.ts';

/**
 * The SQLite ledger store, run on a worker thread (see ledger-sqlite-worker.ts). Same LedgerStore
 * interface: calls are messages. A batch crosses as one JSON string of column-value arrays (epoch ms,
 * no Date): 0.18 µs a row to write and a plain copy to send, where structured clone took 0.97 µs a row
 * for objects with Dates (0.33 for the arrays), on each side.
 */
export function createSqliteThreadStore(path: string): LedgerStore {
  const worker = new Worker(new URL('./ledger-sqlite-worker.ts', import.meta.url), { workerData: { path } });
  // The relay's exit must not wait for an idle ledger thread; close() flushes it explicitly.
  worker.unref();
  let nextId = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let failure: Error | undefined;

  worker.on('message', ({ id, result, error }: { id: number; result?: unknown; error?: { message: string } }) => {
    const call = pending.get(id);
    if (!call) return;
    pending.delete(id);
    if (error) call.reject(new Error(error.message));
    else call.resolve(result);
  });
  const failAll = (err: Error) => {
    failure = err;
    for (const call of pending.values()) call.reject(err);
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the usage ledger thread exited (${code})`)));

  const call = <T>(op: string, arg?: unknown): Promise<T> => {
    if (failure) return Promise.reject(failure);
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref(); // keep the process up while a call is outstanding
      worker.postMessage({ id, op, arg });
    }).finally(() => {
      if (pending.size === 0) worker.unref();
    });
  };

  return {
    migrate: () => call<void>('migrate'),
    insert: (rows: UsageRow[]) => call<void>('insertJson', JSON.stringify(rows.map(sqliteRowValues))),
    totals: (q: UsageQuery) => call<UsageTotal[]>('totals', q),
    async close() {
      try {
        await call<void>('close');
      } finally {
        await worker.terminate();
      }
    },
  };
}
