import type { IncomingMessage, ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import type pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/core/logger.ts';
import { startRelay } from '../src/server.ts';
import { startLocalUpstream } from './helpers/local-upstream.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { OPENAI_KEY, RELAY_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { expectOpenAIError } from './helpers/assertions.ts';

/**
 * Upstream faults against a real loopback upstream: each case states the exact answer the client gets,
 * bounds how long it takes (nothing hangs), and checks that once relay and upstream are closed the process
 * holds no more sockets or timers than before the case (nothing leaks).
 */

interface Hit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

const TRACKED = ['TCPSocketWrap', 'TCPWRAP', 'TCPServerWrap', 'Timeout'];
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(TRACKED.map((t) => [t, 0]));
  for (const type of process.getActiveResourcesInfo()) if (type in counts) counts[type]++;
  return counts;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rejects if `promise` takes longer than `ms`: a hang becomes a failure with a name, not a test timeout. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const BASE_ENV = { UPSTREAM_RETRY_BASE_MS: '20', SHUTDOWN_GRACE_MS: '2000' };

/**
 * One fault scenario: a fresh loopback upstream and relay, the client steps, then both closed; afterwards
 * the active sockets/timers must settle back to what they were before the scenario started.
 */
async function scenario(handler: Handler, env: Record<string, string>, run: (relay: TestRelay, hits: Hit[]) => Promise<void>): Promise<void> {
  const baseline = handleCounts();
  const hits: Hit[] = [];
  const upstream = await startLocalUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: performance.now() });
      handler(req, res, hits.length);
    });
  });
  const relay = await startTestRelay({ ...BASE_ENV, OPENAI_BASE_URL: upstream.baseUrl, ...env });
  try {
    await run(relay, hits);
  } finally {
    await within(3000, 'relay shutdown', relay.shutdown());
    await within(3000, 'upstream close', upstream.close());
  }
  await expectBackToBaseline(baseline);
}

/** Waits (up to 2 s) for sockets and timers to settle, then asserts none is left above the baseline. */
async function expectBackToBaseline(baseline: Record<string, number>): Promise<void> {
  const excess = () => {
    const now = handleCounts();
    return Object.fromEntries(TRACKED.filter((t) => now[t] > baseline[t]).map((t) => [t, `${now[t]} (baseline ${baseline[t]})`]));
  };
  for (let i = 0; i < 40 && Object.keys(excess()).length > 0; i++) await sleep(50);
  expect(excess(), 'sockets/timers left open after the scenario').toEqual({});
}

const JSON_HEADERS = { 'content-type': 'application/json' };


function proxyCall(relay: TestRelay, envelope: unknown, headers: Record<string, string> = {}) {
  return relay.call('/v1/proxy', { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(envelope) });
}

/** Reads the whole body; resolves with the text or rejects when the connection is cut. */
async function readBody(res: Response): Promise<string> {
  return within(5000, 'reading the answer body', res.text());
}

const UPSTREAM_ERROR = JSON.stringify({ error: { message: 'The server had an error', type: 'server_error', param: null, code: null } });

describe('upstream error statuses and retries', () => {
  test('upstream 500 on POST (no Idempotency-Key) → 500 with upstream body; not retried', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(500, { 'content-type': 'application/json', 'x-request-id': 'req_up_500' });
        res.end(UPSTREAM_ERROR);
      },
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', relay.call('/v1/chat/completions', { method: 'POST', headers: JSON_HEADERS, body: '{"model":"gpt-5","messages":[]}' }));
        expect(res.status).toBe(500);
        expect(res.headers.get('x-request-id')).toBe('req_up_500');
        expect(await readBody(res)).toBe(UPSTREAM_ERROR);
        expect(hits.map((h) => `${h.method} ${h.url}`)).toEqual(['POST /v1/chat/completions']);
      },
    );
  });

  test('upstream 500 on a GET → 500 with upstream body; 500 is never retried', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(500, JSON_HEADERS);
        res.end(UPSTREAM_ERROR);
      },
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(500);
        expect(await readBody(res)).toBe(UPSTREAM_ERROR);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('GET: 503 then 200 → client gets the 200; upstream saw 2 requests', async () => {
    await scenario(
      (_req, res, n) => {
        if (n === 1) {
          res.writeHead(503, JSON_HEADERS);
          res.end('{"error":{"message":"overloaded","type":"server_error"}}');
          return;
        }
        res.writeHead(200, { ...JSON_HEADERS, 'x-request-id': 'req_up_second' });
        res.end('{"object":"list","data":[]}');
      },
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(200);
        expect(res.headers.get('x-request-id')).toBe('req_up_second');
        expect(await readBody(res)).toBe('{"object":"list","data":[]}');
        expect(hits.map((h) => `${h.method} ${h.url}`)).toEqual(['GET /v1/models', 'GET /v1/models']);
      },
    );
  });

  test('POST with Idempotency-Key (proxy, held body): 502 then 200 → 200; both attempts carry the same body and key', async () => {
    const body = { model: 'text-embedding-3-small', input: 'retry me' };
    await scenario(
      (_req, res, n) => {
        res.writeHead(n === 1 ? 502 : 200, JSON_HEADERS);
        res.end(n === 1 ? '{"error":{"message":"bad gateway","type":"server_error"}}' : '{"object":"list","data":[]}');
      },
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', proxyCall(relay, { method: 'POST', path: '/v1/embeddings', body }, { 'idempotency-key': 'idem-123' }));
        expect(res.status).toBe(200);
        expect(await readBody(res)).toBe('{"object":"list","data":[]}');
        expect(hits).toHaveLength(2);
        for (const hit of hits) {
          expect(`${hit.method} ${hit.url}`).toBe('POST /v1/embeddings');
          expect(hit.body).toBe(JSON.stringify(body));
          expect(hit.headers['idempotency-key']).toBe('idem-123');
        }
      },
    );
  });

  test('POST without Idempotency-Key (proxy): 502 → 502 with upstream body; not retried', async () => {
    const upstreamBody = '{"error":{"message":"bad gateway","type":"server_error","param":null,"code":null}}';
    await scenario(
      (_req, res) => {
        res.writeHead(502, JSON_HEADERS);
        res.end(upstreamBody);
      },
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', proxyCall(relay, { method: 'POST', path: '/v1/embeddings', body: { input: 'x' } }));
        expect(res.status).toBe(502);
        expect(await readBody(res)).toBe(upstreamBody);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('direct POST with Idempotency-Key and a small JSON body (held whole before going upstream): 502 → retried → 200', async () => {
    await scenario(
      (_req, res, n) => {
        res.writeHead(n === 1 ? 502 : 200, JSON_HEADERS);
        res.end(n === 1 ? UPSTREAM_ERROR : '{"object":"list","data":[]}');
      },
      {},
      async (relay, hits) => {
        const res = await within(
          3000,
          'answer',
          relay.call('/v1/embeddings', { method: 'POST', headers: { ...JSON_HEADERS, 'idempotency-key': 'idem-8' }, body: '{"input":"x"}' }),
        );
        expect(res.status).toBe(200);
        expect(hits).toHaveLength(2);
        expect(hits.map((h) => h.body)).toEqual(['{"input":"x"}', '{"input":"x"}']);
      },
    );
  });

  test('direct POST with Idempotency-Key but a body too big to hold (> 64 KB, streamed): 502 → 502; not retried', async () => {
    const big = JSON.stringify({ input: 'x'.repeat(100 * 1024) });
    await scenario(
      (_req, res) => {
        res.writeHead(502, JSON_HEADERS);
        res.end(UPSTREAM_ERROR);
      },
      {},
      async (relay, hits) => {
        const res = await within(
          3000,
          'answer',
          relay.call('/v1/embeddings', { method: 'POST', headers: { ...JSON_HEADERS, 'idempotency-key': 'idem-9' }, body: big }),
        );
        expect(res.status).toBe(502);
        expect(await readBody(res)).toBe(UPSTREAM_ERROR);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('429 with Retry-After passes straight through (status, body, retry-after); no retry, no wait', async () => {
    const upstreamBody = '{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}';
    await scenario(
      (_req, res) => {
        res.writeHead(429, { ...JSON_HEADERS, 'retry-after': '2', 'x-ratelimit-reset-requests': '2s' });
        res.end(upstreamBody);
      },
      {},
      async (relay, hits) => {
        const started = performance.now();
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(429);
        expect(res.headers.get('retry-after')).toBe('2');
        expect(res.headers.get('x-ratelimit-reset-requests')).toBe('2s');
        expect(await readBody(res)).toBe(upstreamBody);
        expect(performance.now() - started).toBeLessThan(1500);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('Retry-After: 1 on a 503 is honoured: the retry comes ≥ 1 s later; client gets the 200', async () => {
    await scenario(
      (_req, res, n) => {
        if (n === 1) {
          res.writeHead(503, { ...JSON_HEADERS, 'retry-after': '1' });
          res.end('{"error":{"message":"busy","type":"server_error"}}');
          return;
        }
        res.writeHead(200, JSON_HEADERS);
        res.end('{"ok":true}');
      },
      {},
      async (relay, hits) => {
        const res = await within(5000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(200);
        expect(await readBody(res)).toBe('{"ok":true}');
        expect(hits).toHaveLength(2);
        expect(hits[1].at - hits[0].at).toBeGreaterThanOrEqual(980);
        expect(hits[1].at - hits[0].at).toBeLessThan(2500);
      },
    );
  });

  test('Retry-After: 60 on a 503 is capped by UPSTREAM_RETRY_MAX_DELAY_MS=300', async () => {
    await scenario(
      (_req, res, n) => {
        if (n === 1) {
          res.writeHead(503, { ...JSON_HEADERS, 'retry-after': '60' });
          res.end('{"error":{"message":"busy","type":"server_error"}}');
          return;
        }
        res.writeHead(200, JSON_HEADERS);
        res.end('{"ok":true}');
      },
      { UPSTREAM_RETRY_MAX_DELAY_MS: '300' },
      async (relay, hits) => {
        const started = performance.now();
        const res = await within(5000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(200);
        expect(await readBody(res)).toBe('{"ok":true}');
        expect(hits).toHaveLength(2);
        const gap = hits[1].at - hits[0].at;
        expect(gap).toBeGreaterThanOrEqual(280);
        expect(gap).toBeLessThan(1500);
        expect(performance.now() - started).toBeLessThan(2000);
      },
    );
  });

  test('retry-after-ms: 400 on a 502 is honoured for a GET', async () => {
    await scenario(
      (_req, res, n) => {
        res.writeHead(n === 1 ? 502 : 200, n === 1 ? { ...JSON_HEADERS, 'retry-after-ms': '400' } : JSON_HEADERS);
        res.end(n === 1 ? '{"error":{"message":"bad gateway","type":"server_error"}}' : '{"ok":true}');
      },
      {},
      async (relay, hits) => {
        const res = await within(5000, 'answer', relay.call('/v1/files'));
        expect(res.status).toBe(200);
        await readBody(res);
        expect(hits).toHaveLength(2);
        expect(hits[1].at - hits[0].at).toBeGreaterThanOrEqual(380);
      },
    );
  });
});

describe('connection faults', () => {
  test('connection reset before the answer, GET → 502 OpenAI error after the retries (1 + UPSTREAM_RETRIES attempts)', async () => {
    await scenario(
      (req) => req.socket.destroy(),
      { UPSTREAM_RETRIES: '2' },
      async (relay, hits) => {
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        const error = await expectOpenAIError(res, 502);
        expect(error.type).toBe('upstream_error');
        expect(hits).toHaveLength(3);
      },
    );
  });

  test('connection reset before the answer, POST without Idempotency-Key → 502 OpenAI error, one attempt', async () => {
    await scenario(
      (req) => req.socket.destroy(),
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', proxyCall(relay, { method: 'POST', path: '/v1/embeddings', body: { input: 'x' } }));
        await expectOpenAIError(res, 502);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('reset during an SSE stream → the client stream ends with an `event: error` SSE event, no hang', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: response.created\ndata: {"type":"response.created"}\n\n');
        setTimeout(() => res.socket?.destroy(), 50);
      },
      {},
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/responses', { method: 'POST', headers: JSON_HEADERS, body: '{"model":"gpt-5","input":"hi","stream":true}' }));
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const text = await readBody(res);
        expect(text.startsWith('event: response.created\ndata: {"type":"response.created"}\n\n')).toBe(true);
        const events = text.split('\n\n').filter(Boolean);
        const last = events.at(-1)!;
        expect(last.split('\n')[0]).toBe('event: error');
        const data = JSON.parse(last.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { type: string; error: { message: string; type: string } };
        expect(data.type).toBe('error');
        expect(data.error.type).toBe('upstream_error');
        expect(data.error.message.length).toBeGreaterThan(0);
        expect(text.endsWith('\n\n')).toBe(true);
      },
    );
  });

  test('reset during a JSON body (Content-Length) → the client body read rejects, not a fake success', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, { ...JSON_HEADERS, 'content-length': '5000' });
        res.write('{"object":"list","data":[');
        setTimeout(() => res.socket?.destroy(), 30);
      },
      {},
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(200);
        await expect(readBody(res)).rejects.toThrow(/terminated|aborted|closed|socket|other side/i);
      },
    );
  });

  test('reset during a chunked JSON body → the client body read rejects', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, JSON_HEADERS);
        res.write('{"object":"list","data":[');
        setTimeout(() => res.socket?.destroy(), 30);
      },
      {},
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/files'));
        expect(res.status).toBe(200);
        await expect(readBody(res)).rejects.toThrow();
      },
    );
  });

  test('reset during a binary download → the client body read rejects', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024) });
        res.write(Buffer.alloc(64 * 1024, 7));
        setTimeout(() => res.socket?.destroy(), 30);
      },
      {},
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/files/file-1/content'));
        expect(res.status).toBe(200);
        await expect(within(5000, 'binary body', res.arrayBuffer())).rejects.toThrow();
      },
    );
  });

  test('reset during a (buffered) upstream error body → 502 OpenAI error, not a truncated error', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(500, { ...JSON_HEADERS, 'content-length': '1000' });
        res.write('{"error":{"message":"half');
        setTimeout(() => res.socket?.destroy(), 30);
      },
      {},
      async (relay, hits) => {
        const res = await within(3000, 'answer', relay.call('/v1/chat/completions', { method: 'POST', headers: JSON_HEADERS, body: '{}' }));
        await expectOpenAIError(res, 502);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('slow headers (upstream never answers), UPSTREAM_TIMEOUT_SHORT_MS=300 → 504 OpenAI error within ~300 ms', async () => {
    await scenario(
      () => {
        // never answer
      },
      { UPSTREAM_TIMEOUT_SHORT_MS: '300' },
      async (relay, hits) => {
        const started = performance.now();
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        const elapsed = performance.now() - started;
        const error = await expectOpenAIError(res, 504);
        expect(error.type).toBe('timeout_error');
        expect(elapsed).toBeGreaterThanOrEqual(280);
        expect(elapsed).toBeLessThan(1500);
        expect(hits).toHaveLength(1);
      },
    );
  });

  test('slow body (headers, some bytes, then silence), UPSTREAM_TIMEOUT_SHORT_MS=300 → the client stream is cut within ~300 ms', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, JSON_HEADERS);
        res.write('{"object":"list",');
      },
      { UPSTREAM_TIMEOUT_SHORT_MS: '300' },
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(200);
        const started = performance.now();
        await expect(readBody(res)).rejects.toThrow();
        const elapsed = performance.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(200);
        expect(elapsed).toBeLessThan(1500);
      },
    );
  });

  test('an answer that keeps coming, a chunk every 100 ms for 800 ms, UPSTREAM_TIMEOUT_SHORT_MS=300 → delivered whole (the limit is on silence, not on length)', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, JSON_HEADERS);
        res.write('{"object":"list","data":[');
        let sent = 0;
        const tick = setInterval(() => {
          sent++;
          if (sent < 8) res.write(`${sent > 1 ? ',' : ''}{"n":${sent}}`);
          else {
            clearInterval(tick);
            res.end(']}');
          }
        }, 100);
        res.on('close', () => clearInterval(tick));
      },
      { UPSTREAM_TIMEOUT_SHORT_MS: '300' },
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/models'));
        expect(res.status).toBe(200);
        const body = JSON.parse(await within(3000, 'body', readBody(res)));
        expect(body.data).toHaveLength(7);
      },
    );
  });

  test('slow SSE (one event, then silence), UPSTREAM_TIMEOUT_STANDARD_MS=300 → the stream ends with an `event: error` within ~300 ms', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"n":1}\n\n');
      },
      { UPSTREAM_TIMEOUT_STANDARD_MS: '300' },
      async (relay) => {
        const res = await within(3000, 'answer', relay.call('/v1/chat/completions', { method: 'POST', headers: JSON_HEADERS, body: '{"model":"gpt-5","messages":[],"stream":true}' }));
        expect(res.status).toBe(200);
        const started = performance.now();
        const text = await readBody(res);
        const elapsed = performance.now() - started;
        expect(text.startsWith('data: {"n":1}\n\n')).toBe(true);
        expect(text).toMatch(/\n\nevent: error\ndata: \{[^\n]*"type":"timeout_error"[^\n]*\}\n\n$/);
        expect(elapsed).toBeLessThan(1500);
      },
    );
  });

  test('connection refused, GET → 502 OpenAI error after the retries, quickly', async () => {
    const baseline = handleCounts();
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    const relay = await startTestRelay({ ...BASE_ENV, OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`, UPSTREAM_RETRIES: '2' });
    try {
      const started = performance.now();
      const res = await within(3000, 'answer', relay.call('/v1/models'));
      const error = await expectOpenAIError(res, 502);
      expect(error.type).toBe('upstream_error');
      expect(performance.now() - started).toBeLessThan(2000);
      const post = await within(3000, 'answer', proxyCall(relay, { method: 'POST', path: '/v1/embeddings', body: { input: 'x' } }));
      await expectOpenAIError(post, 502);
    } finally {
      await within(3000, 'relay shutdown', relay.shutdown());
    }
    await expectBackToBaseline(baseline);
  });

  test('the handle check itself notices a leaked socket', async () => {
    const baseline = handleCounts();
    const server = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const leaked = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => leaked.once('connect', r));
    expect(handleCounts().TCPSocketWrap).toBeGreaterThan(baseline.TCPSocketWrap);
    leaked.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await expectBackToBaseline(baseline);
  });
});

/**
 * A hostile upstream echoing the server key in every form an answer can take: the key must never reach the
 * caller (status line, headers, body) nor the relay's log lines.
 */
describe('the server key never reaches a caller or a log, whatever the upstream sends', () => {
  const ECHO = JSON.stringify({ error: { message: `Incorrect API key provided: ${OPENAI_KEY}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
  const AUTH = { authorization: `Bearer ${RELAY_KEY}` };

  /** The answer exactly as it comes off the wire (no decoding by the client), flattened for the key search. */
  async function wire(relay: TestRelay, path: string, body?: string) {
    const answer = await within(5000, 'answer', rawRequest(relay.url, { method: body === undefined ? 'GET' : 'POST', path, headers: { ...AUTH, ...(body ? JSON_HEADERS : {}) }, body }));
    const flat = `${answer.status}\n${answer.rawHeaders.join('\n')}\n\n${answer.body}`;
    return { ...answer, flat };
  }

  function expectNoKey(relay: TestRelay, flat: string) {
    expect(flat.includes(OPENAI_KEY), `the key in the answer: ${flat.slice(0, 300)}`).toBe(false);
    expect(relay.logs.join('').includes(OPENAI_KEY), 'the key in a log line').toBe(false);
  }

  const encoders: Array<[string, (b: Buffer) => Buffer]> = [
    ['gzip', (b) => zlib.gzipSync(b)],
    ['deflate', (b) => zlib.deflateSync(b)],
    ['br', (b) => zlib.brotliCompressSync(b)],
    ['identity', (b) => b],
    ['gzip, br', (b) => zlib.brotliCompressSync(zlib.gzipSync(b))],
  ];
  test.each(encoders)('an error body encoded as "%s" is decoded, redacted and sent decoded (status kept)', async (encoding, encode) => {
    await scenario(
      (_req, res) => {
        const body = encode(Buffer.from(ECHO));
        res.writeHead(400, { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': body.length, 'x-request-id': 'req_up_enc' });
        res.end(body);
      },
      {},
      async (relay) => {
        const answer = await wire(relay, '/v1/embeddings', '{"input":"x"}');
        expect(answer.status).toBe(400);
        expect(answer.headers['content-encoding']).toBeUndefined();
        expect(answer.headers['x-request-id']).toBe('req_up_enc');
        expect(JSON.parse(answer.body).error.message).toBe('Incorrect API key provided: [redacted].');
        expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
        expectNoKey(relay, answer.flat);
      },
    );
  });

  test('an error body in an encoding the relay cannot decode is withheld: a relay error in its place, status kept', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(429, { 'content-type': 'application/json', 'content-encoding': 'x-custom', 'x-request-id': 'req_up_custom', 'retry-after': '3' });
        res.end(ECHO);
      },
      {},
      async (relay) => {
        const answer = await wire(relay, '/v1/embeddings', '{"input":"x"}');
        expect(answer.status).toBe(429);
        expect(answer.headers['retry-after']).toBe('3');
        expect(answer.headers['x-request-id']).toBe('req_up_custom');
        expect(answer.headers['content-encoding']).toBeUndefined();
        expect(JSON.parse(answer.body).error).toMatchObject({ code: 'upstream_error_withheld', type: 'upstream_error' });
        expectNoKey(relay, answer.flat);
      },
    );
  });

  test('a gzip error body that decodes past 1 MB (a bomb) is cut: a relay error in its place', async () => {
    await scenario(
      (_req, res) => {
        const body = zlib.gzipSync(Buffer.concat([Buffer.from(`${OPENAI_KEY} `), Buffer.alloc(4 * 1024 * 1024, 0x20)]));
        res.writeHead(500, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length });
        res.end(body);
      },
      {},
      async (relay) => {
        const answer = await wire(relay, '/v1/embeddings', '{"input":"x"}');
        expect(answer.status).toBe(500);
        expect(JSON.parse(answer.body).error.code).toBe('upstream_error_too_large');
        expectNoKey(relay, answer.flat);
      },
    );
  });

  const large: Array<[string, boolean]> = [
    ['with a Content-Length', true],
    ['chunked', false],
  ];
  test.each(large)('an error body over 1 MB (%s) is cut, never streamed through: a relay error in its place', async (_name, withLength) => {
    await scenario(
      (_req, res) => {
        const body = Buffer.concat([Buffer.from(`{"error":{"message":"${OPENAI_KEY}`), Buffer.alloc(2 * 1024 * 1024, 0x61), Buffer.from(`${OPENAI_KEY}"}}`)]);
        res.writeHead(502, { 'content-type': 'application/json', ...(withLength ? { 'content-length': body.length } : {}) });
        if (withLength) return void res.end(body);
        for (let i = 0; i < body.length; i += 64 * 1024) res.write(body.subarray(i, i + 64 * 1024));
        res.end();
      },
      { UPSTREAM_RETRIES: '0' },
      async (relay) => {
        const answer = await wire(relay, '/v1/embeddings', '{"input":"x"}');
        expect(answer.status).toBe(502);
        expect(JSON.parse(answer.body).error.code).toBe('upstream_error_too_large');
        expectNoKey(relay, answer.flat);
      },
    );
  });

  test('an error status with an event-stream body is held and redacted like any error body', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(400, { 'content-type': 'text/event-stream' });
        res.write(`event: error\ndata: ${ECHO}\n\n`);
        res.end();
      },
      {},
      async (relay) => {
        const answer = await wire(relay, '/v1/responses', '{"model":"gpt-5","input":"hi","stream":true}');
        expect(answer.status).toBe(400);
        expect(answer.body).toBe(`event: error\ndata: ${ECHO.replace(OPENAI_KEY, '[redacted]')}\n\n`);
        expectNoKey(relay, answer.flat);
      },
    );
  });

  test('a streamed answer whose error event echoes the key, split across chunks, has it redacted as it passes', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: response.created\ndata: {"type":"response.created"}\n\n');
        const event = `event: error\ndata: ${ECHO}\n\n`;
        const cut = event.indexOf(OPENAI_KEY) + 12;
        setTimeout(() => res.write(event.slice(0, cut)), 20);
        setTimeout(() => res.end(event.slice(cut)), 60);
      },
      {},
      async (relay) => {
        const answer = await wire(relay, '/v1/responses', '{"model":"gpt-5","input":"hi","stream":true}');
        expect(answer.status).toBe(200);
        expect(answer.body).toBe(`event: response.created\ndata: {"type":"response.created"}\n\nevent: error\ndata: ${ECHO.replace(OPENAI_KEY, '[redacted]')}\n\n`);
        expectNoKey(relay, answer.flat);
      },
    );
  });

  test('headers echoing the key (x-request-id, openai-model) are redacted in the answer and in the request log line, on every door', async () => {
    await scenario(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': `req_${OPENAI_KEY}`, 'openai-model': `gpt-5 ${OPENAI_KEY}` });
        res.end('{"object":"list","data":[]}');
      },
      {},
      async (relay) => {
        const direct = await wire(relay, '/v1/models');
        expect(direct.status).toBe(200);
        expect(direct.headers['x-request-id']).toBe('req_[redacted]');
        expect(direct.headers['openai-model']).toBe('gpt-5 [redacted]');
        const viaProxy = await wire(relay, '/v1/proxy', JSON.stringify({ method: 'GET', path: '/v1/models' }));
        expect(viaProxy.status).toBe(200);
        const action = await wire(relay, '/v1/actions/vector_stores');
        await new Promise((r) => setTimeout(r, 50));
        const lines = relay.logs.filter((l) => l.includes('"msg":"request"'));
        expect(lines.length).toBeGreaterThanOrEqual(3);
        expect(lines.some((l) => l.includes('"upstreamId":"req_[redacted]"'))).toBe(true);
        for (const answer of [direct, viaProxy, action]) expectNoKey(relay, answer.flat);
      },
    );
  });

  test('the request records themselves carry the redacted id (checked with a logger that has no last guard)', async () => {
    const upstream = await startLocalUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': `req_${OPENAI_KEY}` });
      res.end('{"object":"list","data":[]}');
    });
    const config = loadConfig({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, HOST: '127.0.0.1', PORT: '1', OPENAI_BASE_URL: upstream.baseUrl, USAGE_DB_PATH: ':memory:', BLOB_DIR: mkdtempSync(join(tmpdir(), 'relay-blobs-')) });
    config.port = 0;
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const relay = await startRelay(config, createLogger('info', sink as unknown as pino.DestinationStream));
    try {
      for (const [path, body] of [['/v1/models'], ['/v1/proxy', JSON.stringify({ method: 'GET', path: '/v1/models' })], ['/v1/actions/vector_stores']] as const) {
        const answer = await within(5000, path, rawRequest(relay.url, { method: body ? 'POST' : 'GET', path, headers: { ...AUTH, ...(body ? JSON_HEADERS : {}) }, body }));
        expect(answer.status, answer.body).toBe(200);
      }
      await sleep(50);
      const records = lines.filter((l) => l.includes('"msg":"request"'));
      expect(records).toHaveLength(3);
      for (const line of records) expect(line).toContain('"upstreamId":"req_[redacted]"');
      expect(lines.join('').includes(OPENAI_KEY)).toBe(false);
    } finally {
      await relay.shutdown();
      await upstream.close();
    }
  });
});

describe('a bounded wait for an upstream connection', () => {
  test('UPSTREAM_MAX_SOCKETS=2, UPSTREAM_QUEUE_MAX=1: two streams open, one waits (and is counted), the next is refused at once with 503 naming the setting', async () => {
    const ADMIN = 'faults-admin-key-0123456789';
    const held: ServerResponse[] = [];
    await scenario(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: response.created\ndata: {"type":"response.created"}\n\n');
        held.push(res);
      },
      { UPSTREAM_MAX_SOCKETS: '2', UPSTREAM_QUEUE_MAX: '1', RELAY_ADMIN_KEY: ADMIN, UPSTREAM_TIMEOUT_STANDARD_MS: '10000' },
      async (relay, hits) => {
        const stream = () => relay.call('/v1/responses', { method: 'POST', headers: JSON_HEADERS, body: '{"model":"gpt-5","input":"hi","stream":true}' });
        const first = [await within(3000, 'stream 1', stream()), await within(3000, 'stream 2', stream())];
        for (const res of first) expect(res.status).toBe(200);
        const waiting = stream();
        await sleep(200);
        expect(hits).toHaveLength(2);
        const metrics = await (await relay.call('/metrics', { headers: { authorization: `Bearer ${ADMIN}` } })).text();
        expect(metrics).toMatch(/^relay_upstream_queued_requests 1$/m);

        const started = performance.now();
        const refused = await within(1000, 'the refusal', stream());
        const error = await expectOpenAIError(refused, 503);
        expect(performance.now() - started).toBeLessThan(1000);
        expect(error.code).toBe('upstream_connections_busy');
        expect(error.message).toContain('UPSTREAM_MAX_SOCKETS');
        expect(refused.headers.get('retry-after')).toBe('1');
        expect(hits).toHaveLength(2);

        // A stream ends: the waiting request gets its connection and its answer.
        held.shift()!.end();
        await readBody(first[0]);
        const served = await within(3000, 'the waiting stream', waiting);
        expect(served.status).toBe(200);
        for (const res of held.splice(0)) res.end();
        await Promise.all([readBody(first[1]), readBody(served)]);
        expect(hits).toHaveLength(3);
      },
    );
  });
});
