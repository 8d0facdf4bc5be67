import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib.ts';

/**
 * The bench's command line, read once when this module loads: `--help` prints USAGE and exits, a bad
 * number exits 2 with USAGE. Every other module takes its settings from `opts` (written as-is into the
 * JSON results), the pass/fail `TARGETS` and `extraRelayEnv` from here.
 */

export const USAGE = `usage: node scripts/bench/run.ts [options]
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
  --against DIR        run the second relay from another checkout (with its own npm ci), at
                       LOG_LEVEL=warn, in place of the info one: two commits side by side in one
                       run, e.g. git worktree add ../relay-before <commit>
  --pin                with --against: raw pipe and relays on one CPU, mock and load on the others
                       (taskset), so CPU per request compares steadier on a small shared machine
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
    against: { type: 'string' },
    pin: { type: 'boolean', default: false },
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
export const opts = {
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
  /** Another checkout whose relay takes the info relay's place (at warn), or undefined. */
  against: flags.against ? checkoutRoot(flags.against) : undefined,
  /** Pin the proxies to one CPU and the rest to the others (pin.ts). */
  pin: flags.pin,
  profile: flags.profile,
  profileLevel: flags['profile-level'] ?? 'warn',
  out: resolve(flags.out ?? join(ROOT, 'bench-results', 'latest.json')),
  check: flags.check,
};
export type Options = typeof opts;

export const TARGETS = {
  throughputRatio: 0.75,
  p99Ratio: 2,
  sseDiffMs: 1,
  uploadGrowthMiB: 40,
  downloadGrowthMiB: 40,
  startupMs: 1500,
};

/** --against: a directory with src/main.ts (and its node_modules), else a harness failure (exit 2). */
function checkoutRoot(dir: string): string {
  const root = resolve(dir);
  if (!existsSync(join(root, 'src', 'main.ts')) || !existsSync(join(root, 'node_modules'))) {
    console.error('bench harness failed:', new Error(`--against takes a checkout of this repository with its node_modules (no src/main.ts or node_modules in ${root})`));
    process.exit(2);
  }
  return root;
}

/** --relay-env K=V pairs. A malformed pair ends the run the way any harness failure does (exit 2). */
export const extraRelayEnv: Record<string, string> = Object.fromEntries(
  (flags['relay-env'] as string[]).map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      console.error('bench harness failed:', new Error(`--relay-env takes KEY=VALUE (got "${pair}")`));
      process.exit(2);
    }
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }),
);
