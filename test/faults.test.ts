import type { IncomingMessage, ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import { startLocalUpstream } from './helpers/local-upstream.ts';
import { startTestRelay, type TestRelay } from './helpers/relay.ts';
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
