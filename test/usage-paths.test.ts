import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sample } from './helpers/assertions.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { makePng } from './helpers/files.ts';
import { PUBLIC_FILE_HOST_DNS, startTestRelay, type TestRelay } from './helpers/relay.ts';

const PNG = makePng(8, 8);
const FILES = 'https://files.oaiusercontent.com';

/**
 * One upstream policy: whichever door a call comes through (pass-through JSON or SSE, the proxy, an action,
 * an MCP tool), the usage OpenAI reports is recorded in the ledger under the right operation, and a token
 * budget spent on one path refuses the next call on every path.
 */
const { server, upstream } = useMockOpenAI();

const ADMIN = 'admin-key-0123456789abcdef';
const KEYS = {
  direct: 'direct-key-0123456789abc',
  proxy: 'proxyy-key-0123456789abc',
  action: 'action-key-0123456789abc',
  mcp: 'mcpmcp-key-0123456789abc',
};
const RELAY_KEY_ENV = Object.entries(KEYS)
  .map(([label, key]) => `${label}:${key}`)
  .join(',');

interface Total {
  keyLabel: string;
  operation: string;
  model: string | null;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

async function totals(relay: TestRelay, label: string): Promise<Total[]> {
  const res = await fetch(`${relay.url}/v1/relay/usage?key=${label}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Total[] }).data;
}
const tokensOf = (rows: Total[], operation: string) => rows.filter((r) => r.operation === operation).reduce((sum, r) => sum + r.totalTokens, 0);

const call = (relay: TestRelay, key: string, path: string, init: RequestInit & { json?: unknown } = {}) =>
  fetch(`${relay.url}${path}`, {
    ...init,
    method: init.method ?? (init.json !== undefined ? 'POST' : 'GET'),
    headers: { authorization: `Bearer ${key}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });

async function mcpClient(relay: TestRelay, key: string): Promise<Client> {
  const client = new Client({ name: 'usage-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${relay.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  return client;
}

// ------------------------------------------------------------------------------------------ upstream fixtures

const CHAT_MODEL = 'gpt-4.1-mini-2025-04-14';
const chunk = (delta: object, extra: object = {}) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1,
  model: CHAT_MODEL,
  system_fingerprint: 'fp_1',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: null }],
  ...extra,
});
const CHAT_USAGE = { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17, prompt_tokens_details: { cached_tokens: 0 } };

/** The stream OpenAI sends: with `usage: null` on every chunk and a final usage chunk only when asked. */
function chatStream(withUsage: boolean): string {
  const events = [chunk({ role: 'assistant', content: '' }), chunk({ content: 'He said "usage":null' }), chunk({}, {})];
  events[2]!.choices[0]!.finish_reason = 'stop' as never;
  const lines = events.map((e) => `data: ${JSON.stringify(withUsage ? { ...e, usage: null } : e)}\n\n`);
  if (withUsage) lines.push(`data: ${JSON.stringify({ ...chunk({}), choices: [], usage: CHAT_USAGE })}\n\n`);
  lines.push('data: [DONE]\n\n');
  return lines.join('');
}

/** Chat completions: a stream that carries usage exactly when the request asks for it; the request body seen. */
function chatHandler(seen: { body?: any; raw?: string; contentLength?: string | null }) {
  return http.post(`${OPENAI_BASE}/v1/chat/completions`, async ({ request }) => {
    try {
      seen.raw = await request.text();
    } catch {
      return new HttpResponse(null, { status: 400 }); // the relay cut the request off
    }
    seen.contentLength = request.headers.get('content-length');
    seen.body = JSON.parse(seen.raw);
    if (!seen.body.stream) return HttpResponse.json({ id: 'chatcmpl-2', object: 'chat.completion', model: CHAT_MODEL, choices: [], usage: CHAT_USAGE });
    const asked = seen.body.stream_options?.include_usage === true;
    return new HttpResponse(chatStream(asked), { headers: { 'content-type': 'text/event-stream' } });
  });
}

const RESP_MODEL = 'gpt-5-mini-2025-08-07';
const RESP_USAGE = { input_tokens: 20, output_tokens: 10, total_tokens: 30, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 4 } };
const responseObject = (id: string, status: string, usage: object | null) => ({
  id,
  object: 'response',
  created_at: 1,
  status,
  background: true,
  model: RESP_MODEL,
  output: status === 'completed' ? [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hi' }] }] : [],
  usage,
});

/** A background response: queued when created, completed (with usage) at every poll. */
function backgroundResponses() {
  let n = 0;
  server.use(
    http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json(responseObject(`resp_${++n}`, 'queued', null))),
    http.get(`${OPENAI_BASE}/v1/responses/:id`, ({ params }) => HttpResponse.json(responseObject(String(params.id), 'completed', RESP_USAGE))),
  );
}

// ------------------------------------------------------------------------------------------ recorded usage

describe('every path records the upstream usage under its operation', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ RELAY_KEY: RELAY_KEY_ENV, RELAY_ADMIN_KEY: ADMIN, LOG_LEVEL: 'silent' });
  });
  afterAll(() => relay.shutdown());

  test('pass-through JSON: the answer\'s usage', async () => {
    server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json({ object: 'list', data: [], model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 } })));
    expect((await call(relay, KEYS.direct, '/v1/embeddings', { json: { model: 'text-embedding-3-small', input: 'x' } })).status).toBe(200);
    expect(await totals(relay, 'direct')).toContainEqual(expect.objectContaining({ operation: 'createEmbedding', model: 'text-embedding-3-small', totalTokens: 8 }));
  });

  test('pass-through SSE without include_usage: the relay asks, the caller receives exactly what OpenAI would have sent, the usage is counted', async () => {
    const seen: { body?: any } = {};
    server.use(chatHandler(seen));
    const before = tokensOf(await totals(relay, 'direct'), 'createChatCompletion');
    const sent = { model: 'gpt-4.1-mini', stream: true, stream_options: { include_obfuscation: false }, messages: [{ role: 'user', content: 'hi' }] };
    const res = await call(relay, KEYS.direct, '/v1/chat/completions', { json: sent });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(chatStream(false));
    expect(seen.body).toEqual({ ...sent, stream_options: { include_obfuscation: false, include_usage: true } });
    expect(tokensOf(await totals(relay, 'direct'), 'createChatCompletion') - before).toBe(17);
  });

  test('pass-through SSE with include_usage: upstream gets the body as sent, the caller the whole stream, byte for byte', async () => {
    const seen: { raw?: string } = {};
    server.use(chatHandler(seen));
    const before = tokensOf(await totals(relay, 'direct'), 'createChatCompletion');
    const body = '{"model":"gpt-4.1-mini", "stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}';
    const answer = await rawRequest(relay.url, { method: 'POST', path: '/v1/chat/completions', headers: { authorization: `Bearer ${KEYS.direct}`, 'content-type': 'application/json' }, body });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(chatStream(true));
    expect(seen.raw).toBe(body);
    expect(tokensOf(await totals(relay, 'direct'), 'createChatCompletion') - before).toBe(17);
  });

  test('a streamed body too large to hold (> 64 KB): include_usage goes in as it streams, chunked upstream; counted, withheld', async () => {
    const seen: { body?: any; contentLength?: string | null } = {};
    server.use(chatHandler(seen));
    const before = tokensOf(await totals(relay, 'direct'), 'createChatCompletion');
    const long = 'x'.repeat(100_000);
    const sent = { model: 'gpt-4.1-mini', messages: [{ role: 'user', content: `say "stream": false ${long}` }], stream: true, metadata: { a: '{"}' } };
    const answer = await rawRequest(relay.url, {
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${KEYS.direct}`, 'content-type': 'application/json' },
      body: `${JSON.stringify(sent)}\n`,
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(chatStream(false));
    expect(seen.body).toEqual({ ...sent, stream_options: { include_usage: true } });
    expect(seen.contentLength).toBeNull();
    expect(tokensOf(await totals(relay, 'direct'), 'createChatCompletion') - before).toBe(17);
  });

  test('a large streamed body whose own stream_options does not ask for usage is refused (400), one that asks passes', async () => {
    server.use(chatHandler({}));
    const long = 'y'.repeat(100_000);
    const send = (options: object) =>
      rawRequest(relay.url, {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { authorization: `Bearer ${KEYS.direct}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream_options: options, messages: [{ role: 'user', content: long }], stream: true }),
      });
    const refused = await send({ include_obfuscation: false });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'stream_usage_required', param: 'stream_options.include_usage' });
    const asked = await send({ include_usage: true, include_obfuscation: false });
    expect(asked.status).toBe(200);
    expect(asked.body).toBe(chatStream(true));
  });

  test('the proxy: a streamed chat completion through POST /v1/proxy is counted under its operation, the usage withheld', async () => {
    const seen: { body?: any } = {};
    server.use(chatHandler(seen));
    const res = await call(relay, KEYS.proxy, '/v1/proxy', { json: { method: 'POST', path: '/v1/chat/completions', body: { model: 'm', stream: true, messages: [] } } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(chatStream(false));
    expect(seen.body.stream_options).toEqual({ include_usage: true });
    expect(tokensOf(await totals(relay, 'proxy'), 'createChatCompletion')).toBe(17);
  });

  test('a background response created by pass-through is counted once, by the poll that sees it finished', async () => {
    backgroundResponses();
    const created = (await (await call(relay, KEYS.direct, '/v1/responses', { json: { model: 'gpt-5-mini', input: 'x', background: true } })).json()) as { id: string };
    const before = await totals(relay, 'direct');
    expect(tokensOf(before, 'createResponse')).toBe(0);
    for (let i = 0; i < 3; i++) expect((await call(relay, KEYS.direct, `/v1/responses/${created.id}`)).status).toBe(200);
    const after = await totals(relay, 'direct');
    expect(tokensOf(after, 'getResponse')).toBe(30);
    // Three polls, one of them counted (with the model and usage), two not.
    expect(after.filter((r) => r.operation === 'getResponse')).toEqual([
      expect.objectContaining({ model: null, requests: 2, totalTokens: 0 }),
      expect.objectContaining({ model: RESP_MODEL, requests: 1, inputTokens: 20, outputTokens: 10, totalTokens: 30 }),
    ]);
    // A response the relay never saw start is not counted by a poll (its POST was counted, or it is not ours).
    expect((await call(relay, KEYS.direct, '/v1/responses/resp_elsewhere')).status).toBe(200);
    expect(tokensOf(await totals(relay, 'direct'), 'getResponse')).toBe(30);
  });

  test('actions: the summed usage of an action\'s upstream calls, under its operationId', async () => {
    backgroundResponses();
    const answer = await call(relay, KEYS.action, '/v1/actions/responses', { json: { input: 'hi', wait_seconds: 5 } });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ status: 'completed', output_text: 'Hi' });
    server.use(
      http.post(`${OPENAI_BASE}/v1/images/generations`, () =>
        HttpResponse.json({ created: 1, data: [{ b64_json: Buffer.from('x').toString('base64') }], output_format: 'png', usage: { input_tokens: 7, output_tokens: 5, total_tokens: 12 } }),
      ),
      http.get(`${OPENAI_BASE}/v1/vector_stores`, () => HttpResponse.json({ object: 'list', data: [], has_more: false })),
    );
    expect((await call(relay, KEYS.action, '/v1/actions/images/generations', { json: { prompt: 'a cat' } })).status).toBe(200);
    expect((await call(relay, KEYS.action, '/v1/actions/vector_stores')).status).toBe(200);
    const rows = await totals(relay, 'action');
    expect(rows).toContainEqual(expect.objectContaining({ operation: 'createActionResponse', model: RESP_MODEL, inputTokens: 20, outputTokens: 10, totalTokens: 30 }));
    expect(rows).toContainEqual(expect.objectContaining({ operation: 'generateActionImage', totalTokens: 12 }));
    expect(rows).toContainEqual(expect.objectContaining({ operation: 'listActionVectorStores', totalTokens: 0, requests: 1 }));
  });

  test('MCP: a tool call is recorded under the tool\'s name with its upstream usage', async () => {
    backgroundResponses();
    const client = await mcpClient(relay, KEYS.mcp);
    try {
      const result = (await client.callTool({ name: 'createActionResponse', arguments: { input: 'hi', wait_seconds: 5 } })) as CallToolResult;
      expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    } finally {
      await client.close();
    }
    const rows = await totals(relay, 'mcp');
    expect(rows).toContainEqual(expect.objectContaining({ operation: 'createActionResponse', model: RESP_MODEL, totalTokens: 30 }));
    expect(rows.some((r) => r.operation === '/mcp')).toBe(false);
  });
});

// ------------------------------------------------------------------------------------------ budgets

/** Every door, as `key` would knock: pass-through (the fast door), the proxy, an action, MCP. */
async function statusesFor(relay: TestRelay, key: string): Promise<number[]> {
  server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })), http.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ object: 'list', data: [], has_more: false })));
  const mcp = await fetch(`${relay.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  const statuses = [
    (await call(relay, key, '/v1/models')).status,
    (await call(relay, key, '/v1/proxy', { json: { method: 'GET', path: '/v1/models' } })).status,
    (await call(relay, key, '/v1/actions/files')).status,
    mcp.status,
  ];
  return statuses;
}

/** One spending call through each label's door. */
const spend: [keyof typeof KEYS, (relay: TestRelay) => Promise<void>][] = [
  ['direct', async (relay) => void (await (await call(relay, KEYS.direct, '/v1/chat/completions', { json: { model: 'm', stream: true, messages: [] } })).text())],
  ['proxy', async (relay) => void (await (await call(relay, KEYS.proxy, '/v1/proxy', { json: { method: 'POST', path: '/v1/chat/completions', body: { model: 'm', messages: [] } } })).text())],
  ['action', async (relay) => void (await (await call(relay, KEYS.action, '/v1/actions/responses', { json: { input: 'hi', wait_seconds: 5 } })).text())],
  [
    'mcp',
    async (relay) => {
      const client = await mcpClient(relay, KEYS.mcp);
      try {
        await client.callTool({ name: 'createActionResponse', arguments: { input: 'hi', wait_seconds: 5 } });
      } finally {
        await client.close();
      }
    },
  ],
];

// ------------------------------------------------------------------------------------------ costs

/** Micro-dollars the ledger holds for `operation`: its groups' cost_usd, summed. */
async function costOf(relay: TestRelay, label: string, operation?: string): Promise<number> {
  const rows = (await totals(relay, label)) as (Total & { cost_usd: number; unpriced_requests: number })[];
  return Math.round(rows.filter((r) => operation === undefined || r.operation === operation).reduce((sum, r) => sum + r.cost_usd, 0) * 1e6);
}

describe('every path records what each request cost, to the micro-dollar, computed by hand', () => {
  // gpt-5-mini: 0.25 input, 0.025 cached input, 2 output (USD per 1M tokens = µ$ per token).
  // (12,000 − 8,192) × 0.25 + 8,192 × 0.025 + 3,000 × 2 = 952 + 204.8 + 6,000 = 7,156.8 µ$ → 7,157. The 2,048
  // reasoning tokens are part of the 3,000 output tokens: counting them again would add 4,096 µ$.
  const CACHED_USAGE = { input_tokens: 12_000, input_tokens_details: { cached_tokens: 8_192 }, output_tokens: 3_000, output_tokens_details: { reasoning_tokens: 2_048 }, total_tokens: 15_000 };
  const CACHED_COST = 7_157;
  // Without a cache hit: 12,000 × 0.25 + 3,000 × 2 = 9,000 µ$.
  const UNCACHED_USAGE = { ...CACHED_USAGE, input_tokens_details: { cached_tokens: 0 } };
  const UNCACHED_COST = 9_000;
  // gpt-4.1-mini: 0.4 input, 0.1 cached, 1.6 output: 3,976 × 0.4 + 1,024 × 0.1 + 700 × 1.6 = 1,590.4 + 102.4 + 1,120 = 2,812.8 µ$ → 2,813.
  const CHAT_PRICED_USAGE = { prompt_tokens: 5_000, completion_tokens: 700, total_tokens: 5_700, prompt_tokens_details: { cached_tokens: 1_024 }, completion_tokens_details: { reasoning_tokens: 0 } };
  const CHAT_COST = 2_813;

  let relay: TestRelay;
  /** The same, with fixed public DNS for ChatGPT's file host (an image edit downloads the attached image). */
  let fileRelay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ RELAY_KEY: RELAY_KEY_ENV, RELAY_ADMIN_KEY: ADMIN, LOG_LEVEL: 'silent' });
    fileRelay = await startTestRelay({ RELAY_KEY: RELAY_KEY_ENV, RELAY_ADMIN_KEY: ADMIN, LOG_LEVEL: 'silent' }, PUBLIC_FILE_HOST_DNS);
  });
  afterAll(async () => {
    await relay.shutdown();
    await fileRelay.shutdown();
  });

  const responses = (usage: object) =>
    http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
      const body = (await request.json()) as { stream?: boolean };
      const done = { ...responseObject('resp_c', 'completed', usage), background: false };
      if (!body.stream) return HttpResponse.json(done);
      const events = [{ type: 'response.created', response: { ...done, status: 'in_progress', usage: null } }, { type: 'response.completed', response: done }];
      return new HttpResponse(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(''), { headers: { 'content-type': 'text/event-stream' } });
    });

  test('pass-through JSON and SSE: with and without cached input, reasoning not counted twice', async () => {
    server.use(responses(CACHED_USAGE));
    await (await call(relay, KEYS.direct, '/v1/responses', { json: { model: 'gpt-5-mini', input: 'x' } })).arrayBuffer();
    expect(await costOf(relay, 'direct', 'createResponse')).toBe(CACHED_COST);
    server.use(responses(UNCACHED_USAGE));
    await (await call(relay, KEYS.direct, '/v1/responses', { json: { model: 'gpt-5-mini', input: 'x', stream: true } })).text();
    expect(await costOf(relay, 'direct', 'createResponse')).toBe(CACHED_COST + UNCACHED_COST);
  });

  test('the proxy: a streamed chat completion with cached prompt tokens', async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/chat/completions`, () => {
        const usageChunk = { ...chunk({}), choices: [], usage: CHAT_PRICED_USAGE };
        return new HttpResponse(`data: ${JSON.stringify(chunk({ content: 'hi' }))}\n\ndata: ${JSON.stringify(usageChunk)}\n\ndata: [DONE]\n\n`, { headers: { 'content-type': 'text/event-stream' } });
      }),
    );
    await (await call(relay, KEYS.proxy, '/v1/proxy', { json: { method: 'POST', path: '/v1/chat/completions', body: { model: 'gpt-4.1-mini', stream: true, messages: [] } } })).text();
    expect(await costOf(relay, 'proxy', 'createChatCompletion')).toBe(CHAT_COST);
  });

  test('an action and an MCP tool: their background response, priced when the poll sees it finished', async () => {
    let n = 0;
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json(responseObject(`resp_p${++n}`, 'queued', null))),
      http.get(`${OPENAI_BASE}/v1/responses/:id`, ({ params }) => HttpResponse.json(responseObject(String(params.id), 'completed', CACHED_USAGE))),
    );
    expect((await call(relay, KEYS.action, '/v1/actions/responses', { json: { input: 'hi', wait_seconds: 5 } })).status).toBe(200);
    expect(await costOf(relay, 'action', 'createActionResponse')).toBe(CACHED_COST);
    const client = await mcpClient(relay, KEYS.mcp);
    try {
      await client.callTool({ name: 'createActionResponse', arguments: { input: 'hi', wait_seconds: 5 } });
    } finally {
      await client.close();
    }
    expect(await costOf(relay, 'mcp', 'createActionResponse')).toBe(CACHED_COST);
  });

  test('an image answer names no model: through pass-through the held request body names it, and prices it', async () => {
    const usage = { input_tokens: 50, output_tokens: 4160, total_tokens: 4210, input_tokens_details: { text_tokens: 50, image_tokens: 0 } };
    server.use(http.post(`${OPENAI_BASE}/v1/images/generations`, () => HttpResponse.json({ created: 1, data: [{ b64_json: 'eA==' }], output_format: 'png', usage })));
    const res = await call(relay, KEYS.direct, '/v1/images/generations', { json: { prompt: 'a cat', model: 'gpt-image-1', quality: 'high' } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    // gpt-image-1: 50 text input × 5 + 4,160 image output × 40 = 250 + 166,400 µ$
    expect(await costOf(relay, 'direct', 'createImage')).toBe(166_650);
    expect(await totals(relay, 'direct')).toContainEqual(expect.objectContaining({ operation: 'createImage', model: 'gpt-image-1' }));
  });

  test('the image actions are priced by the model the relay sent (a JSON body, a multipart edit); a model without a price has no cost, never a silent 0', async () => {
    const usage = { input_tokens: 40, output_tokens: 1_000, total_tokens: 1_040, input_tokens_details: { text_tokens: 40, image_tokens: 0 } };
    let editBody = '';
    server.use(
      http.post(`${OPENAI_BASE}/v1/images/generations`, () => HttpResponse.json({ created: 1, data: [{ b64_json: PNG.toString('base64') }], output_format: 'png', usage })),
      http.post(`${OPENAI_BASE}/v1/images/edits`, async ({ request }) => {
        editBody = await request.text();
        return HttpResponse.json({ created: 1, data: [{ b64_json: PNG.toString('base64') }], output_format: 'png', usage });
      }),
      http.get(`${FILES}/*`, () => new HttpResponse(PNG, { headers: { 'content-type': 'image/png', 'content-length': String(PNG.length) } })),
    );
    // gpt-image-2.6-sunburst (the default): 40 text input × 5 + 1,000 image output × 30 = 200 + 30,000 µ$.
    expect((await call(fileRelay, KEYS.action, '/v1/actions/images/generations', { json: { prompt: 'a cat' } })).status).toBe(200);
    expect(await costOf(fileRelay, 'action', 'generateActionImage')).toBe(30_200);
    const ref = { name: 'cat.png', id: 'file-1', mime_type: 'image/png', download_link: `${FILES}/cat.png?sig=x` };
    expect((await call(fileRelay, KEYS.action, '/v1/actions/images/edits', { json: { prompt: 'a hat', openaiFileIdRefs: [ref] } })).status).toBe(200);
    expect(editBody).toContain('gpt-image-2.6-sunburst');
    expect(await costOf(fileRelay, 'action', 'editActionImage')).toBe(30_200);
    // Nothing of the relay's own hint reaches OpenAI.
    expect(upstream.some((r) => r.headers.has('x-relay-usage-model'))).toBe(false);

    expect((await call(fileRelay, KEYS.action, '/v1/actions/images/generations', { json: { prompt: 'a dog', model: 'gpt-image-9-unpriced' } })).status).toBe(200);
    const rows = (await totals(fileRelay, 'action')) as (Total & { cost_usd: number; unpriced_requests: number })[];
    expect(rows.find((r) => r.model === 'gpt-image-9-unpriced')).toMatchObject({ operation: 'generateActionImage', totalTokens: 1_040, cost_usd: 0, unpriced_requests: 1 });
    const metrics = await (await fetch(`${fileRelay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(sample(metrics, 'relay_unpriced_usage_total', { model: 'gpt-image-9-unpriced' })).toBe(1);
  });

  test('/metrics: cost and tokens per key and model (the model\'s table name, not its snapshot), kinds apart', async () => {
    const metrics = await (await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(sample(metrics, 'relay_cost_usd_total', { key: 'direct', model: 'gpt-5-mini' })).toBeCloseTo((CACHED_COST + UNCACHED_COST) / 1e6, 12);
    expect(sample(metrics, 'relay_cost_usd_total', { key: 'proxy', model: 'gpt-4.1-mini' })).toBeCloseTo(CHAT_COST / 1e6, 12);
    expect(sample(metrics, 'relay_tokens_total', { key: 'direct', model: 'gpt-5-mini', kind: 'input' })).toBe(24_000);
    expect(sample(metrics, 'relay_tokens_total', { key: 'direct', model: 'gpt-5-mini', kind: 'cached_input' })).toBe(8_192);
    expect(sample(metrics, 'relay_tokens_total', { key: 'direct', model: 'gpt-5-mini', kind: 'output' })).toBe(6_000);
    expect(sample(metrics, 'relay_tokens_total', { key: 'direct', model: 'gpt-5-mini', kind: 'reasoning' })).toBe(4_096);
    expect(metrics).not.toMatch(/model="gpt-5-mini-2025-08-07"/);
  });
});

/**
 * A token budget (40 tokens a day) and a dollar budget ($0.00004, 40 µ$, a day), for each label: a chat call
 * spends 17 tokens and 14 µ$ (11 × 0.4 + 6 × 1.6), a response 30 tokens and 25 µ$ (20 × 0.25 + 10 × 2).
 */
const budgets = [
  {
    what: 'a token budget',
    limits: '*=1000/min:40/day',
    spent: async (relay: TestRelay, label: string) => (await totals(relay, label)).reduce((sum, r) => sum + r.totalTokens, 0),
    error: { code: 'rate_limit_exceeded', message: /tokens per day/ },
  },
  {
    what: 'a dollar budget',
    limits: '*=1000/min:$0.00004/day',
    spent: (relay: TestRelay, label: string) => costOf(relay, label),
    error: { code: 'budget_exceeded', message: /^Budget reached: this relay key has spent \$0\.0000\d+ of its \$0\.00004 budget for today \(UTC\)\. The budget resets at 00:00 UTC, in / },
  },
];

describe.each(budgets)('$what spent on any path refuses the next call on every path', ({ limits, spent, error }) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ RELAY_KEY: RELAY_KEY_ENV, RELAY_ADMIN_KEY: ADMIN, RATE_LIMITS: limits, LOG_LEVEL: 'silent' });
  });
  afterAll(() => relay.shutdown());

  test.each(spend)('spent through %s: 429 on pass-through, proxy, actions and MCP', async (label, spendOnce) => {
    server.use(chatHandler({}));
    backgroundResponses();
    expect(await statusesFor(relay, KEYS[label])).toEqual([200, 200, 200, 200]);
    // Spend until the day's budget of 40 is used up: two or three calls.
    for (let calls = 0; (await spent(relay, label)) < 40; calls++) {
      expect(calls, 'a spend recorded for each call').toBeLessThan(3);
      await spendOnce(relay);
    }
    expect(await statusesFor(relay, KEYS[label])).toEqual([429, 429, 429, 429]);
    const refused = await call(relay, KEYS[label], '/v1/models');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await refused.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error).toMatchObject({ type: 'rate_limit_error', code: error.code });
    expect(body.error.message).toMatch(error.message);
  });
});

describe('a month\'s dollar budget holds across a restart: the spend is read back from the ledger', () => {
  const dir = mkdtempSync(join(tmpdir(), 'usage-budget-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = { RELAY_KEY: RELAY_KEY_ENV, RELAY_ADMIN_KEY: ADMIN, RATE_LIMITS: 'direct=$0.00003/month', USAGE_DB_PATH: join(dir, 'usage.sqlite'), LOG_LEVEL: 'silent' };

  test('spent before the restart, refused after it; other labels unaffected', async () => {
    server.use(chatHandler({}));
    const first = await startTestRelay(env);
    try {
      for (let i = 0; i < 3; i++) await (await call(first, KEYS.direct, '/v1/chat/completions', { json: { model: 'm', messages: [] } })).arrayBuffer();
      expect(await costOf(first, 'direct')).toBe(42);
    } finally {
      await first.shutdown();
    }
    const second = await startTestRelay(env);
    try {
      const refused = await call(second, KEYS.direct, '/v1/models');
      expect(refused.status).toBe(429);
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('budget_exceeded');
      const nextMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
      expect(error.message).toContain(`spent $0.000042 of its $0.00003 budget for this month (UTC). The budget resets on ${nextMonth} at 00:00 UTC`);
      server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
      expect((await call(second, KEYS.proxy, '/v1/models')).status).toBe(200);
    } finally {
      await second.shutdown();
    }
  });
});

// ------------------------------------------------------------------------------------------ one proxy envelope

describe('the proxy envelope: POST /v1/proxy and the relayProxy tool answer the same list the same way', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay({ RELAY_KEY: RELAY_KEY_ENV, LOG_LEVEL: 'silent' });
  });
  afterAll(() => relay.shutdown());

  const file = (i: number) => ({ id: `file-${String(i).padStart(4, '0')}`, object: 'file', bytes: i, created_at: i, filename: `notes-${'n'.repeat(180)}-${i}.txt`, purpose: 'assistants' });

  test.each([
    ['400 items, over 100,000 characters: shortened', 400, true],
    ['20 items: untouched', 20, false],
  ])('%s', async (_name, count, truncated) => {
    const page = { object: 'list', data: Array.from({ length: count }, (_, i) => file(i)), first_id: 'file-0000', last_id: `file-${String(count - 1).padStart(4, '0')}`, has_more: false };
    server.use(http.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json(page)));
    const res = await call(relay, KEYS.proxy, '/v1/proxy', { json: { method: 'GET', path: '/v1/files' } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.length).toBeLessThanOrEqual(100_000);
    const viaHttp = JSON.parse(text);
    expect(res.headers.get('x-relay-truncated')).toBe(truncated ? 'true' : null);

    const client = await mcpClient(relay, KEYS.proxy);
    let viaMcp: unknown;
    try {
      const result = (await client.callTool({ name: 'relayProxy', arguments: { method: 'GET', path: '/v1/files' } })) as CallToolResult;
      expect(result.isError).toBeFalsy();
      viaMcp = result.structuredContent;
    } finally {
      await client.close();
    }
    expect(viaMcp).toEqual(viaHttp);
    if (truncated) {
      expect(viaHttp.data.length).toBeLessThan(count);
      expect(viaHttp.has_more).toBe(true);
      expect(viaHttp.truncated).toBe(true);
      expect(viaHttp.last_id).toBe(viaHttp.data[viaHttp.data.length - 1].id);
    } else {
      expect(viaHttp).toEqual(page);
    }
  });
});

afterAll(() => {
  expect(upstream.filter((r) => r.url.host !== 'api.openai.com')).toEqual([]);
});
