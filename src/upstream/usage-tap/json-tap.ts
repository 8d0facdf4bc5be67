import { fromEdges } from './edges.ts';
import { hold, newHeld } from './held.ts';
import type { UsageTap } from './types.ts';

/** application/json: the answer held up to `maxBytes`, past that only its edges; read once at the end. */
export function jsonTap(maxBytes: number, responseState: boolean): UsageTap {
  const held = newHeld();
  let done = false;
  return {
    write(chunk) {
      if (done) return;
      try {
        hold(held, chunk, maxBytes);
      } catch {
        done = true;
      }
    },
    end() {
      if (done) return undefined;
      done = true;
      try {
        if (held.head !== undefined) {
          return fromEdges(held.head.toString('utf8'), held.tail.toString('utf8'), 1, responseState);
        }
        const text = held.chunks.length === 1 ? held.chunks[0]!.toString('utf8') : Buffer.concat(held.chunks).toString('utf8');
        held.chunks = [];
        // The whole answer is both edges; a body cut short (the caller left) reads the same way.
        return fromEdges(text, text, 1, responseState);
      } catch {
        return undefined;
      }
    },
  };
}
