import { median } from './lib.ts';

/** The report's markdown table and its number formatting. */

export interface Row {
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

export function table(rows: Row[]): string {
  const lines = ['| metric | relay | baseline | ratio / diff | target | result |', '| --- | ---: | ---: | ---: | --- | --- |'];
  for (const r of rows) {
    const result = r.pass === null ? '—' : r.informational ? `(${r.pass ? 'pass' : 'fail'}, info only)` : r.pass ? 'pass' : '**FAIL**';
    lines.push(`| ${r.metric} | ${r.relay} | ${r.baseline} | ${r.compare} | ${r.target} | ${result} |`);
  }
  return lines.join('\n');
}

export const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** The per-round ratios' range and median, e.g. `0.78–0.84, median 0.81`: shown next to the ratio of the
 * medians, which is the target's measure, because on a machine whose speed drifts within a run the two
 * can differ by a few hundredths. */
export const roundRange = (ratios: number[]) =>
  ratios.length ? `${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}, median ${fmt(median(ratios))}` : 'n/a';
