import { slope, type ProcessSample } from './probe.ts';

/**
 * Whether the relay's memory keeps growing, judged after the warm-up. Resident memory alone is a noisy
 * witness: V8 grows and shrinks the heap it keeps (its total swung between 160 and 215 MiB under steady
 * load), and pages it gives back stay counted in RSS until the kernel wants them. So three things are read:
 * the JS live set (the smallest heap in use each minute, i.e. what survives collections), external memory
 * (buffers), and RSS. Memory keeps growing when the live set or external memory climbs faster than the
 * limit, or RSS does and also ends more than `rssNoiseMiB` above where the window began.
 */
export interface HeapSample {
  t: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

export interface MemoryVerdict {
  rssSlope: number;
  rssGrowthMiB: number;
  liveSetSlope: number;
  externalSlope: number;
  /** The live set per whole minute after the warm-up (minute → MiB). */
  liveSetByMinute: Array<[number, number]>;
  failures: string[];
}

export function judgeMemory(samples: ProcessSample[], heaps: HeapSample[], opts: { fromS: number; everyS: number; maxSlope: number; rssNoiseMiB: number }): MemoryVerdict {
  const after = samples.filter((s) => s.t >= opts.fromS);
  const heapsAfter = heaps.filter((h) => h.t >= opts.fromS);
  const failures: string[] = [];
  if (after.length < 3) failures.push('too few samples after the warm-up to judge memory');

  const rssSlope = slope(after.map((s) => ({ x: s.t / 60, y: s.rssMiB })));
  const perMinute = Math.max(1, Math.round(60 / opts.everyS));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const rssGrowthMiB = median(after.slice(-perMinute).map((s) => s.rssMiB)) - median(after.slice(0, perMinute).map((s) => s.rssMiB));

  // The live set: the least heap in use in each whole minute (at least half its samples present).
  const minutes = new Map<number, number[]>();
  for (const h of heapsAfter) {
    const m = Math.floor(h.t / 60);
    minutes.set(m, [...(minutes.get(m) ?? []), h.heapUsed]);
  }
  const liveSetByMinute = [...minutes.entries()].filter(([, v]) => v.length >= perMinute / 2).map(([m, v]): [number, number] => [m, Math.min(...v)]);
  const liveSetSlope = slope(liveSetByMinute.map(([m, v]) => ({ x: m, y: v })));
  const externalSlope = slope(heapsAfter.map((h) => ({ x: h.t / 60, y: h.external })));

  if (liveSetSlope > opts.maxSlope) failures.push(`the JS live set kept growing: ${liveSetSlope.toFixed(2)} MiB/min (limit ${opts.maxSlope})`);
  if (externalSlope > opts.maxSlope) failures.push(`external memory (buffers) kept growing: ${externalSlope.toFixed(2)} MiB/min (limit ${opts.maxSlope})`);
  if (rssSlope > opts.maxSlope && rssGrowthMiB > opts.rssNoiseMiB) {
    failures.push(`RSS kept growing: ${rssSlope.toFixed(2)} MiB/min (limit ${opts.maxSlope}), ${rssGrowthMiB.toFixed(1)} MiB from the first to the last minute (noise allowance ${opts.rssNoiseMiB})`);
  }
  return { rssSlope, rssGrowthMiB, liveSetSlope, externalSlope, liveSetByMinute, failures };
}
