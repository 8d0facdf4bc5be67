import type { SqliteRowValues, UsageRow } from './ledger-values.ts';

/**
 * Usage rows packed into bytes outside V8's heap, from the moment they are recorded.
 *
 * Why: under load a queued row lives for tens of milliseconds — until its batch is full and its write
 * has come back from the ledger thread — long enough to survive two young-generation collections and be
 * promoted. At 16k requests/s the queued row objects (row, Date, strings, column arrays) promoted ~3 MB
 * a second: a full collection every second, with incremental marking steps of 4-9 ms that set the
 * relay's p99 latency (measured with --trace-gc: 7-11 full collections in 10 s of load against 0-1
 * without the queue). Packed, a queued row is bytes in a Buffer the collector never scans, and a batch
 * crosses to the ledger thread as one copied byte range instead of a JSON string.
 *
 * Each row: time (float64, epoch ms), status, latency and upstream ms (int32, -1 for none), input,
 * output and total tokens and the cost in micro-dollars (float64, -1 for none), then key label,
 * operation, upstream request id and model (uint16 UTF-8 byte length, 0xffff for none, then the bytes;
 * texts are cut to 200 units first). Values are cleaned (`cleanRow`) before they are packed, so a decoded
 * row is exactly what the store writes.
 */

const FIXED_BYTES = 8 + 3 * 4 + 4 * 8;
const NONE = 0xffff;

/** One row's column values, cleaned: what `PackedRows.push` writes and `decode` gives back. */
export type CleanRow = SqliteRowValues;

export class PackedRows {
  /** Rows this chunk holds at most (the ledger's batch size). */
  readonly capacity: number;
  private bytes: Buffer;
  /** End offset of each row's bytes. */
  private readonly ends: Uint32Array;
  private used = 0;
  /** Rows written into the chunk. */
  count = 0;
  /** Rows dropped from its front (a store that stays down, past maxQueue). */
  start = 0;
  /** No more rows go in: it is full, or being (or has been) handed to the store. */
  sealed = false;

  constructor(capacity: number, initialBytes = capacity * 128) {
    this.capacity = capacity;
    this.bytes = Buffer.allocUnsafeSlow(Math.max(initialBytes, 1024));
    this.ends = new Uint32Array(capacity);
  }

  /** Rows still queued in this chunk. */
  get live(): number {
    return this.count - this.start;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Packs one cleaned row; seals the chunk when it is full. */
  push(v: CleanRow): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.reserve(FIXED_BYTES + 4 * 2 + 3 * (v[1].length + v[2].length + (v[6]?.length ?? 0) + (v[7]?.length ?? 0)));
    const b = this.bytes;
    let at = this.used;
    b.writeDoubleLE(v[0], at);
    b.writeInt32LE(v[3], at + 8);
    b.writeInt32LE(v[4], at + 12);
    b.writeInt32LE(v[5] ?? -1, at + 16);
    b.writeDoubleLE(v[8] ?? -1, at + 20);
    b.writeDoubleLE(v[9] ?? -1, at + 28);
    b.writeDoubleLE(v[10] ?? -1, at + 36);
    b.writeDoubleLE(v[11] ?? -1, at + 44);
    at += FIXED_BYTES;
    at = writeText(b, at, v[1]);
    at = writeText(b, at, v[2]);
    at = writeText(b, at, v[6]);
    at = writeText(b, at, v[7]);
    this.used = at;
    this.ends[this.count++] = at;
    if (this.count === this.capacity) this.sealed = true;
  }

  /** The live rows' bytes, copied into an ArrayBuffer of their own (to transfer to another thread). */
  liveBytes(): Uint8Array {
    const from = this.start === 0 ? 0 : this.ends[this.start - 1]!;
    return Uint8Array.prototype.slice.call(this.bytes, from, this.used);
  }

  /** Empties the chunk for reuse. */
  reset(): void {
    this.used = 0;
    this.count = 0;
    this.start = 0;
    this.sealed = false;
  }

  private reserve(n: number): void {
    if (this.used + n <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.used + n));
    this.bytes.copy(grown, 0, 0, this.used);
    this.bytes = grown;
  }
}

function writeText(b: Buffer, at: number, text: string | null): number {
  if (text === null) {
    b.writeUInt16LE(NONE, at);
    return at + 2;
  }
  const n = b.write(text, at + 2, 'utf8');
  b.writeUInt16LE(n, at);
  return at + 2 + n;
}

function readText(b: Buffer, at: number): [string | null, number] {
  const n = b.readUInt16LE(at);
  if (n === NONE) return [null, at + 2];
  return [b.toString('utf8', at + 2, at + 2 + n), at + 2 + n];
}

/** Calls `each` with every row packed in `bytes` (as made by `liveBytes`), in order. */
export function decodePackedRows(bytes: Uint8Array, each: (v: CleanRow) => void): void {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < b.length) {
    const time = b.readDoubleLE(at);
    const status = b.readInt32LE(at + 8);
    const latency = b.readInt32LE(at + 12);
    const upstream = b.readInt32LE(at + 16);
    const input = b.readDoubleLE(at + 20);
    const output = b.readDoubleLE(at + 28);
    const total = b.readDoubleLE(at + 36);
    const cost = b.readDoubleLE(at + 44);
    at += FIXED_BYTES;
    let keyLabel, operation, upstreamId, model;
    [keyLabel, at] = readText(b, at);
    [operation, at] = readText(b, at);
    [upstreamId, at] = readText(b, at);
    [model, at] = readText(b, at);
    each([
      time,
      keyLabel ?? '-',
      operation ?? 'unknown',
      status,
      latency,
      upstream < 0 ? null : upstream,
      upstreamId,
      model,
      input < 0 ? null : input,
      output < 0 ? null : output,
      total < 0 ? null : total,
      cost < 0 ? null : cost,
    ]);
  }
}

/** The packed rows as `UsageRow`s, for stores that take objects (PostgreSQL, test doubles). */
export function unpackRows(bytes: Uint8Array): UsageRow[] {
  const rows: UsageRow[] = [];
  decodePackedRows(bytes, (v) => {
    const row: UsageRow = { time: new Date(v[0]), keyLabel: v[1], operation: v[2], status: v[3], latencyMs: v[4] };
    if (v[5] !== null) row.upstreamMs = v[5];
    if (v[6] !== null) row.upstreamRequestId = v[6];
    if (v[7] !== null) row.model = v[7];
    if (v[8] !== null) row.inputTokens = v[8];
    if (v[9] !== null) row.outputTokens = v[9];
    if (v[10] !== null) row.totalTokens = v[10];
    if (v[11] !== null) row.costMicros = v[11];
    rows.push(row);
  });
  return rows;
}
