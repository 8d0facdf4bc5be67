/**
 * What a caller that did not ask for usage must not see, when the relay asked on its behalf (request.ts):
 * Chat Completions then adds `"usage":null` to every chunk and one last chunk with the usage (and empty
 * `choices`) before `[DONE]`. This takes both out of the event stream, line by line, so the caller receives
 * the bytes OpenAI would have sent it; the usage tap reads the stream as it came from OpenAI.
 */
export interface UsageWithholder {
  /** The bytes to send for this chunk of the answer (empty while a line is incomplete). */
  write(chunk: Buffer): Buffer;
  /** What is left of an unterminated last line. */
  end(): Buffer;
}

const LF = 0x0a;
const DATA = Buffer.from('data:');
const NULL_USAGE = '"usage":null';
const USAGE_KEY = '"usage":';
const EMPTY = Buffer.alloc(0);

export function createUsageWithholder(): UsageWithholder {
  let partial: Buffer[] = [];
  /** The usage event's data line was dropped: drop the blank line that ends the event too. */
  let dropBlank = false;

  const line = (bytes: Buffer): Buffer | undefined => {
    const isBlank = bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0x0d);
    if (dropBlank) {
      dropBlank = false;
      if (isBlank) return undefined;
    }
    if (bytes.length < DATA.length || bytes.compare(DATA, 0, DATA.length, 0, DATA.length) !== 0) return bytes;
    const text = bytes.toString('utf8');
    const nullAt = topLevelKey(text, NULL_USAGE);
    if (nullAt !== -1) return Buffer.from(withoutMember(text, nullAt, NULL_USAGE.length), 'utf8');
    const usageAt = topLevelKey(text, USAGE_KEY);
    if (usageAt !== -1 && text.charCodeAt(usageAt + USAGE_KEY.length) === 0x7b) {
      dropBlank = true;
      return undefined;
    }
    return bytes;
  };

  return {
    write(chunk) {
      const out: Buffer[] = [];
      let start = 0;
      for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, start)) {
        const piece = chunk.subarray(start, nl);
        const whole = partial.length ? Buffer.concat([...partial, piece]) : piece;
        partial = [];
        const kept = line(whole);
        if (kept !== undefined) out.push(kept, NEWLINE);
        start = nl + 1;
      }
      if (start < chunk.length) partial.push(Buffer.from(chunk.subarray(start)));
      return out.length === 0 ? EMPTY : Buffer.concat(out);
    },
    end() {
      if (partial.length === 0) return EMPTY;
      const rest = line(Buffer.concat(partial));
      partial = [];
      return rest ?? EMPTY;
    },
  };
}

const NEWLINE = Buffer.from('\n');

/** Where `needle` (a `"key":...` text) stands as a key of the event's top-level object, or -1. */
function topLevelKey(text: string, needle: string): number {
  for (let at = text.lastIndexOf(needle); at !== -1; at = at === 0 ? -1 : text.lastIndexOf(needle, at - 1)) {
    if (depthAt(text, at) === 1) return at;
  }
  return -1;
}

/** Object nesting at `at` (strings skipped), counting from the first `{` of the line. */
function depthAt(text: string, at: number): number {
  let depth = 0;
  for (let i = text.indexOf('{'); i !== -1 && i < at; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < at && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      if (i >= at) return -1; // `at` is inside a string
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return depth;
}

/** `text` without the member at `at` (length `length`) and the comma that joined it to a neighbour. */
function withoutMember(text: string, at: number, length: number): string {
  let before = at;
  while (before > 0 && /\s/.test(text[before - 1]!)) before--;
  if (text[before - 1] === ',') return text.slice(0, before - 1) + text.slice(at + length);
  let after = at + length;
  while (after < text.length && /\s/.test(text[after]!)) after++;
  return text.slice(0, at) + text.slice(text[after] === ',' ? after + 1 : after);
}
