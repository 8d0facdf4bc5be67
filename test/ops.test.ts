import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { expectOpenAIError, sample } from './helpers/assertions.ts';

/**
 * Operations features end to end, through a real relay on loopback with MSW playing OpenAI: named keys in
 * log lines, the usage ledger (SQLite file) and its admin endpoint, per-key limits in memory, the per-key
 * in-flight cap, and Prometheus metrics (behind the admin key, or on METRICS_PORT).
 * Nothing here needs an external server; see ops-engines.test.ts for PostgreSQL and Redis.
 */

const { server, upstream } = useMockOpenAI();

const KEY_ALICE = 'alice-secret-0123456789abcdef';
const KEY_BOB = 'bob-secret-fedcba9876543210ab';
const KEY_THIRD = 'third-secret-00112233445566778899';
const ADMIN_KEY = 'admin-secret-aabbccddeeff00112233';
const WRONG_KEY = 'wrong-secret-99887766554433221100';
const SECRETS = [KEY_ALICE, KEY_BOB, KEY_THIRD, ADMIN_KEY, WRONG_KEY, OPENAI_KEY];

const NAMED_KEYS = `alice:${KEY_ALICE},bob:${KEY_BOB}`;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function post(relay: TestRelay, path: string, key: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(relay.url + path, {
    method: 'POST',
    headers: { ...bearer(key), 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

function get(relay: TestRelay, path: string, key?: string): Promise<Response> {
  return fetch(relay.url + path, { headers: key ? bearer(key) : {} });
}

interface LogLine {
  msg: string;
  reqId?: string;
  key?: string;
  op?: string;
  status?: number;
  ms?: number;
  upstreamMs?: number;
  tokens?: number;
  [field: string]: unknown;
}

const logLines = (relay: TestRelay): LogLine[] => relay.logs.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as LogLine);
const requestLines = (relay: TestRelay) => logLines(relay).filter((l) => l.msg === 'request');

/** Waits (briefly) for the request line of `reqId`: the record is written as the answer ends. */
async function lineFor(relay: TestRelay, reqId: string | null): Promise<LogLine> {
  expect(reqId).toMatch(/^req_relay_[0-9a-z]{12,}$/);
  return vi.waitFor(
    () => {
      const line = requestLines(relay).find((l) => l.reqId === reqId);
      if (!line) throw new Error(`no request line for ${reqId}`);
      return line;
    },
    { timeout: 2000, interval: 10 },
  );
}

/**
 * The request line of a forwarded request whose answer carries OpenAI's x-request-id (the relay's own id is then
 * not sent back): the first line written since `mark` (a count of request lines) that has `match`'s fields.
 */
async function lineSince(relay: TestRelay, mark: number, match: Partial<LogLine>): Promise<LogLine> {
  return vi.waitFor(
    () => {
      const line = requestLines(relay)
        .slice(mark)
        .find((l) => Object.entries(match).every(([k, v]) => l[k] === v));
      if (!line) throw new Error(`no request line like ${JSON.stringify(match)}`);
      return line;
    },
    { timeout: 2000, interval: 10 },
  );
}


async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Limits count per wall-clock minute: start a limit test well inside one, so its window cannot roll over mid-test. */
async function awayFromMinuteEdge(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 4_000) await sleep(left + 50);
}


// ---- what the mock OpenAI answers ----

const EMBED_MODEL = 'text-embedding-3-small';
const RESP_MODEL = 'gpt-5-2025-08-07';
const CHAT_MODEL = 'gpt-4o-mini-2024-07-18';

const embeddingAnswer = (promptTokens = 8) => ({
  object: 'list',
  data: [{ object: 'embedding', index: 0, embedding: [0.1, -0.2, 0.3] }],
  model: EMBED_MODEL,
  usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
});

const responseObject = (status: string, usage: unknown) => ({
  id: 'resp_1',
  object: 'response',
  created_at: 1741476542,
  status,
  model: RESP_MODEL,
  output: status === 'completed' ? [{ type: 'message', id: 'msg_1', role: 'assistant', content: [{ type: 'output_text', text: 'Hi', annotations: [] }] }] : [],
  usage,
});

const sseEvent = (data: unknown, event?: string) => `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

const chatChunk = (delta: unknown, finish: string | null = null, usage: unknown = null) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1694268190,
  model: CHAT_MODEL,
  choices: delta === undefined ? [] : [{ index: 0, delta, finish_reason: finish }],
  usage,
});

const embeddingsHandler = (promptTokens = 8, requestId = 'req_up_embed') =>
  http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(promptTokens), { headers: { 'x-request-id': requestId } }));

const upstreamCount = (path: string) => upstream.filter((r) => r.url.pathname === path).length;

// =====================================================================================================

describe('named keys and request log lines', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ RELAY_KEY: `${NAMED_KEYS},${KEY_THIRD}`, RELAY_ADMIN_KEY: ADMIN_KEY });
  });
  afterAll(() => relay.shutdown());

  test('each request is logged once with request id, key label, operation, status, ms and upstreamMs — never key material', async () => {
    // No x-request-id from upstream: the relay then sends its own, the one its log line carries.
    server.use(
      http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(embeddingAnswer(8))),
      http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })),
    );

    const a = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'hello' });
    expect(a.status).toBe(200);
    await a.arrayBuffer();
    // X-Relay-Key names the caller just as well
    const b = await fetch(`${relay.url}/v1/models`, { headers: { 'x-relay-key': KEY_BOB } });
    expect(b.status).toBe(200);
    await b.arrayBuffer();
    const c = await get(relay, '/v1/models', KEY_THIRD);
    expect(c.status).toBe(200);
    await c.arrayBuffer();

    const lineA = await lineFor(relay, a.headers.get('x-request-id'));
    expect(lineA).toMatchObject({ key: 'alice', op: 'createEmbedding', status: 200, tokens: 8 });
    expect(lineA.reqId).toMatch(/^req_/);
    expect(lineA.ms).toEqual(expect.any(Number));
    expect(lineA.upstreamMs).toEqual(expect.any(Number));
    expect(lineA.upstreamMs!).toBeLessThanOrEqual(lineA.ms! + 1);

    const lineB = await lineFor(relay, b.headers.get('x-request-id'));
    expect(lineB).toMatchObject({ key: 'bob', op: 'listModels', status: 200 });
    expect(lineB.upstreamMs).toEqual(expect.any(Number));

    // an entry without a label is named by its position in RELAY_KEY
    const lineC = await lineFor(relay, c.headers.get('x-request-id'));
    expect(lineC).toMatchObject({ key: 'key-3', op: 'listModels', status: 200 });

    for (const id of [a, b, c].map((r) => r.headers.get('x-request-id'))) {
      expect(requestLines(relay).filter((l) => l.reqId === id)).toHaveLength(1);
    }
  });

  test('401s are logged with key `anonymous`, without upstreamMs, and reach no upstream', async () => {
    const missing = await post(relay, '/v1/embeddings', '', { model: EMBED_MODEL, input: 'x' }, { authorization: '' });
    await expectOpenAIError(missing, 401, { type: 'authentication_error', code: 'missing_relay_key' });
    const wrong = await post(relay, '/v1/embeddings', WRONG_KEY, { model: EMBED_MODEL, input: 'x' });
    await expectOpenAIError(wrong, 401, { type: 'authentication_error', code: 'invalid_relay_key' });
    // an OpenAI key sent to the relay is refused like any other wrong key
    const openaiKey = await get(relay, '/v1/models', OPENAI_KEY);
    await expectOpenAIError(openaiKey, 401, { code: 'invalid_relay_key' });
    expect(upstream).toHaveLength(0);

    for (const res of [missing, wrong, openaiKey]) {
      const line = await lineFor(relay, res.headers.get('x-request-id'));
      expect(line).toMatchObject({ key: 'anonymous', status: 401 });
      expect(line.ms).toEqual(expect.any(Number));
      expect(line.upstreamMs).toBeUndefined();
    }
  });

  test('no log line carries a key, a bearer token or an authorization header', async () => {
    // one more of each kind, admin included, so every code path has written its line
    server.use(embeddingsHandler());
    await (await post(relay, '/v1/embeddings', KEY_BOB, { model: EMBED_MODEL, input: 'y' })).arrayBuffer();
    await (await get(relay, '/v1/relay/usage', ADMIN_KEY)).arrayBuffer();
    await (await get(relay, '/metrics', ADMIN_KEY)).arrayBuffer();
    await (await get(relay, '/metrics', WRONG_KEY)).arrayBuffer();
    await sleep(20);

    const all = relay.logs.join('');
    expect(requestLines(relay).length).toBeGreaterThanOrEqual(9);
    for (const secret of SECRETS) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/bearer/i);
    expect(all).not.toMatch(/"authorization"/i);
    expect(all).not.toMatch(/x-relay-key/i);
    // labels are all a line ever says about who called
    const keys = new Set(requestLines(relay).map((l) => l.key));
    for (const k of keys) expect(['alice', 'bob', 'key-3', 'anonymous', 'admin']).toContain(k);
  });
});

// =====================================================================================================

describe('usage ledger end to end (SQLite file) and GET /v1/relay/usage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ops-ledger-'));
  const dbPath = join(dir, 'usage.sqlite');
  let relay: TestRelay;
  let testStart: number;
  let tMid: number;
  let relayStopped = false;
  beforeAll(async () => {
    testStart = Date.now();
    relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RELAY_ADMIN_KEY: ADMIN_KEY, USAGE_DB_PATH: dbPath });
  });
  afterAll(async () => {
    if (!relayStopped) await relay.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const usage = (query = '', key = ADMIN_KEY) => get(relay, `/v1/relay/usage${query}`, key);
  const withoutAdmin = <T extends { keyLabel: string }>(rows: T[]) => rows.filter((r) => r.keyLabel !== 'admin');

  // Costs by hand (USD per 1M tokens = µ$ per token), each request rounded to the nearest micro-dollar:
  // text-embedding-3-small 8 × 0.02 = 0.16 µ$ → 0; gpt-5 10 × 1.25 + 20 × 10 = 212.5 µ$ → 213 (half up);
  // gpt-4o-mini 3 × 0.15 + 4 × 0.6 = 2.85 µ$ → 3; gpt-5 5 × 1.25 + 7 × 10 = 76.25 µ$ → 76.
  const BATCH1 = [
    { keyLabel: 'alice', operation: 'createEmbedding', model: EMBED_MODEL, requests: 1, errors: 0, inputTokens: 8, outputTokens: 0, totalTokens: 8, cost_usd: 0, unpriced_requests: 0 },
    { keyLabel: 'alice', operation: 'createResponse', model: RESP_MODEL, requests: 1, errors: 0, inputTokens: 10, outputTokens: 20, totalTokens: 30, cost_usd: 0.000213, unpriced_requests: 0 },
  ];
  const BATCH2 = [
    // the upstream 400: counted as a request and an error, no model, no tokens
    { keyLabel: 'alice', operation: 'createResponse', model: null, requests: 1, errors: 1, inputTokens: 0, outputTokens: 0, totalTokens: 0, cost_usd: 0, unpriced_requests: 0 },
    // a GET of a stored response repeats its usage: it must not count again
    { keyLabel: 'alice', operation: 'getResponse', model: null, requests: 1, errors: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, cost_usd: 0, unpriced_requests: 0 },
    { keyLabel: 'bob', operation: 'createChatCompletion', model: CHAT_MODEL, requests: 1, errors: 0, inputTokens: 3, outputTokens: 4, totalTokens: 7, cost_usd: 0.000003, unpriced_requests: 0 },
    { keyLabel: 'bob', operation: 'createResponse', model: RESP_MODEL, requests: 1, errors: 0, inputTokens: 5, outputTokens: 7, totalTokens: 12, cost_usd: 0.000076, unpriced_requests: 0 },
  ];
  const sortTotals = <T extends { keyLabel: string; operation: string; model: string | null }>(rows: T[]) =>
    [...rows].sort((a, b) =>
      `${a.keyLabel}\u0000${a.operation}\u0000${a.model ?? ''}`.localeCompare(`${b.keyLabel}\u0000${b.operation}\u0000${b.model ?? ''}`),
    );

  test('JSON embeddings and JSON responses: usage read from the answer', async () => {
    server.use(
      embeddingsHandler(8, 'req_up_embed'),
      http.post(`${OPENAI_BASE}/v1/responses`, () =>
        HttpResponse.json(responseObject('completed', { input_tokens: 10, output_tokens: 20, total_tokens: 30 }), { headers: { 'x-request-id': 'req_up_resp' } }),
      ),
    );
    const e = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'hello' });
    expect(e.status).toBe(200);
    expect(await e.json()).toEqual(embeddingAnswer(8));
    const mark = requestLines(relay).length;
    const r = await post(relay, '/v1/responses', KEY_ALICE, { model: 'gpt-5', input: 'hi' });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { usage: unknown }).usage).toEqual({ input_tokens: 10, output_tokens: 20, total_tokens: 30 });
    expect(r.headers.get('x-request-id')).toBe('req_up_resp');
    expect(await lineSince(relay, mark, { key: 'alice', op: 'createResponse' })).toMatchObject({ status: 200, tokens: 30 });
    await sleep(30);
    tMid = Date.now();
    await sleep(30);
  });

  test('streamed responses: usage from response.completed, and the stream still arrives incrementally', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let upstreamFinished = false;
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () => {
        const stream = new ReadableStream({
          async start(controller) {
            controller.enqueue(encoder.encode(sseEvent({ type: 'response.created', sequence_number: 0, response: responseObject('in_progress', null) }, 'response.created')));
            await gate;
            controller.enqueue(
              encoder.encode(
                sseEvent({ type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hi' }, 'response.output_text.delta'),
              ),
            );
            controller.enqueue(
              encoder.encode(
                sseEvent(
                  { type: 'response.completed', sequence_number: 2, response: responseObject('completed', { input_tokens: 5, output_tokens: 7, total_tokens: 12 }) },
                  'response.completed',
                ),
              ),
            );
            upstreamFinished = true;
            controller.close();
          },
        });
        return new HttpResponse(stream, { headers: { 'content-type': 'text/event-stream', 'x-request-id': 'req_up_sse' } });
      }),
    );
    const mark = requestLines(relay).length;
    const res = await post(relay, '/v1/responses', KEY_BOB, { model: 'gpt-5', input: 'hi', stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const first = decoder.decode((await reader.read()).value);
    expect(first).toContain('response.created');
    expect(upstreamFinished).toBe(false); // the tap holds nothing back
    release();
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
    }
    expect(rest).toContain('"total_tokens":12');
    expect(upstreamFinished).toBe(true);
    expect(await lineSince(relay, mark, { key: 'bob', op: 'createResponse' })).toMatchObject({ status: 200, tokens: 12 });
  });

  test('streamed chat completion: usage from the final usage chunk', async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/chat/completions`, () => {
        const body =
          sseEvent(chatChunk({ role: 'assistant', content: '' })) +
          sseEvent(chatChunk({ content: 'Hel' })) +
          sseEvent(chatChunk({ content: 'lo' })) +
          sseEvent(chatChunk({}, 'stop')) +
          sseEvent(chatChunk(undefined, null, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })) +
          sseEvent('[DONE]');
        return new HttpResponse(body, { headers: { 'content-type': 'text/event-stream', 'x-request-id': 'req_up_chat' } });
      }),
    );
    const mark = requestLines(relay).length;
    const res = await post(relay, '/v1/chat/completions', KEY_BOB, {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('data: [DONE]');
    expect(await lineSince(relay, mark, { key: 'bob', op: 'createChatCompletion' })).toMatchObject({ status: 200, tokens: 7 });
  });

  test('an upstream 400 is a row with status 400 and no tokens; a GET counts no usage', async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () =>
        HttpResponse.json(
          { error: { message: "Unsupported parameter: 'temperature'.", type: 'invalid_request_error', param: 'temperature', code: 'unsupported_parameter' } },
          { status: 400, headers: { 'x-request-id': 'req_up_400' } },
        ),
      ),
      http.get(`${OPENAI_BASE}/v1/responses/:id`, () =>
        HttpResponse.json(responseObject('completed', { input_tokens: 1000, output_tokens: 1000, total_tokens: 2000 }), { headers: { 'x-request-id': 'req_up_get' } }),
      ),
    );
    let mark = requestLines(relay).length;
    const bad = await post(relay, '/v1/responses', KEY_ALICE, { model: 'gpt-5', input: 'hi', temperature: 9 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('unsupported_parameter');
    const line400 = await lineSince(relay, mark, { key: 'alice', op: 'createResponse' });
    expect(line400).toMatchObject({ key: 'alice', op: 'createResponse', status: 400 });
    expect(line400.tokens).toBeUndefined();

    mark = requestLines(relay).length;
    const stored = await get(relay, '/v1/responses/resp_1', KEY_ALICE);
    expect(stored.status).toBe(200);
    expect(((await stored.json()) as { usage: { total_tokens: number } }).usage.total_tokens).toBe(2000);
    const lineGet = await lineSince(relay, mark, { key: 'alice', op: 'getResponse' });
    expect(lineGet).toMatchObject({ key: 'alice', op: 'getResponse', status: 200 });
    expect(lineGet.tokens).toBeUndefined();
  });

  test('GET /v1/relay/usage with the admin key: totals by key label, operation and model', async () => {
    const res = await usage();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { object: string; from: string; to: string; key?: string; data: typeof BATCH1 };
    expect(body.object).toBe('relay.usage');
    expect(body.key).toBeUndefined();
    // default window: the last 24 hours
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(86_400_000);
    expect(Math.abs(Date.parse(body.to) - Date.now())).toBeLessThan(5_000);
    expect(withoutAdmin(body.data)).toEqual(sortTotals([...BATCH1, ...BATCH2]));
    // sums across rows of one group
    const bobTokens = body.data.filter((d) => d.keyLabel === 'bob').reduce((n, d) => n + d.totalTokens, 0);
    expect(bobTokens).toBe(19);
  });

  test('from / to window the rows ([from, to), ISO 8601 or Unix seconds); key filters by label', async () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const early = (await (await usage(`?from=${iso(testStart - 1000)}&to=${iso(tMid)}`)).json()) as { data: typeof BATCH1 };
    expect(early.data).toEqual(sortTotals(BATCH1));

    const late = (await (await usage(`?from=${iso(tMid)}`)).json()) as { data: typeof BATCH1 };
    expect(withoutAdmin(late.data)).toEqual(sortTotals(BATCH2));

    const unix = (await (await usage(`?from=${Math.floor(testStart / 1000) - 1}&to=${Math.ceil(Date.now() / 1000) + 1}`)).json()) as {
      data: typeof BATCH1;
    };
    expect(withoutAdmin(unix.data)).toEqual(sortTotals([...BATCH1, ...BATCH2]));

    const future = (await (await usage(`?from=${iso(Date.now() + 3_600_000)}&to=${iso(Date.now() + 7_200_000)}`)).json()) as { data: unknown[] };
    expect(future.data).toEqual([]);

    const bobRes = await usage('?key=bob');
    expect(bobRes.status).toBe(200);
    const bob = (await bobRes.json()) as { key: string; data: typeof BATCH1 };
    expect(bob.key).toBe('bob');
    expect(bob.data).toEqual(sortTotals(BATCH2.filter((t) => t.keyLabel === 'bob')));

    const aliceLate = (await (await usage(`?key=alice&from=${iso(tMid)}`)).json()) as { data: typeof BATCH1 };
    expect(aliceLate.data).toEqual(sortTotals(BATCH2.filter((t) => t.keyLabel === 'alice')));

    const nobody = (await (await usage('?key=nobody')).json()) as { data: unknown[] };
    expect(nobody.data).toEqual([]);
  });

  test('group_by=day: UTC day buckets over the last 30 days by default; format=csv: the same groups as CSV', async () => {
    const res = await usage('?group_by=day,key');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { from: string; to: string; group_by: string[]; data: { day: string; keyLabel: string; requests: number; cost_usd: number }[] };
    expect(body.group_by).toEqual(['day', 'key']);
    const to = Date.parse(body.to);
    expect(Date.parse(body.from)).toBe((Math.ceil(to / 86_400_000) - 30) * 86_400_000);
    const today = new Date(testStart).toISOString().slice(0, 10);
    const mine = withoutAdmin(body.data).filter((d) => d.day === today || d.day === new Date().toISOString().slice(0, 10));
    expect(mine.map((d) => d.keyLabel).sort()).toEqual(['alice', 'bob']);
    expect(mine.reduce((n, d) => n + d.requests, 0)).toBe(6);
    expect(mine.find((d) => d.keyLabel === 'bob')).toMatchObject({ cost_usd: 0.000079 });
    expect(mine[0]).not.toHaveProperty('operation');

    const csv = await usage('?format=csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="relay-usage-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = (await csv.text()).split('\r\n');
    expect(lines[0]).toBe('key,operation,model,requests,errors,input_tokens,output_tokens,total_tokens,cost_usd,unpriced_requests');
    expect(lines).toContain(`alice,createResponse,${RESP_MODEL},1,0,10,20,30,0.000213,0`);
    expect(lines).toContain(`bob,createChatCompletion,${CHAT_MODEL},1,0,3,4,7,0.000003,0`);
    expect(lines.at(-1)).toBe('');

    for (const [query, code, param] of [['?group_by=week', 'invalid_group_by', 'group_by'], ['?format=xml', 'invalid_format', 'format']]) {
      const refused = await usage(query);
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', code, param });
    }
  });

  test('GET /v1/relay/prices: the table in force, with its source and date; admin only', async () => {
    const res = await get(relay, '/v1/relay/prices', ADMIN_KEY);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; from: string; source: string; retrieved: string; models: Record<string, { input: number }> };
    expect(body).toMatchObject({ object: 'relay.prices', from: 'built-in', currency: 'USD', per_tokens: 1_000_000 });
    expect(body.source).toMatch(/^https:\/\/developers\.openai\.com\//);
    expect(body.models['gpt-5']).toMatchObject({ input: 1.25, cached_input: 0.125, output: 10 });
    await expectOpenAIError(await get(relay, '/v1/relay/prices', KEY_ALICE), 401, { type: 'authentication_error' });
  });

  test('bad windows are 400 invalid_time in OpenAI shape', async () => {
    await expectOpenAIError(await usage('?from=not-a-time'), 400, { type: 'invalid_request_error', code: 'invalid_time' });
    const now = new Date().toISOString();
    await expectOpenAIError(await usage(`?from=${now}&to=${now}`), 400, { code: 'invalid_time' });
  });

  test('without the admin key → 401; a relay key is not an admin key → 401', async () => {
    await expectOpenAIError(await usage('', ''), 401, { type: 'authentication_error' });
    await expectOpenAIError(await usage('', KEY_ALICE), 401, { type: 'authentication_error', code: 'invalid_relay_key' });
    await expectOpenAIError(await usage('?key=alice', KEY_BOB), 401, { type: 'authentication_error' });
    await expectOpenAIError(await usage('', OPENAI_KEY), 401, { type: 'authentication_error' });
  });

  test('graceful shutdown loses no row: every request is in the SQLite file afterwards', async () => {
    server.use(embeddingsHandler(2, 'req_up_last'));
    // a last burst, still queued in memory (the ledger flushes once a second) when shutdown starts
    const burst = await Promise.all(Array.from({ length: 5 }, (_, i) => post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: `n${i}` })));
    for (const res of burst) {
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    await relay.shutdown();
    relayStopped = true;

    const db = new DatabaseSync(dbPath, { readOnly: true });
    try {
      const rows = db
        .prepare(
          `SELECT key_label, operation, status, model, input_tokens, output_tokens, total_tokens, upstream_ms, upstream_request_id, latency_ms, time
             FROM usage_log WHERE key_label IN ('alice', 'bob') ORDER BY id`,
        )
        .all() as Record<string, string | number | null>[];
      const pick = (r: Record<string, unknown>) => [r.key_label, r.operation, r.status, r.model, r.input_tokens, r.output_tokens, r.total_tokens, r.upstream_request_id];
      expect(rows.map(pick)).toEqual([
        ['alice', 'createEmbedding', 200, EMBED_MODEL, 8, null, 8, 'req_up_embed'],
        ['alice', 'createResponse', 200, RESP_MODEL, 10, 20, 30, 'req_up_resp'],
        ['bob', 'createResponse', 200, RESP_MODEL, 5, 7, 12, 'req_up_sse'],
        ['bob', 'createChatCompletion', 200, CHAT_MODEL, 3, 4, 7, 'req_up_chat'],
        ['alice', 'createResponse', 400, null, null, null, null, 'req_up_400'],
        ['alice', 'getResponse', 200, null, null, null, null, 'req_up_get'],
        ...Array.from({ length: 5 }, () => ['alice', 'createEmbedding', 200, EMBED_MODEL, 2, null, 2, 'req_up_last']),
      ]);
      for (const r of rows) {
        expect(r.upstream_ms).toEqual(expect.any(Number));
        expect(r.latency_ms).toEqual(expect.any(Number));
        expect(Number(r.time)).toBeGreaterThanOrEqual(testStart);
        expect(Number(r.time)).toBeLessThanOrEqual(Date.now());
      }
      // 401s are not usage: no anonymous rows
      expect(db.prepare(`SELECT COUNT(*) AS n FROM usage_log WHERE key_label = 'anonymous'`).get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
    // nothing secret reached the database files
    for (const file of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, file)).toString('latin1');
      for (const secret of SECRETS) expect(bytes).not.toContain(secret);
    }
  });
});

describe('admin endpoints without RELAY_ADMIN_KEY', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS });
  });
  afterAll(() => relay.shutdown());

  test('GET /v1/relay/usage and GET /metrics are 403, with or without a key', async () => {
    for (const path of ['/v1/relay/usage', '/v1/relay/prices', '/metrics']) {
      for (const key of [undefined, KEY_ALICE, ADMIN_KEY]) {
        const res = await get(relay, path, key);
        const err = await expectOpenAIError(res, 403, { type: 'permission_error', code: 'admin_disabled' });
        expect(err.message).toMatch(/RELAY_ADMIN_KEY/);
      }
    }
  });
});

// =====================================================================================================

describe('per-key limits in memory', () => {
  test('alice=3/min: the 4th request in the minute is 429 rate_limit_error with Retry-After and never reaches upstream; bob is unaffected', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RATE_LIMITS: 'alice=3/min' });
    try {
      server.use(embeddingsHandler(1));
      await awayFromMinuteEdge();
      for (let i = 0; i < 3; i++) {
        const res = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: `a${i}` });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      expect(upstreamCount('/v1/embeddings')).toBe(3);

      const refused = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'a4' });
      const retryAfter = Number(refused.headers.get('retry-after'));
      const err = await expectOpenAIError(refused, 429, { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: /3 requests per minute/ });
      expect(err.message).not.toContain(KEY_ALICE);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(upstreamCount('/v1/embeddings')).toBe(3); // the refused one went nowhere
      expect(await lineFor(relay, refused.headers.get('x-request-id'))).toMatchObject({ key: 'alice', status: 429 });

      // other endpoints count against the same per-key budget
      const other = await get(relay, '/v1/models', KEY_ALICE);
      await expectOpenAIError(other, 429, { type: 'rate_limit_error' });

      for (let i = 0; i < 5; i++) {
        const res = await post(relay, '/v1/embeddings', KEY_BOB, { model: EMBED_MODEL, input: `b${i}` });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      expect(upstreamCount('/v1/embeddings')).toBe(8);
    } finally {
      await relay.shutdown();
    }
  });

  test('`*=2/min` gives every other key its own budget of 2, not one shared budget; a label with its own entry keeps it', async () => {
    const relay = await startTestRelay({ RELAY_KEY: `${NAMED_KEYS},${KEY_THIRD}`, RATE_LIMITS: 'alice=4/min,*=2/min', USAGE_LEDGER: 'off' });
    try {
      server.use(embeddingsHandler(1));
      await awayFromMinuteEdge();
      const statuses = async (key: string, n: number) => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) {
          const res = await post(relay, '/v1/embeddings', key, { model: EMBED_MODEL, input: 'x' });
          out.push(res.status);
          await res.arrayBuffer();
        }
        return out;
      };
      expect(await statuses(KEY_BOB, 3)).toEqual([200, 200, 429]);
      expect(await statuses(KEY_THIRD, 3)).toEqual([200, 200, 429]);
      expect(await statuses(KEY_ALICE, 5)).toEqual([200, 200, 200, 200, 429]);
    } finally {
      await relay.shutdown();
    }
  });

  test('a request refused by a limit is logged, counted and ledgered under its operation (not as `unmatched`)', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RELAY_ADMIN_KEY: ADMIN_KEY, RATE_LIMITS: 'alice=1/min' });
    try {
      server.use(embeddingsHandler(1));
      await awayFromMinuteEdge();
      await (await post(relay, '/v1/embeddings', KEY_BOB, { model: EMBED_MODEL, input: 'x' })).arrayBuffer();
      const ok = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'x' });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
      const refused = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'x' });
      expect(refused.status).toBe(429);
      await refused.arrayBuffer();

      expect(await lineFor(relay, refused.headers.get('x-request-id'))).toMatchObject({ key: 'alice', op: 'createEmbedding', status: 429 });
      const metrics = await (await get(relay, '/metrics', ADMIN_KEY)).text();
      expect(sample(metrics, 'relay_requests_total', { operation: 'createEmbedding', status: '429', key: 'alice' })).toBe(1);
      const usage = (await (await get(relay, '/v1/relay/usage?key=alice', ADMIN_KEY)).json()) as { data: { operation: string; model: string | null; requests: number; errors: number }[] };
      expect(usage.data).toEqual([
        expect.objectContaining({ operation: 'createEmbedding', model: null, requests: 1, errors: 1 }),
        expect.objectContaining({ operation: 'createEmbedding', model: EMBED_MODEL, requests: 1, errors: 0 }),
      ]);
    } finally {
      await relay.shutdown();
    }
  });

  test('alice=100/day: an answer using 150 tokens exhausts the day; the next request is 429 naming tokens per day; bob unaffected', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RATE_LIMITS: 'alice=100/day', USAGE_LEDGER: 'off' });
    try {
      server.use(
        http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json(responseObject('completed', { input_tokens: 50, output_tokens: 100, total_tokens: 150 }))),
      );
      const first = await post(relay, '/v1/responses', KEY_ALICE, { model: 'gpt-5', input: 'hi' });
      expect(first.status).toBe(200);
      await first.arrayBuffer();
      await lineFor(relay, first.headers.get('x-request-id'));

      const next = await post(relay, '/v1/responses', KEY_ALICE, { model: 'gpt-5', input: 'again' });
      const retryAfter = Number(next.headers.get('retry-after'));
      await expectOpenAIError(next, 429, { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: /100 tokens per day/ });
      // until the next UTC midnight
      const toMidnight = Math.ceil((86_400_000 - (Date.now() % 86_400_000)) / 1000);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(Math.abs(retryAfter - toMidnight)).toBeLessThanOrEqual(2);
      expect(upstreamCount('/v1/responses')).toBe(1);

      const bob = await post(relay, '/v1/responses', KEY_BOB, { model: 'gpt-5', input: 'hi' });
      expect(bob.status).toBe(200);
      await bob.arrayBuffer();
    } finally {
      await relay.shutdown();
    }
  });

  test('tokens from a streamed answer count against the day too', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RATE_LIMITS: 'alice=100/day', USAGE_LEDGER: 'off' });
    try {
      server.use(
        http.post(`${OPENAI_BASE}/v1/chat/completions`, () =>
          new HttpResponse(
            sseEvent(chatChunk({ content: 'x' })) + sseEvent(chatChunk(undefined, null, { prompt_tokens: 60, completion_tokens: 60, total_tokens: 120 })) + sseEvent('[DONE]'),
            { headers: { 'content-type': 'text/event-stream' } },
          ),
        ),
      );
      const body = { model: 'gpt-4o-mini', messages: [], stream: true, stream_options: { include_usage: true } };
      const first = await post(relay, '/v1/chat/completions', KEY_ALICE, body);
      expect(first.status).toBe(200);
      await first.text();
      await lineFor(relay, first.headers.get('x-request-id'));
      await expectOpenAIError(await post(relay, '/v1/chat/completions', KEY_ALICE, body), 429, { message: /tokens per day/ });
    } finally {
      await relay.shutdown();
    }
  });
});

// =====================================================================================================

describe('MAX_IN_FLIGHT_PER_KEY', () => {
  test('=1 with a slow upstream: a concurrent second request of the same key is 429 too_many_concurrent_requests; another key is served', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, MAX_IN_FLIGHT_PER_KEY: '1' });
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let arrived!: () => void;
      const firstArrived = new Promise<void>((r) => (arrived = r));
      let calls = 0;
      server.use(
        http.post(`${OPENAI_BASE}/v1/embeddings`, async () => {
          if (calls++ === 0) {
            arrived();
            await gate;
          }
          return HttpResponse.json(embeddingAnswer(1));
        }),
      );
      const slow = post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'slow' });
      await firstArrived;

      const second = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'second' });
      expect(second.headers.get('retry-after')).toBe('1');
      await expectOpenAIError(second, 429, { type: 'rate_limit_error', code: 'too_many_concurrent_requests' });
      expect(calls).toBe(1);

      const bob = await post(relay, '/v1/embeddings', KEY_BOB, { model: EMBED_MODEL, input: 'bob' });
      expect(bob.status).toBe(200);
      await bob.arrayBuffer();

      release();
      const first = await slow;
      expect(first.status).toBe(200);
      await first.arrayBuffer();

      // the slot is free again once the first finished
      const again = await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'again' });
      expect(again.status).toBe(200);
      await again.arrayBuffer();
    } finally {
      await relay.shutdown();
    }
  });

  test('a streamed answer holds its slot until the stream ends', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, MAX_IN_FLIGHT_PER_KEY: '1' });
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      server.use(
        http.post(`${OPENAI_BASE}/v1/responses`, () => {
          const stream = new ReadableStream({
            async start(controller) {
              controller.enqueue(encoder.encode(sseEvent({ type: 'response.created', response: responseObject('in_progress', null) })));
              await gate;
              controller.enqueue(encoder.encode(sseEvent({ type: 'response.completed', response: responseObject('completed', { input_tokens: 1, output_tokens: 1, total_tokens: 2 }) })));
              controller.close();
            },
          });
          return new HttpResponse(stream, { headers: { 'content-type': 'text/event-stream' } });
        }),
      );
      const streaming = await post(relay, '/v1/responses', KEY_ALICE, { model: 'gpt-5', input: 'x', stream: true });
      expect(streaming.status).toBe(200);
      const reader = streaming.body!.getReader();
      await reader.read();
      await expectOpenAIError(await post(relay, '/v1/responses', KEY_ALICE, { model: 'gpt-5', input: 'y' }), 429, { code: 'too_many_concurrent_requests' });
      release();
      while (!(await reader.read()).done);
      await lineFor(relay, streaming.headers.get('x-request-id'));
      server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
      const after = await get(relay, '/v1/models', KEY_ALICE);
      expect(after.status).toBe(200);
      await after.arrayBuffer();
    } finally {
      await relay.shutdown();
    }
  });
});

// =====================================================================================================

describe('metrics', () => {
  test('GET /metrics with the admin key: Prometheus text with requests by operation/status/key, durations, in-flight, ledger queue depth', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RELAY_ADMIN_KEY: ADMIN_KEY });
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let arrived!: () => void;
      const slowArrived = new Promise<void>((r) => (arrived = r));
      server.use(
        http.post(`${OPENAI_BASE}/v1/embeddings`, async ({ request }) => {
          const body = (await request.json()) as { input: string };
          if (body.input === 'slow') {
            arrived();
            await gate;
          }
          return HttpResponse.json(embeddingAnswer(3));
        }),
      );
      for (let i = 0; i < 2; i++) await (await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'x' })).arrayBuffer();
      await (await post(relay, '/v1/embeddings', KEY_BOB, { model: EMBED_MODEL, input: 'x' })).arrayBuffer();
      await (await post(relay, '/v1/embeddings', WRONG_KEY, { model: EMBED_MODEL, input: 'x' })).arrayBuffer();

      const slow = post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'slow' });
      await slowArrived;
      const during = await get(relay, '/metrics', ADMIN_KEY);
      expect(during.status).toBe(200);
      const duringBody = await during.text();
      expect(sample(duringBody, 'relay_in_flight_requests', { operation: 'createEmbedding' })).toBe(1);
      release();
      await (await slow).arrayBuffer();
      await sleep(20);

      const res = await get(relay, '/metrics', ADMIN_KEY);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      expect(body).toMatch(/relay_requests_total\{[^}]*operation="createEmbedding"[^}]*key="alice"[^}]*\} 3/);
      expect(sample(body, 'relay_requests_total', { operation: 'createEmbedding', status: '200', key: 'alice' })).toBe(3);
      expect(sample(body, 'relay_requests_total', { operation: 'createEmbedding', status: '200', key: 'bob' })).toBe(1);
      expect(body).toMatch(/^relay_requests_total\{[^}]*status="401"[^}]*key="anonymous"[^}]*\} 1$/m);
      expect(body).toContain('# TYPE relay_request_duration_seconds histogram');
      expect(sample(body, 'relay_request_duration_seconds_count', { operation: 'createEmbedding', status: '200' })).toBe(4);
      expect(sample(body, 'relay_request_duration_seconds_bucket', { operation: 'createEmbedding', status: '200', le: '+Inf' })).toBe(4);
      expect(sample(body, 'relay_upstream_duration_seconds_count', { operation: 'createEmbedding' })).toBe(4);
      expect(body).toContain('# TYPE relay_in_flight_requests gauge');
      expect(sample(body, 'relay_in_flight_requests', { operation: 'createEmbedding' })).toBe(0);
      expect(body).toContain('# TYPE relay_ledger_queue_depth gauge');
      expect(sample(body, 'relay_ledger_queue_depth')).toEqual(expect.any(Number));
      expect(body).toContain('# TYPE relay_open_streams gauge');
      for (const secret of SECRETS) expect(body).not.toContain(secret);
    } finally {
      await relay.shutdown();
    }
  });

  test('GET /metrics without the admin key → 401 (no key, a relay key, a wrong key)', async () => {
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RELAY_ADMIN_KEY: ADMIN_KEY });
    try {
      for (const key of [undefined, KEY_ALICE, WRONG_KEY]) {
        const res = await get(relay, '/metrics', key);
        const text = await res.clone().text();
        expect(text).not.toContain('relay_requests_total');
        await expectOpenAIError(res, 401, { type: 'authentication_error' });
      }
    } finally {
      await relay.shutdown();
    }
  });

  test('METRICS_PORT: /metrics served there without a key, and not served on the main port', async () => {
    const port = await freePort();
    const relay = await startTestRelay({ RELAY_KEY: NAMED_KEYS, RELAY_ADMIN_KEY: ADMIN_KEY, METRICS_PORT: String(port) });
    let stopped = false;
    try {
      server.use(embeddingsHandler(1));
      await (await post(relay, '/v1/embeddings', KEY_ALICE, { model: EMBED_MODEL, input: 'x' })).arrayBuffer();

      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      expect(sample(body, 'relay_requests_total', { operation: 'createEmbedding', status: '200', key: 'alice' })).toBe(1);
      // only /metrics there
      expect((await fetch(`http://127.0.0.1:${port}/v1/relay/usage`)).status).toBe(404);

      // the main port does not serve metrics: without a key it is refused, with the admin key there is no such route
      for (const key of [undefined, KEY_ALICE]) {
        const main = await get(relay, '/metrics', key);
        expect(main.status === 401 || main.status === 403 || main.status === 404).toBe(true);
        expect(await main.text()).not.toContain('relay_requests_total');
      }
      const withAdmin = await get(relay, '/metrics', ADMIN_KEY);
      expect(withAdmin.status).toBe(404);
      expect(await withAdmin.text()).not.toContain('relay_requests_total');

      await relay.shutdown();
      stopped = true;
      // the metrics port closes with the relay
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    } finally {
      if (!stopped) await relay.shutdown();
    }
  });
});
