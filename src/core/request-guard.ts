import type { IncomingMessage } from 'node:http';
import { RelayError } from './errors.ts';
import { checkRawPath } from './path-params.ts';

/**
 * The first look at every request, before routing or auth: what no legitimate OpenAI client sends is
 * refused here, so nothing downstream has to reason about it.
 */
export function refuseMalformedRequest(
  incoming: IncomingMessage,
  maxUrlBytes: number,
  /** Paths the relay answers itself (health, documents, file links): HEAD is answered there, as GET without a body. */
  answersHead: (path: string) => boolean = () => false,
): RelayError | undefined {
  // A stray LF in the request line makes node's parser read an HTTP/0.9 request with the rest as headers.
  if (incoming.httpVersionMajor !== 1) {
    return new RelayError(400, 'Only HTTP/1.x requests are served.', { code: 'bad_request' });
  }
  // HTTP/1.1 requires a Host header (RFC 9112 §3.2).
  if (incoming.httpVersionMinor === 1 && !incoming.headers.host) {
    return new RelayError(400, 'HTTP/1.1 requests need a Host header.', { code: 'bad_request' });
  }
  const url = incoming.url ?? '';
  // Elsewhere HEAD would run as a GET upstream (downloading a whole file to throw it away): actions and
  // SDKs never send it. Uptime monitors do, to the relay's own pages.
  if (incoming.method === 'HEAD' && !answersHead(url.split('?', 1)[0])) {
    return new RelayError(405, "HEAD is answered only on the relay's own pages (/health, the documents, file links); OpenAI operations take GET.", {
      code: 'method_not_allowed',
      headers: { allow: 'GET, POST, DELETE' },
    });
  }
  if (url.length > maxUrlBytes) {
    return new RelayError(414, `The request URL is longer than this relay's limit of ${maxUrlBytes} bytes.`, { code: 'url_too_long' });
  }
  return checkRawPath(url);
}
