import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, test } from 'vitest';
import { createLedger } from '../src/ops/ledger.ts';
import { sqliteRowValues, type LedgerStore, type UsageRow } from '../src/ops/ledger-values.ts';
import { decodePackedRows, PackedRows, unpackRows, type CleanRow } from '../src/ops/ledger-rows.ts';

/** Usage rows packed outside the JS heap while they wait for their batch (ops/ledger-rows.ts). */

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0, 123);

function row(over: Partial<UsageRow> = {}): UsageRow {
  return { time: new Date(T0), keyLabel: 'alice', operation: 'createEmbedding', status: 200, latencyMs: 12, ...over };
}

function decodeAll(bytes: Uint8Array): CleanRow[] {
  const out: CleanRow[] = [];
  decodePackedRows(bytes, (v) => out.push(v));
  return out;
}

describe('packed usage rows', () => {
  test('every column survives packing: numbers, absent values, and text in any script', () => {
    const rows = [
      row({ upstreamMs: 7, upstreamRequestId: 'req_abc', model: 'text-embedding-3-small', inputTokens: 9, outputTokens: 0, totalTokens: 9, costMicros: 0 }),
      row({ keyLabel: 'équipe-北京-🚀', operation: 'createResponse', status: 499, latencyMs: 2_147_483_647, totalTokens: Number.MAX_SAFE_INTEGER, costMicros: 1_234_567_890_123 }),
      row({ time: new Date(0), keyLabel: 'b', model: '', upstreamRequestId: undefined }),
    ];
    const packed = new PackedRows(3);
    for (const r of rows) packed.push(sqliteRowValues(r));
    expect(packed.full).toBe(true);
    expect(packed.sealed).toBe(true);
    expect(decodeAll(packed.liveBytes())).toEqual(rows.map(sqliteRowValues));
    // back to objects (the PostgreSQL store and test doubles take those)
    const objects = unpackRows(packed.liveBytes());
    expect(objects[0]).toEqual(rows[0]);
    expect(objects[1]).toEqual(rows[1]);
    expect(objects[2]).toEqual({ time: new Date(0), keyLabel: 'b', operation: 'createEmbedding', status: 200, latencyMs: 12 }); // '' is no model
  });

  test('values are cleaned before packing: long text cut to 200 units, NULs gone, lone surrogates replaced', () => {
    const packed = new PackedRows(1);
    packed.push(sqliteRowValues(row({ keyLabel: 'a\u0000b', model: 'm\ud800'.padEnd(500, 'x'), latencyMs: Number.NaN, inputTokens: -3, costMicros: -1 })));
    const [v] = decodeAll(packed.liveBytes());
    expect(v![11]).toBeNull(); // a negative cost is no cost
    expect(v![1]).toBe('ab');
    expect(v![7]).toBe('m\ufffd'.padEnd(200, 'x'));
    expect(v![4]).toBe(0);
    expect(v![8]).toBeNull();
  });

  test('a chunk grows past its first allocation, and trimming from the front leaves the rest intact', () => {
    const packed = new PackedRows(50, 0); // the smallest start: 1 KB
    const rows = Array.from({ length: 50 }, (_, i) => row({ latencyMs: i, model: `model-${i}-`.padEnd(150, '€'), upstreamRequestId: `req_${i}` }));
    for (const r of rows) packed.push(sqliteRowValues(r));
    expect(decodeAll(packed.liveBytes()).map((v) => v[4])).toEqual(rows.map((r) => r.latencyMs));
    packed.start = 48;
    expect(packed.live).toBe(2);
    expect(decodeAll(packed.liveBytes())).toEqual(rows.slice(48).map(sqliteRowValues));
    packed.reset();
    expect(packed.live).toBe(0);
    expect(packed.liveBytes().byteLength).toBe(0);
  });

  test('liveBytes() gives a batch an ArrayBuffer of its own (it can be transferred; the chunk stays usable)', () => {
    const packed = new PackedRows(4);
    packed.push(sqliteRowValues(row()));
    const bytes = packed.liveBytes();
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    structuredClone(bytes, { transfer: [bytes.buffer] });
    packed.push(sqliteRowValues(row({ latencyMs: 99 })));
    expect(decodeAll(packed.liveBytes()).map((v) => v[4])).toEqual([12, 99]);
  });
});

describe('the ledger queues packed rows, not the objects it is given', () => {
  const gc = exposeGc();

  test('a recorded row object is garbage at once, while its row waits for the batch', async () => {
    const inserted: UsageRow[][] = [];
    const store: LedgerStore = {
      migrate: async () => {},
      insert: async (rows) => void inserted.push(rows),
      totals: async () => [],
      spendSince: async () => [],
      close: async () => {},
    };
    const ledger = createLedger(store, { batchSize: 10, flushIntervalMs: 60_000 });
    const refs: WeakRef<object>[] = [];
    (() => {
      for (let i = 0; i < 3; i++) {
        const r = row({ latencyMs: i, model: `m${i}`, upstreamRequestId: `req_${i}` });
        refs.push(new WeakRef(r), new WeakRef(r.time));
        ledger.record(r);
      }
    })();
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(refs.map((r) => r.deref())).toEqual(refs.map(() => undefined));
    expect(ledger.queueDepth).toBe(3);
    await ledger.flush();
    expect(inserted).toHaveLength(1);
    expect(inserted[0]!.map((r) => [r.latencyMs, r.model, r.upstreamRequestId])).toEqual([
      [0, 'm0', 'req_0'],
      [1, 'm1', 'req_1'],
      [2, 'm2', 'req_2'],
    ]);
    await ledger.close();
  });

  test('a store with insertPacked gets the packed batch; chunks are reused batch after batch', async () => {
    const batches: CleanRow[][] = [];
    const store: LedgerStore = {
      migrate: async () => {},
      insert: async () => {
        throw new Error('insert must not be called when insertPacked exists');
      },
      insertPacked: async (bytes) => void batches.push(decodeAll(bytes)),
      totals: async () => [],
      spendSince: async () => [],
      close: async () => {},
    };
    const ledger = createLedger(store, { batchSize: 4, flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) ledger.record(row({ latencyMs: i }));
    await ledger.flush();
    expect(batches.map((b) => b.map((v) => v[4]))).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    await ledger.close();
  });
});

/** A full collection, from a private context (as src/core/stream-memory.ts obtains V8's gc). */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  try {
    const gc = vm.runInNewContext('gc') as (o: { type: 'major'; execution: 'sync' }) => void;
    return () => gc({ type: 'major', execution: 'sync' });
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
