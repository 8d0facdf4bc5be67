import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import type { RelayEnv } from './env.ts';
import { RelayError } from './errors.ts';
import { inviteBody } from './expect-continue.ts';
import { parseJsonBounded } from './json-depth.ts';

/**
 * Small request bodies the relay reads and parses itself (a proxy envelope, an action's arguments, an MCP
 * message): capped while read (a Content-Length above the cap is refused before a byte is read), and due
 * within a time limit — a body that stops arriving gets a 408 and frees its in-flight slot instead of
 * holding it — then parsed once with a bound on nesting.
 */
export interface BodyLimits {
  /** Largest body, in bytes (413). */
  cap: number;
  /** The whole body must arrive within this (408). */
  timeoutMs: number;
}

/** What a request a body is read from comes with: node's request and response. */
export interface BodyDoor {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
}

/** The time limit of a body read with a cap alone (REQUEST_BODY_TIMEOUT_MS's default). */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/**
 * `source`: the request (and its response, so a caller waiting for `100 Continue` is invited); `limits`: a
 * cap and a time limit, or a cap alone (then DEFAULT_BODY_TIMEOUT_MS).
 */
export function readBodyCapped(source: BodyDoor | IncomingMessage, limits: BodyLimits | number, what: string): Promise<Buffer> {
  const { incoming, outgoing } = 'incoming' in source ? source : { incoming: source, outgoing: undefined };
  const { cap, timeoutMs } = typeof limits === 'number' ? { cap: limits, timeoutMs: DEFAULT_BODY_TIMEOUT_MS } : limits;
  const tooLarge = () => new RelayError(413, `The ${what} exceeds this relay's limit of ${cap} bytes.`, { code: 'request_too_large' });
  if (Number(incoming.headers['content-length'] ?? 0) > cap) return Promise.reject(tooLarge());
  if (incoming.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (outgoing) inviteBody(incoming, outgoing);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err?: RelayError) => {
      clearTimeout(timer);
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      if (!err) return;
      incoming.pause();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) return stop(tooLarge());
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = () => stop(new RelayError(400, `The ${what} was cut off.`, { code: 'request_aborted' }));
    // The connection closes with the answer: the rest of a stalled body is never waited for.
    const timer = setTimeout(
      () =>
        stop(
          new RelayError(408, `The ${what} did not arrive within ${timeoutMs} ms (REQUEST_BODY_TIMEOUT_MS); send it whole and promptly.`, {
            code: 'request_timeout',
            headers: { connection: 'close' },
          }),
        ),
      timeoutMs,
    );
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

/** A JSON body of `expected` shape (application/json only), read within `limits` and parsed with a bound on nesting. */
export async function readJsonBody(door: BodyDoor | IncomingMessage, limits: BodyLimits | number, what: string, expected: string): Promise<unknown> {
  const incoming = 'incoming' in door ? door.incoming : door;
  const mediaType = (incoming.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new RelayError(415, `This endpoint takes ${expected} as application/json.`, { code: 'unsupported_media_type' });
  }
  const raw = await readBodyCapped(door, limits, what);
  return parseJsonBounded(raw.toString('utf8'), what);
}

/**
 * The same rules for routes whose body Hono's validator reads (the action operations): the body is read
 * here, within `limits`, and a JSON one checked (valid, nesting bounded) before it is handed on through
 * Hono's body cache, so the validator parses text already known to be sound.
 */
export function bodyReader(limits: BodyLimits, what: string): MiddlewareHandler<RelayEnv> {
  return async (c, next) => {
    const { incoming } = c.env;
    if (incoming.method !== 'POST') return next();
    const length = incoming.headers['content-length'];
    const hasBody = length !== undefined ? Number(length) > 0 : incoming.headers['transfer-encoding'] !== undefined;
    const mediaType = (incoming.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
    const json = /^application\/([\w.-]+\+)?json$/.test(mediaType);
    if (!hasBody && !json) return next();
    const text = hasBody ? (await readBodyCapped(c.env, limits, what)).toString('utf8') : '';
    // An empty JSON body is not JSON either (Hono's validator would throw on it).
    if (json) parseJsonBounded(text, what);
    // Hono keeps the pending read in its cache (its type names the settled value).
    (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
    return next();
  };
}
