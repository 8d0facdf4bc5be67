import { RelayError } from './errors.ts';

/**
 * How deeply nested a JSON text the relay parses may be. V8's JSON.parse is iterative, but what follows a
 * parse is not: JSON.stringify, zod and the answer fitter recurse once per level, and a body nested some
 * thousands deep overflowed the stack (a 500; in a held body, an uncaught exception). OpenAI's deepest
 * legitimate shapes (structured-output schemas: 10 levels of schema, two JSON levels each, inside an
 * envelope or MCP call) stay far below this.
 */
export const MAX_JSON_DEPTH = 128;

/** Whether `text` nests objects and arrays deeper than `max` (strings skipped; no parse, no recursion). */
export function jsonDepthExceeds(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

export function tooDeep(what: string): RelayError {
  return new RelayError(400, `The ${what} nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels; flatten it.`, { code: 'json_too_deep' });
}

/** `text` parsed, refusing (400, naming `what`) a body that is not JSON or is nested too deeply. */
export function parseJsonBounded(text: string, what: string): unknown {
  if (jsonDepthExceeds(text)) throw tooDeep(what);
  try {
    return JSON.parse(text);
  } catch {
    throw new RelayError(400, `The ${what} is not valid JSON.`, { code: 'invalid_json' });
  }
}
