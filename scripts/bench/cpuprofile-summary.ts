import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * Where did a process spend its CPU? Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and sums the
 * sampled *self* time per function and per origin (the relay's own code, each npm package, node's
 * internals, GC/idle/program). Usable on its own:
 *
 *   node scripts/bench/cpuprofile-summary.ts bench-results/relay-warn.cpuprofile [--top 25]
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTimeRow {
  name: string;
  where: string;
  origin: string;
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time outside (idle) — the process was waiting on I/O. */
  idleMs: number;
  busyMs: number;
  topFunctions: SelfTimeRow[];
  byOrigin: { origin: string; selfMs: number; selfPct: number }[];
}

/** `src/…` (the relay), an npm package name, `node:internal`, or V8's pseudo-frames (GC, program, idle). */
export function originOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) {
    if (frame.functionName.startsWith('(')) return frame.functionName; // (garbage collector), (program), (idle)
    return 'native';
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) {
    const mod = /^node:(?:internal\/)?([^/]+)/.exec(url);
    return `node:${mod ? mod[1].replace(/\.js$/, '') : url}`;
  }
  const own = /\/(src|scripts|generated)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url;
}

function shortWhere(frame: CallFrame): string {
  if (!frame.url) return '';
  const url = frame.url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/(.*)$/.exec(url);
  const own = /\/((?:src|scripts|generated)\/.*)$/.exec(url);
  const path = pkg ? pkg[1] : own ? own[1] : url;
  return `${path}:${frame.lineNumber + 1}`;
}

/**
 * `window` (µs on the monotonic clock the profile's own timestamps use — the same as
 * `process.hrtime.bigint() / 1000n` in any process on the machine) keeps only the samples taken inside
 * it, e.g. the load phase without start-up.
 */
export function summarizeProfile(profile: CpuProfile, top = 20, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the gap *before* sample i; attributing it to sample i is what DevTools does.
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  let totalUs = 0;
  let idleUs = 0;
  const perFunction = new Map<string, { frame: CallFrame; us: number }>();
  const perOrigin = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    totalUs += us;
    if (frame.functionName === '(idle)') idleUs += us;
    const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.lineNumber}\u0000${frame.columnNumber}`;
    const entry = perFunction.get(key);
    if (entry) entry.us += us;
    else perFunction.set(key, { frame, us });
    const origin = originOf(frame);
    perOrigin.set(origin, (perOrigin.get(origin) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? Number(((100 * us) / busyUs).toFixed(1)) : 0);
  const ms = (us: number) => Number((us / 1000).toFixed(1));
  const topFunctions = [...perFunction.values()]
    .filter((e) => e.frame.functionName !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      name: e.frame.functionName || '(anonymous)',
      where: shortWhere(e.frame),
      origin: originOf(e.frame),
      selfMs: ms(e.us),
      selfPct: pct(e.us),
    }));
  const byOrigin = [...perOrigin.entries()]
    .filter(([origin]) => origin !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .map(([origin, us]) => ({ origin, selfMs: ms(us), selfPct: pct(us) }));
  return { totalMs: ms(totalUs), idleMs: ms(idleUs), busyMs: ms(busyUs), topFunctions, byOrigin };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

export function formatSummary(summary: ProfileSummary, topOrigins = 12): string {
  const lines: string[] = [];
  lines.push(
    `CPU profile: ${summary.totalMs} ms sampled, ${summary.busyMs} ms busy, ${summary.idleMs} ms idle (percentages are of busy time)`,
    '',
    '| self ms | self % | function | where |',
    '| ---: | ---: | --- | --- |',
  );
  for (const row of summary.topFunctions) lines.push(`| ${row.selfMs} | ${row.selfPct} | ${row.name} | ${row.where} |`);
  lines.push('', '| self ms | self % | origin |', '| ---: | ---: | --- |');
  for (const row of summary.byOrigin.slice(0, topOrigins)) lines.push(`| ${row.selfMs} | ${row.selfPct} | ${row.origin} |`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' }, json: { type: 'boolean', default: false } } });
  if (positionals.length === 0) {
    console.error('usage: node scripts/bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--json]');
    process.exit(2);
  }
  for (const file of positionals) {
    const summary = summarizeProfile(readProfile(file), Number(values.top));
    console.log(values.json ? JSON.stringify(summary, null, 2) : `## ${file}\n\n${formatSummary(summary)}\n`);
  }
}
