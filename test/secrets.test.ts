import { http as mswHttp, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * The OpenAI key and the relay keys stay secret: never in a log line, never in anything a caller sees
 * (except what the caller sent itself), the OpenAI key redacted when an upstream error echoes it, and the
 * relay keys never forwarded upstream.
 */
const { server, upstream } = useMockOpenAI();
const SECRETS = { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2 };

function expectNoSecret(text: string, where: string) {
  for (const [name, secret] of Object.entries(SECRETS)) {
    expect(text.includes(secret), `${name} found in ${where}: ${text.slice(0, 400)}`).toBe(false);
  }
}

/** Everything a client can see of an answer: status line, every header, the whole body. */
async function visible(res: Response): Promise<string> {
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
  return `${res.status}\n${headers}\n\n${await res.text()}`;
}

/** Upstream handlers that answer like OpenAI, some of them echoing the key they were sent. */
function openAIHandlers() {
  server.use(
    mswHttp.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [{ id: 'gpt-5' }] }, { headers: { 'x-request-id': 'req_up_1' } })),
    mswHttp.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json({ id: 'resp_1', object: 'response', output: [] })),
    mswHttp.post(`${OPENAI_BASE}/v1/embeddings`, ({ request }) =>
      HttpResponse.json(
        { error: { message: `Incorrect API key provided: ${request.headers.get('authorization')?.slice(7)}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
        { status: 401, headers: { 'set-cookie': `session=${OPENAI_KEY}`, 'www-authenticate': `Bearer ${OPENAI_KEY}`, 'x-echo-key': OPENAI_KEY } },
      ),
    ),
    mswHttp.get(`${OPENAI_BASE}/v1/files/:id`, () =>
      HttpResponse.json({ error: { message: 'No such File object', type: 'invalid_request_error', param: 'id', code: null } }, { status: 404 }),
    ),
    mswHttp.post(`${OPENAI_BASE}/v1/chat/completions`, () => new HttpResponse(`upstream exploded while using key ${OPENAI_KEY}`, { status: 500, headers: { 'content-type': 'text/plain' } })),
  );
}

describe('redaction of upstream error bodies', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(() => relay.shutdown());

  test.each([400, 403, 404, 409, 422, 429, 500, 502, 503])('an upstream %i whose JSON body echoes the OpenAI key: status kept, key redacted, body otherwise intact', async (status) => {
    const body = {
      error: { message: `Incorrect API key provided: ${OPENAI_KEY}. You can find your API key at https://platform.openai.com.`, type: 'invalid_request_error', param: OPENAI_KEY, code: 'invalid_api_key' },
    };
    server.use(mswHttp.post(`${OPENAI_BASE}/v1/moderations`, () => HttpResponse.json(body, { status, headers: { 'x-request-id': 'req_up_err' } })));
    const res = await relay.call('/v1/moderations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' });
    expect(res.status).toBe(status);
    expect(res.headers.get('x-request-id')).toBe('req_up_err');
    const text = await res.text();
    expectNoSecret(text, 'the answer body');
    const parsed = JSON.parse(text) as typeof body;
    expect(parsed.error.message).toMatch(/^Incorrect API key provided: .+\. You can find your API key at https:\/\/platform\.openai\.com\.$/);
    expect(parsed.error.type).toBe('invalid_request_error');
    expect(parsed.error.code).toBe('invalid_api_key');
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
  });

  test('a chunked (no Content-Length) text error echoing the key several times, split across chunks, is redacted', async () => {
    const encoder = new TextEncoder();
    const full = `first ${OPENAI_KEY} then again ${OPENAI_KEY}!`;
    const cut = full.indexOf(OPENAI_KEY) + 10; // the key straddles two chunks
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/moderations`, () => {
        const stream = new ReadableStream({
          async start(controller) {
            controller.enqueue(encoder.encode(full.slice(0, cut)));
            await new Promise((r) => setTimeout(r, 20));
            controller.enqueue(encoder.encode(full.slice(cut)));
            controller.close();
          },
        });
        return new HttpResponse(stream, { status: 400, headers: { 'content-type': 'text/plain' } });
      }),
    );
    const res = await relay.call('/v1/moderations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(400);
    const text = await res.text();
    expectNoSecret(text, 'the answer body');
    expect(text.startsWith('first ')).toBe(true);
    expect(text.endsWith('!')).toBe(true);
    expect(text).toContain(' then again ');
  });

  test('an upstream 401 is the relay\'s own key refused: 502 upstream_auth_failed, nothing of the upstream answer, an error line', async () => {
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/moderations`, ({ request }) =>
        HttpResponse.json(
          { error: { message: `Incorrect API key provided: ${request.headers.get('authorization')?.slice(7)}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
          { status: 401, headers: { 'x-request-id': 'req_up_401' } },
        ),
      ),
    );
    const res = await relay.call('/v1/moderations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' });
    expect(res.status).toBe(502);
    const seen = await visible(res);
    expectNoSecret(seen, 'the answer');
    expect(JSON.parse(seen.slice(seen.indexOf('{'))).error).toMatchObject({ code: 'upstream_auth_failed', type: 'upstream_error' });
    expect(seen).toMatch(/OpenAI refused the relay's server key/);
    expect(seen).not.toContain('Incorrect API key provided');
    const line = relay.logs.map((l) => JSON.parse(l)).find((l) => l.level === 50 && /server key/.test(l.msg));
    expect(line, 'an error line for the operator').toBeTruthy();
    expectNoSecret(relay.logs.join('\n'), 'the logs');
  });

  test('through the proxy too: an upstream 401 echoing the key → 502 upstream_auth_failed, no upstream header carrying it', async () => {
    openAIHandlers();
    const res = await relay.call('/v1/proxy', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'POST', path: '/v1/embeddings', body: { input: 'x' } }),
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('x-echo-key')).toBeNull();
    const seen = await visible(res);
    expectNoSecret(seen, 'the proxy answer');
    expect(seen).toContain('upstream_auth_failed');
  });
});

describe('relay keys never reach upstream', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay();
  });
  afterAll(() => relay.shutdown());

  const callerHeaders: Array<[string, Record<string, string>]> = [
    ['Authorization: Bearer', { authorization: `Bearer ${RELAY_KEY}` }],
    ['X-Relay-Key', { 'x-relay-key': RELAY_KEY_2 }],
    ['both, plus the key in cookie, x-api-key, api-key, proxy-authorization and forwarded headers', {
      authorization: `Bearer ${RELAY_KEY}`,
      'x-relay-key': RELAY_KEY,
      cookie: `relay_key=${RELAY_KEY}; other=${RELAY_KEY_2}`,
      'x-api-key': RELAY_KEY,
      'api-key': RELAY_KEY_2,
      'proxy-authorization': `Bearer ${RELAY_KEY}`,
      'x-forwarded-authorization': `Bearer ${RELAY_KEY}`,
      'openai-organization': `org-${RELAY_KEY}`,
      'openai-project': `proj-${RELAY_KEY_2}`,
    }],
  ];

  test.each(callerHeaders)('direct GET and POST, key sent as %s: upstream sees only the server key', async (_name, headers) => {
    openAIHandlers();
    const get = await relay.call('/v1/models', { headers });
    expect(get.status).toBe(200);
    const post = await relay.call('/v1/responses', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"model":"gpt-5","input":"hi"}' });
    expect(post.status).toBe(200);
    const proxied = await relay.call('/v1/proxy', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'GET', path: '/v1/models' }),
    });
    expect(proxied.status).toBe(200);
    expect(upstream).toHaveLength(3);
    for (const request of upstream) {
      expect(request.headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
      expect(request.headers.get('cookie')).toBeNull();
      for (const [name, value] of request.headers) {
        expect(value.includes(RELAY_KEY), `${name} carries RELAY_KEY upstream`).toBe(false);
        expect(value.includes(RELAY_KEY_2), `${name} carries RELAY_KEY_2 upstream`).toBe(false);
      }
    }
    for (const res of [get, post, proxied]) expectNoSecret(await visible(res), 'an answer');
  });
});

describe('logs and answers after a mix of traffic', () => {
  test('no secret in any log line (trace level) or in any answer the client saw', async () => {
    const relay = await startTestRelay({ LOG_LEVEL: 'trace' });
    const answers: string[] = [];
    const see = async (p: Promise<Response>) => {
      const res = await p;
      answers.push(await visible(res));
      return res.status;
    };
    const json = { 'content-type': 'application/json' };
    try {
      openAIHandlers();
      // Successes, with either key in either header.
      expect(await see(relay.call('/v1/models'))).toBe(200);
      expect(await see(relay.call('/v1/models', { headers: { 'x-relay-key': RELAY_KEY_2 } }))).toBe(200);
      expect(await see(relay.call('/v1/responses', { method: 'POST', headers: json, body: '{"model":"gpt-5","input":"hi"}' }))).toBe(200);
      // Failed auth: no key, a wrong key, the OpenAI key presented as a relay key, a relay key with a typo
      // (it contains the real key), the key under another scheme, the key padded.
      const badAuth: Array<Record<string, string>> = [
        {},
        { authorization: 'Bearer not-a-relay-key-000000000' },
        { authorization: `Bearer ${OPENAI_KEY}` },
        { authorization: `Bearer ${RELAY_KEY}x` },
        { 'x-relay-key': `${RELAY_KEY_2}0` },
        { authorization: `Basic ${Buffer.from(`user:${RELAY_KEY}`).toString('base64')}` },
        { authorization: `Token ${RELAY_KEY}` },
        { authorization: `Bearer ${RELAY_KEY} extra` },
      ];
      for (const headers of badAuth) {
        const status = await see(fetch(`${relay.url}/v1/models`, { headers }));
        expect(status, JSON.stringify(headers)).toBe(401);
        const proxied = await see(fetch(`${relay.url}/v1/proxy`, { method: 'POST', headers: { ...headers, ...json }, body: '{"method":"GET","path":"/v1/models"}' }));
        expect(proxied).toBe(401);
      }
      // Upstream errors: a 401 (the server key refused: 502) and a 500 that echo the key, a plain 404.
      expect(await see(relay.call('/v1/embeddings', { method: 'POST', headers: json, body: '{"input":"x"}' }))).toBe(502);
      expect(await see(relay.call('/v1/chat/completions', { method: 'POST', headers: json, body: '{"model":"gpt-5","messages":[]}' }))).toBe(500);
      expect(await see(relay.call('/v1/files/file-1'))).toBe(404);
      // Proxy: a success, an upstream error, refusals.
      const proxy = (envelope: unknown) => relay.call('/v1/proxy', { method: 'POST', headers: json, body: JSON.stringify(envelope) });
      expect(await see(proxy({ method: 'GET', path: '/v1/models' }))).toBe(200);
      expect(await see(proxy({ method: 'POST', path: '/v1/embeddings', body: { input: 'x' } }))).toBe(502);
      expect(await see(proxy({ method: 'GET', path: '/v1/organization/admin_api_keys' }))).toBe(403);
      expect(await see(proxy({ method: 'GET', path: '/v1/../organization/users' }))).toBe(400);
      expect(await see(relay.call('/v1/proxy', { method: 'POST', headers: json, body: '{not json' }))).toBe(400);
      // Relay-made errors on direct routes.
      expect(await see(relay.call('/v1/organization/users'))).toBe(404);
      expect(await see(relay.call('/v1/models', { method: 'DELETE' }))).toBe(405);
      expect(await see(relay.call('/v1/responses', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }))).toBe(415);
      // Health is public and reveals nothing.
      expect(await see(fetch(`${relay.url}/health`))).toBe(200);
    } finally {
      await relay.shutdown();
    }
    expect(answers.length).toBeGreaterThan(20);
    answers.forEach((answer, i) => expectNoSecret(answer, `answer #${i}`));
    expect(relay.logs.length).toBeGreaterThan(5);
    relay.logs.forEach((line, i) => expectNoSecret(line, `log line #${i}`));
    // Every key-shaped fragment is absent too (a log must not carry even part of a key).
    const all = relay.logs.join('\n');
    for (const secret of Object.values(SECRETS)) expect(all).not.toContain(secret.slice(0, 16));
  });

  test('configuration errors never quote a key', () => {
    const attempts: Array<Record<string, string>> = [
      { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY: OPENAI_KEY },
      { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY: `${RELAY_KEY},short-${RELAY_KEY_2.slice(0, 4)}` },
      { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, OPENAI_BASE_URL: `https://user:${OPENAI_KEY}@api.openai.com/v1` },
    ];
    for (const env of attempts) {
      let message = '';
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message, JSON.stringify(env)).not.toBe('');
      expect(message.includes(OPENAI_KEY), message).toBe(false);
      expect(message.includes(RELAY_KEY), message).toBe(false);
    }
  });
});
