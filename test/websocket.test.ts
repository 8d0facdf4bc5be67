import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type WebSocket from 'ws';
import { sample } from './helpers/assertions.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { closed, mustOpen, nextMessage, openSocket, until } from './helpers/ws-client.ts';
import { startWsUpstream, type WsUpstream } from './helpers/ws-upstream.ts';

/**
 * The WebSocket door end to end: a caller's `ws` client → the relay → a real `ws` server on loopback playing
 * OpenAI. Frames, pings and close codes both ways; the key checked on the upgrade with nothing opened
 * upstream on a refusal; the server key upstream; OpenAI's own refusals; usage rows per response; metrics.
 */

const ADMIN_KEY = 'admin-key-for-websockets-0123456';
const ORG = 'org-relay-test';
const PROJECT = 'proj_relay_test';
const usage = (input: number, output: number) => ({ input_tokens: input, output_tokens: output, total_tokens: input + output });

let upstream: WsUpstream;
let relay: TestRelay;
let wsBase: string;

beforeAll(async () => {
  upstream = await startWsUpstream();
  relay = await startTestRelay({
    OPENAI_BASE_URL: upstream.baseUrl,
    OPENAI_ORGANIZATION: ORG,
    OPENAI_PROJECT: PROJECT,
    RELAY_ADMIN_KEY: ADMIN_KEY,
    CORS_ORIGINS: 'https://app.example.com',
  });
  wsBase = relay.url.replace(/^http/, 'ws');
});
afterAll(async () => {
  await relay?.shutdown();
  await upstream?.close();
});
beforeEach(() => {
  upstream.refuse = undefined;
  upstream.onConnection = () => {};
});

const bearer = { headers: { authorization: `Bearer ${RELAY_KEY}` } };

/** The server side of the next connection the mock accepts. */
function nextUpstreamSocket(): Promise<WebSocket> {
  return new Promise((resolve) => (upstream.onConnection = (ws) => resolve(ws)));
}

describe('frames both ways', () => {
  test('text events cross unchanged both ways, the first server event included, in order', async () => {
    upstream.onConnection = (ws) => {
      ws.send(JSON.stringify({ type: 'session.created', session: { model: 'gpt-realtime' } }));
      ws.on('message', (data, isBinary) => ws.send(JSON.stringify({ type: 'echo', got: String(data), isBinary })));
    };
    const ws = await mustOpen(`${wsBase}/v1/realtime?model=gpt-realtime`, ['realtime'], bearer);
    const first = await nextMessage(ws);
    expect(first.isBinary).toBe(false);
    expect(JSON.parse(String(first.data))).toEqual({ type: 'session.created', session: { model: 'gpt-realtime' } });
    const events = Array.from({ length: 20 }, (_, i) => JSON.stringify({ type: 'conversation.item.create', n: i, text: 'héllo ✓' }));
    for (const e of events) ws.send(e);
    const answers = [];
    for (const _ of events) answers.push(JSON.parse(String((await nextMessage(ws)).data)));
    expect(answers).toEqual(events.map((e) => ({ type: 'echo', got: e, isBinary: false })));
    ws.close();
    await closed(ws);
  });

  test('binary audio frames arrive byte for byte and stay binary, both ways', async () => {
    const upstreamSide = nextUpstreamSocket();
    const ws = await mustOpen(`${wsBase}/v1/realtime?model=gpt-realtime`, ['realtime'], bearer);
    const server = await upstreamSide;
    const fromCaller = randomBytes(256 * 1024);
    const fromOpenAI = randomBytes(96 * 1024 + 7);
    const atServer = nextMessage(server);
    ws.send(fromCaller);
    const got = await atServer;
    expect(got.isBinary).toBe(true);
    expect(got.data.equals(fromCaller)).toBe(true);
    const atCaller = nextMessage(ws);
    server.send(fromOpenAI);
    const back = await atCaller;
    expect(back.isBinary).toBe(true);
    expect(back.data.equals(fromOpenAI)).toBe(true);
    ws.close();
    await closed(ws);
  });

  test('pings and pongs cross end to end', async () => {
    const upstreamSide = nextUpstreamSocket();
    const ws = await mustOpen(`${wsBase}/v1/responses`, [], bearer);
    const server = await upstreamSide;
    const pingAtServer = new Promise<Buffer>((resolve) => server.once('ping', resolve));
    const pongAtCaller = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
    ws.ping(Buffer.from('are you there'));
    expect(String(await pingAtServer)).toBe('are you there');
    // The mock answers its pings itself: the pong the caller gets is OpenAI's, carried back.
    expect(String(await pongAtCaller)).toBe('are you there');
    const pingAtCaller = new Promise<Buffer>((resolve) => ws.once('ping', resolve));
    const pongAtServer = new Promise<Buffer>((resolve) => server.once('pong', resolve));
    server.ping(Buffer.from('still here?'));
    expect(String(await pingAtCaller)).toBe('still here?');
    expect(String(await pongAtServer)).toBe('still here?');
    ws.close();
    await closed(ws);
  });
});

describe('close codes', () => {
  test("the caller's code and reason reach OpenAI", async () => {
    const upstreamSide = nextUpstreamSocket();
    const ws = await mustOpen(`${wsBase}/v1/realtime?model=gpt-realtime`, ['realtime'], bearer);
    const server = await upstreamSide;
    const atServer = closed(server);
    const atCaller = closed(ws);
    ws.close(4001, 'caller done');
    expect(await atServer).toEqual({ code: 4001, reason: 'caller done' });
    expect(await atCaller).toEqual({ code: 4001, reason: 'caller done' });
  });

  test("OpenAI's code and reason reach the caller", async () => {
    const upstreamSide = nextUpstreamSocket();
    const ws = await mustOpen(`${wsBase}/v1/realtime?model=gpt-realtime`, ['realtime'], bearer);
    const server = await upstreamSide;
    const atCaller = closed(ws);
    server.close(1008, 'policy: session expired');
    expect(await atCaller).toEqual({ code: 1008, reason: 'policy: session expired' });
  });

  test('a close without a status passes as one; OpenAI lost without a close frame is 1011 to the caller', async () => {
    let upstreamSide = nextUpstreamSocket();
    let ws = await mustOpen(`${wsBase}/v1/responses`, [], bearer);
    let server = await upstreamSide;
    const atServer = closed(server);
    ws.close();
    expect((await atServer).code).toBe(1005);

    upstreamSide = nextUpstreamSocket();
    ws = await mustOpen(`${wsBase}/v1/responses`, [], bearer);
    server = await upstreamSide;
    const atCaller = closed(ws);
    server.terminate();
    expect(await atCaller).toEqual({ code: 1011, reason: 'OpenAI connection lost' });
  });

  test('a caller gone without a close frame: OpenAI gets 1001', async () => {
    const upstreamSide = nextUpstreamSocket();
    const ws = await mustOpen(`${wsBase}/v1/responses`, [], bearer);
    const server = await upstreamSide;
    const atServer = closed(server);
    ws.terminate();
    expect(await atServer).toEqual({ code: 1001, reason: 'caller connection lost' });
  });
});

describe('keys on the upgrade', () => {
  test('OpenAI gets the server key, organization and project, and never the relay key, cookies or the key subprotocol', async () => {
    const before = upstream.upgrades.length;
    for (const [protocols, options] of [
      [['realtime'], { headers: { authorization: `Bearer ${RELAY_KEY}`, cookie: 'session=abc', 'openai-beta': 'realtime=v1', 'user-agent': 'OpenAI/JS 7' } }],
      [['realtime'], { headers: { 'x-relay-key': RELAY_KEY } }],
      [['realtime', `openai-insecure-api-key.${RELAY_KEY}`, 'openai-organization.org-evil', 'openai-beta.realtime-v1'], {}],
    ] as const) {
      const opened = await openSocket(`${wsBase}/v1/realtime?model=gpt-realtime&x=1`, [...protocols], options);
      if (opened.kind !== 'open') throw new Error(`refused: ${opened.status} ${opened.body}`);
      // The relay answers with what OpenAI chose among the rest: never the key's subprotocol.
      expect(opened.ws.protocol).toBe('realtime');
      // OpenAI's 101 headers pass through the same allowlist as its HTTP answers.
      expect(opened.headers['x-request-id']).toBe('req_upstream_ws');
      expect(opened.headers['set-cookie']).toBeUndefined();
      opened.ws.close();
      await closed(opened.ws);
    }
    const seen = upstream.upgrades.slice(before);
    expect(seen).toHaveLength(3);
    for (const { url, headers } of seen) {
      expect(url).toBe('/v1/realtime?model=gpt-realtime&x=1');
      expect(headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
      expect(headers['openai-organization']).toBe(ORG);
      expect(headers['openai-project']).toBe(PROJECT);
      expect(headers['x-relay-key']).toBeUndefined();
      expect(headers.cookie).toBeUndefined();
      expect(JSON.stringify(headers)).not.toContain(RELAY_KEY);
    }
    expect(seen[0].headers['openai-beta']).toBe('realtime=v1');
    expect(seen[0].headers['user-agent']).toBe('OpenAI/JS 7');
    expect(seen[2].headers['sec-websocket-protocol']).toBe('realtime,openai-beta.realtime-v1');
  });

  test.each([
    ['no key', {}, [], 'missing_relay_key'],
    ['a wrong bearer key', { authorization: 'Bearer not-a-relay-key-0000000' }, [], 'invalid_relay_key'],
    ['the OpenAI key', { 'x-relay-key': OPENAI_KEY }, [], 'invalid_relay_key'],
    ['a wrong key subprotocol', {}, ['realtime', 'openai-insecure-api-key.wrong-key-000000000'], 'invalid_relay_key'],
  ])('%s: 401 in OpenAI error shape, and no connection to OpenAI', async (_name, headers, protocols, code) => {
    const before = upstream.upgrades.length;
    const opened = await openSocket(`${wsBase}/v1/realtime?model=gpt-realtime`, protocols, { headers });
    expect(opened.kind).toBe('refused');
    if (opened.kind !== 'refused') return;
    expect(opened.status).toBe(401);
    expect(opened.headers['www-authenticate']).toBe('Bearer realm="openai-relay"');
    expect(opened.headers['x-request-id']).toMatch(/^req_relay_/);
    expect(JSON.parse(opened.body)).toEqual({ error: { message: expect.stringContaining('relay key'), type: 'authentication_error', param: null, code } });
    expect(upstream.upgrades.length).toBe(before);
  });

  test('browsers: an allowed Origin opens, any other is 403 before the key is even read', async () => {
    const ok = await mustOpen(`${wsBase}/v1/realtime?model=gpt-realtime`, ['realtime', `openai-insecure-api-key.${RELAY_KEY}`], { origin: 'https://app.example.com' });
    ok.close();
    await closed(ok);
    const before = upstream.upgrades.length;
    const refused = await openSocket(`${wsBase}/v1/realtime?model=gpt-realtime`, ['realtime', `openai-insecure-api-key.${RELAY_KEY}`], { origin: 'https://evil.example.com' });
    expect(refused).toMatchObject({ kind: 'refused', status: 403 });
    if (refused.kind === 'refused') expect(JSON.parse(refused.body).error.code).toBe('origin_not_allowed');
    expect(upstream.upgrades.length).toBe(before);
  });
});

describe('what is not a WebSocket endpoint', () => {
  test('an unknown path is 404 and a relay operation path is 404: nothing opened upstream', async () => {
    const before = upstream.upgrades.length;
    for (const path of ['/v1/realtime/nope', '/v1/chat/completions', '/v1/live/sessions/a%2Fb/fork']) {
      const opened = await openSocket(`${wsBase}${path}`, [], bearer);
      expect(opened.kind, path).toBe('refused');
      if (opened.kind === 'refused') expect([400, 404], path).toContain(opened.status);
    }
    expect(upstream.upgrades.length).toBe(before);
  });

  test('a plain GET on a WebSocket path is 426 with Upgrade: websocket', async () => {
    const res = await relay.call('/v1/realtime?model=gpt-realtime');
    expect(res.status).toBe(426);
    expect(res.headers.get('upgrade')).toBe('websocket');
    expect((await res.json()).error.code).toBe('websocket_required');
  });

  test('an Upgrade that is not websocket (h2c) is served as plain HTTP', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(relay.url).port), '127.0.0.1', () =>
        socket.write('GET /health HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (d) => {
        text += d;
        if (text.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
  });
});

describe("OpenAI's refusals", () => {
  test('its status and error body reach the caller, the server key redacted', async () => {
    upstream.refuse = {
      status: 400,
      body: JSON.stringify({ error: { message: `Model not found (key ${OPENAI_KEY})`, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } }),
      headers: { 'x-request-id': 'req_upstream_1' },
    };
    const opened = await openSocket(`${wsBase}/v1/realtime?model=nope`, ['realtime'], bearer);
    expect(opened.kind).toBe('refused');
    if (opened.kind !== 'refused') return;
    expect(opened.status).toBe(400);
    expect(opened.headers['x-request-id']).toBe('req_upstream_1');
    expect(opened.body).not.toContain(OPENAI_KEY);
    expect(JSON.parse(opened.body).error).toMatchObject({ code: 'model_not_found', message: 'Model not found (key [redacted])' });
  });

  test("its 401 (the server key refused) is a 502 that says whose key failed", async () => {
    upstream.refuse = { status: 401, body: JSON.stringify({ error: { message: 'Incorrect API key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }) };
    const opened = await openSocket(`${wsBase}/v1/responses`, [], bearer);
    expect(opened).toMatchObject({ kind: 'refused', status: 502 });
    if (opened.kind === 'refused') expect(JSON.parse(opened.body).error.code).toBe('upstream_auth_failed');
  });

  test('an unreachable OpenAI is a 502', async () => {
    const dead = await startTestRelay({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
    try {
      const opened = await openSocket(`${dead.url.replace(/^http/, 'ws')}/v1/responses`, [], bearer);
      expect(opened).toMatchObject({ kind: 'refused', status: 502 });
      if (opened.kind === 'refused') expect(JSON.parse(opened.body).error.code).toBe('upstream_unreachable');
    } finally {
      await dead.shutdown();
    }
  });
});

describe('accounting', () => {
  test('a usage row per response, under the key label and the operation; a row for the socket; metrics both ways', async () => {
    upstream.onConnection = (ws) => {
      ws.send(JSON.stringify({ type: 'session.created', session: { model: 'gpt-realtime-2025' } }));
      let n = 0;
      ws.on('message', () => {
        n++;
        // An audio delta that merely mentions "usage" in its text is not a response.
        ws.send(JSON.stringify({ type: 'response.output_audio_transcript.delta', delta: 'the "usage": {"total_tokens": 999}' }));
        ws.send(JSON.stringify({ type: 'response.created', response: { id: `resp_${n}`, usage: null } }));
        ws.send(JSON.stringify({ type: 'response.done', response: { id: `resp_${n}`, status: 'completed', usage: usage(10 * n, n) } }));
      });
    };
    const ws = await mustOpen(`${wsBase}/v1/realtime?model=gpt-realtime-2025`, ['realtime'], { headers: { authorization: `Bearer ${RELAY_KEY_2}` } });
    const seen: string[] = [];
    ws.on('message', (d) => seen.push(JSON.parse(String(d)).type));
    ws.send(JSON.stringify({ type: 'response.create' }));
    await until(() => seen.filter((t) => t === 'response.done').length === 1);
    ws.send(JSON.stringify({ type: 'response.create' }));
    await until(() => seen.filter((t) => t === 'response.done').length === 2);

    const metrics = await (await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(sample(metrics, 'relay_websockets_open', { operation: 'connectRealtime' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'relay_websocket_messages_total', { operation: 'connectRealtime', direction: 'to_openai' })).toBeGreaterThanOrEqual(2);
    expect(sample(metrics, 'relay_websocket_messages_total', { operation: 'connectRealtime', direction: 'to_caller' })).toBeGreaterThanOrEqual(7);
    expect(sample(metrics, 'relay_websocket_bytes_total', { operation: 'connectRealtime', direction: 'to_caller' })).toBeGreaterThan(300);

    ws.close(1000);
    await closed(ws);
    await until(() => relay.logs.some((l) => l.includes('"status":101') && l.includes('"key":"key-2"')));
    const res = await fetch(`${relay.url}/v1/relay/usage?key=key-2`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const { data } = (await res.json()) as { data: { operation: string; model: string | null; requests: number; inputTokens: number; outputTokens: number; totalTokens: number }[] };
    expect(data).toHaveLength(2);
    expect(data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ operation: 'connectRealtime', model: null, requests: 1, totalTokens: 0 }),
        expect.objectContaining({ operation: 'connectRealtime', model: 'gpt-realtime-2025', requests: 2, inputTokens: 30, outputTokens: 3, totalTokens: 33 }),
      ]),
    );
    const openNow = async () => sample(await (await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text(), 'relay_websockets_open', { operation: 'connectRealtime' });
    for (let i = 0; i < 100 && (await openNow()) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await openNow()).toBe(0);
  });
});
