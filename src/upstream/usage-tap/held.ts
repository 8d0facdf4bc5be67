/** Holding bytes of an answer (or an SSE line): whole up to a cap, then only the first and last EDGE_BYTES. */

/** What is kept of each end of an answer (or line) too big to hold. */
export const EDGE_BYTES = 16 * 1024;
export const EMPTY = Buffer.alloc(0);

export interface Held {
  chunks: Buffer[];
  size: number;
  head: Buffer | undefined; // set once the cap is passed
  tail: Buffer;
}

export function newHeld(): Held {
  return { chunks: [], size: 0, head: undefined, tail: EMPTY };
}

export function hold(h: Held, buf: Buffer, cap: number): void {
  if (buf.length === 0) return;
  if (h.head === undefined) {
    if (h.size + buf.length <= cap) {
      h.chunks.push(buf);
      h.size += buf.length;
      return;
    }
    const all = Buffer.concat([...h.chunks, buf]);
    h.head = Buffer.from(all.subarray(0, EDGE_BYTES));
    h.tail = Buffer.from(all.subarray(Math.max(0, all.length - EDGE_BYTES)));
    h.chunks = [];
    h.size += buf.length;
    return;
  }
  h.size += buf.length;
  if (buf.length >= EDGE_BYTES) {
    h.tail = Buffer.from(buf.subarray(buf.length - EDGE_BYTES));
  } else {
    const joined = Buffer.concat([h.tail, buf]);
    h.tail = joined.length > EDGE_BYTES ? joined.subarray(joined.length - EDGE_BYTES) : joined;
  }
}
