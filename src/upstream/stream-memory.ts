import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Keeps the relay's memory flat while big bodies stream through it.
 *
 * Node copies every body chunk it reads from a socket into a fresh buffer (up to 64 KB) outside V8's
 * heap, and that memory comes back only when a garbage collection finds the chunk's wrapper dead. A
 * streamed body allocates almost nothing on the JS heap itself, so no young-generation collection comes
 * along on its own, and V8 waits for about 64 MB of such outside memory before it starts a full one:
 * a 512 MB upload grew the relay's RSS by 65-85 MB (the raw node:http pipe in the benchmark, 34-100 MB).
 * Collecting the young generation after every few MiB streamed — all requests together — frees the
 * chunks already forwarded; a collection costs ~0.05 ms. Measured: the same upload grew RSS by 15-17 MB.
 */
export interface StreamMemory {
  /** Count bytes forwarded (either direction); may collect the young generation. */
  streamed(bytes: number): void;
}

export interface StreamMemoryOptions {
  /** Runs the collection; default V8's minor GC (none where it cannot be had: then nothing happens). */
  collect?: () => void;
  /** Told after each collection (the relay counts them in relay_stream_gc_total). */
  onCollect?: () => void;
}

/**
 * Only bulk chunks count. Small ones (JSON answers, SSE events) come with enough JS-heap allocation
 * per byte to bring collections along on their own; counting them forced extra collections under API
 * load (16k requests/s of 1 KB answers: one every half second), promoting in-flight requests' objects
 * early and so costing full collections later.
 */
const MIN_COUNTED_CHUNK = 16 * 1024;

export function createStreamMemory(everyBytes: number, opts: StreamMemoryOptions = {}): StreamMemory {
  const collect = opts.collect ?? (everyBytes > 0 ? youngCollector() : undefined);
  if (!(everyBytes > 0) || collect === undefined) return { streamed() {} };
  let pending = 0;
  return {
    streamed(bytes) {
      if (bytes < MIN_COUNTED_CHUNK) return;
      pending += bytes;
      if (pending < everyBytes) return;
      // One collection however big the chunk; the remainder counts towards the next.
      pending %= everyBytes;
      collect();
      opts.onCollect?.();
    },
  };
}

let cached: (() => void) | undefined;

/**
 * V8's `gc({type: 'minor'})`, obtained without starting node with --expose-gc (so `npm start`, the
 * Dockerfile and tests all get it): the flag is set for one new context only, then cleared, so no
 * other context (and no global) ever sees `gc`.
 */
function youngCollector(): (() => void) | undefined {
  if (cached) return cached;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;
    cached = () => gc({ type: 'minor' });
  } catch {
    cached = undefined;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  return cached;
}
