import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { expectOpenAIError } from './helpers/assertions.ts';

/** The relay's own refusals: no param, a message that is a sentence. */
const AUTH_ERROR = { param: null, minMessageLength: 11 };

/**
 * Relay auth (fail closed, two header forms, several keys), public health, and CORS answered before auth.
 */
const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(() => relay.shutdown());

const MODELS = { object: 'list', data: [{ id: 'gpt-5', object: 'model', created: 1, owned_by: 'openai' }] };
const mockModels = () => server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json(MODELS)));


function expectNoSecrets(text: string) {
  for (const secret of [OPENAI_KEY, RELAY_KEY, RELAY_KEY_2]) expect(text).not.toContain(secret);
}

describe('relay key required', () => {
  test('no key → 401 in OpenAI error shape with WWW-Authenticate, nothing sent upstream', async () => {
    mockModels();
    const res = await fetch(`${relay.url}/v1/models`);
    const error = await expectOpenAIError(res, 401, AUTH_ERROR);
    expect(error.type).toBe('authentication_error');
    expect(error.code).toBe('missing_relay_key');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(upstream).toHaveLength(0);
  });

  test('a wrong key (Bearer or X-Relay-Key) → 401, nothing sent upstream', async () => {
    mockModels();
    const attempts: Record<string, string>[] = [
      { authorization: 'Bearer relay-key-wrong-0000000000' },
      { 'x-relay-key': 'relay-key-wrong-0000000000' },
      { authorization: `Bearer ${RELAY_KEY}x` },
      { authorization: `Bearer ${RELAY_KEY.slice(0, -1)}` },
      { authorization: RELAY_KEY }, // no scheme
      { authorization: `Basic ${Buffer.from(`user:${RELAY_KEY}`).toString('base64')}` },
      { authorization: 'Bearer ' },
      { 'x-relay-key': ' ' },
    ];
    for (const headers of attempts) {
      const res = await relay.call('/v1/models', { headers });
      const error = await expectOpenAIError(res, 401, AUTH_ERROR);
      expect(error.type).toBe('authentication_error');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    }
    expect(upstream).toHaveLength(0);
  });

  test('the OpenAI key itself is not a relay key → 401, and the answer does not echo it', async () => {
    mockModels();
    const attempts: Record<string, string>[] = [{ authorization: `Bearer ${OPENAI_KEY}` }, { 'x-relay-key': OPENAI_KEY }];
    for (const headers of attempts) {
      const res = await relay.call('/v1/models', { headers });
      expect(res.status).toBe(401);
      const text = await res.text();
      expectNoSecrets(text);
    }
    expect(upstream).toHaveLength(0);
  });

  test('a 401 on a POST with a body reaches nothing upstream either', async () => {
    server.use(http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json({ id: 'resp_1' })));
    const res = await fetch(`${relay.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer nope-nope-nope-nope-nope' },
      body: JSON.stringify({ model: 'gpt-5', input: 'hi' }),
    });
    await expectOpenAIError(res, 401, AUTH_ERROR);
    expect(upstream).toHaveLength(0);
  });

  test('the first and the second configured key both work as Bearer', async () => {
    mockModels();
    for (const key of [RELAY_KEY, RELAY_KEY_2]) {
      const res = await relay.call('/v1/models', { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(MODELS);
    }
    expect(upstream).toHaveLength(2);
    for (const seen of upstream) expect(seen.headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
  });

  test('X-Relay-Key works, with either key', async () => {
    mockModels();
    for (const key of [RELAY_KEY, RELAY_KEY_2]) {
      const res = await relay.call('/v1/models', { headers: { 'x-relay-key': key } });
      expect(res.status).toBe(200);
    }
    expect(upstream).toHaveLength(2);
  });

  test('the Bearer scheme is case-insensitive', async () => {
    mockModels();
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      const res = await relay.call('/v1/models', { headers: { authorization: `${scheme} ${RELAY_KEY}` } });
      expect(res.status).toBe(200);
    }
  });

  test('a wrong Bearer does not shadow a right X-Relay-Key', async () => {
    mockModels();
    const res = await relay.call('/v1/models', { headers: { authorization: `Bearer ${OPENAI_KEY}`, 'x-relay-key': RELAY_KEY_2 } });
    expect(res.status).toBe(200);
    expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
  });

  test('unknown paths need the key too (401 before 404, so the route table is not probed anonymously)', async () => {
    const res = await fetch(`${relay.url}/v1/organization/users`);
    await expectOpenAIError(res, 401, AUTH_ERROR);
    expect(upstream).toHaveLength(0);
  });
});

describe('health is public', () => {
  for (const path of ['/health', '/v1/health']) {
    test(`GET ${path} → 200 without a key, no key material in the answer`, async () => {
      const res = await fetch(relay.url + path);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBeTruthy();
      const text = await res.text();
      expect(JSON.parse(text)).toMatchObject({ status: 'ok' });
      expectNoSecrets(text);
      expect(text).not.toMatch(/sk-/);
      for (const value of res.headers.values()) expectNoSecrets(value);
      expect(upstream).toHaveLength(0);
    });
  }

  test('GET /health with a wrong key is still 200 (health never checks keys)', async () => {
    const res = await fetch(`${relay.url}/health`, { headers: { authorization: 'Bearer wrong-wrong-wrong-wrong' } });
    expect(res.status).toBe(200);
  });
});

describe('RELAY_AUTH=off', () => {
  test('requests pass without a key', async () => {
    const open = await startTestRelay({ RELAY_AUTH: 'off', RELAY_KEY: '' });
    try {
      mockModels();
      const res = await fetch(`${open.url}/v1/models`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(MODELS);
      expect(upstream).toHaveLength(1);
      expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    } finally {
      await open.shutdown();
    }
  });
});

describe('CORS', () => {
  test('a preflight from https://chatgpt.com is answered 204 before auth (no key sent)', async () => {
    mockModels();
    const res = await fetch(`${relay.url}/v1/responses`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://chatgpt.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://chatgpt.com');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    const allowHeaders = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    expect(allowHeaders).toContain('authorization');
    expect(allowHeaders).toContain('content-type');
    expect(allowHeaders).toContain('x-relay-key');
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(upstream).toHaveLength(0);
  });

  test('a preflight from an unlisted origin gets no allow-origin header and reaches nothing upstream', async () => {
    const res = await fetch(`${relay.url}/v1/responses`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(upstream).toHaveLength(0);
  });

  test('a real request from https://chat.openai.com gets allow-origin on a relay-made error and on a forwarded answer', async () => {
    mockModels();
    const origin = 'https://chat.openai.com';
    const denied = await fetch(`${relay.url}/v1/models`, { headers: { origin } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(origin);

    const missing = await relay.call('/v1/no-such-thing', { headers: { origin } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe(origin);

    const ok = await relay.call('/v1/models', { headers: { origin } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
    expect((ok.headers.get('access-control-expose-headers') ?? '').toLowerCase()).toContain('x-request-id');
    expect(await ok.json()).toEqual(MODELS);
  });

  test('a real request from an unlisted origin gets no allow-origin header', async () => {
    mockModels();
    const res = await relay.call('/v1/models', { headers: { origin: 'https://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('CORS_ORIGINS is configurable', async () => {
    const custom = await startTestRelay({ CORS_ORIGINS: 'https://app.example.com, https://other.example.org/' });
    try {
      const pre = (origin: string) =>
        fetch(`${custom.url}/v1/models`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
      const listed = await pre('https://app.example.com');
      expect(listed.status).toBe(204);
      expect(listed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      const trailingSlashConfigured = await pre('https://other.example.org');
      expect(trailingSlashConfigured.headers.get('access-control-allow-origin')).toBe('https://other.example.org');
      const defaultNoLonger = await pre('https://chatgpt.com');
      expect(defaultNoLonger.headers.get('access-control-allow-origin')).toBeNull();

      mockModels();
      const ok = await custom.call('/v1/models', { headers: { origin: 'https://app.example.com' } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    } finally {
      await custom.shutdown();
    }
    expect(upstream).toHaveLength(1);
  });
});
