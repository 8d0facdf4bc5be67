import { describe, expect, test } from 'vitest';
import { budgetRows } from '../src/admin/budgets.ts';
import { coloured, PALETTE, renderChart, ticks } from '../src/admin/chart.ts';
import { renderDashboard } from '../src/admin/dashboard.ts';
import { measuresOf, seriesByKey, topModels, usageByDay, type DayTotals } from '../src/admin/usage-data.ts';
import type { UsageQuery, UsageTotal } from '../src/ops/ledger-values.ts';

/**
 * The admin page's pieces without a relay: day buckets, the measures the ledger's totals offer (spend as
 * soon as they carry it), the chart, budgets. What the page does in a browser: admin-browser.test.ts.
 */

const total = (keyLabel: string, model: string | null, tokens: number, extra: Record<string, number> = {}): UsageTotal =>
  ({ keyLabel, operation: 'createResponse', model, requests: 1, errors: 0, inputTokens: tokens, outputTokens: 0, totalTokens: tokens, ...extra }) as UsageTotal;

describe('usage by day', () => {
  test('one ledger query per UTC day of the window, the last ending now', async () => {
    const asked: UsageQuery[] = [];
    const now = Date.UTC(2026, 10, 15, 13, 30);
    const days = await usageByDay(async (q) => (asked.push(q), []), 3, now);
    expect(days.map((d) => d.day)).toEqual(['2026-11-13', '2026-11-14', '2026-11-15']);
    expect(asked.map((q) => [q.from.toISOString(), q.to.toISOString()])).toEqual([
      ['2026-11-13T00:00:00.000Z', '2026-11-14T00:00:00.000Z'],
      ['2026-11-14T00:00:00.000Z', '2026-11-15T00:00:00.000Z'],
      ['2026-11-15T00:00:00.000Z', '2026-11-15T13:30:00.001Z'],
    ]);
  });

  test('measures: tokens first while the totals carry no spend; spend first (in dollars) once they do', () => {
    const tokensOnly: DayTotals[] = [{ day: '2026-11-15', rows: [total('alice', 'gpt-5', 10)] }];
    expect(measuresOf(tokensOnly).map((m) => m.field)).toEqual(['totalTokens', 'requests', 'inputTokens', 'outputTokens']);
    const withCost: DayTotals[] = [{ day: '2026-11-15', rows: [total('alice', 'gpt-5', 10, { costUsd: 1.25 }), total('bob', 'gpt-5', 5, { costUsd: 0.5 })] }];
    const [first] = measuresOf(withCost);
    expect(first).toMatchObject({ field: 'costUsd', title: 'Spend (USD)', money: true });
    expect(seriesByKey(withCost, first!)).toEqual([
      { label: 'alice', values: [1.25], total: 1.25 },
      { label: 'bob', values: [0.5], total: 0.5 },
    ]);
    // Micro-dollars are shown as dollars.
    const micros = measuresOf([{ day: 'd', rows: [total('a', null, 1, { costMicros: 2_500_000 })] }])[0]!;
    expect(micros.valueOf(total('a', null, 1, { costMicros: 2_500_000 }))).toBe(2.5);
  });

  test('series per key (largest first, empty keys left out) and top models', () => {
    const days: DayTotals[] = [
      { day: 'd1', rows: [total('a', 'gpt-5', 100), total('b', 'gpt-5-mini', 10), total('c', null, 0)] },
      { day: 'd2', rows: [total('b', 'gpt-5-mini', 500)] },
    ];
    const tokens = measuresOf(days)[0]!;
    expect(seriesByKey(days, tokens)).toEqual([
      { label: 'b', values: [10, 500], total: 510 },
      { label: 'a', values: [100, 0], total: 100 },
    ]);
    expect(topModels(days, tokens)).toEqual([
      { model: 'gpt-5-mini', requests: 2, value: 510 },
      { model: 'gpt-5', requests: 1, value: 100 },
      { model: '(no model)', requests: 1, value: 0 },
    ]);
  });
});

describe('the chart', () => {
  test('round ticks above the largest bar', () => {
    expect(ticks(0)).toEqual([0, 1]);
    expect(ticks(7)).toEqual([0, 2, 4, 6, 8]);
    expect(ticks(2300)).toEqual([0, 1000, 2000, 3000]);
    expect(ticks(0.42)).toEqual([0, 0.2, 0.4, 0.6]);
  });

  test('nine keys in colour, the rest as "other"; a segment per key per day with its number', () => {
    const series = Array.from({ length: 12 }, (_, i) => ({ label: `k${i}`, values: [12 - i, 1] }));
    const shown = coloured(series);
    expect(shown).toHaveLength(PALETTE.length + 1);
    expect(shown.at(-1)).toMatchObject({ label: 'other (3 keys)', values: [3 + 2 + 1, 3] });
    const svg = renderChart({ days: ['2026-11-14', '2026-11-15'], series, format: String, title: 'Tokens' });
    expect(svg.match(/<rect x=/g)).toHaveLength(20);
    expect(svg).toContain('<title>2026-11-14 · k0: 12</title>');
    expect(svg).not.toContain('No usage');
    expect(renderChart({ days: ['d'], series: [], format: String, title: 'Tokens' })).toContain('No usage in this window yet.');
  });

  test('text from the ledger is escaped', () => {
    const days: DayTotals[] = [{ day: '2026-11-15', rows: [total('alice', '<img src=x onerror=alert(1)>', 5)] }];
    const measures = measuresOf(days);
    const html = renderDashboard({ csrf: 't"><b>', windowDays: 7, days, measures, measure: measures[0]!, budgets: [], keys: [] });
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('value="t&quot;&gt;&lt;b&gt;"');
  });
});

describe('budgets', () => {
  test('each live key under its own entry or `*`, with what the ledger says is used; dollar limits once the totals carry spend', () => {
    const limits = new Map<string, Record<string, number>>([
      ['alice', { requestsPerMinute: 60, tokensPerDay: 1000, costPerDay: 5_000_000, costPerMonth: 100_000_000 }],
      ['*', { tokensPerDay: 50 }],
    ]);
    // Dollar limits and spend as the ledger and RATE_LIMITS keep them: micro-dollars.
    const today = [total('alice', 'gpt-5', 400, { costMicros: 1_500_000 }), total('bob', 'gpt-5', 20, { costMicros: 100_000 })];
    const money = measuresOf([{ day: 'd', rows: today }])[0]!;
    const rows = budgetRows(['alice', 'bob'], limits as never, { lastMinute: [total('alice', 'gpt-5', 1)], today, month: [...today, total('alice', 'gpt-5', 1, { costMicros: 10_000_000 })], money });
    expect(rows).toEqual([
      {
        label: 'alice',
        inherited: false,
        lines: [
          { name: 'requests / minute', limit: 60, used: 1, money: false },
          { name: 'tokens / day', limit: 1000, used: 400, money: false },
          { name: 'USD / day', limit: 5, used: 1.5, money: true },
          { name: 'USD / month', limit: 100, used: 11.5, money: true },
        ],
      },
      { label: 'bob', inherited: true, lines: [{ name: 'tokens / day', limit: 50, used: 20, money: false }] },
    ]);
    // Without spend in the ledger, a dollar limit has no number (never a made-up 0).
    const noMoney = budgetRows(['alice'], limits as never, { lastMinute: [], today: [] });
    expect(noMoney[0]!.lines[2]).toEqual({ name: 'USD / day', limit: 5, used: undefined, money: true });
  });
});
