import { policyFor, type LabelPolicy } from '../ops/keys.ts';
import type { UsageTotal } from '../ops/ledger-values.ts';
import { sumFor, type Measure } from './usage-data.ts';

/**
 * The limits of RATE_LIMITS for each live key, and how much of each is used, read from the ledger (so
 * the same on every replica; the ledger is at most a second behind the limiter). A limit is matched to
 * its use by its name: per minute → requests in the last minute, tokens per day → tokens since UTC
 * midnight, dollars per day or month → spend since UTC midnight or the 1st.
 */

export interface BudgetLine {
  /** What is limited, e.g. "requests / minute". */
  name: string;
  limit: number;
  /** Undefined when the ledger has no number for it (shown as such, never as 0). */
  used?: number;
  money: boolean;
}

export interface BudgetRow {
  label: string;
  /** The label's own RATE_LIMITS entry, or the `*` entry it falls under. */
  inherited: boolean;
  lines: BudgetLine[];
}

export interface BudgetUse {
  lastMinute: readonly UsageTotal[];
  today: readonly UsageTotal[];
  /** Since the 1st of the month (UTC), when a monthly limit asks for it. */
  month?: readonly UsageTotal[];
  /** The spend measure, when the ledger's totals carry one. */
  money?: Measure;
}

/** True when some label's policy has a monthly limit (the page then queries the month). */
export const wantsMonth = (limits: ReadonlyMap<string, LabelPolicy>) => [...limits.values()].some((p) => Object.keys(p).some((field) => /month/i.test(field)));

export function budgetRows(labels: readonly string[], limits: ReadonlyMap<string, LabelPolicy>, use: BudgetUse): BudgetRow[] {
  const rows: BudgetRow[] = [];
  for (const label of labels) {
    const policy = policyFor(limits, label);
    const lines = Object.entries(policy)
      .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
      .map(([field, limit]) => line(field, limit, label, use));
    if (lines.length) rows.push({ label, inherited: !limits.has(label), lines });
  }
  return rows;
}

function line(field: string, limit: number, label: string, use: BudgetUse): BudgetLine {
  const money = /usd|dollar|cost/i.test(field);
  const per = /minute/i.test(field) ? 'minute' : /month/i.test(field) ? 'month' : 'day';
  const what = money ? 'USD' : /token/i.test(field) ? 'tokens' : 'requests';
  let used: number | undefined;
  if (per === 'minute' && what === 'requests') used = sumFor(use.lastMinute, label, (r) => r.requests);
  else if (what === 'tokens' && per === 'day') used = sumFor(use.today, label, (r) => r.totalTokens);
  else if (money && use.money) {
    const rows = per === 'month' ? use.month : per === 'day' ? use.today : undefined;
    if (rows) used = sumFor(rows, label, use.money.valueOf);
  }
  // Dollar budgets are kept in micro-dollars (ops/keys.ts); the page shows dollars, as the spend measure does.
  return { name: `${what} / ${per}`, limit: money ? limit / 1e6 : limit, used, money };
}
