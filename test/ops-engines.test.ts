import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { http, HttpResponse } from 'msw';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { startTestRelay, type TestRelay } from './helpers/relay.ts';
import { expectOpenAIError } from './helpers/assertions.ts';

/**
 * The operations features against real engines: the usage ledger in PostgreSQL (TEST_DATABASE_URL) and per-key
 * limits shared by two relays through Redis (TEST_REDIS_URL). Each suite skips, saying so, when its URL is unset
 * (CI sets both). Rows and counters are kept apart from anything else in those servers by key labels unique to
 * this run (`run<hex>…`), and removed afterwards.
 * The Redis-unreachable tests need no server at all and always run.
 */

const PG_URL = process.env.TEST_DATABASE_URL || undefined;
const REDIS_URL = process.env.TEST_REDIS_URL || undefined;
if (!PG_URL) {
  console.warn('ops-engines.test.ts: TEST_DATABASE_URL is not set — the PostgreSQL usage-ledger tests are SKIPPED (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres).');
}
if (!REDIS_URL) {
  console.warn('ops-engines.test.ts: TEST_REDIS_URL is not set — the shared Redis rate-limit tests are SKIPPED (e.g. TEST_REDIS_URL=redis://127.0.0.1:56379).');
}

const { server, upstream } = useMockOpenAI();

const RUN = `run${randomBytes(5).toString('hex')}`;
const newKey = () => `k${randomBytes(16).toString('hex')}`;
const ADMIN_KEY = `admin-${randomBytes(16).toString('hex')}`;

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function post(relay: TestRelay, path: string, key: string, body: unknown): Promise<Response> {
  return fetch(relay.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const get = (relay: TestRelay, path: string, key: string) => fetch(relay.url + path, { headers: { authorization: `Bearer ${key}` } });

async function drained(res: Response): Promise<number> {
  await res.arrayBuffer();
  return res.status;
}


/** Limits count per wall-clock minute: start a limit test well inside one, so its window cannot roll over mid-test. */
async function awayFromMinuteEdge(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 4_000) await sleep(left + 50);
}

const upstreamCount = (path: string) => upstream.filter((r) => r.url.pathname === path).length;

// ---- what the mock OpenAI answers ----

const EMBED_MODEL = 'text-embedding-3-small';
const RESP_MODEL = 'gpt-5-2025-08-07';
const CHAT_MODEL = 'gpt-4o-mini-2024-07-18';

const embeddingAnswer = (tokens: number) => ({
  object: 'list',
  data: [{ object: 'embedding', index: 0, embedding: [0.5, 0.25] }],
  model: EMBED_MODEL,
  usage: { prompt_tokens: tokens, total_tokens: tokens },
});
const responseObject = (status: string, usage: unknown) => ({ id: 'resp_1', object: 'response', status, model: RESP_MODEL, output: [], usage });
const sseEvent = (data: unknown) => `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
const chatChunk = (delta: unknown, usage: unknown = null) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  model: CHAT_MODEL,
  choices: delta === undefined ? [] : [{ index: 0, delta, finish_reason: null }],
  usage,
});

// =====================================================================================================

describe.skipIf(!PG_URL)('usage ledger on PostgreSQL (TEST_DATABASE_URL)', () => {
  const A = `${RUN}a`;
  const B = `${RUN}b`;
  const KEY_A = newKey();
  const KEY_B = newKey();
  let relay: TestRelay;
  let stopped = false;
  let testStart: number;

  beforeAll(async () => {
    testStart = Date.now();
    relay = await startTestRelay({ RELAY_KEY: `${A}:${KEY_A},${B}:${KEY_B}`, RELAY_ADMIN_KEY: ADMIN_KEY, DATABASE_URL: PG_URL! });
  });
  afterAll(async () => {
    if (!stopped) await relay.shutdown();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query('DELETE FROM usage_log WHERE key_label = ANY($1)', [[A, B]]);
    } finally {
      await client.end();
    }
  });

  // Costs by hand, rounded per request to the nearest micro-dollar (see ops.test.ts): 0.16 → 0, 212.5 → 213, 2.85 → 3, 76.25 → 76 µ$.
  const EXPECTED = [
    { keyLabel: A, operation: 'createEmbedding', model: EMBED_MODEL, requests: 1, errors: 0, inputTokens: 8, outputTokens: 0, totalTokens: 8, cost_usd: 0, unpriced_requests: 0 },
    { keyLabel: A, operation: 'createResponse', model: null, requests: 1, errors: 1, inputTokens: 0, outputTokens: 0, totalTokens: 0, cost_usd: 0, unpriced_requests: 0 },
    { keyLabel: A, operation: 'createResponse', model: RESP_MODEL, requests: 1, errors: 0, inputTokens: 10, outputTokens: 20, totalTokens: 30, cost_usd: 0.000213, unpriced_requests: 0 },
    { keyLabel: A, operation: 'getResponse', model: null, requests: 1, errors: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, cost_usd: 0, unpriced_requests: 0 },
    { keyLabel: B, operation: 'createChatCompletion', model: CHAT_MODEL, requests: 1, errors: 0, inputTokens: 3, outputTokens: 4, totalTokens: 7, cost_usd: 0.000003, unpriced_requests: 0 },
    { keyLabel: B, operation: 'createResponse', model: RESP_MODEL, requests: 1, errors: 0, inputTokens: 5, outputTokens: 7, totalTokens: 12, cost_usd: 0.000076, unpriced_requests: 0 },
  ];

  test('JSON and streamed answers, an upstream 400 and a GET → GET /v1/relay/usage totals; graceful shutdown loses no row', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let sseFinished = false;
    let postResponses = 0;
    server.use(
      http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(8))),
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        postResponses++;
        const body = (await request.json()) as { stream?: boolean; temperature?: number };
        if (body.temperature !== undefined) {
          return HttpResponse.json({ error: { message: 'Unsupported parameter.', type: 'invalid_request_error', param: 'temperature', code: null } }, { status: 400 });
        }
        if (!body.stream) return HttpResponse.json(responseObject('completed', { input_tokens: 10, output_tokens: 20, total_tokens: 30 }));
        const stream = new ReadableStream({
          async start(controller) {
            controller.enqueue(encoder.encode(sseEvent({ type: 'response.created', response: responseObject('in_progress', null) })));
            await gate;
            controller.enqueue(encoder.encode(sseEvent({ type: 'response.completed', response: responseObject('completed', { input_tokens: 5, output_tokens: 7, total_tokens: 12 }) })));
            sseFinished = true;
            controller.close();
          },
        });
        return new HttpResponse(stream, { headers: { 'content-type': 'text/event-stream' } });
      }),
      http.post(`${OPENAI_BASE}/v1/chat/completions`, () =>
        new HttpResponse(
          sseEvent(chatChunk({ content: 'Hi' })) + sseEvent(chatChunk(undefined, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })) + sseEvent('[DONE]'),
          { headers: { 'content-type': 'text/event-stream' } },
        ),
      ),
      http.get(`${OPENAI_BASE}/v1/responses/:id`, () => HttpResponse.json(responseObject('completed', { input_tokens: 900, output_tokens: 900, total_tokens: 1800 }))),
    );

    expect(await drained(await post(relay, '/v1/embeddings', KEY_A, { model: EMBED_MODEL, input: 'x' }))).toBe(200);
    expect(await drained(await post(relay, '/v1/responses', KEY_A, { model: 'gpt-5', input: 'x' }))).toBe(200);

    const streamed = await post(relay, '/v1/responses', KEY_B, { model: 'gpt-5', input: 'x', stream: true });
    expect(streamed.status).toBe(200);
    const reader = streamed.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('response.created');
    expect(sseFinished).toBe(false); // incremental: the first event before upstream finished
    release();
    while (!(await reader.read()).done);
    expect(sseFinished).toBe(true);

    const chat = await post(relay, '/v1/chat/completions', KEY_B, { model: 'gpt-4o-mini', messages: [], stream: true, stream_options: { include_usage: true } });
    expect(await chat.text()).toContain('[DONE]');
    expect(await drained(await post(relay, '/v1/responses', KEY_A, { model: 'gpt-5', input: 'x', temperature: 9 }))).toBe(400);
    expect(await drained(await get(relay, '/v1/responses/resp_1', KEY_A))).toBe(200);
    expect(postResponses).toBe(3);

    const aRes = await get(relay, `/v1/relay/usage?key=${A}`, ADMIN_KEY);
    expect(aRes.status).toBe(200);
    const aBody = (await aRes.json()) as { object: string; key: string; data: typeof EXPECTED };
    expect(aBody.object).toBe('relay.usage');
    expect(aBody.key).toBe(A);
    expect(aBody.data).toEqual(EXPECTED.filter((t) => t.keyLabel === A));

    const bBody = (await (await get(relay, `/v1/relay/usage?key=${B}`, ADMIN_KEY)).json()) as { data: typeof EXPECTED };
    expect(bBody.data).toEqual(EXPECTED.filter((t) => t.keyLabel === B));

    // unfiltered, windowed to this test: our two labels among whatever else the database holds
    const from = new Date(testStart - 1000).toISOString();
    const all = (await (await get(relay, `/v1/relay/usage?from=${from}`, ADMIN_KEY)).json()) as { data: typeof EXPECTED };
    expect(all.data.filter((t) => t.keyLabel === A || t.keyLabel === B)).toEqual(EXPECTED);
    // a window before this run holds none of its rows
    const before = (await (await get(relay, `/v1/relay/usage?key=${A}&to=${from}`, ADMIN_KEY)).json()) as { data: unknown[] };
    expect(before.data).toEqual([]);

    // a last burst, most likely still queued (the ledger flushes once a second) when shutdown starts
    server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(2))));
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => post(relay, '/v1/embeddings', i % 2 ? KEY_A : KEY_B, { model: EMBED_MODEL, input: 'x' })));
    for (const res of burst) expect(await drained(res)).toBe(200);
    await relay.shutdown();
    stopped = true;

    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ key_label: string; operation: string; status: number; model: string | null; n: string; tokens: string | null }>(
        `SELECT key_label, operation, status, model, COUNT(*) AS n, SUM(total_tokens) AS tokens
           FROM usage_log WHERE key_label = ANY($1)
          GROUP BY key_label, operation, status, model
          ORDER BY key_label, operation, status, model NULLS FIRST`,
        [[A, B]],
      );
      expect(rows.map((r) => [r.key_label, r.operation, r.status, r.model, Number(r.n), r.tokens === null ? null : Number(r.tokens)])).toEqual([
        [A, 'createEmbedding', 200, EMBED_MODEL, 4, 8 + 3 * 2],
        [A, 'createResponse', 200, RESP_MODEL, 1, 30],
        [A, 'createResponse', 400, null, 1, null],
        [A, 'getResponse', 200, null, 1, null],
        [B, 'createChatCompletion', 200, CHAT_MODEL, 1, 7],
        [B, 'createEmbedding', 200, EMBED_MODEL, 3, 6],
        [B, 'createResponse', 200, RESP_MODEL, 1, 12],
      ]);
      const { rows: timing } = await client.query<{ missing: string }>(
        `SELECT COUNT(*) AS missing FROM usage_log WHERE key_label = ANY($1) AND (upstream_ms IS NULL OR time < $2 OR time > now())`,
        [[A, B], new Date(testStart - 1000)],
      );
      expect(Number(timing[0]!.missing)).toBe(0);
    } finally {
      await client.end();
    }
  });
});

// =====================================================================================================

describe.skipIf(!REDIS_URL)('per-key limits shared through Redis (TEST_REDIS_URL)', () => {
  const labels: string[] = [];
  afterAll(async () => {
    const redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      for (const label of labels) {
        const keys = await redis.keys(`relay:rl:*:${label}:*`);
        if (keys.length) await redis.del(...keys);
      }
    } finally {
      redis.disconnect();
    }
  });

  async function twoRelays(label: string, key: string, limits: string): Promise<[TestRelay, TestRelay]> {
    labels.push(label);
    const env = { RELAY_KEY: `${label}:${key}`, RATE_LIMITS: `${label}=${limits}`, REDIS_URL: REDIS_URL!, USAGE_LEDGER: 'off' };
    return Promise.all([startTestRelay(env), startTestRelay(env)]);
  }

  test('requests/min: 2 via relay A + 1 via relay B are allowed, the 4th via either is 429 with Retry-After', async () => {
    const label = `${RUN}rpm`;
    const key = newKey();
    const [a, b] = await twoRelays(label, key, '3/min');
    try {
      server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(1))));
      await awayFromMinuteEdge();
      const body = { model: EMBED_MODEL, input: 'x' };
      expect(await drained(await post(a, '/v1/embeddings', key, body))).toBe(200);
      expect(await drained(await post(a, '/v1/embeddings', key, body))).toBe(200);
      expect(await drained(await post(b, '/v1/embeddings', key, body))).toBe(200);
      expect(upstreamCount('/v1/embeddings')).toBe(3);

      for (const relay of [b, a]) {
        const refused = await post(relay, '/v1/embeddings', key, body);
        const retryAfter = Number(refused.headers.get('retry-after'));
        await expectOpenAIError(refused, 429, { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: /3 requests per minute/ });
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
      expect(upstreamCount('/v1/embeddings')).toBe(3);
    } finally {
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
  });

  test('tokens/day: tokens used through relay A count on relay B', async () => {
    const label = `${RUN}tpd`;
    const key = newKey();
    const [a, b] = await twoRelays(label, key, '100/day');
    try {
      server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(150))));
      const body = { model: EMBED_MODEL, input: 'x' };
      expect(await drained(await post(a, '/v1/embeddings', key, body))).toBe(200);
      // the tokens are added in Redis as the answer ends; wait until they landed
      const redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      try {
        await vi.waitFor(
          async () => {
            const keys = await redis.keys(`relay:rl:tpd:${label}:*`);
            expect(keys).toHaveLength(1);
            expect(await redis.get(keys[0]!)).toBe('150');
          },
          { timeout: 2000, interval: 20 },
        );
      } finally {
        redis.disconnect();
      }
      await expectOpenAIError(await post(b, '/v1/embeddings', key, body), 429, { type: 'rate_limit_error', message: /100 tokens per day/ });
      expect(upstreamCount('/v1/embeddings')).toBe(1);
    } finally {
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
  });
});

// =====================================================================================================

describe('Redis unreachable (no server needed)', () => {
  const KEY = newKey();
  const LIMITED = { RELAY_KEY: `alice:${KEY}`, RATE_LIMITS: 'alice=3/min', USAGE_LEDGER: 'off' };
  let closedPort: number;
  let silent: Server;
  let silentPort: number;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    // accepts connections and never says a word: a hung Redis
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  async function timed(fn: () => Promise<Response>): Promise<{ res: Response; ms: number }> {
    const started = performance.now();
    const res = await fn();
    await res.clone().arrayBuffer();
    return { res, ms: performance.now() - started };
  }

  test('RATE_LIMIT_FAIL_MODE=open, closed port: requests are still served, fast (limits not enforced meanwhile), and the outage is logged', async () => {
    const relay = await startTestRelay({ ...LIMITED, REDIS_URL: `redis://127.0.0.1:${closedPort}`, RATE_LIMIT_FAIL_MODE: 'open' });
    try {
      server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(1))));
      for (let i = 0; i < 5; i++) {
        const { res, ms } = await timed(() => post(relay, '/v1/embeddings', KEY, { model: EMBED_MODEL, input: 'x' }));
        expect(res.status).toBe(200);
        expect(ms).toBeLessThan(2000);
      }
      expect(upstreamCount('/v1/embeddings')).toBe(5);
      const lines = relay.logs.join('');
      expect(lines).toContain('rate limit store unreachable');
      expect(lines).not.toContain(KEY);
    } finally {
      await relay.shutdown();
    }
  });

  test('RATE_LIMIT_FAIL_MODE=closed, closed port: 503 rate_limits_unavailable in OpenAI shape with Retry-After, nothing sent upstream', async () => {
    const relay = await startTestRelay({ ...LIMITED, REDIS_URL: `redis://127.0.0.1:${closedPort}`, RATE_LIMIT_FAIL_MODE: 'closed' });
    try {
      for (let i = 0; i < 2; i++) {
        const { res, ms } = await timed(() => post(relay, '/v1/embeddings', KEY, { model: EMBED_MODEL, input: 'x' }));
        expect(ms).toBeLessThan(2000);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        await expectOpenAIError(res, 503, { type: 'server_error', code: 'rate_limits_unavailable' });
      }
      expect(upstream).toHaveLength(0);
    } finally {
      await relay.shutdown();
    }
  });

  test('a Redis that accepts connections but never answers: fail open still serves within 2 s, fail closed refuses within 2 s', async () => {
    const open = await startTestRelay({ ...LIMITED, REDIS_URL: `redis://127.0.0.1:${silentPort}`, RATE_LIMIT_FAIL_MODE: 'open' });
    const closed = await startTestRelay({ ...LIMITED, REDIS_URL: `redis://127.0.0.1:${silentPort}`, RATE_LIMIT_FAIL_MODE: 'closed' });
    try {
      server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(1))));
      for (let i = 0; i < 2; i++) {
        const served = await timed(() => post(open, '/v1/embeddings', KEY, { model: EMBED_MODEL, input: 'x' }));
        expect(served.res.status).toBe(200);
        expect(served.ms).toBeLessThan(2000);
        const refused = await timed(() => post(closed, '/v1/embeddings', KEY, { model: EMBED_MODEL, input: 'x' }));
        expect(refused.ms).toBeLessThan(2000);
        await expectOpenAIError(refused.res, 503, { code: 'rate_limits_unavailable' });
      }
    } finally {
      await Promise.all([open.shutdown(), closed.shutdown()]);
    }
  });
});
