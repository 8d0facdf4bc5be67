import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readProfile, summarizeProfile, type ProfileSummary } from './cpuprofile-summary.ts';
import { log } from './lib.ts';
import type { Autocannon } from './autocannon.ts';
import { load } from './load.ts';
import { opts } from './options.ts';
import type { Processes } from './processes.ts';
import { fmt } from './table.ts';

/** --profile: CPU profiles of the relay and of the raw pipe under the same load, load phase only. */

export interface ProfiledRun {
  file: string;
  rps: number;
  requests: number;
  summary: ProfileSummary;
}

export async function profilePhase(procs: Processes, autocannon: Autocannon, mockUrl: string): Promise<{ relay: ProfiledRun; raw: ProfiledRun }> {
  log(`profiling the relay (LOG_LEVEL=${opts.profileLevel}) and the raw pipe under ${opts.durationS} s of load each`);
  const profDir = join(procs.tmp, 'prof');
  mkdirSync(profDir);
  const profileOne = async (kind: 'relay' | 'raw'): Promise<ProfiledRun> => {
    const dir = join(profDir, kind);
    mkdirSync(dir);
    const flags = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
    const target = kind === 'relay' ? await procs.startRelay(mockUrl, opts.profileLevel, 'relay-prof', flags) : await procs.startRawPipe(mockUrl, 'raw-prof', flags);
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
  return { relay: await profileOne('relay'), raw: await profileOne('raw') };
}

/** µs of busy CPU per request for each origin, relay next to raw pipe, largest extra cost first. */
export function compareProfiles(relay: ProfiledRun, raw: ProfiledRun): string {
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
