import { afterEach, expect, test } from 'vitest';
import { isAlive, startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';

/**
 * SIGTERM drains: requests already in flight finish (a forwarded call, and an action that waits on OpenAI
 * itself), new connections are refused, queued usage rows are written at once and during the drain, a
 * second signal ends the drain but not the final write, and the process exits 0 — also when the signal
 * goes to the npm process of `npm start`.
 */
let upstream: LocalUpstream | undefined;
let relay: ChildRelay | undefined;
/** Processes a test saw under npm, ended if the test failed before they exited. */
let strays: number[] = [];
afterEach(async () => {
  for (const pid of strays) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  strays = [];
  await relay?.stop('SIGKILL');
  relay = undefined;
  await upstream?.close();
});

const auth = { authorization: `Bearer ${RELAY_KEY}` };
const ENV = { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, LOG_LEVEL: 'info' };

/** An upstream whose /models answers at once and whose other paths answer after `holdMs` (never, by default). */
async function upstreamHolding(holdMs = Infinity) {
  let arrived!: () => void;
  const slowArrived = new Promise<void>((resolve) => (arrived = resolve));
  upstream = await startLocalUpstream((req, res) => {
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[],"has_more":false}');
    };
    if (req.url === '/v1/models') return answer();
    arrived();
    if (Number.isFinite(holdMs)) setTimeout(answer, holdMs);
  });
  return { baseUrl: upstream.baseUrl, slowArrived };
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.each([
  ['a forwarded request', '/v1/files', { object: 'list', data: [] }],
  ['an action operation', '/v1/actions/files', { data: [], has_more: false }],
])('SIGTERM lets %s in flight finish, refuses new ones, and exits 0', async (_name, path, expected) => {
  const { baseUrl, slowArrived } = await upstreamHolding(700);
  const started = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl });
  relay = started;
  const inFlight = fetch(`${started.url}${path}`, { headers: auth });
  // SIGTERM once the request is surely in flight (it has reached upstream), not merely sent.
  await slowArrived;
  const exited = started.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  await expect(fetch(`${started.url}/health`)).rejects.toThrow();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject(expected);
  expect(await exited).toBe(0);
  expect(started.output()).toContain('draining');
});

test('SIGTERM writes the usage rows of answered requests at once, while a request is still draining', async () => {
  const { baseUrl, slowArrived } = await upstreamHolding();
  relay = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl });
  for (let i = 0; i < 3; i++) expect((await fetch(`${relay.url}/v1/models`, { headers: auth })).status).toBe(200);
  void fetch(`${relay.url}/v1/files`, { headers: auth }).catch(() => {});
  await slowArrived;
  void relay.stop('SIGTERM');
  // Not after the drain (30 s here), nor at the ledger's next one-second tick: right away.
  await until('the three rows are in the ledger file', () => relay!.ledgerRows().length >= 3, 250);
  expect(relay.ledgerRows().slice(0, 3)).toEqual(Array(3).fill({ operation: 'listModels', status: 200 }));
});

test('a second SIGTERM during the drain closes what is in flight, still writes every row, and exits 0', async () => {
  const { baseUrl, slowArrived } = await upstreamHolding();
  relay = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl });
  expect((await fetch(`${relay.url}/v1/models`, { headers: auth })).status).toBe(200);
  const stuck = fetch(`${relay.url}/v1/files`, { headers: auth }).then(
    (res) => res.status,
    () => 'cut',
  );
  await slowArrived;
  const exited = relay.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 700));
  expect(relay.child.exitCode).toBeNull();
  relay.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(await stuck).toBe('cut');
  expect(relay.output()).toContain('second signal');
  expect(relay.ledgerRows().map((r) => r.operation)).toEqual(['listModels', 'listFiles']);
});

test('SIGTERM to the npm process of `npm start` reaches node: the request in flight finishes, its row is written, all exit', async () => {
  const { baseUrl, slowArrived } = await upstreamHolding(700);
  relay = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl }, { via: 'npm start' });
  strays = relay.descendants();
  expect(strays.length).toBeGreaterThan(0);
  const inFlight = fetch(`${relay.url}/v1/files`, { headers: auth });
  await slowArrived;
  const exited = relay.stop('SIGTERM');
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await exited).toBe(0);
  await until('node has exited', () => strays.every((pid) => !isAlive(pid)), 5000);
  await expect(fetch(`${relay.url}/health`)).rejects.toThrow();
  expect(relay.ledgerRows()).toEqual([{ operation: 'listFiles', status: 200 }]);
  expect(relay.output()).toContain('relay stopped');
});
