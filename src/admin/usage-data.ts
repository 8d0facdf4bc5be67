import type { UsageQuery, UsageTotal } from '../ops/ledger-values.ts';

/**
 * What the admin page shows of the usage ledger: totals per UTC day of the window, one ledger query per
 * day (the same query GET /v1/relay/usage makes, so the page needs nothing new of the ledger), and the
 * measures the rows carry. A measure is any numeric field of the totals: requests and tokens today, and
 * spend as soon as the ledger's totals carry it (a field named like `costUsd`), which then becomes the
 * page's default.
 */

export const DAY_MS = 86_400_000;

export interface DayTotals {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  rows: UsageTotal[];
}

export interface Measure {
  field: string;
  title: string;
  /** Dollars (shown as $) or a count. */
  money: boolean;
  /** The field's value in display units (micro-dollars become dollars). */
  valueOf(row: UsageTotal): number;
}

/** Fields of a total that are not something spent. */
const NOT_MEASURES = new Set(['errors', 'unpricedRequests']);

export async function usageByDay(totals: (q: UsageQuery) => Promise<UsageTotal[]>, days: number, now: number): Promise<DayTotals[]> {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const starts = Array.from({ length: days }, (_, i) => today - (days - 1 - i) * DAY_MS);
  return Promise.all(
    starts.map(async (start) => ({
      day: new Date(start).toISOString().slice(0, 10),
      rows: await totals({ from: new Date(start), to: new Date(Math.min(start + DAY_MS, now + 1)) }),
    })),
  );
}

/** Every numeric field the rows have: spend first when there was any (it is what an admin asks about), then tokens, then requests. */
export function measuresOf(days: readonly DayTotals[]): Measure[] {
  const fields = new Set<string>(['totalTokens', 'requests']);
  /** Fields with some value other than 0: spend comes first only when something was spent. */
  const used = new Set<string>();
  for (const { rows } of days) {
    for (const row of rows) {
      for (const [field, value] of Object.entries(row)) {
        if (typeof value !== 'number' || NOT_MEASURES.has(field)) continue;
        fields.add(field);
        if (value !== 0) used.add(field);
      }
    }
  }
  const rank = (field: string) => (isMoney(field) && used.has(field) ? 0 : field === 'totalTokens' ? 1 : field === 'requests' ? 2 : 3);
  return [...fields].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map(measure);
}

const isMoney = (field: string) => /usd|cost|dollar/i.test(field);

function measure(field: string): Measure {
  const money = isMoney(field);
  const scale = money && /micro/i.test(field) ? 1e-6 : 1;
  const words = field.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  const title = money ? 'Spend (USD)' : words.charAt(0).toUpperCase() + words.slice(1);
  return {
    field,
    title,
    money,
    valueOf: (row) => {
      const value = (row as unknown as Record<string, unknown>)[field];
      return typeof value === 'number' && Number.isFinite(value) ? value * scale : 0;
    },
  };
}

/** `measure` summed per key label per day: labels by total, largest first. */
export function seriesByKey(days: readonly DayTotals[], m: Measure): { label: string; values: number[]; total: number }[] {
  const byLabel = new Map<string, number[]>();
  days.forEach(({ rows }, i) => {
    for (const row of rows) {
      const label = row.keyLabel ?? '-';
      let values = byLabel.get(label);
      if (!values) byLabel.set(label, (values = new Array<number>(days.length).fill(0)));
      values[i]! += m.valueOf(row);
    }
  });
  return [...byLabel]
    .map(([label, values]) => ({ label, values, total: values.reduce((a, b) => a + b, 0) }))
    .filter((s) => s.total > 0)
    .sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
}

/** Models by `measure` over the whole window, with their requests. */
export function topModels(days: readonly DayTotals[], m: Measure, limit = 10): { model: string; requests: number; value: number }[] {
  const byModel = new Map<string, { requests: number; value: number }>();
  for (const { rows } of days) {
    for (const row of rows) {
      const model = row.model ?? '(no model)';
      const sum = byModel.get(model) ?? { requests: 0, value: 0 };
      sum.requests += row.requests;
      sum.value += m.valueOf(row);
      byModel.set(model, sum);
    }
  }
  return [...byModel]
    .map(([model, sum]) => ({ model, ...sum }))
    .sort((a, b) => b.value - a.value || b.requests - a.requests || a.model.localeCompare(b.model))
    .slice(0, limit);
}

/** Sum of a field of one label's rows. */
export const sumFor = (rows: readonly UsageTotal[], label: string, valueOf: (row: UsageTotal) => number) =>
  rows.reduce((sum, row) => (row.keyLabel === label ? sum + valueOf(row) : sum), 0);
