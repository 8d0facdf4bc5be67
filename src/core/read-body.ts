import type { IncomingMessage } from 'node:http';
import { RelayError } from './errors.ts';

/**
 * Reads a small request body the relay itself must parse (a proxy envelope), refusing it as soon as it
 * passes `cap` bytes: a Content-Length above the cap is refused before a byte is read.
 */
export function readBodyCapped(incoming: IncomingMessage, cap: number, what: string): Promise<Buffer> {
  const tooLarge = () => new RelayError(413, `The ${what} exceeds this relay's limit of ${cap} bytes.`, { code: 'request_too_large' });
  if (Number(incoming.headers['content-length'] ?? 0) > cap) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) {
        incoming.removeAllListeners('data');
        incoming.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    incoming.on('end', () => resolve(Buffer.concat(chunks)));
    incoming.on('error', () => reject(new RelayError(400, `The ${what} was cut off.`, { code: 'request_aborted' })));
  });
}

/**
 * A small JSON body the relay itself parses (proxy envelope, MCP message): application/json only, capped
 * while read, parsed once; each refusal an OpenAI-shaped 4xx naming `what` was wrong.
 */
export async function readJsonBody(incoming: IncomingMessage, cap: number, what: string, expected: string): Promise<unknown> {
  const mediaType = (incoming.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new RelayError(415, `This endpoint takes ${expected} as application/json.`, { code: 'unsupported_media_type' });
  }
  const raw = await readBodyCapped(incoming, cap, what);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new RelayError(400, `The ${what} is not valid JSON.`, { code: 'invalid_json' });
  }
}
