import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { OPENAI_KEY, RELAY_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * Two doors lead to the forwarding core: the pass-through fast path (plain SDK calls) and the Hono app
 * (browsers with an Origin, and everything else). The same call must look the same upstream and come
 * back the same, whichever door it took.
 */
const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay({ LOG_LEVEL: 'info' });
});
afterAll(() => relay.shutdown());

const ORIGIN = 'https://chatgpt.com';

test('a pass-through call is forwarded identically through either door', async () => {
  server.use(
    http.post(`${OPENAI_BASE}/v1/vector_stores/:id/search`, async ({ request }) =>
      HttpResponse.json({ echoed: await request.text() }, { headers: { 'x-request-id': 'req_up' } }),
    ),
  );
  const body = '{"query":"refunds",  "unknown_field": [1, 2]}';
  const send = (origin?: string) =>
    rawRequest(relay.url, {
      method: 'POST',
      path: '/v1/vector_stores/vs_1/search?limit=2&include=a&include=b',
      headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json', cookie: 'a=b', ...(origin ? { origin } : {}) },
      body,
    });
  const plain = await send();
  const browser = await send(ORIGIN);
  expect(plain.status).toBe(200);
  expect(browser.status).toBe(200);
  expect(browser.body).toBe(plain.body);
  expect(JSON.parse(plain.body)).toEqual({ echoed: body });
  expect(plain.headers['x-request-id']).toBe('req_up');
  expect(browser.headers['access-control-allow-origin']).toBe(ORIGIN);
  expect(plain.headers['access-control-allow-origin']).toBeUndefined();

  expect(upstream).toHaveLength(2);
  const [a, b] = upstream;
  expect(a.url.href).toBe(b.url.href);
  expect(Object.fromEntries(a.headers)).toEqual(Object.fromEntries(b.headers));
  expect(a.headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
  expect(a.headers.get('cookie')).toBeNull();

  // One record each, under the operation, with the key label.
  const records = relay.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.op === 'searchVectorStore');
  expect(records.map((r) => [r.key, r.status])).toEqual([
    ['key-1', 200],
    ['key-1', 200],
  ]);
});

test('whatever the fast door does not take is answered by the app, the same way', async () => {
  const cases: [string, Record<string, string>, number][] = [
    ['/v1/models', {}, 401],
    ['/v1/models', { authorization: 'Bearer wrong-key-000000000000' }, 401],
    ['/v1/files/%2e%2e', { authorization: `Bearer ${RELAY_KEY}` }, 400],
    ['/v1/nope', { authorization: `Bearer ${RELAY_KEY}` }, 404],
  ];
  for (const [path, headers, status] of cases) {
    const answer = await rawRequest(relay.url, { path, headers });
    expect(answer.status, path).toBe(status);
    expect(JSON.parse(answer.body).error.message, path).toBeTruthy();
    expect(answer.headers['x-request-id'], path).toMatch(/^req_relay_/);
  }
  expect(upstream).toEqual([]);
});

test('the pass-through door has an error boundary: an unexpected failure is a logged 500 in OpenAI\'s shape, and the key\'s slot comes back', async () => {
  const { createServer } = await import('node:http');
  const { loadConfig } = await import('../src/config.ts');
  const { createGate } = await import('../src/core/gate.ts');
  const { createPassThroughDoor } = await import('../src/core/fast-path.ts');
  const { createLogger } = await import('../src/core/logger.ts');
  const { createOps } = await import('../src/ops/index.ts');
  const { Writable } = await import('node:stream');
  const lines: string[] = [];
  const logger = createLogger('info', new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }) as never);
  const config = loadConfig({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, MAX_IN_FLIGHT_PER_KEY: '1', USAGE_LEDGER: 'off' });
  const ops = await createOps(config, logger);
  const gate = createGate(config, ops);
  let calls = 0;
  const failing = { forwardToOpenAI: () => (calls++ % 2 === 0 ? Promise.reject(new Error('boom in the core')) : (() => { throw new Error('thrown synchronously'); })()), close() {} };
  const door = createPassThroughDoor(config, { forwarder: failing as never, gate, ops, logger });
  const server = createServer((req, res) => {
    if (!door(req, res)) res.writeHead(418).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    // Twice per failure kind: with one in-flight slot, the second call would get 429 if the first kept it.
    for (let i = 0; i < 4; i++) {
      const answer = await rawRequest(url, { path: '/v1/models', headers: { authorization: `Bearer ${RELAY_KEY}` } });
      expect(answer.status).toBe(500);
      expect(JSON.parse(answer.body).error).toMatchObject({ type: 'server_error', code: 'relay_error', message: 'The relay failed to handle this request.' });
      expect(answer.headers['x-request-id']).toMatch(/^req_relay_/);
    }
    const errors = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'unhandled error');
    expect(errors.map((l) => l.err.message)).toEqual(['boom in the core', 'thrown synchronously', 'boom in the core', 'thrown synchronously']);
  } finally {
    server.close();
    await ops.close();
  }
});
