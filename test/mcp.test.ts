import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mcpTools } from '../generated/mcp-tools.ts';
import { operations } from '../generated/routes.ts';
import { buildTools, McpToolError, type McpTool } from '../scripts/generate/mcp-tools.ts';
import { loadSpec } from '../scripts/generate/spec.ts';
import { actionHandlers } from '../src/actions/index.ts';
import { createMcpTools } from '../src/mcp/server.ts';
import type { RunningRelay } from '../src/server.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, PUBLIC_FILE_HOST_DNS, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { makePng } from './helpers/files.ts';

/**
 * The MCP door (POST /mcp): the SDK's own client over a real socket, the relay key as a bearer token, MSW
 * playing OpenAI and ChatGPT's file host. Tools come from the spec's action marks and run the same
 * handlers as /v1/actions/*.
 */
const { server, upstream } = useMockOpenAI();
const openaiCalls = () => upstream.filter((r) => r.url.host === 'api.openai.com').map((r) => `${r.method} ${r.url.pathname}${r.url.search}`);

const FILES = 'https://files.oaiusercontent.com';
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/mcp/${name}`, import.meta.url));

const PNG = makePng();

// ------------------------------------------------------------------------------------------ relays and clients

const relays: RunningRelay[] = [];
const clients: Client[] = [];
const dirs: string[] = [];

async function testRelay(env: Record<string, string> = {}): Promise<TestRelay> {
  const relay = await startTestRelay({ LOG_LEVEL: 'info', ...env });
  relays.push(relay);
  return relay;
}

/** Like test/helpers/relay.ts, but with fixed public DNS for the file host (openaiFileIdRefs downloads). */
async function fileRelay(): Promise<RunningRelay> {
  const relay = await startTestRelay({ LOG_LEVEL: 'silent' }, PUBLIC_FILE_HOST_DNS);
  relays.push(relay);
  return relay;
}

async function connect(url: string, key = RELAY_KEY): Promise<Client> {
  const client = new Client({ name: 'relay-mcp-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  clients.push(client);
  return client;
}

/** One JSON-RPC message POSTed to /mcp with plain fetch, as any Streamable HTTP client sends it. */
function rpc(url: string, message: unknown, headers: Record<string, string> = { authorization: `Bearer ${RELAY_KEY}` }) {
  return fetch(`${url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(message),
  });
}

const call = async (client: Client, name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
const textOf = (result: CallToolResult) => (result.content[0] as { type: 'text'; text: string }).text;

let relay: TestRelay;
let client: Client;
beforeAll(async () => {
  relay = await testRelay();
  client = await connect(relay.url);
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const r of relays) await r.shutdown();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------ tests

describe('initialize and tools/list', () => {
  test('initialize: the relay names itself, offers tools and says how to use them', () => {
    expect(client.getServerVersion()).toMatchObject({ name: 'openai-relay', version: '1.0.0' });
    expect(client.getServerCapabilities()?.tools).toBeDefined();
    expect(client.getInstructions()).toMatch(/poll_after_seconds/);
  });

  test('one tool per action operation of the spec, named by operationId', async () => {
    const { tools } = await client.listTools();
    const actions = operations.filter((o) => o.action).map((o) => o.operationId);
    expect(tools.map((t) => t.name).sort()).toEqual([...actions].sort());
    expect(tools).toHaveLength(14);
    // What the client receives is the generator's tool list, field for field.
    expect(JSON.parse(JSON.stringify(tools))).toEqual(JSON.parse(JSON.stringify(buildTools(loadSpec()).map((e) => e.tool))));
    for (const tool of tools) {
      const op = operations.find((o) => o.operationId === tool.name)!;
      const route = op.route as { summary?: string; description?: string };
      expect(tool.description, tool.name).toBe(route.description ?? route.summary);
      expect(tool.annotations, tool.name).toEqual({
        title: route.summary,
        readOnlyHint: op.method === 'get',
        destructiveHint: op.method !== 'get' && op.action!.consequential,
        idempotentHint: op.method === 'get',
        openWorldHint: true,
      });
      expect(JSON.stringify(tool.inputSchema)).not.toMatch(/x-relay|\$ref/);
    }
  });

  test('annotations follow the marks: reads are read-only, consequential writes destructive', async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('listActionConversationItems')!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(byName.get('generateActionImage')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false });
    expect(byName.get('searchActionVectorStore')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(byName.get('relayProxy')!.annotations).toMatchObject({ destructiveHint: true });
  });

  test('input schemas merge path parameters, query parameters and the JSON body, $refs resolved', async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    const edit = byName.get('editActionImage')!.inputSchema as any;
    expect(edit.required).toEqual(['prompt', 'openaiFileIdRefs']);
    expect(edit.properties.openaiFileIdRefs).toMatchObject({ type: 'array', maxItems: 10, items: { type: 'object', required: ['download_link'] } });
    expect(Object.keys(edit.properties.openaiFileIdRefs.items.properties)).toEqual(['name', 'id', 'mime_type', 'download_link']);
    expect(edit.additionalProperties).toBe(false);

    const search = byName.get('searchActionVectorStore')!.inputSchema as any;
    expect(Object.keys(search.properties)).toEqual(['vector_store_id', 'query', 'max_num_results']);
    expect(search.required).toEqual(['vector_store_id', 'query']);
    expect(search.properties.vector_store_id).toEqual({ type: 'string', description: 'The vector store id (vs_...).' });

    const list = byName.get('listActionFiles')!.inputSchema as any;
    expect(list.properties.limit).toMatchObject({ type: 'integer', minimum: 1, maximum: 100 });
    expect(list.required).toBeUndefined();

    // An optional body: its fields are optional arguments.
    expect((byName.get('waitForActionResponse')!.inputSchema as any).required).toEqual(['response_id']);
  });
});

describe('tools/call runs the action handlers', () => {
  test('createActionResponse: POST /v1/responses in background, then GET until completed → output_text', async () => {
    const bodies: any[] = [];
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        bodies.push(await request.json());
        return HttpResponse.json({ id: 'resp_mcp1', object: 'response', status: 'in_progress', output: [] });
      }),
      http.get(`${OPENAI_BASE}/v1/responses/resp_mcp1`, () =>
        HttpResponse.json({
          id: 'resp_mcp1',
          object: 'response',
          status: 'completed',
          output: [{ type: 'message', content: [{ type: 'output_text', text: 'Paris.' }] }],
          usage: { input_tokens: 5, output_tokens: 2, total_tokens: 7 },
        }),
      ),
    );
    const result = await call(client, 'createActionResponse', { input: 'Capital of France?', wait_seconds: 5 });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ id: 'resp_mcp1', status: 'completed', output_text: 'Paris.', usage: { input_tokens: 5, output_tokens: 2, total_tokens: 7 } });
    expect(JSON.parse(textOf(result))).toEqual(result.structuredContent);
    expect(bodies[0]).toMatchObject({ input: 'Capital of France?', background: true, store: true });
    expect(openaiCalls()).toEqual(['POST /v1/responses', 'GET /v1/responses/resp_mcp1']);
  });

  test('generateActionImage: the b64 image is stored; a relay link comes back in images[0].url and as a resource_link', async () => {
    server.use(http.post(`${OPENAI_BASE}/v1/images/generations`, () => HttpResponse.json({ created: 1, data: [{ b64_json: PNG.toString('base64') }], output_format: 'png' })));
    const result = await call(client, 'generateActionImage', { prompt: 'a red square' });
    expect(result.isError).toBeFalsy();
    const images = (result.structuredContent as any).images;
    expect(images).toEqual([{ url: expect.stringMatching(new RegExp(`^${relay.url}/v1/relay/blobs/`)), mime_type: 'image/png', expires_at: expect.any(Number) }]);
    expect(textOf(result)).not.toContain(PNG.toString('base64').slice(0, 100));
    expect(result.content).toContainEqual({ type: 'resource_link', uri: images[0].url, name: 'image-1.png', mimeType: 'image/png' });
    // The link needs no relay key (ChatGPT and MCP hosts fetch it as it is).
    const image = await fetch(images[0].url);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await image.arrayBuffer()).equals(PNG)).toBe(true);
  });

  test('uploadActionFiles: a download link on the allowed file host is fetched and uploaded to OpenAI Files', async () => {
    const files = await fileRelay();
    const fileClient = await connect(files.url);
    const text = Buffer.from('notes for the MCP door\n'.repeat(10));
    const uploads: { purpose: FormDataEntryValue | null; name: string; bytes: Buffer }[] = [];
    server.use(
      http.get(`${FILES}/*`, () => new HttpResponse(text, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(text.length) } })),
      http.post(`${OPENAI_BASE}/v1/files`, async ({ request }) => {
        const form = await request.formData();
        const file = form.get('file') as File;
        uploads.push({ purpose: form.get('purpose'), name: file.name, bytes: Buffer.from(await file.arrayBuffer()) });
        return HttpResponse.json({ id: 'file-mcp1', object: 'file', filename: file.name, bytes: file.size, purpose: form.get('purpose'), created_at: 1_700_000_000 });
      }),
    );
    const result = await call(fileClient, 'uploadActionFiles', {
      purpose: 'assistants',
      openaiFileIdRefs: [{ name: 'notes.txt', mime_type: 'text/plain', download_link: `${FILES}/notes.txt?se=2030-01-01T00%3A00%3A00Z&sig=abc` }],
    });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toEqual({ files: [{ id: 'file-mcp1', filename: 'notes.txt', bytes: text.length, purpose: 'assistants', created_at: 1_700_000_000 }] });
    expect(uploads).toHaveLength(1);
    expect(uploads[0].purpose).toBe('assistants');
    expect(uploads[0].bytes.equals(text)).toBe(true);
  });

  test('getActionFileContent: a small file comes back inline as an embedded resource (and an image as an image item)', async () => {
    const csv = Buffer.from('a,b\n1,2\n');
    server.use(
      http.get(`${OPENAI_BASE}/v1/files/file-csv1`, () => HttpResponse.json({ id: 'file-csv1', object: 'file', filename: 'table.csv', bytes: csv.length })),
      http.get(`${OPENAI_BASE}/v1/files/file-csv1/content`, () => new HttpResponse(csv, { headers: { 'content-length': String(csv.length) } })),
      http.get(`${OPENAI_BASE}/v1/files/file-png1`, () => HttpResponse.json({ id: 'file-png1', object: 'file', filename: 'dot.png', bytes: PNG.length })),
      http.get(`${OPENAI_BASE}/v1/files/file-png1/content`, () => new HttpResponse(PNG, { headers: { 'content-length': String(PNG.length) } })),
    );
    const table = await call(client, 'getActionFileContent', { file_id: 'file-csv1' });
    expect(table.isError).toBeFalsy();
    expect(table.content).toContainEqual({ type: 'resource', resource: { uri: 'relay-file:///table.csv', mimeType: 'text/csv', blob: csv.toString('base64') } });
    expect((table.structuredContent as any).openaiFileResponse[0].content).toBe(csv.toString('base64'));
    expect(JSON.parse(textOf(table)).openaiFileResponse[0].content).toMatch(/base64 omitted/);

    const image = await call(client, 'getActionFileContent', { file_id: 'file-png1' });
    expect(image.content).toContainEqual({ type: 'image', data: PNG.toString('base64'), mimeType: 'image/png' });
  });

  test('relayProxy: GET /v1/models through the proxy tool answers the model list', async () => {
    const models = { object: 'list', data: [{ id: 'gpt-4.1', object: 'model', created: 1, owned_by: 'openai' }] };
    server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json(models)));
    const result = await call(client, 'relayProxy', { method: 'GET', path: '/v1/models' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toEqual(models);
    expect(openaiCalls()).toEqual(['GET /v1/models']);
    expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
  });

  test('relayProxy: POST with a body and query params; the same allowlist refuses other paths; stream is refused', async () => {
    let seen: any;
    server.use(
      http.post(`${OPENAI_BASE}/v1/vector_stores/vs_1/search`, async ({ request }) => {
        seen = await request.json();
        return HttpResponse.json({ object: 'vector_store.search_results.page', data: [], has_more: false });
      }),
      http.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ object: 'list', data: [], has_more: false })),
    );
    const search = await call(client, 'relayProxy', { method: 'post', path: 'vector_stores/vs_1/search', body: { query: 'q' } });
    expect(search.isError, textOf(search)).toBeFalsy();
    expect(seen).toEqual({ query: 'q' });
    const listed = await call(client, 'relayProxy', { method: 'GET', path: '/v1/files', query: { limit: 2, purpose: 'assistants' } });
    expect(listed.isError).toBeFalsy();
    expect(openaiCalls()).toEqual(['POST /v1/vector_stores/vs_1/search', 'GET /v1/files?limit=2&purpose=assistants']);

    const refused = await call(client, 'relayProxy', { method: 'GET', path: '/v1/organization/users' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toBe('/v1/organization/users is not an OpenAI operation this relay serves.');
    expect(refused.structuredContent).toMatchObject({ error: { code: 'proxy_path_not_allowed', status: 403 } });

    const own = await call(client, 'relayProxy', { method: 'POST', path: '/v1/actions/responses', body: { input: 'x' } });
    expect(own.isError).toBe(true);
    expect(textOf(own)).toMatch(/relay's own operations/);

    const streamed = await call(client, 'relayProxy', { method: 'POST', path: '/v1/responses', body: { model: 'gpt-4.1', input: 'hi', stream: true } });
    expect(streamed.isError).toBe(true);
    expect(textOf(streamed)).toMatch(/answers once: stream must be false/);

    const binary = await call(client, 'relayProxy', { method: 'GET', path: '/v1/files/file-1/content' });
    expect(binary.isError).toBe(true);
    expect(textOf(binary)).toMatch(/binary data/);
    expect(openaiCalls()).toEqual(['POST /v1/vector_stores/vs_1/search', 'GET /v1/files?limit=2&purpose=assistants']);
  });

  test("an upstream error is a tool result with isError and OpenAI's message, not a protocol error", async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () =>
        HttpResponse.json({ error: { message: "Invalid value for 'instructions'.", type: 'invalid_request_error', param: 'instructions', code: 'invalid_value' } }, { status: 400 }),
      ),
    );
    const result = await call(client, 'createActionResponse', { input: 'hi', instructions: 'x' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Invalid value for 'instructions'.");
    expect(result.structuredContent).toEqual({
      error: { message: "Invalid value for 'instructions'.", type: 'invalid_request_error', param: 'instructions', code: 'invalid_value', status: 400 },
    });
    expect(JSON.stringify(result)).not.toContain(OPENAI_KEY);

    server.use(
      http.get(`${OPENAI_BASE}/v1/models`, () =>
        HttpResponse.json({ error: { message: 'Rate limit reached for requests.', type: 'requests', code: 'rate_limit_exceeded' } }, { status: 429, headers: { 'retry-after': '7' } }),
      ),
    );
    const limited = await call(client, 'relayProxy', { method: 'GET', path: '/v1/models' });
    expect(limited.isError).toBe(true);
    expect(textOf(limited)).toBe('Rate limit reached for requests.');
    expect(limited.structuredContent).toMatchObject({ error: { code: 'rate_limit_exceeded', status: 429, retry_after_seconds: 7 } });
  });

  test('the action deadline applies: a slow upstream ends as a timeout tool error, in time', async () => {
    const quick = await testRelay({ ACTION_DEADLINE_MS: '1000' });
    const quickClient = await connect(quick.url);
    server.use(http.post(`${OPENAI_BASE}/v1/images/generations`, () => new Promise<Response>((resolve) => setTimeout(() => resolve(HttpResponse.json({ data: [] })), 5_000))));
    const started = Date.now();
    const result = await call(quickClient, 'generateActionImage', { prompt: 'slow' });
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toMatchObject({ error: { code: 'action_timeout', status: 504 } });
  });

  test('invalid arguments are tool errors naming the field; nothing reaches OpenAI', async () => {
    const missing = await call(client, 'createActionResponse', {});
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/^Invalid arguments: input: /);

    const wrongType = await call(client, 'generateActionImage', { prompt: 'x', n: 9 });
    expect(textOf(wrongType)).toMatch(/^Invalid arguments: n: /);

    const unknown = await call(client, 'listActionConversationItems', { conversation_id: 'conv_1', colour: 'red' });
    expect(textOf(unknown)).toBe('Invalid arguments: listActionConversationItems takes no argument colour.');

    const traversal = await call(client, 'getActionResponse', { response_id: '../../v1/organization' });
    expect(traversal.isError).toBe(true);
    expect(textOf(traversal)).toMatch(/Invalid path parameter 'response_id'/);

    const noId = await call(client, 'listActionConversationItems', {});
    expect(textOf(noId)).toBe('Invalid arguments: conversation_id is required.');

    const refs = await call(client, 'editActionImage', { prompt: 'x', openaiFileIdRefs: [{ name: 'a.png' }] });
    expect(textOf(refs)).toMatch(/^Invalid arguments: openaiFileIdRefs\.0\.download_link: /);

    const envelope = await call(client, 'relayProxy', { method: 'PATCH', path: '/v1/models' });
    expect(textOf(envelope)).toMatch(/^Invalid arguments: method: /);
    expect(openaiCalls()).toEqual([]);
  });

  test('an unknown tool is a protocol error (-32602)', async () => {
    await expect(client.callTool({ name: 'deleteEverything', arguments: {} })).rejects.toThrow(/Unknown tool: deleteEverything/);
  });

  test('requests are recorded like any other: a log line per HTTP request with the key label, under the MCP method or the tool', async () => {
    const before = relay.logs.length;
    server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
    await client.listTools();
    await call(client, 'relayProxy', { method: 'GET', path: '/v1/models' });
    await client.callTool({ name: 'deleteEverything', arguments: {} }).catch(() => {});
    const lines = relay.logs.slice(before).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    expect(lines.map((l) => l.op)).toEqual(['mcp:tools/list', 'relayProxy', 'mcp:tools/call']);
    expect(lines.every((l) => l.key === 'key-1')).toBe(true);
    // One line per HTTP request, never under the path.
    expect(new Set(lines.map((l) => l.reqId)).size).toBe(lines.length);
    expect(relay.logs.map((l) => JSON.parse(l)).filter((l) => l.op === '/mcp')).toEqual([]);
  });
});

describe('HTTP: auth, limits, methods', () => {
  test('no key → 401 with WWW-Authenticate; a wrong key or the OpenAI key → 401', async () => {
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const none = await rpc(relay.url, list, {});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="openai-relay"');
    expect((await none.json()).error.code).toBe('missing_relay_key');
    for (const key of ['not-the-relay-key-000000', OPENAI_KEY]) {
      const wrong = await rpc(relay.url, list, { authorization: `Bearer ${key}` });
      expect(wrong.status).toBe(401);
      expect((await wrong.json()).error.code).toBe('invalid_relay_key');
    }
    // The SDK client surfaces the 401 too.
    await expect(connect(relay.url, 'not-the-relay-key-000000')).rejects.toThrow();
    expect(openaiCalls()).toEqual([]);
  });

  test('per-key limits apply to /mcp: the third request of key-1 in a minute is refused with 429; key-2 is not', async () => {
    const limited = await testRelay({ RATE_LIMITS: 'key-1=2/min' });
    const list = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
    const first = await rpc(limited.url, list(1));
    expect(first.status).toBe(200);
    expect((await first.json()).result.tools).toHaveLength(14);
    expect((await rpc(limited.url, list(2))).status).toBe(200);
    const third = await rpc(limited.url, list(3));
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await third.json()).error.type).toBe('rate_limit_error');
    expect((await rpc(limited.url, list(4), { authorization: `Bearer ${RELAY_KEY_2}` })).status).toBe(200);
  });

  test('stateless: no session id; GET and DELETE answer 405 with Allow: POST', async () => {
    const res = await rpc(relay.url, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(res.status).toBe(200);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(res.headers.get('x-request-id')).toMatch(/^req_relay_/);
    for (const method of ['GET', 'DELETE']) {
      const other = await relay.call('/mcp', { method, headers: { accept: 'text/event-stream' } });
      expect(other.status).toBe(405);
      expect(other.headers.get('allow')).toBe('POST');
      expect((await other.json()).error.code).toBe('method_not_allowed');
    }
  });

  test('bad bodies: invalid JSON → 400, not JSON → 415, oversized → 413, two requests in a batch → 400', async () => {
    const post = (body: string, contentType = 'application/json') =>
      relay.call('/mcp', { method: 'POST', headers: { 'content-type': contentType, accept: 'application/json, text/event-stream' }, body });
    const bad = await post('{"jsonrpc": "2.0",');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ code: 'invalid_json', type: 'invalid_request_error' });
    expect((await post('x', 'text/plain')).status).toBe(415);
    const big = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'createActionResponse', arguments: { input: 'x'.repeat(1_100_000) } } }));
    expect(big.status).toBe(413);
    const batch = await post(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'tools/list' }]));
    expect(batch.status).toBe(400);
    expect((await batch.json()).error.code).toBe('batch_not_supported');
  });
});

describe('the tool list is generated from the spec', () => {
  const contract = () => structuredClone(loadSpec(fixture('contract.yaml'))) as any;
  const buildToolList = (spec: object) => buildTools(spec).map((entry) => entry.tool);
  const byName = (tools: McpTool[]) => new Map(tools.map((t) => [t.name, t]));

  test('a fixture contract: one tool per marked operation, schemas resolved and merged', () => {
    const tools = buildToolList(contract());
    expect(tools.map((t) => t.name)).toEqual(['createThing', 'getThing', 'searchThing']);
    const [create, get, search] = tools;
    expect(create.description).toBe('Creates a thing from a tree of parts.');
    expect(get.description).toBe('Get a thing');
    expect(create.annotations).toEqual({ title: 'Create a thing', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true });
    expect(get.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(get.inputSchema).toEqual({
      type: 'object',
      properties: { thing_id: { type: 'string', description: "The thing's id." }, verbose: { type: 'boolean', description: 'Say more.' } },
      required: ['thing_id'],
      additionalProperties: false,
    });
    // A recursive schema becomes a $defs entry; `x-relay` metadata is gone, a property named x-relay stays.
    expect(create.inputSchema.required).toEqual(['name']);
    expect(create.inputSchema.properties.root).toMatchObject({ type: 'object', properties: { children: { type: 'array', items: { $ref: '#/$defs/Part' } } } });
    expect(create.inputSchema.$defs!.Part.properties.children.items).toEqual({ $ref: '#/$defs/Part' });
    expect(create.inputSchema.properties.root.properties['x-relay']).toMatchObject({ type: 'string' });
    expect(JSON.stringify(create.inputSchema)).not.toContain('internal');
    // An optional body: its required fields are not required arguments.
    expect(search.inputSchema.required).toEqual(['thing_id']);
  });

  test('flipping, removing or adding a mark changes the list accordingly', () => {
    const base = byName(buildToolList(contract()));

    const flipped = contract();
    flipped.paths['/v1/things'].post['x-relay'].action.consequential = false;
    const afterFlip = byName(buildToolList(flipped));
    expect(base.get('createThing')!.annotations.destructiveHint).toBe(true);
    expect(afterFlip.get('createThing')!.annotations.destructiveHint).toBe(false);

    const removed = contract();
    delete removed.paths['/v1/things/{thing_id}'].get['x-relay'].action;
    expect([...byName(buildToolList(removed)).keys()]).toEqual(['createThing', 'searchThing']);

    const added = contract();
    added.paths['/v1/things'].get['x-relay'].action = { consequential: false };
    const afterAdd = byName(buildToolList(added));
    expect([...afterAdd.keys()]).toEqual(['listThings', 'createThing', 'getThing', 'searchThing']);
    expect(afterAdd.get('listThings')!.inputSchema.properties.limit).toEqual({ type: 'integer', minimum: 1, description: 'How many.' });

    const malformed = contract();
    malformed.paths['/v1/things'].get['x-relay'].action = true;
    expect(() => buildToolList(malformed)).toThrow(McpToolError);
    const multipart = contract();
    multipart.paths['/v1/things'].post.requestBody.content = { 'multipart/form-data': { schema: { type: 'object', properties: {} } } };
    expect(() => buildToolList(multipart)).toThrow(/POST \/v1\/things: an action operation takes a JSON body/);
  });

  test('the real spec: marks decide the list, and generated/mcp-tools.ts is exactly what it makes', () => {
    const real = structuredClone(loadSpec()) as any;
    expect(buildTools(real)).toEqual(mcpTools);
    expect(buildToolList(real).map((t) => t.name)).toEqual(operations.filter((o) => o.action).map((o) => o.operationId).sort((a, b) => order(a) - order(b)));
    real.paths['/v1/actions/images/generations'].post['x-relay'].action.consequential = false;
    delete real.paths['/v1/actions/conversations/{conversation_id}/items'].get['x-relay'].action;
    // A retired operation leaves the tool list, mark and all.
    real.paths['/v1/actions/responses/{response_id}'].get['x-relay'].retired = { date: '2030-01-01', source: 'https://example.com/x', replacement: null, product: 'x' };
    const tools = byName(buildToolList(real));
    expect(tools.get('generateActionImage')!.annotations.destructiveHint).toBe(false);
    expect(tools.has('listActionConversationItems')).toBe(false);
    expect(tools.has('getActionResponse')).toBe(false);
    expect(tools.size).toBe(12);
  });

  test('the served tools join the route table and the handlers by operationId, with no second derivation', () => {
    const { list, byName: served } = createMcpTools();
    expect(list).toEqual(mcpTools.map((e) => e.tool));
    for (const [name, entry] of served) {
      expect(entry.operation.operationId).toBe(name);
      expect([entry.layout.method, entry.layout.path]).toEqual([entry.operation.method, entry.operation.path]);
      expect(entry.operation.action, name).not.toBeNull();
      expect(Boolean(entry.handler), name).toBe(name !== 'relayProxy' && Object.hasOwn(actionHandlers, name));
    }
    expect([...served.keys()].sort()).toEqual(operations.filter((o) => o.action).map((o) => o.operationId).sort());
    // A tool list that names an operation the route table lacks is a stale generated/ and stops the MCP door.
    expect(() => createMcpTools([{ ...mcpTools[0], layout: { ...mcpTools[0].layout, operationId: 'noSuchOperation' } }])).toThrow(/run npm run generate/);
  });
});

/** Document order of the action operations in schemas/openapi.yaml. */
const specOrder = Object.values(loadSpec().paths as Record<string, Record<string, any>>).flatMap((item) => Object.values(item).map((op) => op?.operationId));
function order(operationId: string): number {
  return specOrder.indexOf(operationId);
}
