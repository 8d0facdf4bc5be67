import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { http as mswHttp, HttpResponse } from 'msw';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { rawRequest, type RawAnswer } from './helpers/raw-http.ts';

/**
 * Which headers cross the relay. A real loopback upstream records the raw headers it receives (an
 * in-process mock could hide a header the Fetch API drops), and the caller uses node:http so it can send
 * what fetch refuses to (Connection, Expect, Cookie...).
 */
const { server, upstream: mswSeen } = useMockOpenAI();

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

let seen: Seen[] = [];
let respond: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
const defaultRespond = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"ok":true}');
};

let local: LocalUpstream;
let relay: TestRelay;
let relayWithIdentity: TestRelay;

beforeAll(async () => {
  local = await startLocalUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body });
      respond(req, res, body);
    });
  });
  relay = await startTestRelay({ OPENAI_BASE_URL: local.baseUrl });
  relayWithIdentity = await startTestRelay({
    OPENAI_BASE_URL: local.baseUrl,
    OPENAI_ORGANIZATION: 'org-configured',
    OPENAI_PROJECT: 'proj_configured',
  });
});
afterAll(async () => {
  await relay.shutdown();
  await relayWithIdentity.shutdown();
  await local.close();
});
beforeEach(() => {
  seen = [];
  respond = defaultRespond;
});


const raw = rawRequest;

describe('request headers (caller → OpenAI)', () => {
  const body = JSON.stringify({ model: 'text-embedding-3-small', input: 'hello' });
  const callerHeaders: OutgoingHttpHeaders = {
    authorization: `Bearer ${RELAY_KEY}`,
    'x-relay-key': RELAY_KEY_2,
    cookie: 'session=abc123; other=def',
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'relay.example.com',
    forwarded: 'for=203.0.113.7;proto=https',
    'proxy-authorization': 'Basic dXNlcjpwYXNz',
    connection: 'keep-alive, x-hop-secret',
    'x-hop-secret': 'hop-value',
    'openai-organization': 'org-caller',
    'openai-project': 'proj_caller',
    'openai-beta': 'assistants=v2',
    'idempotency-key': 'idem-123',
    'user-agent': 'OpenAI/Python 1.99.0',
    'x-client-request-id': 'client-req-42',
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  const MUST_NOT_PASS = [
    'x-relay-key',
    'cookie',
    'x-forwarded-for',
    'x-forwarded-proto',
    'x-forwarded-host',
    'forwarded',
    'proxy-authorization',
    'x-hop-secret',
    'expect',
    'openai-organization',
    'openai-project',
  ];

  test('secrets, proxy and hop-by-hop headers stay behind; OpenAI-relevant ones pass; the body arrives intact', async () => {
    const res = await raw(relay.url, { method: 'POST', path: '/v1/embeddings', headers: callerHeaders, body });
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    const got = seen[0];
    expect(got.url).toBe('/v1/embeddings');
    expect(got.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    for (const name of MUST_NOT_PASS) expect(got.headers[name], name).toBeUndefined();
    expect(got.headers['openai-beta']).toBe('assistants=v2');
    expect(got.headers['idempotency-key']).toBe('idem-123');
    expect(got.headers['user-agent']).toBe('OpenAI/Python 1.99.0');
    expect(got.headers['x-client-request-id']).toBe('client-req-42');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.body.toString('utf8')).toBe(body);
    // The relay keys appear nowhere in what OpenAI received.
    const everything = got.rawHeaders.join('\n') + got.body.toString('utf8');
    expect(everything).not.toContain(RELAY_KEY);
    expect(everything).not.toContain(RELAY_KEY_2);
    expect(everything).not.toContain('session=abc123');
    expect(everything).not.toContain('hop-value');
  });

  test('upstream gets exactly one Host (the upstream\'s own) and, for a JSON body the caller sent chunked, its exact Content-Length', async () => {
    const { 'content-length': _cl, ...chunkedHeaders } = callerHeaders;
    const half = Math.floor(body.length / 2);
    const res = await raw(relay.url, { method: 'POST', path: '/v1/embeddings', headers: { ...chunkedHeaders, host: 'relay.example.com' }, chunks: [body.slice(0, half), body.slice(half)] });
    expect(res.status).toBe(200);
    const got = seen[0];
    expect(got.rawHeaders.filter((h) => h.toLowerCase() === 'host')).toHaveLength(1);
    expect(got.headers.host).toBe(new URL(local.baseUrl).host);
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(got.headers['transfer-encoding']).toBeUndefined();
    expect(got.body.toString('utf8')).toBe(body);
  });

  test('a POST the relay sends without a body (a proxied cancel) carries Content-Length: 0, not an empty chunked body', async () => {
    const envelope = JSON.stringify({ method: 'POST', path: '/v1/responses/resp_1/cancel' });
    const res = await raw(relay.url, { method: 'POST', path: '/v1/proxy', headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json' }, body: envelope });
    expect(res.status).toBe(200);
    const got = seen[0];
    expect(got.url).toBe('/v1/responses/resp_1/cancel');
    expect(got.headers['content-length']).toBe('0');
    expect(got.headers['transfer-encoding']).toBeUndefined();
    expect(got.headers['content-type']).toBeUndefined();
    expect(got.rawHeaders.filter((h) => h.toLowerCase() === 'host')).toHaveLength(1);
  });

  test('Expect: 100-continue on a POST with a body: the body is forwarded, Expect is not', async () => {
    const res = await raw(relay.url, {
      method: 'POST',
      path: '/v1/embeddings',
      headers: { ...callerHeaders, expect: '100-continue' },
      body,
      waitForContinue: true,
    });
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0].headers.expect).toBeUndefined();
    expect(seen[0].body.toString('utf8')).toBe(body);
  });

  test('caller OpenAI-Organization / OpenAI-Project never pass; the configured ones always do', async () => {
    const res = await raw(relayWithIdentity.url, { method: 'POST', path: '/v1/embeddings', headers: callerHeaders, body });
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0].headers['openai-organization']).toBe('org-configured');
    expect(seen[0].headers['openai-project']).toBe('proj_configured');
    expect(seen[0].headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    // Exactly one value each: the caller's was not appended next to the configured one.
    expect(seen[0].rawHeaders.filter((h) => h.toLowerCase() === 'openai-organization')).toHaveLength(1);
    expect(seen[0].rawHeaders.filter((h) => h.toLowerCase() === 'openai-project')).toHaveLength(1);
    expect(seen[0].rawHeaders.filter((h) => h.toLowerCase() === 'authorization')).toHaveLength(1);
  });

  test('the same rules hold on a GET without a body (no content-length/type invented, identity added)', async () => {
    const { 'content-type': _ct, 'content-length': _cl, ...getHeaders } = callerHeaders;
    const res = await raw(relayWithIdentity.url, { path: '/v1/models', headers: getHeaders });
    expect(res.status).toBe(200);
    const got = seen[0];
    expect(got.method).toBe('GET');
    expect(got.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(got.headers['openai-organization']).toBe('org-configured');
    for (const name of MUST_NOT_PASS.filter((n) => !n.startsWith('openai-'))) expect(got.headers[name], name).toBeUndefined();
    expect(got.body.length).toBe(0);
  });

  test('a relay key sent only via X-Relay-Key is not forwarded either', async () => {
    const res = await raw(relay.url, { path: '/v1/models', headers: { 'x-relay-key': RELAY_KEY_2 } });
    expect(res.status).toBe(200);
    expect(seen[0].headers['x-relay-key']).toBeUndefined();
    expect(seen[0].headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(seen[0].rawHeaders.join('\n')).not.toContain(RELAY_KEY_2);
  });
});

describe('response headers (OpenAI → caller)', () => {
  test('only allowlisted upstream headers reach the caller', async () => {
    respond = (_req, res) => {
      res.writeHead(200, [
        ['Content-Type', 'application/json'],
        ['Set-Cookie', '__cf_bm=secret-cookie; path=/; HttpOnly'],
        ['Set-Cookie', '_cfuvid=another; path=/'],
        ['Connection', 'close'],
        ['Keep-Alive', 'timeout=1234'],
        ['X-Internal-Secret', 'internal-value'],
        ['X-Request-Id', 'req_upstream_abc'],
        ['OpenAI-Processing-Ms', '321'],
        ['OpenAI-Organization', 'org-upstream-internal'],
        ['X-Ratelimit-Remaining-Requests', '4999'],
        ['X-Ratelimit-Limit-Tokens', '100000'],
        ['Retry-After', '7'],
        ['Strict-Transport-Security', 'max-age=31536000'],
        ['Alt-Svc', 'h3=":443"'],
        ['CF-Ray', '123abc-SJC'],
        ['Server', 'cloudflare'],
        ['Via', '1.1 internal-proxy'],
      ].flat());
      res.end('{"object":"list","data":[]}');
    };
    const res = await raw(relay.url, { path: '/v1/models', headers: { authorization: `Bearer ${RELAY_KEY}`, connection: 'keep-alive' } });
    expect(res.status).toBe(200);
    expect(res.body).toBe('{"object":"list","data":[]}');
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-request-id']).toBe('req_upstream_abc');
    expect(res.headers['openai-processing-ms']).toBe('321');
    expect(res.headers['x-ratelimit-remaining-requests']).toBe('4999');
    expect(res.headers['x-ratelimit-limit-tokens']).toBe('100000');
    expect(res.headers['retry-after']).toBe('7');
    for (const name of ['set-cookie', 'x-internal-secret', 'openai-organization', 'strict-transport-security', 'alt-svc', 'cf-ray', 'via']) {
      expect(res.headers[name], name).toBeUndefined();
    }
    // The relay's own connection management, not upstream's.
    expect(res.headers['keep-alive'] ?? '').not.toContain('1234');
    expect(res.headers.connection).not.toBe('close');
    expect(res.headers.server ?? '').not.toBe('cloudflare');
    const allRaw = res.rawHeaders.join('\n');
    expect(allRaw).not.toContain('secret-cookie');
    expect(allRaw).not.toContain('internal-value');
  });

  test('an upstream error body that echoes the OpenAI key comes back redacted, with the upstream status', async () => {
    const errorBody = JSON.stringify({
      error: { message: `Incorrect API key provided: ${OPENAI_KEY}. You can find your API key at https://platform.openai.com.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
    respond = (_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(errorBody), 'x-request-id': 'req_up_403' });
      res.end(errorBody);
    };
    const res = await raw(relay.url, { path: '/v1/models', headers: { authorization: `Bearer ${RELAY_KEY}` } });
    expect(res.status).toBe(403);
    expect(res.body).not.toContain(OPENAI_KEY);
    const parsed = JSON.parse(res.body);
    expect(parsed.error.code).toBe('invalid_api_key');
    expect(parsed.error.message).toContain('Incorrect API key provided');
    expect(res.headers['x-request-id']).toBe('req_up_403');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
  });

  test('the key is redacted from a chunked (no Content-Length) upstream error too, on a 500', async () => {
    respond = (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.write(`{"error":{"message":"upstream saw Authorization: Bearer ${OPENAI_KEY.slice(0, 10)}`);
      setTimeout(() => res.end(`${OPENAI_KEY.slice(10)} and failed","type":"server_error","param":null,"code":null}}`), 20);
    };
    const res = await raw(relay.url, {
      method: 'POST',
      path: '/v1/embeddings',
      headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json' },
      body: '{"model":"m","input":"x"}',
    });
    expect(res.status).toBe(500);
    expect(res.body).not.toContain(OPENAI_KEY);
    expect(JSON.parse(res.body).error.type).toBe('server_error');
  });
});

describe('x-request-id on every answer', () => {
  test('forwarded answer without an upstream id gets the relay id', async () => {
    respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    };
    const res = await raw(relay.url, { path: '/v1/models', headers: { authorization: `Bearer ${RELAY_KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toMatch(/\S{8,}/);
  });

  test('relay-made 401, 404, 405, 400 (bad path parameter, traversal) and 415 all carry x-request-id', async () => {
    const auth = { authorization: `Bearer ${RELAY_KEY}` };
    const cases: Array<[number, Parameters<typeof raw>[1]]> = [
      [401, { path: '/v1/models' }],
      [404, { path: '/v1/not-an-endpoint', headers: auth }],
      [405, { method: 'DELETE', path: '/v1/embeddings', headers: auth }],
      [400, { path: '/v1/files/bad%3Fid', headers: auth }],
      [400, { path: '/v1/files/%2e%2e%2forganization', headers: auth }],
      [415, { method: 'POST', path: '/v1/embeddings', headers: { ...auth, 'content-type': 'text/plain' }, body: 'hello' }],
    ];
    const ids = new Set<string>();
    for (const [status, opts] of cases) {
      const res = await raw(relay.url, opts);
      expect(res.status, `${opts.method ?? 'GET'} ${opts.path}`).toBe(status);
      const id = res.headers['x-request-id'];
      expect(id, `${opts.method ?? 'GET'} ${opts.path}`).toMatch(/\S{8,}/);
      ids.add(id as string);
      const parsed = JSON.parse(res.body);
      expect(parsed.error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
    }
    expect(ids.size).toBe(cases.length); // one fresh id per request
    expect(seen).toHaveLength(0);
  });


  test('a request the HTTP adapter refuses before routing (raw backslash in the path) still gets an OpenAI-shaped 400 with x-request-id', async () => {
    const res = await raw(relay.url, { path: '/v1/files/..\\organization', headers: { authorization: `Bearer ${RELAY_KEY}` } });
    expect(res.status).toBe(400);
    expect(res.headers['x-request-id']).toMatch(/\S{8,}/);
    const parsed = JSON.parse(res.body || 'null');
    expect(parsed?.error).toMatchObject({ message: expect.any(String), type: 'invalid_request_error' });
    expect(seen).toHaveLength(0);
  });
});

describe('with the in-process mock (the SDK-facing path)', () => {
  test('fetch-made request: relay key and cookie absent upstream, set-cookie absent downstream', async () => {
    const mocked = await startTestRelay();
    try {
      server.use(
        mswHttp.get(`${OPENAI_BASE}/v1/models`, () =>
          HttpResponse.json({ object: 'list', data: [] }, { headers: { 'set-cookie': 'a=b', 'x-internal-secret': 's', 'x-request-id': 'req_msw' } }),
        ),
      );
      const res = await mocked.call('/v1/models', { headers: { cookie: 'session=1', 'x-relay-key': RELAY_KEY_2 } });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(res.headers.get('x-internal-secret')).toBeNull();
      expect(res.headers.get('x-request-id')).toBe('req_msw');
      expect(mswSeen).toHaveLength(1);
      expect(mswSeen[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
      expect(mswSeen[0].headers.get('cookie')).toBeNull();
      expect(mswSeen[0].headers.get('x-relay-key')).toBeNull();
    } finally {
      await mocked.shutdown();
    }
  });
});
