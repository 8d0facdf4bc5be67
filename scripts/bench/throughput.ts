import { statSync } from 'node:fs';
import { type Child, log, median, round, sleep, withCpuAccounting } from './lib.ts';
import type { Autocannon } from './autocannon.ts';
import { load, type LoadRun } from './load.ts';
import { opts } from './options.ts';
import type { Settler } from './quiet.ts';
import { embeddingOnce } from './workload.ts';

/** Throughput: interleaved rounds raw / relay(warn) / relay(info), each after a warm-up, with CPU accounting. */

interface Proxy {
  child: Child;
  url: string;
}

export interface ThroughputSummary {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  cpuUsPerReq: number;
  non2xx: number;
  errors: number;
}

/** Each relay round against the raw round just before it. */
export interface PairedRatios {
  rpsRatioMedian: number;
  p99RatioMedian: number;
  rpsRatios: number[];
}

export interface Throughput {
  runs: LoadRun[];
  raw: ThroughputSummary;
  warn: ThroughputSummary;
  info?: ThroughputSummary;
  foreignCpuShare: number;
  pairedWarn: PairedRatios;
  pairedInfo?: PairedRatios;
  /** Bytes of request logs the relay at LOG_LEVEL=info wrote (0 without it). */
  infoLogBytes: number;
}

export async function throughputPhase(
  autocannon: Autocannon,
  quiet: Settler,
  mock: Proxy,
  raw: Proxy,
  relayWarn: Proxy,
  relayInfo: Proxy | undefined,
): Promise<Throughput> {
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
  await quiet.settle('throughput');
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
  const summarize = (name: string): ThroughputSummary => {
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
  // Each relay round against the raw round just before it: drift on the machine cancels out better.
  const pairedRatios = (name: string): PairedRatios => {
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
  return {
    runs,
    raw: summarize('raw'),
    warn: summarize('relay-warn'),
    info: relayInfo ? summarize('relay-info') : undefined,
    foreignCpuShare: round(median(runs.map((r) => r.foreignCpuShare ?? 0)), 3),
    pairedWarn: pairedRatios('relay-warn'),
    pairedInfo: relayInfo ? pairedRatios('relay-info') : undefined,
    infoLogBytes: relayInfo ? statSync(relayInfo.child.logFile!).size : 0,
  };
}
