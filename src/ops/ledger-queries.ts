import { sortTotals, USAGE_GROUPS, type LabelSpend, type UsageGroup, type UsageQuery, type UsageTotal } from './ledger-values.ts';

/**
 * The two reads of the ledger, written once for both engines: totals by group over a time range (the
 * usage endpoint), and each label's spend today and this month (what limit counters start from). The
 * engines differ in placeholders, in how `time` is kept (SQLite: epoch ms; PostgreSQL: timestamptz) and so
 * in how a time becomes its UTC day. Every identifier in the SQL comes from the fixed lists below.
 */

export type Engine = 'sqlite' | 'postgres';

const DAY_MS = 86_400_000;
export const DEFAULT_GROUPS: readonly UsageGroup[] = ['key', 'operation', 'model'];

const GROUP_COLUMNS: Record<UsageGroup, Record<Engine, string>> = {
  day: { sqlite: 'time / 86400000', postgres: 'FLOOR(EXTRACT(EPOCH FROM time) / 86400)::bigint' },
  key: { sqlite: 'key_label', postgres: 'key_label' },
  operation: { sqlite: 'operation', postgres: 'operation' },
  model: { sqlite: 'model', postgres: 'model' },
};

/** A request that spent tokens without getting a cost: its model (or tier) had no price. */
const UNPRICED = 'cost_micros IS NULL AND (input_tokens > 0 OR output_tokens > 0 OR total_tokens > 0)';

export interface Sql {
  text: string;
  params: unknown[];
}

const placeholder = (engine: Engine, n: number) => (engine === 'sqlite' ? `?${n}` : `$${n}`);
const timeParam = (engine: Engine, t: Date) => (engine === 'sqlite' ? t.getTime() : t);

/** The groups asked for, in their canonical order, without repeats. */
export function groupsOf(q: UsageQuery): UsageGroup[] {
  const asked = new Set(q.groupBy ?? DEFAULT_GROUPS);
  return USAGE_GROUPS.filter((g) => asked.has(g));
}

export function totalsSql(engine: Engine, q: UsageQuery): Sql {
  const params: unknown[] = [timeParam(engine, q.from), timeParam(engine, q.to)];
  let where = `time >= ${placeholder(engine, 1)} AND time < ${placeholder(engine, 2)}`;
  if (q.keyLabel !== undefined) {
    params.push(q.keyLabel);
    where += ` AND key_label = ${placeholder(engine, 3)}`;
  }
  const groups = groupsOf(q);
  const keys = groups.map((g, i) => `${GROUP_COLUMNS[g][engine]} AS g${i}`);
  const text = `SELECT ${[...keys, ''].join(', ')}COUNT(*) AS requests,
      SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
      COALESCE(SUM(input_tokens), 0) AS input_tokens,
      COALESCE(SUM(output_tokens), 0) AS output_tokens,
      COALESCE(SUM(total_tokens), 0) AS total_tokens,
      COALESCE(SUM(cost_micros), 0) AS cost_micros,
      SUM(CASE WHEN ${UNPRICED} THEN 1 ELSE 0 END) AS unpriced
    FROM usage_log WHERE ${where}${groups.length ? ` GROUP BY ${groups.map((_, i) => `g${i}`).join(', ')}` : ''}`;
  return { text, params };
}

/** The rows of `totalsSql` as totals (both drivers hand big integers over as strings or bigints). */
export function totalsFromRows(q: UsageQuery, rows: Record<string, unknown>[]): UsageTotal[] {
  const groups = groupsOf(q);
  return sortTotals(
    rows
      // An empty range still yields one row of zeros when nothing is grouped: no group, no row.
      .filter((r) => groups.length > 0 || Number(r.requests) > 0)
      .map((r) => {
        const total: UsageTotal = {
          requests: Number(r.requests),
          errors: Number(r.errors ?? 0),
          inputTokens: Number(r.input_tokens),
          outputTokens: Number(r.output_tokens),
          totalTokens: Number(r.total_tokens),
          costMicros: Number(r.cost_micros),
          unpricedRequests: Number(r.unpriced ?? 0),
        };
        groups.forEach((g, i) => {
          const v = r[`g${i}`];
          if (g === 'day') total.day = new Date(Number(v) * DAY_MS).toISOString().slice(0, 10);
          else if (g === 'key') total.keyLabel = String(v);
          else if (g === 'operation') total.operation = String(v);
          else total.model = v === null || v === undefined ? null : String(v);
        });
        return total;
      }),
  );
}

export function spendSql(engine: Engine, monthStart: Date, dayStart: Date): Sql {
  const day = placeholder(engine, 1);
  return {
    text: `SELECT key_label,
        COALESCE(SUM(CASE WHEN time >= ${day} THEN total_tokens END), 0) AS day_tokens,
        COALESCE(SUM(CASE WHEN time >= ${day} THEN cost_micros END), 0) AS day_cost,
        COALESCE(SUM(cost_micros), 0) AS month_cost
      FROM usage_log WHERE time >= ${placeholder(engine, 2)} GROUP BY key_label`,
    params: [timeParam(engine, dayStart), timeParam(engine, monthStart < dayStart ? monthStart : dayStart)],
  };
}

export function spendFromRows(rows: Record<string, unknown>[]): LabelSpend[] {
  return rows.map((r) => ({
    keyLabel: String(r.key_label),
    dayTokens: Number(r.day_tokens),
    dayCostMicros: Number(r.day_cost),
    monthCostMicros: Number(r.month_cost),
  }));
}
