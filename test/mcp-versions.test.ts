import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { connectWithOAuth, startOAuthRelay, type OAuthRelay } from './helpers/oauth.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { OPENAI_KEY, RELAY_KEY, startTestRelay } from './helpers/relay.ts';

/**
 * One /mcp endpoint, three protocol versions, with raw requests as the specification writes them:
 * 2026-07-28 (no initialize: every request carries its version and capabilities in `_meta`, and
 * `Mcp-Method`/`Mcp-Name` headers that must agree with the body; `server/discover` says what the server
 * supports), and 2025-06-18 / 2025-11-25 (initialize first). (test/mcp.test.ts drives 2025-11-25 with
 * the SDK 1.x client.)
 */
const { server, upstream } = useMockOpenAI();

const MODERN = '2026-07-28';
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw-2026-client', version: '1.0.0' },
};

let relay: OAuthRelay;
let issuer: string;
beforeAll(async () => {
  relay = await startOAuthRelay();
  issuer = relay.issuer;
});
afterAll(() => relay.shutdown());

let nextId = 1;
/** A 2026-07-28 request: envelope in `_meta`, the version and Mcp-* headers (`headers` may change or drop them). */
async function modern(method: string, params: Record<string, unknown> = {}, headers: Record<string, string | null> = {}, bearer = RELAY_KEY) {
  const all: Record<string, string | null> = {
    authorization: `Bearer ${bearer}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MODERN,
    'mcp-method': method,
    ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
    ...headers,
  };
  const res = await fetch(`${issuer}/mcp`, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null)) as Record<string, string>,
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta: { ...ENVELOPE, ...(params._meta as object) } } }),
  });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as { result?: any; error?: { code: number; message: string; data?: any } } };
}

async function legacy(method: string, params: Record<string, unknown> | undefined, version?: string) {
  const res = await fetch(`${issuer}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${RELAY_KEY}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(version ? { 'mcp-protocol-version': version } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, ...(params ? { params } : {}) }),
  });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as { result?: any; error?: { code: number } } };
}

describe('2026-07-28: stateless, no initialize', () => {
  test('server/discover says what the server supports, without initialize', async () => {
    const { status, type, body } = await modern('server/discover');
    expect(status).toBe(200);
    expect(type).toContain('application/json');
    expect(body.result).toMatchObject({
      supportedVersions: [MODERN],
      capabilities: { tools: { listChanged: false } },
      resultType: 'complete',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'openai-relay' } },
    });
    expect(body.result.instructions).toEqual(expect.any(String));
  });

  test('tools/list without initialize: the tools, cacheable (ttlMs, private)', async () => {
    const { status, body } = await modern('tools/list');
    expect(status).toBe(200);
    expect(body.result.tools.map((t: { name: string }) => t.name)).toContain('relayProxy');
    expect(body.result).toMatchObject({ resultType: 'complete', ttlMs: 300_000, cacheScope: 'private' });
  });

  test('tools/call with Mcp-Name runs the tool (upstream with the server key)', async () => {
    server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [{ id: 'gpt-5', object: 'model' }] })));
    const { status, body } = await modern('tools/call', { name: 'relayProxy', arguments: { method: 'GET', path: '/v1/models' } });
    expect(status).toBe(200);
    expect(body.result).toMatchObject({ resultType: 'complete', structuredContent: { object: 'list', data: [{ id: 'gpt-5' }] } });
    expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
  });

  test('headers that disagree with the body, or are missing, are refused: 400 HeaderMismatch (-32020)', async () => {
    const cases = [
      await modern('tools/list', {}, { 'mcp-method': null }),
      await modern('tools/list', {}, { 'mcp-method': 'tools/call' }),
      await modern('tools/call', { name: 'relayProxy', arguments: { method: 'GET', path: '/v1/models' } }, { 'mcp-name': 'generateActionImage' }),
      await modern('tools/call', { name: 'relayProxy', arguments: {} }, { 'mcp-name': null }),
      await modern('tools/list', {}, { 'mcp-protocol-version': '2025-11-25' }),
    ];
    for (const { status, body } of cases) {
      expect(status).toBe(400);
      expect(body.error!.code).toBe(-32020);
    }
    expect(upstream).toEqual([]);
  });

  test('an unsupported version is refused naming the supported ones (-32022)', async () => {
    const { status, body } = await modern('tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } }, { 'mcp-protocol-version': '2099-01-01' });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: -32022, data: { supported: [MODERN] } });
  });

  test('an unknown method is 404 with -32601', async () => {
    const { status, body } = await modern('prompts/get', { name: 'x' });
    expect(status).toBe(404);
    expect(body.error!.code).toBe(-32601);
  });

  test('an OAuth access token works the same', async () => {
    const { access } = await connectWithOAuth(issuer, RELAY_KEY);
    const { status, body } = await modern('tools/list', {}, {}, access);
    expect(status).toBe(200);
    expect(body.result.tools.length).toBeGreaterThan(0);
  });
});

describe('2025-06-18 and 2025-11-25: initialize first', () => {
  for (const version of ['2025-06-18', '2025-11-25']) {
    test(`${version}: initialize negotiates it; tools/list answers as one JSON body`, async () => {
      const init = await legacy('initialize', { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw-legacy', version: '1' } });
      expect(init.status).toBe(200);
      expect(init.body.result).toMatchObject({ protocolVersion: version, serverInfo: { name: 'openai-relay' }, capabilities: { tools: {} } });
      const list = await legacy('tools/list', undefined, version);
      expect(list.status).toBe(200);
      expect(list.type).toContain('application/json');
      expect(list.body.result.tools.length).toBeGreaterThan(0);
      // The 2026 fields belong to 2026 only.
      expect(list.body.result.resultType).toBeUndefined();
    });
  }

  test('initialize naming 2026-07-28 is answered with the newest initialize-era version', async () => {
    const init = await legacy('initialize', { protocolVersion: MODERN, capabilities: {}, clientInfo: { name: 'raw', version: '1' } });
    expect(init.body.result.protocolVersion).toBe('2025-11-25');
  });
});

test('a request from a browser origin the relay does not serve is refused (403: DNS rebinding); allowed origins pass', async () => {
  expect((await modern('tools/list', {}, { origin: 'http://attacker.example.com' })).status).toBe(403);
  expect((await modern('tools/list', {}, { origin: 'https://chatgpt.com' })).status).toBe(200);
  expect((await modern('tools/list', {}, { origin: issuer })).status).toBe(200);
});

test("the relay's own loopback origin is allowed (no PUBLIC_BASE_URL needed); a rebound name is not", async () => {
  const plain = await startTestRelay({ LOG_LEVEL: 'silent' });
  try {
    const own = new URL(plain.url).host;
    const post = (origin: string, hostHeader: string) =>
      rawRequest(plain.url, { method: 'POST', path: '/mcp', headers: { host: hostHeader, origin, authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
    expect((await post(`http://${own}`, own)).status).toBe(200);
    expect((await post('http://evil.example.com', 'evil.example.com')).status).toBe(403);
  } finally {
    await plain.shutdown();
  }
});
