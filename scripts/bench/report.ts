import os from 'node:os';
import { formatSummary } from './cpuprofile-summary.ts';
import { roundEvent, type SseResult } from './first-event.ts';
import { median, MiB, round } from './lib.ts';
import type { Memory } from './memory.ts';
import { type StreamsResult, streamRow } from './open-streams-phase.ts';
import { opts, TARGETS } from './options.ts';
import { compareProfiles, type ProfiledRun } from './profile-phase.ts';
import type { QuietWait } from './quiet.ts';
import { gitCommit, writeResults } from './results-file.ts';
import type { Startup } from './startup.ts';
import { fmt, roundRange, type Row, table } from './table.ts';
import type { Throughput } from './throughput.ts';
import { webSocketRows, type WebSocketResult } from './websocket.ts';
import { EMBEDDINGS_BODY } from './workload.ts';

/** The full run's report: the markdown table and notes on stdout, every number in the JSON file. */

export interface Measured {
  /** performance.now() when the run began, and the load average then. */
  began: number;
  loadBefore: number[];
  quietWaits: QuietWait[];
  throughput: Throughput;
  sse: SseResult;
  websocket: WebSocketResult;
  memory: Memory;
  streams: StreamsResult;
  startup: Startup;
  profiles?: { relay: ProfiledRun; raw: ProfiledRun };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
const loadClean = (s: { non2xx: number; errors: number }) => s.non2xx === 0 && s.errors === 0;

function rowsOf(m: Measured): Row[] {
  const { raw: tpRaw, warn: tpWarn, info: tpInfo } = m.throughput;
  const { summary: sse } = m.sse;
  const { memory, startup } = m;
  const tpRatio = ratio(tpWarn.rps, tpRaw.rps);
  const p99Ratio = ratio(tpWarn.p99Ms, tpRaw.p99Ms);
  const rows: Row[] = [
    {
      metric: `Embeddings throughput, req/s (${opts.connections} conns, LOG_LEVEL=warn)`,
      relay: fmt(tpWarn.rps, 0),
      baseline: fmt(tpRaw.rps, 0),
      compare: `${fmt(tpRatio)}x (rounds ${roundRange(m.throughput.pairedWarn.rpsRatios)})`,
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
    // The second relay: the default log level, or another checkout (--against) at warn.
    const [long, short] = opts.against ? [`the relay at ${opts.against}, LOG_LEVEL=warn`, 'against'] : ['LOG_LEVEL=info, default', 'info'];
    const r = ratio(tpInfo.rps, tpRaw.rps);
    const r99 = ratio(tpInfo.p99Ms, tpRaw.p99Ms);
    rows.push(
      { metric: `Embeddings throughput, req/s (${long})`, relay: fmt(tpInfo.rps, 0), baseline: fmt(tpRaw.rps, 0), compare: `${fmt(r)}x (rounds ${roundRange(m.throughput.pairedInfo!.rpsRatios)})`, target: `≥ ${TARGETS.throughputRatio}x`, pass: r >= TARGETS.throughputRatio && loadClean(tpInfo), informational: true },
      { metric: `Proxy process CPU per request, µs (${short})`, relay: fmt(tpInfo.cpuUsPerReq, 0), baseline: fmt(tpRaw.cpuUsPerReq, 0), compare: `${fmt(ratio(tpInfo.cpuUsPerReq, tpRaw.cpuUsPerReq))}x`, target: '—', pass: null },
      { metric: `Embeddings latency p50, ms (${short})`, relay: fmt(tpInfo.p50Ms), baseline: fmt(tpRaw.p50Ms), compare: `${fmt(ratio(tpInfo.p50Ms, tpRaw.p50Ms))}x`, target: '—', pass: null },
      { metric: `Embeddings latency p99, ms (${short})`, relay: fmt(tpInfo.p99Ms), baseline: fmt(tpRaw.p99Ms), compare: `${fmt(r99)}x`, target: `≤ ${TARGETS.p99Ratio}x`, pass: r99 <= TARGETS.p99Ratio, informational: true },
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
    ...webSocketRows(m.websocket),
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
    streamRow(m.streams),
    {
      metric: `Start-up to first /health 200, median of ${opts.startupRuns}, ms`,
      relay: `${fmt(startup.npmStartMs, 0)} (npm start)`,
      baseline: `${fmt(startup.nodeMs, 0)} (node)`,
      compare: `+${fmt(startup.npmStartMs - startup.nodeMs, 0)} ms npm`,
      target: `≤ ${TARGETS.startupMs} ms`,
      pass: startup.npmStartMs <= TARGETS.startupMs,
    },
  );
  return rows;
}

/** Prints the report, writes the JSON results; returns the exit code (1 only with --check and a missed target). */
export function report(m: Measured): number {
  const tp = m.throughput;
  const { profiles } = m;
  const rows = rowsOf(m);
  const failed = rows.filter((r) => r.pass === false && !r.informational);
  const md = table(rows);
  console.log(`\n## Relay benchmark (${opts.quick ? 'quick' : 'full'}; ${os.cpus().length} CPUs, node ${process.version})\n\n${md}\n`);
  const loadNote =
    tp.foreignCpuShare > 0.05
      ? `**Noisy machine:** processes outside the benchmark took a median ${Math.round(tp.foreignCpuShare * 100)}% of all CPU during the throughput rounds (load average before the run: ${m.loadBefore.map((x) => x.toFixed(2)).join(' ')}); ratios are less trustworthy than on an idle machine.`
      : `Other processes took a median ${Math.round(tp.foreignCpuShare * 100)}% of the CPU during the throughput rounds.`;
  console.log(loadNote);
  if (tp.info && !opts.against) console.log(`LOG_LEVEL=info wrote ${(tp.infoLogBytes / MiB).toFixed(1)} MiB of request logs during its rounds.`);
  if (opts.against) console.log(againstNote(tp));
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
      elapsedS: round((performance.now() - m.began) / 1000, 1),
      options: opts,
      targets: TARGETS,
      embeddingsRequestBytes: Buffer.byteLength(EMBEDDINGS_BODY),
      loadAverageBefore: m.loadBefore,
      loadAverageAfter: os.loadavg(),
      foreignCpuShareDuringThroughput: tp.foreignCpuShare,
      quietWaits: m.quietWaits,
    },
    throughput: {
      raw: tp.raw,
      relayWarn: tp.warn,
      relayInfo: tp.info,
      ratioWarn: round(ratio(tp.warn.rps, tp.raw.rps), 3),
      p99RatioWarn: round(ratio(tp.warn.p99Ms, tp.raw.p99Ms), 3),
      pairedWarn: tp.pairedWarn,
      pairedInfo: tp.pairedInfo,
      infoLogBytes: tp.infoLogBytes,
      runs: tp.runs,
    },
    sse: { ...m.sse.summary, direct: m.sse.direct.map(roundEvent), raw: m.sse.raw.map(roundEvent), relay: m.sse.relay.map(roundEvent) },
    websocket: m.websocket,
    memory: m.memory,
    openStreams: m.streams,
    startup: m.startup,
    profile: profiles && {
      level: opts.profileLevel,
      relay: { file: profiles.relay.file, rps: profiles.relay.rps, requests: profiles.relay.requests, ...profiles.relay.summary },
      raw: { file: profiles.raw.file, rps: profiles.raw.rps, requests: profiles.raw.requests, ...profiles.raw.summary },
    },
    rows,
    failedTargets: failed.map((r) => r.metric),
  };
  writeResults(opts.out, results);
  console.log(`${failed.length === 0 ? 'All targets met.' : `${failed.length} target(s) missed: ${failed.map((r) => r.metric).join('; ')}.`} JSON: ${opts.out} (${results.meta.elapsedS} s)`);
  return opts.check && failed.length > 0 ? 1 : 0;
}

/**
 * --against: this checkout's CPU per request minus the other's, round by round (each pair of rounds ran
 * minutes apart at most, so the machine's drift mostly cancels), and how many rounds each won.
 */
function againstNote(tp: Throughput): string {
  const cpu = (target: string, round: number) => tp.runs.find((r) => r.target === target && r.round === round)?.cpuUsPerReq;
  const diffs: number[] = [];
  for (let r = 1; r <= opts.rounds; r++) {
    const mine = cpu('relay-warn', r);
    const theirs = cpu('relay-info', r);
    if (mine !== undefined && theirs !== undefined) diffs.push(mine - theirs);
  }
  if (diffs.length === 0) return '';
  const mid = median(diffs);
  const lower = diffs.filter((d) => d < 0).length;
  return `CPU per request, this checkout minus ${opts.against}, round by round: median ${mid >= 0 ? '+' : ''}${mid.toFixed(1)} µs (${diffs.map((d) => d.toFixed(0)).join(', ')}); this checkout used less in ${lower} of ${diffs.length} rounds.${opts.pin ? ' (pinned: --pin)' : ''}`;
}
