import { fromEdges, isSpace } from './edges.ts';
import { EMPTY, hold, newHeld } from './held.ts';
import type { UsageInfo, UsageTap } from './types.ts';
import { merge, nonEmpty, readEvent } from './read.ts';

/**
 * text/event-stream: lines split as bytes arrive; only the current partial `data:` line is held, and only
 * lines that can carry what is still missing are parsed.
 */
const LF = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
const USAGE_KEY = Buffer.from('"usage"');
const MODEL_KEY = Buffer.from('"model"');

export function sseTap(maxLineBytes: number, responseState: boolean): UsageTap {
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
      readEvent(event, info, responseState);
      return;
    }
    // A line too long to hold: read what its edges say.
    if (head === undefined || tail === undefined || !startsWith(head, DATA)) return;
    let start = DATA.length;
    if (head[start] === 0x20) start++;
    const found = fromEdges(head.subarray(start).toString('utf8'), tail.toString('utf8'), 2, responseState);
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
export function hasKey(buf: Buffer, key: Buffer): boolean {
  return keyValueStart(buf, key, false);
}

/** `"key"` followed by a colon and an object: `"usage":null` does not count. */
export function hasObjectKey(buf: Buffer, key: Buffer): boolean {
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


// ---------------------------------------------------------------------------------------------------
// Reading parsed answers
