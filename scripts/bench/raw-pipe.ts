import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { parseArgs } from 'node:util';
import { listenAsBenchChild } from './lib.ts';

/**
 * The baseline: the thinnest Node relay there is. A node:http server that pipes each request body to
 * the upstream over a keep-alive agent and pipes the answer back, copying headers minus hop-by-hop
 * ones. No auth, no routing, no logging, no limits: the practical ceiling for a relay written in Node.
 * Listens on 127.0.0.1, prints `{"port":N}` once listening; with --exit-with-stdin, exits when its stdin closes.
 *
 *   node scripts/bench/raw-pipe.ts --upstream http://127.0.0.1:PORT [--port 0]
 */

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'exit-with-stdin': { type: 'boolean', default: false },
    upstream: { type: 'string' },
  },
});
if (!args.upstream) {
  console.error('raw-pipe: --upstream http://127.0.0.1:PORT is required');
  process.exit(2);
}
const upstream = new URL(args.upstream);
if (upstream.protocol !== 'http:') {
  console.error('raw-pipe: only http:// upstreams are supported');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4096, maxFreeSockets: 64, scheduling: 'lifo' });

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

function copyHeaders(from: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in from) if (!HOP_BY_HOP.has(name)) out[name] = from[name];
  return out;
}

const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
  const upstreamReq = http.request({
    hostname: upstream.hostname,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers: copyHeaders(req.headers),
    agent,
  });
  upstreamReq.on('response', (upstreamRes) => {
    res.writeHead(upstreamRes.statusCode ?? 502, copyHeaders(upstreamRes.headers));
    upstreamRes.pipe(res);
    upstreamRes.on('error', () => res.destroy());
  });
  upstreamReq.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"upstream unreachable"}}');
    } else res.destroy();
  });
  req.pipe(upstreamReq);
  res.on('close', () => {
    if (!res.writableFinished) upstreamReq.destroy();
  });
});

listenAsBenchChild(server, Number(args.port), Boolean(args['exit-with-stdin']));
