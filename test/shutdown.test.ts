import { afterAll, beforeAll, expect, test } from 'vitest';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';

let upstream: LocalUpstream;
let relay: ChildRelay;
let arrived!: () => void;
const requestArrived = new Promise<void>((resolve) => (arrived = resolve));

beforeAll(async () => {
  upstream = await startLocalUpstream((_req, res) => {
    arrived();
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[]}');
    }, 700);
  });
  relay = await startChildRelay({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, OPENAI_BASE_URL: upstream.baseUrl, LOG_LEVEL: 'info' });
});
afterAll(async () => {
  await relay?.stop('SIGKILL');
  await upstream?.close();
});

test('SIGTERM lets the in-flight request finish, refuses new ones, and exits 0', async () => {
  const inFlight = fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${RELAY_KEY}` } });
  // SIGTERM once the request is surely in flight (it has reached upstream), not merely sent.
  await requestArrived;
  const exited = relay.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  await expect(fetch(`${relay.url}/health`)).rejects.toThrow();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ object: 'list', data: [] });
  expect(await exited).toBe(0);
  expect(relay.output()).toContain('draining');
});
