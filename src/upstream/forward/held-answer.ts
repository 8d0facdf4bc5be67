import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ForwardRequest } from './exchange.ts';

/** Error answers are small; the key is redacted from them in case upstream ever echoes it. */
export const MAX_REDACTED_ERROR_BYTES = 1024 * 1024;
/** Most of an over-long JSON answer the relay will hold to refit it; a larger one is cut. */
export const MAX_FITTED_ANSWER_BYTES = 32 * 1024 * 1024;

/**
 * Holds a bounded upstream answer whole, lets `rewrite` change it, then sends it with its own length:
 * for the few answers the relay must see entire (error bodies, to redact; over-long action answers, to
 * shorten). Past `maxBytes` the answer is cut rather than held.
 */
export function relayHeldAnswer(
  res: IncomingMessage,
  outgoing: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  maxBytes: number,
  rewrite: (body: Buffer) => Buffer,
  onChunk?: (chunk: Buffer) => void,
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
    onChunk?.(chunk);
  });
  res.prependOnceListener('end', () => {
    const body = rewrite(Buffer.concat(chunks, size));
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
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      return body; // not JSON after all: pass it on as it came
    }
    const fitted = fitter.fit(value);
    if (fitted.truncated) headers['x-relay-truncated'] = 'true';
    return Buffer.from(JSON.stringify(fitted.value), 'utf8');
  };
}
