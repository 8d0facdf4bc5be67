import { escapeHtml } from './html.ts';

/**
 * A stacked bar chart as inline SVG, drawn on the server: one bar per day, one colour per key (the nine
 * largest, the rest as "other"), a y axis with round ticks, and the exact number of each bar segment in
 * its <title> (the browser shows it on hover, no script needed).
 */

export interface Series {
  label: string;
  values: number[];
}

export interface ChartInput {
  /** X labels (YYYY-MM-DD). */
  days: string[];
  series: Series[];
  format: (value: number) => string;
  /** For screen readers. */
  title: string;
}

export const PALETTE = ['#2563eb', '#f97316', '#16a34a', '#db2777', '#7c3aed', '#0891b2', '#ca8a04', '#dc2626', '#4b5563'];
const OTHER_COLOUR = '#a8a29e';

const W = 760;
const H = 280;
const M = { top: 12, right: 12, bottom: 30, left: 64 };

/** The largest `PALETTE.length` series, the rest summed as "other", each with its colour. */
export function coloured(series: readonly Series[]): (Series & { colour: string })[] {
  const shown = series.slice(0, PALETTE.length).map((s, i) => ({ ...s, colour: PALETTE[i]! }));
  const rest = series.slice(PALETTE.length);
  if (rest.length === 0) return shown;
  const values = rest[0]!.values.map((_, d) => rest.reduce((sum, s) => sum + (s.values[d] ?? 0), 0));
  return [...shown, { label: `other (${rest.length} keys)`, values, colour: OTHER_COLOUR }];
}

/** 0 and 3-5 round steps up to at least `max` (1, 2 or 5 times a power of ten). */
export function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const out: number[] = [];
  for (let v = 0; v < max + step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function renderChart(input: ChartInput): string {
  const series = coloured(input.series);
  const n = input.days.length;
  const totals = input.days.map((_, d) => series.reduce((sum, s) => sum + (s.values[d] ?? 0), 0));
  const yTicks = ticks(Math.max(0, ...totals));
  const top = yTicks[yTicks.length - 1]!;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const y = (v: number) => M.top + plotH - (v / top) * plotH;
  const slot = plotW / Math.max(n, 1);
  const barW = Math.max(2, slot * 0.72);
  const parts: string[] = [];

  for (const t of yTicks) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e7e5e4"/>`);
    parts.push(`<text x="${M.left - 8}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#57534e">${escapeHtml(input.format(t))}</text>`);
  }
  const labelEvery = Math.ceil(n / 10);
  input.days.forEach((day, d) => {
    const x = M.left + d * slot + (slot - barW) / 2;
    let base = 0;
    for (const s of series) {
      const v = s.values[d] ?? 0;
      if (v <= 0) continue;
      const y1 = y(base + v);
      const h = Math.max(0.5, y(base) - y1);
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.colour}"><title>${escapeHtml(`${day} · ${s.label}: ${input.format(v)}`)}</title></rect>`,
      );
      base += v;
    }
    if (d % labelEvery === 0 || d === n - 1) {
      parts.push(`<text x="${(M.left + d * slot + slot / 2).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11" fill="#57534e">${escapeHtml(day.slice(5))}</text>`);
    }
  });
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(0)}" y2="${y(0)}" stroke="#78716c"/>`);
  if (series.length === 0) {
    parts.push(`<text x="${M.left + plotW / 2}" y="${M.top + plotH / 2}" text-anchor="middle" font-size="14" fill="#78716c">No usage in this window yet.</text>`);
  }

  const legend = series
    .map((s) => `<li><span class="swatch"><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="2" fill="${s.colour}"/></svg></span>${escapeHtml(s.label)} <span class="muted">${escapeHtml(input.format(s.values.reduce((a, b) => a + b, 0)))}</span></li>`)
    .join('');
  return `<figure class="chart">
  <svg id="spend-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(input.title)}">${parts.join('')}</svg>
  <ul class="legend">${legend}</ul>
</figure>`;
}
