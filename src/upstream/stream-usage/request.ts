/**
 * Asking a stream for its usage. Chat Completions streams report token usage only when the request says
 * `stream_options: {include_usage: true}`; a budget must count every stream, so the relay sets it on each
 * streamed request of an operation that takes it (derived from the spec: `usage.streamOption`), and
 * remembers whether it did, to withhold the extra usage from a caller that had not asked (answer.ts).
 */

/** A held JSON body, with `stream_options.include_usage` set when it streams (`injected`: the caller had not set it). */
export function askUsageInHeldBody(body: Buffer): { body: Buffer; injected: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return { body, injected: false }; // not JSON: OpenAI answers it
  }
  if (!isObject(value) || value.stream !== true) return { body, injected: false };
  const options = value.stream_options;
  if (isObject(options) && options.include_usage === true) return { body, injected: false };
  value.stream_options = { ...(isObject(options) ? options : {}), include_usage: true };
  return { body: Buffer.from(JSON.stringify(value), 'utf8'), injected: true };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The same for a body too large to hold, as it streams: a byte scanner follows the top-level object and
 * keeps back only its closing brace (and what follows it). At the end, when the body said `"stream": true`
 * without `stream_options`, `,"stream_options":{"include_usage":true}` goes in before the brace. A body
 * whose top-level `stream_options` (already sent) does not ask for usage cannot be fixed after the fact:
 * `end()` says so, and the request is refused.
 */
export interface UsageSplice {
  /** The bytes to send now for this chunk of the caller's body. */
  write(chunk: Buffer): Buffer;
  /** The bytes that end the body; `refused` when the body streams without usage and cannot be made to ask. */
  end(): { tail: Buffer; injected: boolean; refused: boolean };
}

const INJECTED_MEMBER = Buffer.from('"stream_options":{"include_usage":true}');
const COMMA = Buffer.from(',');
const EMPTY = Buffer.alloc(0);
/** Longest `stream_options` value kept to read (it has two booleans). */
const MAX_OPTIONS_BYTES = 4096;
const MAX_KEY_BYTES = 16;

export function createUsageSplice(): UsageSplice {
  let depth = 0;
  let inString = false;
  let escaped = false;
  /** At depth 1, after `{` or `,`: the next string is a key. */
  let expectingKey = false;
  let key: number[] | undefined;
  /** The top-level key whose value comes next. */
  let pendingKey: string | undefined;
  let members = 0;
  /** The bytes of the `stream` value, while it is being read. */
  let streamValue: number[] | undefined;
  let stream = false;
  /** The bytes of the `stream_options` value, while (and after) it is read; null when too long to read. */
  let options: number[] | null | undefined;
  let readingOptions = false;
  let held: Buffer[] | undefined;

  const valueStarts = (b: number) => {
    if (pendingKey === 'stream') streamValue = [b];
    else if (pendingKey === 'stream_options') {
      options = [b];
      readingOptions = true;
    }
    pendingKey = undefined;
  };

  const scan = (chunk: Buffer): number => {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (streamValue) {
        if (b >= 0x61 && b <= 0x7a) streamValue.push(b);
        else {
          stream = String.fromCharCode(...streamValue) === 'true';
          streamValue = undefined;
        }
      }
      if (readingOptions && options) {
        if (options.length >= MAX_OPTIONS_BYTES) options = null;
        else options.push(b);
      }
      if (inString) {
        if (escaped) escaped = false;
        else if (b === 0x5c) escaped = true;
        else if (b === 0x22) {
          inString = false;
          if (key) {
            pendingKey = String.fromCharCode(...key);
            key = undefined;
          }
        } else if (key && key.length <= MAX_KEY_BYTES) key.push(b);
        continue;
      }
      switch (b) {
        case 0x20:
        case 0x0a:
        case 0x0d:
        case 0x09:
        case 0x3a: // :
          continue;
        case 0x2c: // ,
          if (depth === 1) {
            expectingKey = true;
            readingOptions = false;
          }
          continue;
        case 0x22: // "
          inString = true;
          if (depth === 1 && expectingKey) {
            expectingKey = false;
            key = [];
            members++;
          } else if (depth === 1) valueStarts(b);
          continue;
        case 0x7b: // {
        case 0x5b: // [
          if (depth === 1) valueStarts(b);
          depth++;
          if (depth === 1) expectingKey = true;
          continue;
        case 0x7d: // }
        case 0x5d: // ]
          depth--;
          if (depth === 1) readingOptions = false;
          if (depth === 0) return i;
          continue;
        default:
          if (depth === 1) valueStarts(b);
      }
    }
    return -1;
  };

  /** Whether the caller's own `stream_options` (an object, read to its closing brace) asks for usage. */
  const asksUsage = (): boolean => {
    if (!options || options[0] !== 0x7b) return false;
    try {
      const value: unknown = JSON.parse(Buffer.from(options).toString('utf8'));
      return isObject(value) && value.include_usage === true;
    } catch {
      return false;
    }
  };

  return {
    write(chunk) {
      if (held) {
        held.push(Buffer.from(chunk));
        return EMPTY;
      }
      const closing = scan(chunk);
      if (closing === -1) return chunk;
      held = [Buffer.from(chunk.subarray(closing))];
      return chunk.subarray(0, closing);
    },
    end() {
      const tail = held ? Buffer.concat(held) : EMPTY;
      if (!held || !stream) return { tail, injected: false, refused: false };
      if (options !== undefined) return { tail, injected: false, refused: !asksUsage() };
      const member = members > 0 ? Buffer.concat([COMMA, INJECTED_MEMBER]) : INJECTED_MEMBER;
      return { tail: Buffer.concat([member, tail]), injected: true, refused: false };
    },
  };
}
