import type { UsageGroup, UsageTotal } from '../ops/ledger-values.ts';

/**
 * Usage totals as CSV (RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line
 * break), one row per group, the grouping columns first. Model names come from OpenAI's answers: a field
 * that a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR) is prefixed with `'`.
 */

const GROUP_COLUMNS: Record<UsageGroup, [string, (t: UsageTotal) => string | null | undefined]> = {
  day: ['day', (t) => t.day],
  key: ['key', (t) => t.keyLabel],
  operation: ['operation', (t) => t.operation],
  model: ['model', (t) => t.model],
};
const ORDER: readonly UsageGroup[] = ['day', 'key', 'operation', 'model'];
const DEFAULT: readonly UsageGroup[] = ['key', 'operation', 'model'];

export function usageCsv(totals: readonly UsageTotal[], groupBy: readonly UsageGroup[] = DEFAULT): string {
  const groups = ORDER.filter((g) => groupBy.includes(g));
  const header = [...groups.map((g) => GROUP_COLUMNS[g][0]), 'requests', 'errors', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_usd', 'unpriced_requests'];
  const lines = [header.join(',')];
  for (const t of totals) {
    const cells = [
      ...groups.map((g) => field(GROUP_COLUMNS[g][1](t) ?? '')),
      String(t.requests),
      String(t.errors),
      String(t.inputTokens),
      String(t.outputTokens),
      String(t.totalTokens),
      usd(t.costMicros),
      String(t.unpricedRequests),
    ];
    lines.push(cells.join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Micro-dollars as a plain decimal with six places (no float rounding in the file). */
function usd(micros: number): string {
  const whole = Math.floor(micros / 1e6);
  return `${whole}.${String(micros - whole * 1e6).padStart(6, '0')}`;
}

function field(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
