import { afterEach, expect, test } from 'vitest';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';

/**
 * SIGTERM drains: requests already in flight finish (a forwarded call, and an action that waits on OpenAI
 * itself), new connections are refused, and the process exits 0.
 */
let upstream: LocalUpstream | undefined;
let relay: ChildRelay | undefined;
afterEach(async () => {
  await relay?.stop('SIGKILL');
  await upstream?.close();
});

test.each([
  ['a forwarded request', '/v1/models', { object: 'list', data: [] }],
  ['an action operation', '/v1/actions/files', { data: [], has_more: false }],
])('SIGTERM lets %s in flight finish, refuses new ones, and exits 0', async (_name, path, expected) => {
  let arrived!: () => void;
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  upstream = await startLocalUpstream((_req, res) => {
    arrived();
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[],"has_more":false}');
    }, 700);
  });
  const started = await startChildRelay({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, OPENAI_BASE_URL: upstream.baseUrl, LOG_LEVEL: 'info' });
  relay = started;
  const inFlight = fetch(`${started.url}${path}`, { headers: { authorization: `Bearer ${RELAY_KEY}` } });
  // SIGTERM once the request is surely in flight (it has reached upstream), not merely sent.
  await requestArrived;
  const exited = started.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  await expect(fetch(`${started.url}/health`)).rejects.toThrow();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject(expected);
  expect(await exited).toBe(0);
  expect(started.output()).toContain('draining');
});
