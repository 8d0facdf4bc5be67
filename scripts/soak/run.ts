/**
 * `npm run soak`: minutes of mixed load against the relay as `npm start` runs it (a child process on
 * 127.0.0.1, with a mock OpenAI of its own), sampling the relay's resident memory, open descriptors and
 * sockets. It reports the RSS slope after the warm-up, and fails (exit 1) when memory keeps growing (judge.ts), when
 * descriptors and sockets do not return to their idle counts once the load stops, or when more than 1 % of
 * requests got an answer their kind did not expect. Not part of `npm test`; it stops by itself.
 *
 *   node scripts/soak/run.ts [--minutes N (5)] [--warmup-minutes N (half)] [--workers N] [--sample-seconds N]
 *                            [--max-slope-mib-per-min X] [--rss-noise-mib N] [--out FILE] [--relay-env K=V ...]
 */
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, freePort, killAllChildrenNow, MiB, readPortLine, ROOT, sleep, startChild, stopAllChildren, waitFor200 } from '../bench/lib.ts';
import { KINDS, runLoad, type KindStats } from './load.ts';
import { judgeMemory, type HeapSample } from './judge.ts';
import { sampleProcess, type ProcessSample } from './probe.ts';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    'warmup-minutes': { type: 'string' },
    workers: { type: 'string', default: '16' },
    'sample-seconds': { type: 'string', default: '5' },
    'max-slope-mib-per-min': { type: 'string', default: '1' },
    'rss-noise-mib': { type: 'string', default: '16' },
    out: { type: 'string', default: 'bench-results/soak.json' },
    'relay-env': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log('node scripts/soak/run.ts [--minutes 5] [--warmup-minutes half] [--workers 16] [--sample-seconds 5] [--max-slope-mib-per-min 1] [--rss-noise-mib 16] [--out bench-results/soak.json] [--relay-env K=V ...]');
  process.exit(0);
}
const minutes = Number(flags.minutes);
// V8 keeps growing its old generation for the first minutes of steady load (RSS rose for 4-5 min, then
// stayed flat, on this branch and on the commit before it alike): the first half is warm-up.
const warmupMinutes = flags['warmup-minutes'] !== undefined ? Number(flags['warmup-minutes']) : minutes / 2;
const workers = Number(flags.workers);
const sampleS = Number(flags['sample-seconds']);
const maxSlope = Number(flags['max-slope-mib-per-min']);
const rssNoiseMiB = Number(flags['rss-noise-mib']);
for (const [name, value] of Object.entries({ minutes, warmupMinutes, workers, sampleS, maxSlope, rssNoiseMiB })) {
  if (!(value > 0)) throw new Error(`--${name} must be a number above 0`);
}

/** --relay-env K=V: extra settings for the relay, e.g. USAGE_LEDGER=off to see what the ledger holds. */
const relayExtraEnv = Object.fromEntries(
  (flags['relay-env'] as string[]).map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--relay-env takes KEY=VALUE (got "${pair}")`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }),
);

const OPENAI_KEY = 'sk-soak-server-key-0123456789abcdef';
const RELAY_KEY = 'soak-relay-key-0123456789abcdef';
const ADMIN_KEY = 'soak-admin-key-0123456789abcdef';
const log = (msg: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const tmp = mkdtempSync(join(tmpdir(), 'relay-soak-'));
process.on('exit', () => {
  killAllChildrenNow();
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));
// The soak always ends by itself: its length, plus start-up and the settle phase, plus a margin.
setTimeout(() => {
  console.error('soak failed: still running long after its length (watchdog)');
  process.exit(2);
}, (minutes * 60 + 180) * 1000).unref();

const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmp, NODE_OPTIONS: '', ...extra });

async function main(): Promise<number> {
  const mock = startChild('mock-upstream', process.execPath, [join(BENCH_DIR, 'mock-upstream.ts'), '--exit-with-stdin', '--port', '0', '--sse-gap-ms', '20', '--sse-events', '10'], {
    env: env({}),
    stdinPipe: true,
    captureStdout: true,
    logFile: join(tmp, 'mock.log'),
  });
  const upstreamPort = await readPortLine(mock);
  const port = await freePort();
  const relayDir = join(tmp, 'relay');
  mkdirSync(relayDir);
  const started = performance.now();
  const relay = startChild('relay', process.execPath, [join(ROOT, 'src', 'main.ts')], {
    env: env({
      OPENAI_API_KEY: OPENAI_KEY,
      RELAY_KEY,
      RELAY_ADMIN_KEY: ADMIN_KEY,
      OPENAI_BASE_URL: `http://127.0.0.1:${upstreamPort}/v1`,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      MAX_JSON_BODY_BYTES: String(1024 * 1024),
      MAX_IN_FLIGHT_PER_KEY: String(workers * 2),
      ...relayExtraEnv,
    }),
    cwd: relayDir,
    logFile: join(tmp, 'relay.log'),
  });
  const relayUrl = `http://127.0.0.1:${port}`;
  await waitFor200(`${relayUrl}/health`, relay, started);
  const target = { relayUrl, relayKey: RELAY_KEY };
  const sample = (t0: number): ProcessSample => sampleProcess(relay.pid, port, upstreamPort, (performance.now() - t0) / 1000);

  // Idle counts: after a short round of every kind (lazy modules loaded, the upstream pool opened), with
  // the callers' connections closed.
  log('warming every path once, then reading the idle counts');
  const warmAgent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const warmStats = new Map<string, KindStats>();
  const warmUntil = performance.now() + 5000;
  await runLoad(target, warmAgent, workers, () => performance.now() < warmUntil, warmStats);
  warmAgent.destroy();
  await sleep(2000);
  const t0 = performance.now();
  const idle = sample(t0);
  log(`idle: RSS ${idle.rssMiB.toFixed(1)} MiB, ${idle.fds} descriptors, sockets ${JSON.stringify(idle.sockets)}`);

  log(`load: ${workers} callers for ${minutes} min (warm-up ${warmupMinutes} min), sampling every ${sampleS} s`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const stats = new Map<string, KindStats>();
  const samples: ProcessSample[] = [];
  const end = performance.now() + minutes * 60_000;
  const heaps: HeapSample[] = [];
  const sampler = setInterval(() => {
    const s = sample(t0);
    samples.push(s);
    void heapMiB(relayUrl).then((h) => h && heaps.push({ t: s.t, ...h }));
    if (samples.length % Math.max(1, Math.round(60 / sampleS)) === 0) {
      const h = heaps.at(-1);
      log(`t=${Math.round(s.t)} s: RSS ${s.rssMiB.toFixed(1)} MiB${h ? ` (JS heap ${h.heapUsed.toFixed(1)} of ${h.heapTotal.toFixed(1)}, external ${h.external.toFixed(1)})` : ''}, ${s.fds} fds, sockets ${JSON.stringify(s.sockets)}`);
    }
  }, sampleS * 1000);
  await runLoad(target, agent, workers, () => performance.now() < end, stats);
  clearInterval(sampler);
  agent.destroy();

  // Settle: the callers are gone; every caller socket must close and descriptors come back to idle.
  let settled = sample(t0);
  const settleUntil = performance.now() + 20_000;
  while (performance.now() < settleUntil && !backToIdle(idle, settled)) {
    await sleep(500);
    settled = sample(t0);
  }
  const heap = (await heapMiB(relayUrl))?.heapUsed.toFixed(1);

  const afterWarmup = samples.filter((s) => s.t >= warmupMinutes * 60);
  const memory = judgeMemory(samples, heaps, { fromS: warmupMinutes * 60, everyS: sampleS, maxSlope, rssNoiseMiB });
  const requests = [...stats.values()].reduce((n, s) => n + s.done, 0);
  const unexpected = [...stats.values()].reduce((n, s) => n + s.unexpected, 0);
  const failures: string[] = [...memory.failures];
  if (!backToIdle(idle, settled)) failures.push(`descriptors or sockets did not return to idle: ${settled.fds} fds (idle ${idle.fds}), sockets ${JSON.stringify(settled.sockets)} (idle ${JSON.stringify(idle.sockets)})`);
  if (unexpected > requests * 0.01) failures.push(`${unexpected} of ${requests} requests got an answer their kind does not expect`);
  if (relay.proc.exitCode !== null) failures.push(`the relay exited (${relay.proc.exitCode})`);

  const rss = afterWarmup.map((s) => s.rssMiB);
  const report = [
    `# Soak: ${minutes} min, ${workers} callers, ${requests} requests (${(requests / (minutes * 60)).toFixed(0)}/s), ${unexpected} unexpected`,
    '',
    '| kind | requests | unexpected |',
    '| --- | ---: | ---: |',
    ...KINDS.map((k) => {
      const s = stats.get(k.name)!;
      return `| ${k.name} | ${s.done} | ${s.unexpected}${s.examples.length ? ` (${s.examples.join(', ')})` : ''} |`;
    }),
    '',
    `RSS: idle ${idle.rssMiB.toFixed(1)} MiB; after the ${warmupMinutes}-min warm-up ${Math.min(...rss).toFixed(1)}–${Math.max(...rss).toFixed(1)} MiB over ${afterWarmup.length} samples; slope ${memory.rssSlope.toFixed(3)} MiB/min (${((memory.rssSlope * MiB) / (requests / minutes || 1)).toFixed(0)} bytes per request), ${memory.rssGrowthMiB.toFixed(1)} MiB from the first to the last minute; heap used at the end ${heap ?? '?'} MiB`,
    `RSS every minute: ${samples.filter((_, i) => (i + 1) % Math.max(1, Math.round(60 / sampleS)) === 0).map((s) => s.rssMiB.toFixed(0)).join(' ')} MiB`,
    `The relay's own view (/metrics): JS live set per minute ${memory.liveSetByMinute.map(([, v]) => v.toFixed(1)).join(' ')} MiB, slope ${memory.liveSetSlope.toFixed(3)} MiB/min; external (buffers) slope ${memory.externalSlope.toFixed(3)} MiB/min (limits ${maxSlope})`,
    `Descriptors: idle ${idle.fds}, peak ${Math.max(...samples.map((s) => s.fds))}, ${settled.fds} once the callers left`,
    `Sockets to callers: peak ${Math.max(...samples.map((s) => s.sockets.callers))}, ${settled.sockets.callers} once the callers left; to OpenAI: idle ${idle.sockets.upstream}, peak ${Math.max(...samples.map((s) => s.sockets.upstream))}, ${settled.sockets.upstream} after (kept alive, at most 64)`,
    failures.length ? `FAILED: ${failures.join('; ')}` : 'PASSED: memory flat after the warm-up; descriptors and sockets back to idle',
  ].join('\n');
  console.log(report);
  mkdirSync(dirname(flags.out!), { recursive: true });
  writeFileSync(flags.out!, JSON.stringify({ minutes, warmupMinutes, workers, idle, settled, memory, samples, heaps, stats: Object.fromEntries(stats), failures }, null, 2));
  await stopAllChildren();
  return failures.length ? 1 : 0;
}

/** Caller sockets all closed, upstream ones only those the agent keeps alive, no other descriptor left over. */
function backToIdle(idle: ProcessSample, now: ProcessSample): boolean {
  const nonSocket = (s: ProcessSample) => s.fds - s.sockets.callers - s.sockets.upstream - s.sockets.other;
  return now.sockets.callers === 0 && now.sockets.upstream <= 64 && now.sockets.other <= idle.sockets.other && nonSocket(now) <= nonSocket(idle);
}

type HeapMiB = Omit<HeapSample, 't'>;

/** The relay's V8 heap and external memory (buffers), as its /metrics reports them (asked on a connection that then closes). */
async function heapMiB(relayUrl: string): Promise<HeapMiB | undefined> {
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${relayUrl}/metrics`, { agent: false, headers: { authorization: `Bearer ${ADMIN_KEY}`, connection: 'close' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]) / MiB;
    const h = { heapUsed: read('nodejs_heap_size_used_bytes'), heapTotal: read('nodejs_heap_size_total_bytes'), external: read('nodejs_external_memory_bytes') };
    return Number.isFinite(h.heapUsed) ? h : undefined;
  } catch {
    return undefined;
  }
}


main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('soak failed:', err);
    process.exit(2);
  },
);
