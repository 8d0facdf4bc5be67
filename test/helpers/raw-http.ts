import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

/**
 * A request exactly as written: node:http sends the path byte for byte (no dot-segment resolution or
 * re-encoding, unlike fetch/URL) and only the headers given.
 */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Sent as a chunked upload, a few ms apart; the relay may answer (and hang up) before all is written. */
  chunks?: (string | Buffer)[];
  /** With `expect: 100-continue`: send the body only once the server says continue. */
  waitForContinue?: boolean;
}

export function rawRequest(baseUrl: string, opts: RawRequest): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  const headers: OutgoingHttpHeaders = { ...opts.headers };
  const names = Object.keys(headers).map((n) => n.toLowerCase());
  if (opts.body !== undefined && !names.includes('content-length') && !names.includes('transfer-encoding')) {
    headers['content-length'] = Buffer.byteLength(opts.body);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, method: opts.method ?? 'GET', path: opts.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    if (opts.chunks) {
      req.on('error', () => {});
      const queue = [...opts.chunks];
      const next = () => {
        const chunk = queue.shift();
        if (chunk === undefined) return req.end();
        req.write(chunk);
        setTimeout(next, 2);
      };
      next();
    } else if (opts.waitForContinue) {
      req.on('error', reject);
      req.on('continue', () => req.end(opts.body));
      req.flushHeaders();
    } else {
      req.on('error', reject);
      req.end(opts.body);
    }
  });
}
