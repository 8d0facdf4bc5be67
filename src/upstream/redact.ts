/** What a secret is replaced with, wherever the relay redacts it. */
export const REDACTED = '[redacted]';

/** Replaces every occurrence of each secret (8 characters or more) in `text` with `[redacted]`. */
export function makeRedactor(secrets: string[]): (text: string) => string {
  const needles = secrets.filter((s) => s.length >= 8);
  return (text) => {
    for (const secret of needles) {
      if (text.includes(secret)) text = text.split(secret).join(REDACTED);
    }
    return text;
  };
}

/**
 * The same for a byte stream (an event stream, which may carry an error event at any point): each chunk
 * goes on at once with the secret replaced, except for a tail that could be the secret's beginning, held
 * until the next chunk shows whether it is. An event stream's chunks end in a blank line, so nothing is
 * held in practice and events are not delayed.
 */
export interface StreamRedactor {
  write(chunk: Buffer): Buffer;
  /** What is still held, at the end of the stream. */
  end(): Buffer;
}

const EMPTY = Buffer.alloc(0);

export function createStreamRedactor(secret: string): StreamRedactor {
  const find = secretFinder(Buffer.from(secret, 'utf8'));
  const mask = Buffer.from(REDACTED, 'utf8');
  let held: Buffer | undefined;
  return {
    write(chunk) {
      let data = held === undefined ? chunk : Buffer.concat([held, chunk]);
      held = undefined;
      if (data.length === 0) return data;
      let at = find.indexIn(data, 0);
      if (at !== -1) {
        const parts: Buffer[] = [];
        let from = 0;
        for (; at !== -1; at = find.indexIn(data, from)) {
          parts.push(data.subarray(from, at), mask);
          from = at + find.length;
        }
        parts.push(data.subarray(from));
        data = Buffer.concat(parts);
      }
      const keep = find.prefixAtEnd(data);
      if (keep === 0) return data;
      held = Buffer.from(data.subarray(data.length - keep));
      return data.subarray(0, data.length - keep);
    },
    end() {
      const rest = held ?? EMPTY;
      held = undefined;
      return rest;
    },
  };
}

/**
 * Finding the secret in a chunk, in JS: Boyer-Moore-Horspool, which looks at about one byte in every few
 * dozen of a long key (Buffer#indexOf costs a few hundred ns a call just to cross into C++, more than an
 * event-sized chunk takes here; scripts/bench/micro-guards.ts).
 */
function secretFinder(needle: Buffer) {
  const m = needle.length;
  const shift = new Int32Array(256).fill(m);
  for (let i = 0; i < m - 1; i++) shift[needle[i]] = m - 1 - i;
  const inSecret = new Uint8Array(256);
  for (const byte of needle) inSecret[byte] = 1;
  const lastByte = needle[m - 1];
  return {
    length: m,
    indexIn(data: Buffer, from: number): number {
      for (let i = from; i <= data.length - m; ) {
        const last = data[i + m - 1];
        if (last === lastByte) {
          let j = m - 2;
          while (j >= 0 && data[i + j] === needle[j]) j--;
          if (j < 0) return i;
        }
        i += shift[last];
      }
      return -1;
    },
    /** The length of the longest end of `data` that is a proper beginning of the secret (0 when none). */
    prefixAtEnd(data: Buffer): number {
      // A chunk ending in a byte the secret does not hold (an event's blank line) holds nothing back.
      if (inSecret[data[data.length - 1]] === 0) return 0;
      outer: for (let at = Math.max(0, data.length - m + 1); at < data.length; at++) {
        for (let j = 0; at + j < data.length; j++) if (data[at + j] !== needle[j]) continue outer;
        return data.length - at;
      }
      return 0;
    },
  };
}
