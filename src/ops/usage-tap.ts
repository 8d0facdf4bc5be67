/**
 * Reads the model and token usage out of an OpenAI answer as it passes by, without slowing it.
 *
 * The forwarding core calls `write(chunk)` with each chunk it has already written to the caller, then
 * `end()`. Both are synchronous, cheap and never throw; the chunks are never changed.
 *
 * - `application/json`: the body is kept up to `maxJsonBytes` (default 32 KB), past that only its first
 *   and last 16 KB. The top-level `model` and `usage` are picked out of that text without parsing the
 *   whole document (OpenAI puts `usage` at or near the end, and `model` near one end): a 20 KB embedding
 *   answer cost 30 µs to JSON.parse, reading its edges ~1 µs. Enough for a 2 MB embeddings list or a
 *   base64 image (usage last), and for a Responses object with the largest metadata after its usage.
 * - `text/event-stream`: lines are split as bytes arrive; only the current partial line is held
 *   (capped at 1 MB, past which only its first and last 4 KB are), and only `data:` lines that can
 *   carry what is missing are parsed: one with a non-null `"usage"` object (Responses'
 *   `response.completed` / `.incomplete` / `.failed`, the Chat Completions usage chunk of
 *   `stream_options.include_usage`, audio and image `*.done` / `*.completed` events), and the first
 *   one with a `"model"`.
 *
 * Usage is read in any of OpenAI's shapes: Responses and images (`input_tokens`, `output_tokens`,
 * `total_tokens`), Chat Completions (`prompt_tokens`, `completion_tokens`, `total_tokens`), Embeddings
 * (`prompt_tokens`, `total_tokens`).
 */

export interface UsageInfo {
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
}

export interface UsageTap {
  write(chunk: Buffer): void;
  end(): UsageInfo | undefined;
}

export interface UsageTapOptions {
  /** Largest JSON answer held whole (past it, only its edges). Default 32 KB. */
  maxJsonBytes?: number;
  /** Longest SSE line kept whole. Default 1 MB. */
  maxLineBytes?: number;
  /** The answer's Content-Encoding: a compressed answer cannot be read, so no tap. */
  contentEncoding?: string;
}

const DEFAULT_MAX_JSON_BYTES = 32 * 1024;
const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** What is kept of each end of an answer (or line) too big to hold. */
const EDGE_BYTES = 16 * 1024;
const MAX_MODEL_LENGTH = 256;

export function createUsageTap(contentType: string | undefined, opts: UsageTapOptions = {}): UsageTap | undefined {
  if (typeof contentType !== 'string') return undefined;
  const encoding = opts.contentEncoding?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') return undefined;
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') return jsonTap(limit(opts.maxJsonBytes, DEFAULT_MAX_JSON_BYTES));
  if (mediaType === 'text/event-stream') return sseTap(limit(opts.maxLineBytes, DEFAULT_MAX_LINE_BYTES));
  return undefined;
}

function limit(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : fallback;
}

// ---------------------------------------------------------------------------------------------------
// Holding bytes: whole up to a cap, then only the first and last EDGE_BYTES.

interface Held {
  chunks: Buffer[];
  size: number;
  head: Buffer | undefined; // set once the cap is passed
  tail: Buffer;
}

function newHeld(): Held {
  return { chunks: [], size: 0, head: undefined, tail: EMPTY };
}

const EMPTY = Buffer.alloc(0);

function hold(h: Held, buf: Buffer, cap: number): void {
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

// ---------------------------------------------------------------------------------------------------
// application/json

function jsonTap(maxBytes: number): UsageTap {
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
          return fromEdges(held.head.toString('utf8'), held.tail.toString('utf8'), 1);
        }
        const text = held.chunks.length === 1 ? held.chunks[0]!.toString('utf8') : Buffer.concat(held.chunks).toString('utf8');
        held.chunks = [];
        // The whole answer is both edges; a body cut short (the caller left) reads the same way.
        return fromEdges(text, text, 1);
      } catch {
        return undefined;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// text/event-stream

const LF = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
const USAGE_KEY = Buffer.from('"usage"');
const MODEL_KEY = Buffer.from('"model"');

function sseTap(maxLineBytes: number): UsageTap {
  const info: UsageInfo = {};
  let line = newHeld();
  let pending = false; // a line began in an earlier chunk
  let lineIsData: boolean | undefined; // decided by its first bytes
  let done = false;

  function onLine(whole: Buffer | undefined, head?: Buffer, tail?: Buffer): void {
    if (whole !== undefined) {
      let end = whole.length;
      if (end > 0 && whole[end - 1] === CR) end--;
      if (!startsWith(whole, DATA)) return;
      let start = DATA.length;
      if (whole[start] === 0x20) start++;
      const payload = whole.subarray(start, end);
      if (payload.length === DONE.length && payload.equals(DONE)) return;
      const wantUsage = hasObjectKey(payload, USAGE_KEY);
      const wantModel = info.model === undefined && hasKey(payload, MODEL_KEY);
      if (!wantUsage && !wantModel) return;
      let event: unknown;
      try {
        event = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      readEvent(event, info);
      return;
    }
    // A line too long to hold: read what its edges say.
    if (head === undefined || tail === undefined || !startsWith(head, DATA)) return;
    let start = DATA.length;
    if (head[start] === 0x20) start++;
    const found = fromEdges(head.subarray(start).toString('utf8'), tail.toString('utf8'), 2);
    if (found === undefined) return;
    merge(info, found);
  }

  function finishLine(last: Buffer): void {
    lineIsData = undefined;
    if (line.size === 0 && last.length <= maxLineBytes) {
      onLine(last);
      return;
    }
    hold(line, last, maxLineBytes);
    const held = line;
    line = newHeld();
    if (held.head !== undefined) onLine(undefined, held.head, held.tail);
    else onLine(held.chunks.length === 1 ? held.chunks[0]! : Buffer.concat(held.chunks));
  }

  /** Keeps `rest`, the start or middle of a line whose end is in a later chunk. */
  function holdPartial(rest: Buffer): void {
    pending = true;
    if (lineIsData === undefined && line.size + rest.length >= DATA.length) {
      lineIsData = startsWith(line.size === 0 ? rest : Buffer.concat([...line.chunks, rest]), DATA);
    }
    // Lines that are not `data:` are never held (an `event:` or comment line is skipped as it comes).
    if (lineIsData !== false) hold(line, Buffer.from(rest), maxLineBytes); // a copy: the chunk is not ours
  }

  return {
    write(chunk) {
      if (done) return;
      try {
        const len = chunk.length;
        let start = 0;
        if (pending) {
          const nl = chunk.indexOf(LF);
          if (nl === -1) {
            holdPartial(chunk);
            return;
          }
          pending = false;
          if (lineIsData === false) {
            line = newHeld();
            lineIsData = undefined;
          } else {
            finishLine(chunk.subarray(0, nl));
          }
          start = nl + 1;
        }
        // Lines wholly inside this chunk: look at them in place, and only search the chunk for a key
        // again once the previous find is behind us, so a line costs little more than finding its end.
        let usageAt = -2;
        let modelAt = -2;
        while (start < len) {
          const nl = chunk.indexOf(LF, start);
          if (nl === -1) {
            holdPartial(chunk.subarray(start));
            break;
          }
          if (
            nl - start >= 5 &&
            chunk[start] === 0x64 && // d
            chunk[start + 1] === 0x61 && // a
            chunk[start + 2] === 0x74 && // t
            chunk[start + 3] === 0x61 && // a
            chunk[start + 4] === 0x3a // :
          ) {
            if (usageAt !== -1 && usageAt < start) usageAt = chunk.indexOf(USAGE_KEY, start);
            let maybe = usageAt !== -1 && usageAt < nl;
            if (!maybe && info.model === undefined) {
              if (modelAt !== -1 && modelAt < start) modelAt = chunk.indexOf(MODEL_KEY, start);
              maybe = modelAt !== -1 && modelAt < nl;
            }
            if (maybe) {
              if (nl - start <= maxLineBytes) onLine(chunk.subarray(start, nl));
              else finishLine(chunk.subarray(start, nl));
            }
          }
          start = nl + 1;
        }
      } catch {
        done = true;
      }
    },
    end() {
      if (done) return undefined;
      done = true;
      try {
        if (pending && lineIsData !== false) finishLine(EMPTY);
        return nonEmpty(info);
      } catch {
        return undefined;
      }
    },
  };
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** `"key"` as a key (not escaped inside a string, followed by a colon). */
function hasKey(buf: Buffer, key: Buffer): boolean {
  return keyValueStart(buf, key, false);
}

/** `"key"` followed by a colon and an object: `"usage":null` does not count. */
function hasObjectKey(buf: Buffer, key: Buffer): boolean {
  return keyValueStart(buf, key, true);
}

function keyValueStart(buf: Buffer, key: Buffer, wantObject: boolean): boolean {
  let from = 0;
  for (;;) {
    const at = buf.indexOf(key, from);
    if (at === -1) return false;
    from = at + key.length;
    if (at > 0 && buf[at - 1] === 0x5c) continue; // \"usage\" inside a string
    let i = from;
    while (i < buf.length && isSpace(buf[i]!)) i++;
    if (buf[i] !== 0x3a) continue; // ':'
    i++;
    while (i < buf.length && isSpace(buf[i]!)) i++;
    if (!wantObject || buf[i] === 0x7b) return true; // '{'
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

// ---------------------------------------------------------------------------------------------------
// Reading parsed answers

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One SSE event: Responses events carry the response under `response`, the others are flat. */
function readEvent(event: unknown, info: UsageInfo): void {
  if (!isObject(event)) return;
  if (isObject(event.response) && typeof event.type === 'string' && event.type.startsWith('response.')) {
    readObject(event.response, info);
  } else {
    readObject(event, info);
  }
}

function readObject(obj: unknown, info: UsageInfo): void {
  if (!isObject(obj)) return;
  const model = modelName(obj.model);
  if (model !== undefined) info.model = model;
  if (isObject(obj.usage)) readUsage(obj.usage, info);
}

function readUsage(u: Record<string, unknown>, info: UsageInfo): void {
  const input = tokens(u.input_tokens) ?? tokens(u.prompt_tokens);
  const output = tokens(u.output_tokens) ?? tokens(u.completion_tokens);
  const total = tokens(u.total_tokens) ?? (input !== undefined && output !== undefined ? input + output : undefined);
  if (input === undefined && output === undefined && total === undefined) return;
  info.inputTokens = input;
  info.outputTokens = output;
  info.totalTokens = total;
  for (const k of ['inputTokens', 'outputTokens', 'totalTokens'] as const) if (info[k] === undefined) delete info[k];
}

function tokens(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function modelName(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && v.length <= MAX_MODEL_LENGTH ? v : undefined;
}

function merge(into: UsageInfo, from: UsageInfo): void {
  if (from.model !== undefined) into.model = from.model;
  if (from.inputTokens !== undefined || from.outputTokens !== undefined || from.totalTokens !== undefined) {
    delete into.inputTokens;
    delete into.outputTokens;
    delete into.totalTokens;
    if (from.inputTokens !== undefined) into.inputTokens = from.inputTokens;
    if (from.outputTokens !== undefined) into.outputTokens = from.outputTokens;
    if (from.totalTokens !== undefined) into.totalTokens = from.totalTokens;
  }
}

function nonEmpty(info: UsageInfo): UsageInfo | undefined {
  return info.model !== undefined || info.inputTokens !== undefined || info.outputTokens !== undefined || info.totalTokens !== undefined
    ? info
    : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Reading the edges of a document too big to hold.
//
// `head` is the document's start, `tail` its end. A key counts only at the object nesting the caller
// allows (`maxDepth`: 1 for a JSON answer's top level; 2 for an SSE event, whose Responses payload is
// under `response`) — never inside an array, so a list of stored completions is not read as usage.

function fromEdges(head: string, tail: string, maxDepth: number): UsageInfo | undefined {
  const info: UsageInfo = {};
  const usage = lastValueInTail(tail, 'usage', maxDepth, true) ?? firstValueInHead(head, 'usage', maxDepth, true);
  if (isObject(usage)) readUsage(usage, info);
  // A document has one top-level model, so the order only decides the cost: the tail first, where an
  // embeddings answer has it (reading it from the head would scan the whole vector list before it).
  const model = lastValueInTail(tail, 'model', maxDepth, false) ?? firstValueInHead(head, 'model', maxDepth, false);
  const name = modelName(model);
  if (name !== undefined) info.model = name;
  return nonEmpty(info);
}

/** Where each occurrence of `"key":` that is a real key starts its value. */
function* keyValues(s: string, key: string): Generator<{ at: number; value: number }> {
  const quoted = `"${key}"`;
  for (let at = s.indexOf(quoted); at !== -1; at = s.indexOf(quoted, at + quoted.length)) {
    const value = keyValueAt(s, at, quoted.length);
    if (value !== -1) yield { at, value };
  }
}

/** For `"key"` found at `at`: where its value starts if it is a real key (not escaped text, followed by a colon), else -1. */
function keyValueAt(s: string, at: number, quotedLength: number): number {
  if (at > 0 && s.charCodeAt(at - 1) === 0x5c) return -1;
  let i = at + quotedLength;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== 0x3a) return -1;
  i++;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}

/** The end (exclusive) of the JSON value starting at `i` (an object or a string), or -1. */
function valueEnd(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x22) return stringEnd(s, i);
  if (c !== 0x7b) return -1;
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    if (ch === 0x22) {
      j = stringEnd(s, j) - 1;
      if (j < 0) return -1;
    } else if (ch === 0x7b || ch === 0x5b) depth++;
    else if (ch === 0x7d || ch === 0x5d) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return -1;
}

/** The end (exclusive) of the string starting with the quote at `i`, or -1. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    if (ch === 0x5c) j++;
    else if (ch === 0x22) return j + 1;
  }
  return -1;
}

function parseValue(s: string, start: number, end: number, wantObject: boolean): unknown {
  try {
    const v: unknown = JSON.parse(s.slice(start, end));
    return wantObject ? (isObject(v) ? v : undefined) : typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the tail forward from `from` (outside any string) to its end: how many objects it closes. */
function closesFrom(s: string, from: number): number | undefined {
  let depth = 0;
  let deepestOpenBelow = 0; // the lowest depth reached
  for (let j = from; j < s.length; j++) {
    const ch = s.charCodeAt(j);
    if (ch === 0x22) {
      j = stringEnd(s, j) - 1;
      if (j < 0) return undefined;
    } else if (ch === 0x7b || ch === 0x5b) depth++;
    else if (ch === 0x7d) {
      depth--;
      if (depth < deepestOpenBelow) deepestOpenBelow = depth;
    } else if (ch === 0x5d) {
      depth--;
      if (depth < deepestOpenBelow) return undefined; // closes an array around the key: a list item
    }
  }
  return depth === deepestOpenBelow ? -depth : undefined;
}

function lastValueInTail(tail: string, key: string, maxDepth: number, wantObject: boolean): unknown {
  // From the end backwards: the answer's own key is usually the last occurrence.
  const quoted = `"${key}"`;
  for (let at = tail.lastIndexOf(quoted); at !== -1; at = at === 0 ? -1 : tail.lastIndexOf(quoted, at - 1)) {
    const value = keyValueAt(tail, at, quoted.length);
    if (value === -1) continue;
    const end = valueEnd(tail, value);
    if (end === -1) continue;
    const closes = closesFrom(tail, end);
    if (closes === undefined || closes < 1 || closes > maxDepth) continue;
    const v = parseValue(tail, value, end, wantObject);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Object nesting at `at`, reading from the document's start; undefined inside an array. */
function depthAt(s: string, at: number): number | undefined {
  const stack: number[] = [];
  for (let j = 0; j < at; j++) {
    const ch = s.charCodeAt(j);
    if (ch === 0x22) {
      j = stringEnd(s, j) - 1;
      if (j < 0 || j >= at) return undefined;
    } else if (ch === 0x7b || ch === 0x5b) stack.push(ch);
    else if (ch === 0x7d || ch === 0x5d) stack.pop();
  }
  return stack.includes(0x5b) ? undefined : stack.length;
}

function firstValueInHead(head: string, key: string, maxDepth: number, wantObject: boolean): unknown {
  for (const { at, value } of keyValues(head, key)) {
    const depth = depthAt(head, at);
    if (depth === undefined || depth < 1 || depth > maxDepth) continue;
    const end = valueEnd(head, value);
    if (end === -1) continue;
    const v = parseValue(head, value, end, wantObject);
    if (v !== undefined) return v;
  }
  return undefined;
}
