import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type WebSocket from 'ws';
import { sample } from './helpers/assertions.ts';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';
import { closed, mustOpen, nextMessage, until } from './helpers/ws-client.ts';
import { startWsUpstream, type WsUpstream } from './helpers/ws-upstream.ts';

/**
 * 200 WebSockets at once through a relay process of its own, round after round: every frame comes back
 * intact, every slot and gauge is given back when they close (the in-flight cap is exactly 200, so one
 * leaked slot fails the next round), and the heap the relay still uses after a round (measured after a
 * full collection, by test/fixtures/heap-probe.mjs) stays where it was after the first.
 */
const ADMIN_KEY = 'admin-key-for-websocket-memory-0';
const SOCKETS = 200;
const MB = 1024 * 1024;
const HEAP_PROBE = fileURLToPath(new URL('./fixtures/heap-probe.mjs', import.meta.url));

let upstream: WsUpstream;
let relay: ChildRelay;

beforeAll(async () => {
  upstream = await startWsUpstream();
  upstream.onConnection = (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  relay = await startChildRelay({
    OPENAI_API_KEY: OPENAI_KEY,
    RELAY_KEY,
    RELAY_ADMIN_KEY: ADMIN_KEY,
    OPENAI_BASE_URL: upstream.baseUrl,
    MAX_IN_FLIGHT_PER_KEY: String(SOCKETS),
    NODE_OPTIONS: `--import=${HEAP_PROBE}`,
  });
});
afterAll(async () => {
  await relay?.stop();
  await upstream?.close();
});

const openGauge = async () => {
  const text = await (await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
  return sample(text, 'relay_websockets_open', { operation: 'connectRealtime' });
};

/** One round: SOCKETS sockets open together, each sends a text event and a binary frame and checks the echoes, then all close. */
async function round(): Promise<number> {
  const audio = randomBytes(16 * 1024);
  const url = `${relay.url.replace(/^http/, 'ws')}/v1/realtime?model=gpt-realtime`;
  const sockets: WebSocket[] = await Promise.all(Array.from({ length: SOCKETS }, () => mustOpen(url, ['realtime'], { headers: { authorization: `Bearer ${RELAY_KEY}` } })));
  const peak = relay.rssBytes();
  await Promise.all(
    sockets.map(async (ws, i) => {
      const event = JSON.stringify({ type: 'input_audio_buffer.append', n: i });
      ws.send(event);
      expect(String((await nextMessage(ws)).data)).toBe(event);
      ws.send(audio);
      const back = await nextMessage(ws);
      expect(back.isBinary && back.data.equals(audio)).toBe(true);
    }),
  );
  await Promise.all(sockets.map((ws) => Promise.all([closed(ws), ws.close(1000)])));
  await until(() => upstream.sockets.size === 0, 10_000, 'OpenAI-side sockets to close');
  for (let i = 0; i < 200 && (await openGauge()) !== 0; i++) await new Promise((r) => setTimeout(r, 25));
  expect(await openGauge()).toBe(0);
  return peak;
}

/** The relay's heap in use after a full collection, and its resident set. */
async function probe(): Promise<{ heap: number; rss: number }> {
  const seen = relay.output().split('heap-probe ').length;
  relay.child.kill('SIGUSR2');
  await until(() => relay.output().split('heap-probe ').length > seen, 5_000, 'the heap probe');
  const [heap, rss] = relay.output().split('heap-probe ').at(-1)!.split('\n')[0]!.split(' ').map(Number);
  return { heap: heap!, rss: rss! };
}

test(`${SOCKETS} concurrent sockets, round after round: frames intact, slots given back, memory flat after they close`, async () => {
  await round();
  const afterFirst = await probe();
  let peak = 0;
  for (let i = 0; i < 3; i++) peak = Math.max(peak, await round());
  const afterLast = await probe();
  console.log(
    `relay after the first round: heap ${(afterFirst.heap / MB).toFixed(1)} MB, RSS ${(afterFirst.rss / MB).toFixed(1)} MB; ` +
      `RSS with ${SOCKETS} open: ${(peak / MB).toFixed(1)} MB; after three more rounds: heap ${(afterLast.heap / MB).toFixed(1)} MB, RSS ${(afterLast.rss / MB).toFixed(1)} MB`,
  );
  // A socket pair's objects (two ws instances, their sockets, parsers and buffers) are tens of KB: had each
  // of the 600 later sockets left them behind, the heap would be megabytes larger.
  expect(afterLast.heap - afterFirst.heap).toBeLessThan(2 * MB);
}, 120_000);
