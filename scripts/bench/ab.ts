import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAutocannon } from './autocannon.ts';
import { BENCH_DIR, type Child, cpuMs, freePort, killAllChildrenNow, log, median, readPortLine, ROOT, round, sleep, startChild, stopAllChildren, waitFor200 } from './lib.ts';
import { canPin, pinHarness, pinnedCommand } from './pin.ts';
import { AUTH, EMBEDDINGS_BODY, embeddingOnce, relayBaseEnv } from './workload.ts';

/**
 * `npm run bench:ab -- DIR`: does this checkout's relay use more CPU per request than another
 * checkout's (a worktree of an earlier commit, with its own node_modules)? The one question a refactor
 * must answer, asked the way this machine can answer it:
 *
 * - pinned: both relays on one CPU, the mock and the load generator on the others (pin.ts);
 * - paired: interleaved rounds of a fixed number of embeddings requests, each relay's CPU per request
 *   (from /proc) minus the other's, round by round, the order of the two reversed every round (a relay
 *   measured right after the other's round had measured ~13 µs worse when that was always the same one);
 * - fresh pairs of processes, the start order swapped every pair: one process is one draw (the same
 *   commit measured up to ~15 µs a request apart from one start to the next).
 *
 * Prints each pair's median difference and their mean. Loopback only; stops by itself.
 */

const USAGE = `usage: node scripts/bench/ab.ts DIR [options]
  DIR                  the other checkout (with src/main.ts and node_modules)
  --pairs N            fresh process pairs, start order swapped each time (default 4)
  --rounds N           measured rounds per relay and pair (default 8)
  --requests N         requests per measured round (default 8000)
  --warmup N           requests to warm each relay before its rounds (default 20000)
  --connections N      concurrent connections (default 32)`;

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    pairs: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '8' },
    requests: { type: 'string', default: '8000' },
    warmup: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '32' },
    help: { type: 'boolean', default: false },
  },
});
const count = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} takes a whole number above 0 (got "${raw}")\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
if (flags.help || positionals.length !== 1) {
  console.log(USAGE);
  process.exit(flags.help ? 0 : 2);
}
const other = resolve(positionals[0]!);
if (!existsSync(join(other, 'src', 'main.ts')) || !existsSync(join(other, 'node_modules'))) {
  console.error(`bench ab failed: ${other} is not a checkout of this repository with its node_modules (e.g. git worktree add ../relay-before <commit>, then npm ci there)`);
  process.exit(2);
}
const opts = {
  other,
  pairs: count('pairs', flags.pairs),
  rounds: count('rounds', flags.rounds),
  requests: count('requests', flags.requests),
  warmup: count('warmup', flags.warmup),
  connections: count('connections', flags.connections),
};

const autocannon = await loadAutocannon();

/** `amount` embeddings requests; how many were answered 200, and anything else. */
function fire(url: string, amount: number): Promise<{ ok: number; failed: number }> {
  return new Promise((done, fail) => {
    autocannon(
      { url: `${url}/v1/embeddings`, method: 'POST', connections: opts.connections, amount, headers: { authorization: AUTH, 'content-type': 'application/json' }, body: EMBEDDINGS_BODY },
      (err, r) => (err ? fail(err) : done({ ok: r['2xx'], failed: r.non2xx + r.errors + r.timeouts })),
    );
  });
}

const scratch = mkdtempSync(join(os.tmpdir(), 'relay-ab-'));
const cleanUp = () => {
  killAllChildrenNow();
  rmSync(scratch, { recursive: true, force: true });
};
process.on('exit', cleanUp);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

function nodeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, NODE_OPTIONS: '', ...extra };
}

async function startRelay(root: string, name: string, upstream: string): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const cwd = join(scratch, name);
  mkdirSync(cwd, { recursive: true });
  const [command, argv] = pinnedCommand(true, 'proxy', process.execPath, [join(root, 'src', 'main.ts')]);
  const env = nodeEnv(relayBaseEnv(upstream, port, 'warn'));
  const child = startChild(name, command, argv, { env, cwd, logFile: join(scratch, `${name}.log`) });
  const url = `http://127.0.0.1:${port}`;
  await waitFor200(`${url}/health`, child, performance.now());
  await embeddingOnce(url); // fails fast on a relay that cannot forward
  return { child, url };
}

/**
 * CPU µs per request of `pid` over one round, after a quarter round unmeasured (an idle relay's heap is
 * shrunk while the other runs; the first requests after that measure its regrowth).
 */
async function cpuPerRequest(url: string, pid: number): Promise<number> {
  await fire(url, Math.max(1000, Math.round(opts.requests / 4)));
  const before = cpuMs(pid);
  const { ok, failed } = await fire(url, opts.requests);
  if (failed > 0 || ok === 0) throw new Error(`${url}: ${failed} of ${opts.requests} requests failed`);
  return ((cpuMs(pid) - before) * 1000) / ok;
}

async function main(): Promise<void> {
  pinHarness(true, log);
  if (!canPin) log('not pinned: the figures will scatter more');
  const [mockCommand, mockArgs] = pinnedCommand(true, 'other', process.execPath, [join(BENCH_DIR, 'mock-upstream.ts'), '--exit-with-stdin', '--port', '0']);
  const mockChild = startChild('mock-upstream', mockCommand, mockArgs, { env: nodeEnv({}), stdinPipe: true, captureStdout: true, logFile: join(scratch, 'mock.log') });
  const mock = `http://127.0.0.1:${await readPortLine(mockChild)}`;
  const pairMedians: number[] = [];
  const byPosition: { first: number[]; second: number[] } = { first: [], second: [] };
  for (let pair = 1; pair <= opts.pairs; pair++) {
    const thisFirst = pair % 2 === 1;
    const order = thisFirst ? ['this', 'other'] : ['other', 'this'];
    const relays: Record<string, { child: Child; url: string }> = {};
    for (const name of order) relays[name] = await startRelay(name === 'this' ? ROOT : opts.other, `${name}-${pair}`, mock);
    for (const name of order) await fire(relays[name]!.url, opts.warmup);
    const diffs: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const cpu: Record<string, number> = {};
      for (const name of r % 2 === 0 ? order : [...order].reverse()) cpu[name] = await cpuPerRequest(relays[name]!.url, relays[name]!.child.pid);
      diffs.push(cpu.this! - cpu.other!);
    }
    const mid = median(diffs);
    pairMedians.push(mid);
    (thisFirst ? byPosition.first : byPosition.second).push(mid);
    log(`pair ${pair} (${order.join(' started first, ')} second): this minus other ${signed(mid)} µs a request (rounds ${diffs.map((d) => signed(d, 0)).join(' ')})`);
    await Promise.all(Object.values(relays).map((r) => r.child.stop()));
    await sleep(500);
  }
  const mean = pairMedians.reduce((a, b) => a + b, 0) / pairMedians.length;
  const spread = Math.sqrt(pairMedians.reduce((a, d) => a + (d - mean) ** 2, 0) / Math.max(1, pairMedians.length - 1));
  console.log(`\nCPU per request, this checkout (${ROOT}) minus ${opts.other}, embeddings, pinned:`);
  console.log(`  each pair's median: ${pairMedians.map((d) => signed(d)).join(', ')} µs`);
  console.log(`  mean ${signed(mean)} µs a request (pairs' standard deviation ${round(spread, 1)} µs; the mean's about ${round(spread / Math.sqrt(pairMedians.length), 1)})`);
  if (byPosition.first.length > 0 && byPosition.second.length > 0) {
    const firstMean = byPosition.first.reduce((a, b) => a + b, 0) / byPosition.first.length;
    const secondMean = byPosition.second.reduce((a, b) => a + b, 0) / byPosition.second.length;
    console.log(`  started first ${signed(firstMean)}, started second ${signed(secondMean)}: the swap cancels a start-order effect of about ${round(Math.abs(secondMean - firstMean) / 2, 1)} µs`);
  }
  await stopAllChildren();
}

function signed(x: number, digits = 1): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench ab failed:', err);
    process.exit(2);
  },
);
