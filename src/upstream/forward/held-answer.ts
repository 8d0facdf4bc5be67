import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { RelayError } from '../../core/errors.ts';
import { jsonDepthExceeds } from '../../core/json-depth.ts';
import type { ForwardRequest } from './exchange.ts';

/** Most of an over-long JSON answer the relay will hold to refit it; a larger one is cut. */
export const MAX_FITTED_ANSWER_BYTES = 32 * 1024 * 1024;

/**
 * Holds a bounded upstream answer whole, lets `rewrite` change it, then sends it with its own length: for
 * the few successful answers the relay must see entire (over-long action answers, to shorten them; error
 * answers have error-answer.ts). Past `maxBytes` the answer is cut rather than held; an answer `rewrite`
 * cannot handle (it throws a RelayError) goes to `onError`.
 */
export function relayHeldAnswer(
  res: IncomingMessage,
  outgoing: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  maxBytes: number,
  rewrite: (body: Buffer) => Buffer,
  onChunk: (chunk: Buffer) => void,
  onError: (err: RelayError) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) {
      res.destroy();
      outgoing.destroy();
      return;
    }
    chunks.push(chunk);
    onChunk(chunk);
  });
  res.prependOnceListener('end', () => {
    let body: Buffer;
    try {
      body = rewrite(Buffer.concat(chunks, size));
    } catch (err) {
      if (err instanceof RelayError) return onError(err);
      throw err;
    }
    headers['content-length'] = body.length;
    outgoing.writeHead(status, headers);
    outgoing.end(body);
  });
}

/**
 * An answer longer than the fitter allows, refitted (saying so in `x-relay-truncated`) and sent as compact
 * JSON; one within the limit goes as it came, byte for byte.
 */
export function fitHeldAnswer(fitter: NonNullable<ForwardRequest['fitAnswer']>, headers: OutgoingHttpHeaders) {
  return (body: Buffer): Buffer => {
    if (body.length <= fitter.maxChars) return body;
    const text = body.toString('utf8');
    // The fitter and JSON.stringify recurse once per level.
    if (jsonDepthExceeds(text)) {
      throw new RelayError(502, "OpenAI's answer is too long for an action and nested too deeply to shorten.", { code: 'upstream_answer_too_deep' });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return body; // not JSON after all: pass it on as it came
    }
    const fitted = fitter.fit(value);
    if (fitted.truncated) headers['x-relay-truncated'] = 'true';
    return Buffer.from(JSON.stringify(fitted.value), 'utf8');
  };
}
