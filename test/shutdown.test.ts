import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, vi } from 'vitest';
import { isAlive, ledgerRowsOf, startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_KEY, RELAY_KEY, startTestRelay } from './helpers/relay.ts';

/**
 * SIGTERM drains: requests already in flight finish (a forwarded call, and an action that waits on OpenAI
 * itself), new connections are refused, queued usage rows are written at once and during the drain, a
 * second signal ends the drain but not the final write, and the process exits 0 — also when the signal
 * goes to the npm process of `npm start`.
 */
/** What a test started, ended when it finishes (also when it failed half-way); the tests run side by side. */
function cleanup(onFinished: (fn: () => Promise<void>) => void) {
  const state: { upstream?: LocalUpstream; relay?: ChildRelay; strays: number[] } = { strays: [] };
  onFinished(async () => {
    for (const pid of state.strays) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await state.relay?.stop('SIGKILL');
    await state.upstream?.close();
  });
  return state;
}

const auth = { authorization: `Bearer ${RELAY_KEY}` };
const ENV = { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, LOG_LEVEL: 'info' };

/** An upstream whose /models answers at once and whose other paths answer after `holdMs` (never, by default). */
async function upstreamHolding(state: ReturnType<typeof cleanup>, holdMs = Infinity) {
  let arrived!: () => void;
  const slowArrived = new Promise<void>((resolve) => (arrived = resolve));
  const upstream = (state.upstream = await startLocalUpstream((req, res) => {
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[],"has_more":false}');
    };
    if (req.url === '/v1/models') return answer();
    arrived();
    if (Number.isFinite(holdMs)) setTimeout(answer, holdMs);
  }));
  return { baseUrl: upstream.baseUrl, slowArrived };
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.concurrent.for<[string, string, object]>([
  ['a forwarded request', '/v1/files', { object: 'list', data: [] }],
  ['an action operation', '/v1/actions/files', { data: [], has_more: false }],
])('SIGTERM lets %s in flight finish, refuses new ones, and exits 0', async ([, path, expected], { onTestFinished }) => {
  const state = cleanup(onTestFinished);
  const { baseUrl, slowArrived } = await upstreamHolding(state, 700);
  const started = (state.relay = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl }));
  const inFlight = fetch(`${started.url}${path}`, { headers: auth });
  // SIGTERM once the request is surely in flight (it has reached upstream), not merely sent.
  await slowArrived;
  const exited = started.stop('SIGTERM');
  // Once the relay says it is draining (on a busy machine the signal may take a while to be handled).
  await until('the relay logs "draining"', () => started.output().includes('draining'), 5000);
  await expect(fetch(`${started.url}/health`)).rejects.toThrow();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject(expected);
  expect(await exited).toBe(0);
  expect(started.output()).toContain('draining');
});

test.concurrent('a second SIGTERM during the drain closes what is in flight, still writes every row, and exits 0', async ({ onTestFinished }) => {
  const state = cleanup(onTestFinished);
  const { baseUrl, slowArrived } = await upstreamHolding(state);
  const relay = (state.relay = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl }));
  expect((await fetch(`${relay.url}/v1/models`, { headers: auth })).status).toBe(200);
  const stuck = fetch(`${relay.url}/v1/files`, { headers: auth }).then(
    (res) => res.status,
    () => 'cut',
  );
  await slowArrived;
  const exited = relay.stop('SIGTERM');
  // A second signal within 500 ms of the first one's handling is its echo (Ctrl-C reaches npm and node):
  // wait until the relay has handled the first (on a busy machine that may take a while), then 600 ms.
  await until('the relay logs "draining"', () => relay.output().includes('draining'), 5000);
  await new Promise((r) => setTimeout(r, 600));
  expect(relay.child.exitCode).toBeNull();
  relay.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(await stuck, relay.output()).toBe('cut');
  expect(relay.output()).toContain('second signal');
  expect(relay.ledgerRows().map((r) => r.operation)).toEqual(['listModels', 'listFiles']);
});

test.concurrent('SIGTERM to the npm process of `npm start` reaches node: the request in flight finishes, its row is written, all exit', async ({ onTestFinished }) => {
  const state = cleanup(onTestFinished);
  const { baseUrl, slowArrived } = await upstreamHolding(state, 700);
  const relay = (state.relay = await startChildRelay({ ...ENV, OPENAI_BASE_URL: baseUrl }, { via: 'npm start' }));
  const strays = (state.strays = relay.descendants());
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

test('shutdown writes the usage rows of answered requests at once, while a request is still draining', async () => {
  // The ledger's once-a-second writes never come (its interval is frozen): only shutdown itself writes.
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const slowArrived = new Promise<void>((resolve) => (arrived = resolve));
  const upstream = await startLocalUpstream((req, res) => {
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}');
    if (req.url === '/v1/models') return answer();
    arrived();
    void held.then(answer);
  });
  const dbPath = join(mkdtempSync(join(tmpdir(), 'relay-usage-')), 'usage.sqlite');
  const relay = await startTestRelay({ OPENAI_BASE_URL: upstream.baseUrl, USAGE_DB_PATH: dbPath });
  try {
    for (let i = 0; i < 3; i++) expect((await relay.call('/v1/models')).status).toBe(200);
    const inFlight = relay.call('/v1/files');
    await slowArrived;
    const stopping = relay.shutdown();
    await until('the three rows are in the ledger file', () => ledgerRowsOf(dbPath).length >= 3, 5000);
    expect(ledgerRowsOf(dbPath)).toEqual(Array(3).fill({ operation: 'listModels', status: 200 }));
    release();
    expect((await inFlight).status).toBe(200);
    await stopping;
    expect(ledgerRowsOf(dbPath).map((r) => r.operation)).toEqual(['listModels', 'listModels', 'listModels', 'listFiles']);
  } finally {
    vi.useRealTimers();
    release();
    await relay.shutdown();
    await upstream.close();
  }
});
