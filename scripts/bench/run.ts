import { execFileSync } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, readProfile, summarizeProfile, type ProfileSummary } from './cpuprofile-summary.ts';
import { measureOpenStreams, type OpenStreams } from './open-streams.ts';
import { measureWebSocketRoundTrips, webSocketRows, type WebSocketResult } from './websocket.ts';
import {
  BENCH_DIR,
  type Child,
  freePort,
  killAllChildrenNow,
  median,
  MiB,
  quantile,
  readPortLine,
  ROOT,
  round,
  rssBytes,
  sampleRss,
  sleep,
  startChild,
  stopAllChildren,
  waitFor200,
  waitForQuietMachine,
  withCpuAccounting,
} from './lib.ts';

/**
 * `npm run bench`: the relay against a raw node:http pass-through (the practical ceiling for a Node
 * relay) and against a mock OpenAI, all on 127.0.0.1, each in its own process.
 *
 *   node scripts/bench/run.ts [--quick] [--duration S] [--connections N] [--rounds N] [--out FILE]
 *                             [--check] [--profile] [--no-info] [--upload-mb N] [--download-mb N]
 *
 * Prints a markdown table and writes every number as JSON (bench-results/latest.json by default).
 * Exits 0 unless the harness itself failed (2), or, with --check, a target was missed (1).
 */

const USAGE = `usage: node scripts/bench/run.ts [options]
  --quick              short run (< 1 min): 3 s rounds x 3, 128 MB upload, 256 MB download
  --duration S         seconds per throughput round (default 10; quick 3)
  --connections N      concurrent connections for throughput (default 32)
  --round-warmup S     unmeasured load on a target right before each of its rounds (default 2; quick 1)
  --rounds N           interleaved rounds per target (default 5; quick 3): the median of five is not
                       moved by one round that a noisy neighbour on the machine slowed down
  --warmup S           warm-up seconds per target before the rounds (default 10; quick 4): V8 keeps
                       optimizing the relay's hot path for ~10 s of load (its CPU per request falls
                       from ~85 to ~70 µs), the raw pipe's far smaller one for ~1 s
  --sse-requests N     sequential SSE requests per target (default 20)
  --sse-gap-ms MS      gap between the mock's SSE events (default 10)
  --ws-round-trips N   WebSocket round trips per target and kind of message (default 200)
  --only websocket     run only the WebSocket scenario (the mock and one relay) and print its rows
  --upload-mb N        multipart upload size in MiB (default 512; quick 128)
  --download-mb N      binary download size in MiB (default 1024; quick 256)
  --startup-runs N     start-up measurements (default 3)
  --streams N          streams held open at once for the memory-per-stream measurement (default 2000)
  --only open-streams  run only the memory-per-open-stream measurement (relay and raw pipe)
  --wait-quiet S       on a shared machine: before each phase, wait (S seconds in all, at most) until
                       other processes leave the CPUs idle for 3 s (default 0: don't wait)
  --no-info            skip the relay at LOG_LEVEL=info (throughput)
  --profile            also profile the relay and the raw pipe under load (--cpu-prof) and
                       summarize where the CPU goes (profiles saved beside --out)
  --profile-level L    LOG_LEVEL for the profiled relay (default warn)
  --out FILE           JSON results (default bench-results/latest.json)
  --check              exit 1 when a target is missed
  --relay-env K=V      extra environment for the relay (repeatable), e.g. USAGE_LEDGER=off to see a
                       feature's cost; the default run measures the relay as deployed
  --help`;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    'round-warmup': { type: 'string' },
    'sse-requests': { type: 'string', default: '20' },
    'sse-gap-ms': { type: 'string', default: '10' },
    'ws-round-trips': { type: 'string', default: '200' },
    only: { type: 'string' },
    'upload-mb': { type: 'string' },
    'download-mb': { type: 'string' },
    'startup-runs': { type: 'string', default: '3' },
    streams: { type: 'string', default: '2000' },
    'wait-quiet': { type: 'string', default: '0' },
    'no-info': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'profile-level': { type: 'string', default: 'warn' },
    out: { type: 'string' },
    check: { type: 'boolean', default: false },
    'relay-env': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

const positive = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a number above 0 (got "${raw}")\n\n${USAGE}`);
    process.exit(2);
  }
  return value;
};

const quick = flags.quick;
const opts = {
  quick,
  durationS: positive('duration', flags.duration, quick ? 3 : 10),
  connections: Math.round(positive('connections', flags.connections, 32)),
  rounds: Math.round(positive('rounds', flags.rounds, quick ? 3 : 5)),
  warmupS: positive('warmup', flags.warmup, quick ? 4 : 10),
  roundWarmupS: positive('round-warmup', flags['round-warmup'], quick ? 1 : 2),
  sseRequests: Math.round(positive('sse-requests', flags['sse-requests'], 20)),
  sseGapMs: positive('sse-gap-ms', flags['sse-gap-ms'], 10),
  wsRoundTrips: Math.round(positive('ws-round-trips', flags['ws-round-trips'], 200)),
  only: flags.only,
  uploadMiB: positive('upload-mb', flags['upload-mb'], quick ? 128 : 512),
  downloadMiB: positive('download-mb', flags['download-mb'], quick ? 256 : 1024),
  startupRuns: Math.round(positive('startup-runs', flags['startup-runs'], 3)),
  streams: Math.round(positive('streams', flags.streams, 2000)),
  waitQuietS: flags['wait-quiet'] === '0' ? 0 : positive('wait-quiet', flags['wait-quiet'], 0),
  infoLevel: !flags['no-info'],
  profile: flags.profile,
  profileLevel: flags['profile-level'] ?? 'warn',
  out: resolve(flags.out ?? join(ROOT, 'bench-results', 'latest.json')),
  check: flags.check,
};

const TARGETS = {
  throughputRatio: 0.75,
  p99Ratio: 2,
  sseDiffMs: 1,
  uploadGrowthMiB: 40,
  downloadGrowthMiB: 40,
  startupMs: 1500,
};

const RELAY_KEY = 'bench-relay-key-0123456789abcdef';
const OPENAI_KEY = 'sk-bench-not-a-real-key-00000000';
const AUTH = `Bearer ${RELAY_KEY}`;
/** A ~1 KB embeddings request, like a paragraph of text to embed. */
const EMBEDDINGS_BODY = JSON.stringify({
  model: 'text-embedding-3-small',
  input: 'The quick brown fox jumps over the lazy dog. '.repeat(21).trim(),
  encoding_format: 'float',
});
const SSE_BODY = JSON.stringify({ model: 'gpt-4.1-mini', input: 'Say hello.', stream: true });

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---------------------------------------------------------------- safety: every child dies with us

let tmp = '';
let finishing = false;
process.on('exit', () => {
  killAllChildrenNow();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping children`);
    finishing = true;
    killAllChildrenNow();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  console.error('bench harness failed:', err);
  killAllChildrenNow();
  process.exit(2);
});
process.on('unhandledRejection', (err) => {
  console.error('bench harness failed:', err);
  killAllChildrenNow();
  process.exit(2);
});

/** Whole-run watchdog: a generous bound computed from the options; the run always stops by itself. */
const targetsPerRound = opts.infoLevel ? 3 : 2;
const budgetS =
  120 +
  2 * (targetsPerRound * (opts.warmupS + opts.rounds * (opts.durationS + opts.roundWarmupS + 2)) + (opts.profile ? 2 * (opts.warmupS + opts.durationS + 15) : 0)) +
  (opts.uploadMiB * 2 + opts.downloadMiB * 2) / 20 + // ≥ 20 MiB/s worst case per transfer
  opts.startupRuns * 2 * 20 +
  2 * (30 + opts.streams / 20) + // open streams: relay and raw pipe, ≥ 20 streams/s worst case
  opts.waitQuietS;
const watchdog = setTimeout(() => {
  console.error(`bench harness failed: still running after ${Math.round(budgetS)} s (watchdog); stopping everything`);
  killAllChildrenNow();
  process.exit(2);
}, budgetS * 1000);
watchdog.unref();

// ---------------------------------------------------------------- autocannon (a devDependency)

interface AutocannonHistogram {
  average: number;
  p50: number;
  p99: number;
  max: number;
}
interface AutocannonResult {
  requests: AutocannonHistogram & { total: number };
  latency: AutocannonHistogram;
  throughput: AutocannonHistogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AutocannonResult) => void) => EventEmitter;

async function loadAutocannon(): Promise<Autocannon> {
  const specifier: string = 'autocannon'; // not a literal: typechecks before the devDependency is installed
  try {
    const mod = await import(specifier);
    return (mod.default ?? mod) as Autocannon;
  } catch (err) {
    throw new Error(`autocannon is not installed (npm install --save-dev autocannon@^8): ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- processes under test

const nodeEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? tmp,
  NODE_OPTIONS: '',
  ...extra,
});

async function startMock(name = 'mock-upstream', sse = ['--sse-gap-ms', String(opts.sseGapMs)]): Promise<{ child: Child; url: string }> {
  const child = startChild(name, process.execPath, [join(BENCH_DIR, 'mock-upstream.ts'), '--exit-with-stdin', '--port', '0', ...sse], {
    env: nodeEnv({}),
    stdinPipe: true,
    captureStdout: true,
    logFile: join(tmp, `${name}.log`),
  });
  const port = await readPortLine(child);
  return { child, url: `http://127.0.0.1:${port}` };
}

async function startRawPipe(upstream: string, name = 'raw-pipe', nodeFlags: string[] = []): Promise<{ child: Child; url: string }> {
  const child = startChild(name, process.execPath, [...nodeFlags, join(BENCH_DIR, 'raw-pipe.ts'), '--exit-with-stdin', '--port', '0', '--upstream', upstream], {
    env: nodeEnv({}),
    stdinPipe: true,
    captureStdout: true,
    logFile: join(tmp, `${name}.log`),
  });
  const port = await readPortLine(child);
  return { child, url: `http://127.0.0.1:${port}` };
}

function relayEnv(upstream: string, port: number, logLevel: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENAI_API_KEY: OPENAI_KEY,
    RELAY_KEY,
    OPENAI_BASE_URL: `${upstream}/v1`,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: logLevel,
    ...extra,
    ...extraRelayEnv,
  };
}

/** --relay-env K=V pairs. */
const extraRelayEnv: Record<string, string> = Object.fromEntries(
  (flags['relay-env'] as string[]).map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--relay-env takes KEY=VALUE (got "${pair}")`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }),
);

/**
 * `node src/main.ts`, its stdout (one JSON line per request at info) going to a file, as a container's
 * log driver would take it. Each relay runs in a scratch directory of its own, as a deployment would:
 * a developer's .env cannot change the setup, and what the relay writes relative to its working
 * directory (data/usage.sqlite, data/blobs) is its own — two relays sharing one SQLite ledger would
 * contend for its write lock and checkpoints, and measure that instead.
 */
async function startRelay(upstream: string, logLevel: string, name: string, nodeFlags: string[] = [], env: Record<string, string> = {}): Promise<{ child: Child; url: string; startupMs: number }> {
  const port = await freePort();
  const cwd = join(tmp, name);
  mkdirSync(cwd, { recursive: true });
  const started = performance.now();
  const child = startChild(name, process.execPath, [...nodeFlags, join(ROOT, 'src', 'main.ts')], {
    env: nodeEnv(relayEnv(upstream, port, logLevel, env)),
    cwd,
    logFile: join(tmp, `${name}.log`),
  });
  const url = `http://127.0.0.1:${port}`;
  const startupMs = await waitFor200(`${url}/health`, child, started);
  return { child, url, startupMs };
}

// ---------------------------------------------------------------- throughput

interface LoadRun {
  target: string;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** autocannon's own (whole-millisecond) percentiles, for reference. */
  autocannonP50Ms: number;
  autocannonP99Ms: number;
  total2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU (user+system) the proxy process under test used per answered request, µs. */
  cpuUsPerReq?: number;
  /** CPU of the mock upstream and of the harness (autocannon) per request, µs — for context. */
  mockCpuUsPerReq?: number;
  harnessCpuUsPerReq?: number;
  /** Share of the machine's CPU taken by processes outside this benchmark during the round (noise). */
  foreignCpuShare?: number;
}

function load(autocannon: Autocannon, url: string, durationS: number, target: string, roundNo: number): Promise<LoadRun> {
  return new Promise((resolvePromise, reject) => {
    const latencies: number[] = [];
    const instance = autocannon(
      {
        url: `${url}/v1/embeddings`,
        method: 'POST',
        connections: opts.connections,
        pipelining: 1,
        duration: durationS,
        timeout: 10,
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: EMBEDDINGS_BODY,
      },
      (err, result) => {
        if (err) return reject(err);
        const ok = result.statusCodeStats['200']?.count ?? 0;
        resolvePromise({
          target,
          round: roundNo,
          rps: round(result.requests.average, 1),
          p50Ms: round(quantile(latencies, 0.5), 3),
          p99Ms: round(quantile(latencies, 0.99), 3),
          meanMs: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length), 3),
          autocannonP50Ms: result.latency.p50,
          autocannonP99Ms: result.latency.p99,
          total2xx: Number(ok),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
        });
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      if (statusCode === 200) latencies.push(responseTimeMs);
    });
  });
}

// ---------------------------------------------------------------- SSE time to first event

interface FirstEvent {
  headersMs: number;
  firstEventMs: number;
  totalMs: number;
  events: number;
}

function timeFirstEvent(url: string, agent: http.Agent, auth: boolean): Promise<FirstEvent> {
  return new Promise((resolvePromise, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(SSE_BODY), accept: 'text/event-stream' };
    if (auth) headers.authorization = AUTH;
    const started = performance.now();
    let headersMs = Number.NaN;
    let firstEventMs = Number.NaN;
    const req = http.request(`${url}/v1/responses`, { method: 'POST', agent, headers, timeout: 10_000 }, (res) => {
      headersMs = performance.now() - started;
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.resume();
        reject(new Error(`SSE request to ${url} answered ${res.statusCode} ${res.headers['content-type']}`));
        return;
      }
      let events = 0;
      let pending = '';
      res.on('data', (chunk: Buffer) => {
        const text = pending + chunk.toString('utf8');
        if (Number.isNaN(firstEventMs) && text.includes('data:')) firstEventMs = performance.now() - started;
        events += (text.match(/^data:/gm) ?? []).length;
        // keep an unfinished last line for the next chunk, so a `data:` split across chunks counts once
        const lastNewline = text.lastIndexOf('\n');
        pending = text.slice(lastNewline + 1);
        if (pending.startsWith('data:')) events--;
      });
      res.on('end', () =>
        resolvePromise({ headersMs, firstEventMs, totalMs: performance.now() - started, events }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`SSE request to ${url} timed out`)));
    req.on('error', reject);
    req.end(SSE_BODY);
  });
}

// ---------------------------------------------------------------- big transfers

interface Transfer {
  status: number;
  bytes: number;
  expectedBytes: number;
  ok: boolean;
  ms: number;
  mibPerS: number;
}

/** A multipart upload of `fileBytes`, generated on the fly and written with backpressure. */
function upload(url: string, totalBytes: number): Promise<Transfer> {
  const boundary = '----relay-bench-7d3f0c9a2b';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const fileBytes = totalBytes - head.length - tail.length;
  const line = Buffer.from('{"custom_id":"bench","method":"POST","url":"/v1/embeddings","body":{"input":"x"}}\n');
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i += line.length) line.copy(block, i);
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const req = http.request(`${url}/v1/files`, {
      method: 'POST',
      agent: false,
      timeout: 300_000,
      headers: { authorization: AUTH, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': totalBytes },
    });
    req.on('timeout', () => req.destroy(new Error(`upload to ${url} stalled`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => {
        const ms = performance.now() - started;
        let echoed = -1;
        try {
          echoed = Number((JSON.parse(body) as { bytes?: number }).bytes ?? -1);
        } catch {
          // not JSON: reported below as a failed transfer
        }
        resolvePromise({
          status: res.statusCode ?? 0,
          bytes: echoed,
          expectedBytes: totalBytes,
          ok: res.statusCode === 200 && echoed === totalBytes,
          ms: round(ms, 0),
          mibPerS: round(totalBytes / MiB / (ms / 1000), 0),
        });
      });
      res.on('error', reject);
    });
    req.write(head);
    let left = fileBytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!req.write(n === block.length ? block : block.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end(tail);
    };
    pump();
  });
}

/** Downloads `bytes` of generated file content and throws every byte away. */
function download(url: string, bytes: number): Promise<Transfer> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const req = http.get(`${url}/v1/files/file-${bytes}/content`, { agent: false, timeout: 300_000, headers: { authorization: AUTH } }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('end', () => {
        const ms = performance.now() - started;
        resolvePromise({
          status: res.statusCode ?? 0,
          bytes: received,
          expectedBytes: bytes,
          ok: res.statusCode === 200 && received === bytes,
          ms: round(ms, 0),
          mibPerS: round(bytes / MiB / (ms / 1000), 0),
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`download from ${url} stalled`)));
    req.on('error', reject);
  });
}

interface MemoryRun {
  process: string;
  transfer: Transfer;
  idleMiB: number;
  peakMiB: number;
  growthMiB: number;
  samples: number;
}

/** RSS of `pid` at rest (median over ~400 ms), then its peak while `action` runs (sampled every 20 ms). */
async function measureMemory(name: string, pid: number, action: () => Promise<Transfer>): Promise<MemoryRun> {
  await sleep(300);
  const idle = sampleRss(pid, 20);
  await sleep(400);
  const idleStats = idle.stop();
  const busy = sampleRss(pid, 20);
  const transfer = await action();
  const busyStats = busy.stop();
  const idleMiB = idleStats.median / MiB;
  const peakMiB = Math.max(busyStats.peak, rssBytes(pid)) / MiB;
  return { process: name, transfer, idleMiB: round(idleMiB, 1), peakMiB: round(peakMiB, 1), growthMiB: round(peakMiB - idleMiB, 1), samples: busyStats.samples };
}

/** A few small calls so the code paths under test are loaded and compiled before "idle" is read. */
async function warmPaths(url: string): Promise<void> {
  for (let i = 0; i < 20; i++) await embeddingOnce(url);
  await upload(url, 64 * 1024);
  await download(url, 64 * 1024);
}

function embeddingOnce(url: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request(`${url}/v1/embeddings`, {
      method: 'POST',
      agent: false,
      timeout: 10_000,
      headers: { authorization: AUTH, 'content-type': 'application/json', 'content-length': Buffer.byteLength(EMBEDDINGS_BODY) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolvePromise(200) : reject(new Error(`${url}/v1/embeddings answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('embeddings request timed out')));
    req.on('error', reject);
    req.end(EMBEDDINGS_BODY);
  });
}

// ---------------------------------------------------------------- start-up

async function timeStartup(kind: 'npm start' | 'node src/main.ts', upstream: string, i: number): Promise<number> {
  const port = await freePort();
  // npm runs the script in the project directory: keep the relay's files (the usage ledger) out of it.
  const env = { ...process.env, NODE_OPTIONS: '', USAGE_DB_PATH: join(tmp, 'startup-usage.sqlite'), ...relayEnv(upstream, port, 'warn') };
  const started = performance.now();
  const child =
    kind === 'npm start'
      ? startChild(`npm-start-${i}`, 'npm', ['start', '--silent'], { env, cwd: ROOT, group: true, logFile: join(tmp, `npm-start-${i}.log`) })
      : startChild(`node-start-${i}`, process.execPath, [join(ROOT, 'src', 'main.ts')], { env, cwd: ROOT, group: true, logFile: join(tmp, `node-start-${i}.log`) });
  try {
    return await waitFor200(`http://127.0.0.1:${port}/health`, child, started, 20_000, 2);
  } finally {
    await child.stop();
  }
}

// ---------------------------------------------------------------- report

interface Row {
  metric: string;
  relay: string;
  baseline: string;
  compare: string;
  target: string;
  /** true/false for a target; null for context only. */
  pass: boolean | null;
  /** Reported with a target but not counted by --check (e.g. LOG_LEVEL=info). */
  informational?: boolean;
}

function table(rows: Row[]): string {
  const lines = ['| metric | relay | baseline | ratio / diff | target | result |', '| --- | ---: | ---: | ---: | --- | --- |'];
  for (const r of rows) {
    const result = r.pass === null ? '—' : r.informational ? `(${r.pass ? 'pass' : 'fail'}, info only)` : r.pass ? 'pass' : '**FAIL**';
    lines.push(`| ${r.metric} | ${r.relay} | ${r.baseline} | ${r.compare} | ${r.target} | ${result} |`);
  }
  return lines.join('\n');
}

/** Lowest–highest of per-round ratios, e.g. `0.78–0.84`. */
/** The per-round ratios' range and median: shown next to the ratio of the medians, which is the target's
 * measure, because on a machine whose speed drifts within a run the two can differ by a few hundredths. */
const roundRange = (ratios: number[]) =>
  ratios.length ? `${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}, median ${fmt(median(ratios))}` : 'n/a';
const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** HEAD, plus `-dirty` when src/ has uncommitted changes (the relay measured is the working tree). */
function gitCommit(): string | undefined {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src', 'generated') ? '-dirty' : '');
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- profiles

interface ProfiledRun {
  file: string;
  rps: number;
  requests: number;
  summary: ProfileSummary;
}

/** µs of busy CPU per request for each origin, relay next to raw pipe, largest extra cost first. */
function compareProfiles(relay: ProfiledRun, raw: ProfiledRun): string {
  const perReq = (run: ProfiledRun) => {
    const m = new Map<string, number>();
    for (const o of run.summary.byOrigin) m.set(o.origin, (o.selfMs * 1000) / Math.max(1, run.requests));
    return m;
  };
  const a = perReq(relay);
  const b = perReq(raw);
  const origins = [...new Set([...a.keys(), ...b.keys()])]
    .map((origin) => ({ origin, relay: a.get(origin) ?? 0, raw: b.get(origin) ?? 0 }))
    .sort((x, y) => y.relay - y.raw - (x.relay - x.raw));
  const total = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
  const lines = ['| origin | relay µs/req | raw µs/req | extra µs/req |', '| --- | ---: | ---: | ---: |'];
  lines.push(`| **all busy CPU** | ${fmt(total(a), 1)} | ${fmt(total(b), 1)} | ${fmt(total(a) - total(b), 1)} |`);
  for (const o of origins.slice(0, 14)) lines.push(`| ${o.origin} | ${fmt(o.relay, 1)} | ${fmt(o.raw, 1)} | ${fmt(o.relay - o.raw, 1)} |`);
  return lines.join('\n');
}

// ---------------------------------------------------------------- a shared machine

let quietBudgetMs = opts.waitQuietS * 1000;
const quietWaits: { phase: string; waitedMs: number; busyShare: number; quiet: boolean }[] = [];

/** With --wait-quiet: let other people's work on the machine finish before a phase starts. */
async function settle(phase: string): Promise<void> {
  if (quietBudgetMs <= 0) return;
  const wait = await waitForQuietMachine(quietBudgetMs);
  quietBudgetMs -= wait.waitedMs;
  quietWaits.push({ phase, waitedMs: Math.round(wait.waitedMs), busyShare: round(wait.busyShare, 3), quiet: wait.quiet });
  log(`${phase}: ${wait.quiet ? 'machine quiet' : 'machine still busy'} after ${(wait.waitedMs / 1000).toFixed(0)} s (CPU ${Math.round(wait.busyShare * 100)}% busy)`);
}

// ---------------------------------------------------------------- main

/**
 * Memory per open stream, relay and raw pipe: each against a mock that sends a stream's first event and
 * then holds it, with room for every stream under one key (MAX_IN_FLIGHT_PER_KEY).
 */
async function openStreams(): Promise<{ relay: OpenStreams; raw: OpenStreams }> {
  const hold = await startMock('mock-hold', ['--sse-gap-ms', '600000', '--sse-events', '1']);
  const relay = await startRelay(hold.url, 'warn', 'relay-streams', [], { MAX_IN_FLIGHT_PER_KEY: String(opts.streams + 100) });
  const raw = await startRawPipe(hold.url, 'raw-pipe-streams');
  await settle('open streams');
  log(`open streams: ${opts.streams} held open at once through the relay, then through the raw pipe`);
  const result = {
    relay: await measureOpenStreams(relay.url, relay.child.pid, opts.streams, AUTH),
    raw: await measureOpenStreams(raw.url, raw.child.pid, opts.streams, AUTH),
  };
  for (const [k, m] of Object.entries(result)) log(`${k}: ${m.opened}/${m.streams} open, ${m.idleMiB} → ${m.openMiB} MiB, ${m.perStreamKiB} KiB per stream, all open in ${m.openAllMs} ms`);
  await Promise.all([relay.child.stop(), raw.child.stop(), hold.child.stop()]);
  return result;
}

const streamRow = (s: { relay: OpenStreams; raw: OpenStreams }): Row => ({
  metric: `Memory per open SSE stream, ${opts.streams} at once, KiB`,
  relay: fmt(s.relay.perStreamKiB, 1),
  baseline: fmt(s.raw.perStreamKiB, 1),
  compare: `${fmt(s.relay.perStreamKiB - s.raw.perStreamKiB, 1)} KiB more`,
  target: '—',
  pass: s.relay.opened === opts.streams && s.raw.opened === opts.streams ? null : false,
});

async function main(): Promise<number> {
  tmp = mkdtempSync(join(os.tmpdir(), 'relay-bench-'));
  if (opts.only === 'open-streams') {
    const streams = await openStreams();
    console.log(`\n${table([streamRow(streams)])}\n`);
    return streams.relay.opened === opts.streams ? 0 : 1;
  }
  const autocannon = await loadAutocannon();
  const began = performance.now();
  const loadBefore = os.loadavg();
  log(
    opts.only
      ? `only the ${opts.only} scenario, watchdog ${Math.round(budgetS)} s`
      : `${quick ? 'quick' : 'full'} run: ${opts.rounds} rounds x ${opts.durationS} s, ${opts.connections} connections, upload ${opts.uploadMiB} MiB, download ${opts.downloadMiB} MiB, watchdog ${Math.round(budgetS)} s`,
  );

  const mock = await startMock();
  log(`mock upstream on ${mock.url}`);
  if (opts.only === 'websocket') return onlyWebSockets(mock.url);
  if (opts.only !== undefined) throw new Error(`--only takes websocket or open-streams (got "${opts.only}")`);

  // ---- throughput: interleaved rounds raw / relay(warn) / relay(info)
  const raw = await startRawPipe(mock.url);
  const relayWarn = await startRelay(mock.url, 'warn', 'relay-warn');
  const relayInfo = opts.infoLevel ? await startRelay(mock.url, 'info', 'relay-info') : undefined;
  const targets: { name: string; url: string }[] = [
    { name: 'raw', url: raw.url },
    { name: 'relay-warn', url: relayWarn.url },
    ...(relayInfo ? [{ name: 'relay-info', url: relayInfo.url }] : []),
  ];
  for (const t of targets) {
    await embeddingOnce(t.url); // fails fast on a misconfigured target
    log(`warm-up ${t.name} (${opts.warmupS} s)`);
    await load(autocannon, t.url, opts.warmupS, t.name, 0);
  }
  await settle('throughput');
  const runs: LoadRun[] = [];
  const pids = [mock.child.pid, raw.child.pid, relayWarn.child.pid, ...(relayInfo ? [relayInfo.child.pid] : [])];
  const pidOf: Record<string, number> = { raw: raw.child.pid, 'relay-warn': relayWarn.child.pid, 'relay-info': relayInfo?.child.pid ?? 0 };
  for (let r = 1; r <= opts.rounds; r++) {
    // The order rotates each round (raw, warn, info; then warn, info, raw; ...): measured, whichever
    // relay ran right after the other relay's round was ~15% slower, whatever its log level.
    const order = targets.map((_, i) => targets[(i + r - 1) % targets.length]!);
    for (const t of order) {
      // A short unmeasured load first: while the other targets had their rounds this one sat idle, and
      // V8's memory reducer shrinks an idle heap (the relay's young generation back to its minimum), so a
      // round started cold measured the regrowth: ~10 µs a request more for the relay over a 10 s round.
      await load(autocannon, t.url, opts.roundWarmupS, t.name, 0);
      const accounted = await withCpuAccounting(pids, () => load(autocannon, t.url, opts.durationS, t.name, r));
      const run = accounted.result;
      const answered = Math.max(1, run.total2xx + run.non2xx);
      run.cpuUsPerReq = round((accounted.ownMs[pidOf[t.name]] * 1000) / answered, 1);
      run.mockCpuUsPerReq = round((accounted.ownMs[mock.child.pid] * 1000) / answered, 1);
      run.harnessCpuUsPerReq = round((accounted.harnessMs * 1000) / answered, 1);
      run.foreignCpuShare = round(accounted.foreignShare, 3);
      runs.push(run);
      log(
        `round ${r} ${t.name}: ${run.rps} req/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ${run.cpuUsPerReq} µs CPU/req, non-2xx ${run.non2xx}, errors ${run.errors}` +
          (run.foreignCpuShare > 0.05 ? ` (other processes took ${Math.round(run.foreignCpuShare * 100)}% of the CPU)` : ''),
      );
      await sleep(250);
    }
  }
  const summarize = (name: string) => {
    const mine = runs.filter((r) => r.target === name);
    return {
      rps: round(median(mine.map((r) => r.rps)), 1),
      p50Ms: round(median(mine.map((r) => r.p50Ms)), 3),
      p99Ms: round(median(mine.map((r) => r.p99Ms)), 3),
      meanMs: round(median(mine.map((r) => r.meanMs)), 3),
      cpuUsPerReq: round(median(mine.map((r) => r.cpuUsPerReq ?? Number.NaN)), 1),
      non2xx: mine.reduce((a, r) => a + r.non2xx, 0),
      errors: mine.reduce((a, r) => a + r.errors + r.timeouts, 0),
    };
  };
  const tpRaw = summarize('raw');
  const tpWarn = summarize('relay-warn');
  const tpInfo = relayInfo ? summarize('relay-info') : undefined;
  const foreignCpuShare = round(median(runs.map((r) => r.foreignCpuShare ?? 0)), 3);
  // Each relay round against the raw round just before it: drift on the machine cancels out better.
  const pairedRatios = (name: string) => {
    const ratios = { rps: [] as number[], p99: [] as number[] };
    for (let r = 1; r <= opts.rounds; r++) {
      const a = runs.find((x) => x.round === r && x.target === name);
      const b = runs.find((x) => x.round === r && x.target === 'raw');
      if (!a || !b) continue;
      ratios.rps.push(a.rps / b.rps);
      ratios.p99.push(a.p99Ms / b.p99Ms);
    }
    return { rpsRatioMedian: round(median(ratios.rps), 3), p99RatioMedian: round(median(ratios.p99), 3), rpsRatios: ratios.rps.map((x) => round(x, 3)) };
  };
  const infoLogBytes = relayInfo ? statSync(relayInfo.child.logFile!).size : 0;

  // ---- SSE time to first event: direct to the mock vs through the relay, alternating
  await settle('sse');
  // One keep-alive connection per target, as an SDK client would hold; direct, raw pipe and relay take
  // turns so that drift on the machine hits all three alike.
  log(`SSE: ${opts.sseRequests} sequential requests each, direct, through the raw pipe and through the relay`);
  const sseTargets = [
    { name: 'direct', url: mock.url, auth: false, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), events: [] as FirstEvent[] },
    { name: 'raw', url: raw.url, auth: true, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), events: [] as FirstEvent[] },
    { name: 'relay', url: relayWarn.url, auth: true, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), events: [] as FirstEvent[] },
  ];
  for (let i = 0; i < 3; i++) for (const t of sseTargets) await timeFirstEvent(t.url, t.agent, t.auth);
  for (let i = 0; i < opts.sseRequests; i++) for (const t of sseTargets) t.events.push(await timeFirstEvent(t.url, t.agent, t.auth));
  for (const t of sseTargets) t.agent.destroy();
  const [sseDirect, sseRaw, sseRelay] = sseTargets.map((t) => t.events);
  const firstMs = (events: FirstEvent[]) => events.map((e) => e.firstEventMs);
  const sse = {
    directMs: round(median(firstMs(sseDirect)), 3),
    rawMs: round(median(firstMs(sseRaw)), 3),
    relayMs: round(median(firstMs(sseRelay)), 3),
    directP10Ms: round(quantile(firstMs(sseDirect), 0.1), 3),
    rawP10Ms: round(quantile(firstMs(sseRaw), 0.1), 3),
    relayP10Ms: round(quantile(firstMs(sseRelay), 0.1), 3),
    directP90Ms: round(quantile(firstMs(sseDirect), 0.9), 3),
    rawP90Ms: round(quantile(firstMs(sseRaw), 0.9), 3),
    relayP90Ms: round(quantile(firstMs(sseRelay), 0.9), 3),
    eventsPerStream: median(sseRelay.map((e) => e.events)),
    eventsOk: sseRelay.every((e, i) => e.events === sseDirect[i].events && e.events > 1),
    diffMs: 0,
    rawDiffMs: 0,
  };
  sse.diffMs = round(sse.relayMs - sse.directMs, 3);
  sse.rawDiffMs = round(sse.rawMs - sse.directMs, 3);
  log(`SSE first event: direct ${sse.directMs} ms, raw pipe ${sse.rawMs} ms, relay ${sse.relayMs} ms`);

  await settle('websocket');
  const websocket = await webSocketPhase(mock.url, relayWarn.url);

  // The load-test processes are done: fresh ones for memory, so "idle" is not inflated by earlier load.
  await Promise.all([raw.child.stop(), relayWarn.child.stop(), relayInfo?.child.stop()]);

  // ---- memory
  const uploadBytes = Math.round(opts.uploadMiB * MiB);
  const downloadBytes = Math.round(opts.downloadMiB * MiB);
  const memRaw = await startRawPipe(mock.url, 'raw-pipe-mem');
  const memRelay = await startRelay(mock.url, 'warn', 'relay-mem');
  await warmPaths(memRaw.url);
  await warmPaths(memRelay.url);
  await settle('memory');
  log(`memory: ${opts.uploadMiB} MiB multipart upload and ${opts.downloadMiB} MiB download, raw pipe and relay`);
  const memory = {
    uploadRaw: await measureMemory('raw', memRaw.child.pid, () => upload(memRaw.url, uploadBytes)),
    uploadRelay: await measureMemory('relay', memRelay.child.pid, () => upload(memRelay.url, uploadBytes)),
    downloadRelay: await measureMemory('relay', memRelay.child.pid, () => download(memRelay.url, downloadBytes)),
    downloadRaw: await measureMemory('raw', memRaw.child.pid, () => download(memRaw.url, downloadBytes)),
  };
  for (const [k, m] of Object.entries(memory)) {
    log(`${k}: idle ${m.idleMiB} MiB, peak ${m.peakMiB} MiB, +${m.growthMiB} MiB, ${m.transfer.mibPerS} MiB/s, ${m.transfer.ok ? 'bytes ok' : `BYTES WRONG (${m.transfer.status}, ${m.transfer.bytes}/${m.transfer.expectedBytes})`}`);
  }
  await Promise.all([memRaw.child.stop(), memRelay.child.stop()]);
  const streams = await openStreams();

  await settle('startup');
  // ---- start-up: npm start (and plain node, for the npm overhead), alternating
  log(`start-up: ${opts.startupRuns} x npm start, ${opts.startupRuns} x node src/main.ts`);
  const startNpm: number[] = [];
  const startNode: number[] = [];
  for (let i = 0; i < opts.startupRuns; i++) {
    startNpm.push(round(await timeStartup('npm start', mock.url, i), 1));
    startNode.push(round(await timeStartup('node src/main.ts', mock.url, i), 1));
  }
  const startup = { npmStartMs: round(median(startNpm), 1), nodeMs: round(median(startNode), 1), npmRunsMs: startNpm, nodeRunsMs: startNode };
  log(`start-up: npm start ${startup.npmStartMs} ms, node ${startup.nodeMs} ms`);

  // ---- optional CPU profiles of the relay and of the raw pipe under the same load
  let profiles: { relay: ProfiledRun; raw: ProfiledRun } | undefined;
  if (opts.profile) {
    log(`profiling the relay (LOG_LEVEL=${opts.profileLevel}) and the raw pipe under ${opts.durationS} s of load each`);
    const profDir = join(tmp, 'prof');
    mkdirSync(profDir);
    const profileOne = async (kind: 'relay' | 'raw'): Promise<ProfiledRun> => {
      const dir = join(profDir, kind);
      mkdirSync(dir);
      const flags = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
      const target = kind === 'relay' ? await startRelay(mock.url, opts.profileLevel, 'relay-prof', flags) : await startRawPipe(mock.url, 'raw-prof', flags);
      await load(autocannon, target.url, opts.warmupS, `${kind}-prof`, 0);
      const fromUs = Number(process.hrtime.bigint() / 1000n);
      const run = await load(autocannon, target.url, opts.durationS, `${kind}-prof`, 1);
      const toUs = Number(process.hrtime.bigint() / 1000n);
      await target.child.stop(10_000); // SIGTERM: it exits, and node writes the profile on the way out
      const written = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
      if (written.length === 0) throw new Error(`the profiled ${kind} wrote no .cpuprofile:\n${target.child.tail()}`);
      const file = join(dirname(opts.out), kind === 'relay' ? `relay-${opts.profileLevel}.cpuprofile` : 'raw-pipe.cpuprofile');
      mkdirSync(dirname(file), { recursive: true });
      copyFileSync(join(dir, written[0]), file);
      const requests = run.total2xx + run.non2xx;
      return { file, rps: run.rps, requests, summary: summarizeProfile(readProfile(file), 25, { fromUs, toUs }) };
    };
    profiles = { relay: await profileOne('relay'), raw: await profileOne('raw') };
  }

  await mock.child.stop();

  // ---- report
  const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
  const tpRatio = ratio(tpWarn.rps, tpRaw.rps);
  const p99Ratio = ratio(tpWarn.p99Ms, tpRaw.p99Ms);
  const loadClean = (s: { non2xx: number; errors: number }) => s.non2xx === 0 && s.errors === 0;
  const rows: Row[] = [
    {
      metric: `Embeddings throughput, req/s (${opts.connections} conns, LOG_LEVEL=warn)`,
      relay: fmt(tpWarn.rps, 0),
      baseline: fmt(tpRaw.rps, 0),
      compare: `${fmt(tpRatio)}x (rounds ${roundRange(pairedRatios('relay-warn').rpsRatios)})`,
      target: `≥ ${TARGETS.throughputRatio}x`,
      pass: tpRatio >= TARGETS.throughputRatio && loadClean(tpWarn),
    },
    {
      metric: 'Proxy process CPU per request, µs (warn)',
      relay: fmt(tpWarn.cpuUsPerReq, 0),
      baseline: fmt(tpRaw.cpuUsPerReq, 0),
      compare: `${fmt(ratio(tpWarn.cpuUsPerReq, tpRaw.cpuUsPerReq))}x`,
      target: '—',
      pass: null,
    },
    { metric: 'Embeddings latency p50, ms (warn)', relay: fmt(tpWarn.p50Ms), baseline: fmt(tpRaw.p50Ms), compare: `${fmt(ratio(tpWarn.p50Ms, tpRaw.p50Ms))}x`, target: '—', pass: null },
    {
      metric: 'Embeddings latency p99, ms (warn)',
      relay: fmt(tpWarn.p99Ms),
      baseline: fmt(tpRaw.p99Ms),
      compare: `${fmt(p99Ratio)}x`,
      target: `≤ ${TARGETS.p99Ratio}x`,
      pass: p99Ratio <= TARGETS.p99Ratio,
    },
  ];
  if (tpInfo) {
    const r = ratio(tpInfo.rps, tpRaw.rps);
    const r99 = ratio(tpInfo.p99Ms, tpRaw.p99Ms);
    rows.push(
      { metric: 'Embeddings throughput, req/s (LOG_LEVEL=info, default)', relay: fmt(tpInfo.rps, 0), baseline: fmt(tpRaw.rps, 0), compare: `${fmt(r)}x (rounds ${roundRange(pairedRatios('relay-info').rpsRatios)})`, target: `≥ ${TARGETS.throughputRatio}x`, pass: r >= TARGETS.throughputRatio && loadClean(tpInfo), informational: true },
      { metric: 'Proxy process CPU per request, µs (info)', relay: fmt(tpInfo.cpuUsPerReq, 0), baseline: fmt(tpRaw.cpuUsPerReq, 0), compare: `${fmt(ratio(tpInfo.cpuUsPerReq, tpRaw.cpuUsPerReq))}x`, target: '—', pass: null },
      { metric: 'Embeddings latency p50, ms (info)', relay: fmt(tpInfo.p50Ms), baseline: fmt(tpRaw.p50Ms), compare: `${fmt(ratio(tpInfo.p50Ms, tpRaw.p50Ms))}x`, target: '—', pass: null },
      { metric: 'Embeddings latency p99, ms (info)', relay: fmt(tpInfo.p99Ms), baseline: fmt(tpRaw.p99Ms), compare: `${fmt(r99)}x`, target: `≤ ${TARGETS.p99Ratio}x`, pass: r99 <= TARGETS.p99Ratio, informational: true },
    );
  }
  rows.push(
    {
      metric: 'Load errors (non-2xx + socket errors/timeouts, all rounds)',
      relay: String(tpWarn.non2xx + tpWarn.errors + (tpInfo ? tpInfo.non2xx + tpInfo.errors : 0)),
      baseline: String(tpRaw.non2xx + tpRaw.errors),
      compare: '—',
      target: '0',
      pass: loadClean(tpWarn) && (!tpInfo || loadClean(tpInfo)),
    },
    {
      metric: `SSE time to first event, median of ${opts.sseRequests}, ms`,
      relay: fmt(sse.relayMs, 3),
      baseline: `${fmt(sse.directMs, 3)} (direct)`,
      compare: `+${fmt(sse.diffMs, 3)} ms`,
      target: `≤ +${TARGETS.sseDiffMs} ms`,
      pass: sse.diffMs <= TARGETS.sseDiffMs && sse.eventsOk,
    },
    {
      metric: 'SSE time to first event via the raw pipe, ms (one Node hop, for scale)',
      relay: '—',
      baseline: fmt(sse.rawMs, 3),
      compare: `+${fmt(sse.rawDiffMs, 3)} ms`,
      target: '—',
      pass: null,
    },
    ...webSocketRows(websocket),
    {
      metric: `RSS growth, ${opts.uploadMiB} MiB multipart upload, MiB`,
      relay: fmt(memory.uploadRelay.growthMiB, 1),
      baseline: fmt(memory.uploadRaw.growthMiB, 1),
      compare: `${memory.uploadRelay.growthMiB - memory.uploadRaw.growthMiB >= 0 ? '+' : ''}${fmt(memory.uploadRelay.growthMiB - memory.uploadRaw.growthMiB, 1)} MiB`,
      target: `≤ ${TARGETS.uploadGrowthMiB} MiB`,
      pass: memory.uploadRelay.growthMiB <= TARGETS.uploadGrowthMiB && memory.uploadRelay.transfer.ok,
    },
    {
      metric: `RSS growth, ${opts.downloadMiB} MiB download, MiB`,
      relay: fmt(memory.downloadRelay.growthMiB, 1),
      baseline: fmt(memory.downloadRaw.growthMiB, 1),
      compare: `${memory.downloadRelay.growthMiB - memory.downloadRaw.growthMiB >= 0 ? '+' : ''}${fmt(memory.downloadRelay.growthMiB - memory.downloadRaw.growthMiB, 1)} MiB`,
      target: `≤ ${TARGETS.downloadGrowthMiB} MiB`,
      pass: memory.downloadRelay.growthMiB <= TARGETS.downloadGrowthMiB && memory.downloadRelay.transfer.ok,
    },
    {
      metric: 'Idle RSS before the upload, MiB',
      relay: fmt(memory.uploadRelay.idleMiB, 1),
      baseline: fmt(memory.uploadRaw.idleMiB, 1),
      compare: '—',
      target: '—',
      pass: null,
    },
    {
      metric: 'Upload / download speed, MiB/s',
      relay: `${memory.uploadRelay.transfer.mibPerS} / ${memory.downloadRelay.transfer.mibPerS}`,
      baseline: `${memory.uploadRaw.transfer.mibPerS} / ${memory.downloadRaw.transfer.mibPerS}`,
      compare: '—',
      target: '—',
      pass: null,
    },
    streamRow(streams),
    {
      metric: `Start-up to first /health 200, median of ${opts.startupRuns}, ms`,
      relay: `${fmt(startup.npmStartMs, 0)} (npm start)`,
      baseline: `${fmt(startup.nodeMs, 0)} (node)`,
      compare: `+${fmt(startup.npmStartMs - startup.nodeMs, 0)} ms npm`,
      target: `≤ ${TARGETS.startupMs} ms`,
      pass: startup.npmStartMs <= TARGETS.startupMs,
    },
  );

  const failed = rows.filter((r) => r.pass === false && !r.informational);
  const md = table(rows);
  console.log(`\n## Relay benchmark (${quick ? 'quick' : 'full'}; ${os.cpus().length} CPUs, node ${process.version})\n\n${md}\n`);
  const loadNote =
    foreignCpuShare > 0.05
      ? `**Noisy machine:** processes outside the benchmark took a median ${Math.round(foreignCpuShare * 100)}% of all CPU during the throughput rounds (load average before the run: ${loadBefore.map((x) => x.toFixed(2)).join(' ')}); ratios are less trustworthy than on an idle machine.`
      : `Other processes took a median ${Math.round(foreignCpuShare * 100)}% of the CPU during the throughput rounds.`;
  console.log(loadNote);
  if (relayInfo) console.log(`LOG_LEVEL=info wrote ${(infoLogBytes / MiB).toFixed(1)} MiB of request logs during its rounds.`);
  if (profiles) {
    const { relay: pr, raw: pw } = profiles;
    console.log(`\n### Relay CPU profile, load phase only (LOG_LEVEL=${opts.profileLevel}, ${pr.rps} req/s while profiled): ${pr.file}\n\n${formatSummary(pr.summary)}\n`);
    console.log(`### Busy CPU per request by origin, relay vs raw pipe (raw profiled at ${pw.rps} req/s: ${pw.file})\n\n${compareProfiles(pr, pw)}\n`);
  }

  const results = {
    meta: {
      date: new Date().toISOString(),
      commit: gitCommit(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      totalMemMiB: Math.round(os.totalmem() / MiB),
      elapsedS: round((performance.now() - began) / 1000, 1),
      options: opts,
      targets: TARGETS,
      embeddingsRequestBytes: Buffer.byteLength(EMBEDDINGS_BODY),
      loadAverageBefore: loadBefore,
      loadAverageAfter: os.loadavg(),
      foreignCpuShareDuringThroughput: foreignCpuShare,
      quietWaits,
    },
    throughput: {
      raw: tpRaw,
      relayWarn: tpWarn,
      relayInfo: tpInfo,
      ratioWarn: round(tpRatio, 3),
      p99RatioWarn: round(p99Ratio, 3),
      pairedWarn: pairedRatios('relay-warn'),
      pairedInfo: relayInfo ? pairedRatios('relay-info') : undefined,
      infoLogBytes,
      runs,
    },
    sse: { ...sse, direct: sseDirect.map(roundEvent), raw: sseRaw.map(roundEvent), relay: sseRelay.map(roundEvent) },
    websocket,
    memory,
    openStreams: streams,
    startup,
    profile: profiles && {
      level: opts.profileLevel,
      relay: { file: profiles.relay.file, rps: profiles.relay.rps, requests: profiles.relay.requests, ...profiles.relay.summary },
      raw: { file: profiles.raw.file, rps: profiles.raw.rps, requests: profiles.raw.requests, ...profiles.raw.summary },
    },
    rows,
    failedTargets: failed.map((r) => r.metric),
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`${failed.length === 0 ? 'All targets met.' : `${failed.length} target(s) missed: ${failed.map((r) => r.metric).join('; ')}.`} JSON: ${opts.out} (${results.meta.elapsedS} s)`);
  return opts.check && failed.length > 0 ? 1 : 0;
}

/** WebSocket round trips: direct to the mock and through the relay, on one socket each, taking turns. */
async function webSocketPhase(mockUrl: string, relayUrl: string): Promise<WebSocketResult> {
  const path = '/v1/realtime?model=gpt-realtime';
  log(`WebSocket: ${opts.wsRoundTrips} round trips each (a 1 KB event, a 16 KiB audio frame), direct and through the relay`);
  const result = await measureWebSocketRoundTrips(
    [
      { name: 'direct', url: `${mockUrl.replace(/^http/, 'ws')}${path}` },
      { name: 'relay', url: `${relayUrl.replace(/^http/, 'ws')}${path}`, headers: { authorization: AUTH } },
    ],
    opts.wsRoundTrips,
  );
  const { direct, relay } = result.targets;
  log(`WebSocket round trip (event / audio): direct ${direct!.text.medianMs} / ${direct!.binary.medianMs} ms, relay ${relay!.text.medianMs} / ${relay!.binary.medianMs} ms`);
  return result;
}

/** `--only websocket`: the mock, one relay, the WebSocket scenario, its rows. */
async function onlyWebSockets(mockUrl: string): Promise<number> {
  const relay = await startRelay(mockUrl, 'warn', 'relay-ws');
  await settle('websocket');
  const websocket = await webSocketPhase(mockUrl, relay.url);
  const rows = webSocketRows(websocket);
  console.log(`\n## Relay benchmark: WebSocket scenario only (${os.cpus().length} CPUs, node ${process.version})\n\n${table(rows)}\n`);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify({ meta: { date: new Date().toISOString(), commit: gitCommit(), node: process.version, options: opts }, websocket, rows }, null, 2)}\n`);
  return opts.check && rows.some((r) => r.pass === false) ? 1 : 0;
}

const roundEvent = (e: FirstEvent) => ({ headersMs: round(e.headersMs, 3), firstEventMs: round(e.firstEventMs, 3), totalMs: round(e.totalMs, 1), events: e.events });

main().then(
  async (code) => {
    finishing = true;
    await stopAllChildren();
    process.exit(code);
  },
  async (err: Error) => {
    console.error(`bench harness failed: ${err.stack ?? err}`);
    if (!finishing) await stopAllChildren();
    process.exit(2);
  },
);
