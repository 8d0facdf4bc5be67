import type { UsageInfo } from './types.ts';
import { isObject, modelName, nonEmpty, readResponseState, readUsage, serviceTier } from './read.ts';

/**
 * Reading the edges of a document too big to hold.
 *
 * `head` is the document's start, `tail` its end. A key counts only at the object nesting the caller
 * allows (`maxDepth`: 1 for a JSON answer's top level; 2 for an SSE event, whose Responses payload is
 * under `response`) — never inside an array, so a list of stored completions is not read as usage.
 */

export function fromEdges(head: string, tail: string, maxDepth: number, responseState = false): UsageInfo | undefined {
  const info: UsageInfo = {};
  const usage = lastValueInTail(tail, 'usage', maxDepth, true) ?? firstValueInHead(head, 'usage', maxDepth, true);
  if (isObject(usage)) readUsage(usage, info);
  // The tier sets the price of generated tokens; answers without output (embeddings, the hot path) have
  // none, and are not searched for it. OpenAI puts it near `usage`, so the tail first.
  if (info.outputTokens !== undefined) {
    const tier = serviceTier(lastValueInTail(tail, 'service_tier', maxDepth, false) ?? (head !== tail ? firstValueInHead(head, 'service_tier', maxDepth, false) : undefined));
    if (tier !== undefined) info.serviceTier = tier;
  }
  // A document has one top-level model, so the order only decides the cost: the tail first, where an
  // embeddings answer has it (reading it from the head would scan the whole vector list before it).
  const model = lastValueInTail(tail, 'model', maxDepth, false) ?? firstValueInHead(head, 'model', maxDepth, false);
  const name = modelName(model);
  if (name !== undefined) info.model = name;
  // A Responses object names itself and its state in its first keys: read from the head only.
  if (responseState && firstValueInHead(head, 'object', maxDepth, false) === 'response') {
    readResponseState(firstValueInHead(head, 'id', maxDepth, false), firstValueInHead(head, 'status', maxDepth, false), info);
  }
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

export function firstValueInHead(head: string, key: string, maxDepth: number, wantObject: boolean): unknown {
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

export function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}
