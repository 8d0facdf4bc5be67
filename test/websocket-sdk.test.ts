import net from 'node:net';
import OpenAI from 'openai';
import { OpenAIRealtimeWS as BetaRealtimeWS } from 'openai/beta/realtime/ws';
import { OpenAIRealtimeTranslationWS } from 'openai/realtime/translations/ws';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { ResponsesWS as BetaResponsesWS } from 'openai/resources/beta/responses/ws';
import { ForksWS } from 'openai/resources/live/forks/ws';
import { SidebandWS } from 'openai/resources/live/sideband/ws';
import { LiveWS } from 'openai/resources/live/ws';
import { ResponsesWS } from 'openai/resources/responses/ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type WebSocket from 'ws';
import { OPENAI_KEY, RELAY_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { until } from './helpers/ws-client.ts';
import { startWsUpstream, type WsUpstream } from './helpers/ws-upstream.ts';

/**
 * The official SDK's WebSocket clients pointed at the relay with a relay key, a real `ws` server on loopback
 * playing OpenAI behind it. The Realtime and translation clients always dial `wss:`; they are given a plain
 * connection to the relay, as a TLS terminator in front of it would.
 */

const ADMIN_KEY = 'admin-key-for-websocket-sdk-01234';
const usage = { input_tokens: 11, output_tokens: 5, total_tokens: 16 };
const completed = (id: string) => ({ type: 'response.completed', sequence_number: 2, response: { id, object: 'response', model: 'gpt-5', status: 'completed', output: [], usage } });

let upstream: WsUpstream;
let relay: TestRelay;
let port: number;

/** What OpenAI answers on each endpoint: the first event it sends, and its answer to each client event. */
function playOpenAI(ws: WebSocket, path: string): void {
  const send = (event: object) => ws.send(JSON.stringify(event));
  if (path.startsWith('/v1/realtime/translations')) {
    ws.on('message', (data) => {
      const event = JSON.parse(String(data));
      if (event.type === 'session.close') {
        send({ type: 'session.closed', event_id: 'ev_closed' });
        ws.close(1000);
      } else send({ type: 'session.output_transcript.delta', event_id: 'ev_1', delta: `translated ${event.type}` });
    });
  } else if (path.startsWith('/v1/realtime')) {
    send({ type: 'session.created', event_id: 'ev_0', session: { type: 'realtime', model: 'gpt-realtime' } });
    ws.on('message', () => send({ type: 'response.done', event_id: 'ev_2', response: { id: 'resp_rt', object: 'realtime.response', status: 'completed', output: [], usage } }));
  } else if (path.startsWith('/v1/responses')) {
    ws.on('message', () => {
      send({ type: 'response.created', sequence_number: 1, response: { id: 'resp_ws', object: 'response', status: 'in_progress', usage: null } });
      send(completed('resp_ws'));
    });
  } else {
    // Live: primary, fork and sideband connections; delegated Responses events come wrapped.
    ws.on('message', () => send({ type: 'response.event', event_id: 'ev_live', delegation_id: 'del_1', event: completed('resp_live') }));
  }
}

beforeAll(async () => {
  upstream = await startWsUpstream();
  upstream.onConnection = (ws, req) => playOpenAI(ws, req.url ?? '');
  // The TLS clients send the terminator's name as Host; a relay on loopback answers only names it was told of.
  relay = await startTestRelay({ OPENAI_BASE_URL: upstream.baseUrl, RELAY_ADMIN_KEY: ADMIN_KEY, OPENAI_PROJECT: 'proj_sdk', ALLOWED_HOSTS: 'relay.example.test' });
  port = Number(new URL(relay.url).port);
});
afterAll(async () => {
  await relay?.shutdown();
  await upstream?.close();
});

/** What the loops below use of the SDK's session clients (their own event maps differ). */
interface Session {
  on(event: string, listener: (event: never) => void): unknown;
  send(event: object): void;
  close(props?: { code: number; reason: string }): void;
}
const session = (s: unknown) => s as Session;

/** An SDK client with a relay key: `https` base URL for the clients that insist on TLS, else the relay's own. */
const client = (tls: boolean) => new OpenAI({ apiKey: RELAY_KEY, baseURL: tls ? 'https://relay.example.test/v1' : `${relay.url}/v1` });
/** A plain connection to the relay, for a client that dials wss: (the relay behind a TLS terminator). */
const viaTerminator = { createConnection: () => net.connect(port, '127.0.0.1') };

/** The upgrades OpenAI saw since `from`, each checked for the server key and never the relay key. */
function upgradesSince(from: number) {
  const seen = upstream.upgrades.slice(from);
  for (const { headers } of seen) {
    expect(headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(headers['openai-project']).toBe('proj_sdk');
    expect(JSON.stringify(headers)).not.toContain(RELAY_KEY);
  }
  return seen.map((u) => u.url);
}

describe('the SDK through the relay', () => {
  test('OpenAIRealtimeWS (wss:, model session): session.created, a response, its close', async () => {
    const from = upstream.upgrades.length;
    const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: viaTerminator }, client(true));
    const errors: unknown[] = [];
    rt.on('error', (e) => errors.push(e));
    const created = new Promise((resolve) => rt.on('session.created', resolve));
    await new Promise((resolve) => rt.socket.once('open', resolve));
    expect(rt.socket.protocol).toBe('');
    expect(await created).toMatchObject({ session: { model: 'gpt-realtime' } });
    const done = new Promise<{ response: { usage: unknown } }>((resolve) => rt.on('response.done', resolve as never));
    rt.send({ type: 'response.create' });
    expect((await done).response.usage).toEqual(usage);
    const closed = new Promise<number>((resolve) => rt.socket.once('close', resolve));
    rt.close({ code: 1000, reason: 'bye' });
    expect(await closed).toBe(1000);
    expect(errors).toEqual([]);
    expect(upgradesSince(from)).toEqual(['/v1/realtime?model=gpt-realtime']);
  });

  test('OpenAIRealtimeWS sideband (call_id) and transcription (intent) sessions; the beta client with its OpenAI-Beta header', async () => {
    const from = upstream.upgrades.length;
    for (const rt of [
      new OpenAIRealtimeWS({ callID: 'rtc_123', options: viaTerminator }, client(true)),
      new OpenAIRealtimeWS({ intent: 'transcription', options: viaTerminator }, client(true)),
      new BetaRealtimeWS({ model: 'gpt-4o-realtime-preview', options: viaTerminator }, client(true)),
    ].map(session)) {
      const created = new Promise((resolve) => rt.on('session.created', resolve));
      await created;
      rt.close();
    }
    expect(upgradesSince(from)).toEqual(['/v1/realtime?call_id=rtc_123', '/v1/realtime?intent=transcription', '/v1/realtime?model=gpt-4o-realtime-preview']);
    expect(upstream.upgrades.at(-1)!.headers['openai-beta']).toBe('realtime=v1');
  });

  test('OpenAIRealtimeTranslationWS (wss:): events both ways, then finish() drains to session.closed', async () => {
    const from = upstream.upgrades.length;
    const tr = await OpenAIRealtimeTranslationWS.create(client(true), { model: 'gpt-realtime-translate', options: viaTerminator });
    await new Promise((resolve) => tr.socket.on('open', resolve));
    const delta = new Promise<{ delta: string }>((resolve) => tr.on('session.output_transcript.delta', resolve as never));
    tr.send({ type: 'session.input_audio_buffer.append', audio: Buffer.alloc(480).toString('base64') });
    expect((await delta).delta).toBe('translated session.input_audio_buffer.append');
    await tr.finish({ timeoutMs: 5_000 });
    expect(upgradesSince(from)).toEqual(['/v1/realtime/translations?model=gpt-realtime-translate']);
  });

  test('ResponsesWS and the beta ResponsesWS (WebSocket mode): response.create → response.completed with usage', async () => {
    const from = upstream.upgrades.length;
    for (const rs of [new ResponsesWS(client(false)), new BetaResponsesWS(client(false))].map(session)) {
      const done = new Promise<{ response: { usage: unknown } }>((resolve) => rs.on('response.completed', resolve as never));
      rs.send({ type: 'response.create', model: 'gpt-5', input: 'Say hi' });
      expect((await done).response.usage).toEqual(usage);
      rs.close({ code: 1000, reason: 'done' });
    }
    expect(upgradesSince(from)).toEqual(['/v1/responses', '/v1/responses']);
  });

  test('LiveWS, ForksWS and SidebandWS: their paths and delegated Responses events', async () => {
    const from = upstream.upgrades.length;
    for (const live of [
      new LiveWS(client(false)),
      new ForksWS(client(false), { session_id: 'sess_stored_1' }),
      new SidebandWS(client(false), { session_id: 'sess_live_1', graceful_close: true }),
    ].map(session)) {
      const event = new Promise<{ event: { type: string } }>((resolve) => live.on('response.event', resolve as never));
      live.send({ type: 'session.start', session: { model: 'gpt-live-1' } });
      expect((await event).event.type).toBe('response.completed');
      live.close({ code: 1000, reason: 'done' });
    }
    expect(upgradesSince(from)).toEqual(['/v1/live/sessions', '/v1/live/sessions/sess_stored_1/fork', '/v1/live/sessions/sess_live_1/attach?graceful_close=true']);
  });

  test('every response above is a usage row under the key label and its endpoint', async () => {
    await until(() => relay.logs.filter((l) => l.includes('"status":101')).length >= 10, 5_000, 'every socket record');
    const res = await fetch(`${relay.url}/v1/relay/usage?key=key-1`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const { data } = (await res.json()) as { data: { operation: string; model: string | null; requests: number; totalTokens: number }[] };
    const responses = Object.fromEntries(data.filter((t) => t.model !== null).map((t) => [`${t.operation} ${t.model}`, [t.requests, t.totalTokens]]));
    expect(responses).toEqual({
      'connectRealtime gpt-realtime': [1, 16],
      'connectResponsesWebSocket gpt-5': [2, 32],
      'connectLiveSession gpt-5': [1, 16],
      'connectLiveSessionFork gpt-5': [1, 16],
      'connectLiveSessionSideband gpt-5': [1, 16],
    });
  });
});
