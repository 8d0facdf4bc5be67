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
  const needle = Buffer.from(secret, 'utf8');
  const mask = Buffer.from(REDACTED, 'utf8');
  let held: Buffer | undefined;
  return {
    write(chunk) {
      let data = held === undefined ? chunk : Buffer.concat([held, chunk]);
      held = undefined;
      if (data.indexOf(needle) !== -1) data = replaceAll(data, needle, mask);
      const keep = secretPrefixAtEnd(data, needle);
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

function replaceAll(data: Buffer, needle: Buffer, mask: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, from)) {
    parts.push(data.subarray(from, at), mask);
    from = at + needle.length;
  }
  parts.push(data.subarray(from));
  return Buffer.concat(parts);
}

/** The length of the longest end of `data` that is a proper beginning of `needle` (0 when none). */
function secretPrefixAtEnd(data: Buffer, needle: Buffer): number {
  const first = needle[0];
  for (let at = data.indexOf(first, Math.max(0, data.length - needle.length + 1)); at !== -1; at = data.indexOf(first, at + 1)) {
    const tail = data.length - at;
    if (data.compare(needle, 0, tail, at) === 0) return tail;
  }
  return 0;
}
