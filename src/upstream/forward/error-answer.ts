import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { RelayError } from '../../core/errors.ts';
import type { Exchange } from './exchange.ts';

/**
 * OpenAI's error answers (status 400 and up), held whole to redact the server key in case upstream ever
 * echoes it — whatever their form. An encoded body (gzip, deflate, br, zstd; `identity` too) is decoded
 * first and sent decoded; one the relay cannot decode is withheld; one too large to inspect is cut. A body
 * withheld or cut is replaced by the relay's own error in OpenAI's shape, keeping OpenAI's status (a 429
 * stays a 429) and its x-request-id to quote. An event stream that opens with an error status is held and
 * redacted the same way.
 */

/** The most of an error body the relay holds, encoded or decoded; past it the body is cut. */
export const MAX_ERROR_BODY_BYTES = 1024 * 1024;

type Decoder = (body: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;
const DECODERS: Record<string, Decoder | null> = {
  identity: null,
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress) as Decoder,
  ...('zstdDecompress' in zlib ? { zstd: promisify((zlib as unknown as { zstdDecompress: typeof zlib.gunzip }).zstdDecompress) } : {}),
};

export function relayErrorAnswer(x: Exchange, res: IncomingMessage, status: number, headers: OutgoingHttpHeaders): void {
  const encodings = String(res.headers['content-encoding'] ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  const unknown = encodings.find((e) => !(e in DECODERS));
  if (unknown !== undefined) return withhold(x, res, status, headers, uninspectable(status, unknown));
  if (Number(res.headers['content-length'] ?? 0) > MAX_ERROR_BODY_BYTES) return withhold(x, res, status, headers, tooLarge(status));

  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  const stop = (err: RelayError) => {
    over = true;
    withhold(x, res, status, headers, err);
  };
  const cutOff = () => {
    if (!over) x.fail(new RelayError(502, 'OpenAI closed the connection mid-answer.', { code: 'upstream_reset' }));
  };
  res.on('error', cutOff);
  res.on('close', () => {
    if (!res.complete) cutOff();
  });
  res.on('data', (chunk: Buffer) => {
    if (over) return;
    x.deadlineTimer?.refresh();
    size += chunk.length;
    if (size > MAX_ERROR_BODY_BYTES) return stop(tooLarge(status));
    chunks.push(chunk);
  });
  res.on('end', () => {
    if (over) return;
    decode(Buffer.concat(chunks, size), encodings).then(
      (body) => send(x, status, headers, Buffer.from(x.ctx.policy.redact(body.toString('utf8')), 'utf8')),
      (err: unknown) => stop((err as { code?: string })?.code === 'ERR_BUFFER_TOO_LARGE' ? tooLarge(status) : uninspectable(status, encodings.join(', '))),
    );
  });
}

/** Undoes the encodings in the reverse of the order they were applied; decoded past the cap, it throws. */
async function decode(body: Buffer, encodings: string[]): Promise<Buffer> {
  for (let i = encodings.length - 1; i >= 0; i--) {
    const decoder = DECODERS[encodings[i]];
    if (decoder) body = await decoder(body, { maxOutputLength: MAX_ERROR_BODY_BYTES });
  }
  return body;
}

function send(x: Exchange, status: number, headers: OutgoingHttpHeaders, body: Buffer, note?: string): void {
  if (x.settled || x.outgoing.destroyed) return;
  delete headers['content-encoding'];
  headers['content-length'] = body.length;
  x.outgoing.writeHead(status, headers);
  x.outgoing.end(body);
  x.finish(status, note);
}

/** The relay's own error in place of a body it will not pass on; upstream is not read any further. */
function withhold(x: Exchange, res: IncomingMessage, status: number, headers: OutgoingHttpHeaders, err: RelayError): void {
  if (x.settled) return;
  res.on('error', () => {});
  res.destroy();
  headers['content-type'] = 'application/json';
  send(x, status, headers, Buffer.from(JSON.stringify(err.toJSON()), 'utf8'), err.code ?? undefined);
}

const uninspectable = (status: number, encoding: string) =>
  new RelayError(status, `OpenAI answered ${status} with an error body encoded as "${encoding}", which the relay cannot inspect for secrets, so it is withheld; quote this answer's x-request-id to OpenAI for the details.`, {
    type: 'upstream_error',
    code: 'upstream_error_withheld',
  });

const tooLarge = (status: number) =>
  new RelayError(status, `OpenAI answered ${status} with an error body over ${MAX_ERROR_BODY_BYTES} bytes, too large for the relay to inspect for secrets, so it is cut; quote this answer's x-request-id to OpenAI for the details.`, {
    type: 'upstream_error',
    code: 'upstream_error_too_large',
  });
