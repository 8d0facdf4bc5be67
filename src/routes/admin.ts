import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../core/env.ts';
import { RelayError } from '../core/errors.ts';
import type { Ops } from '../ops/index.ts';
import { USAGE_GROUPS, type UsageGroup, type UsageTotal } from '../ops/ledger-values.ts';
import { usageCsv } from './usage-csv.ts';

/** Admin paths, behind RELAY_ADMIN_KEY (see relayAuth): usage totals, the price table and, unless on its own port, metrics. */
export const ADMIN_PATHS = new Set(['/metrics', '/v1/relay/usage', '/v1/relay/prices']);

const DAY_MS = 86_400_000;
/** Days a `group_by=day` query covers by default, today (UTC) included. */
export const DEFAULT_DAYS = 30;

function parseTime(raw: string | undefined, name: string, fallback: Date): Date {
  if (raw === undefined || raw === '') return fallback;
  const asNumber = Number(raw);
  const date = Number.isFinite(asNumber) ? new Date(asNumber * 1000) : new Date(raw);
  if (Number.isNaN(date.getTime())) {
    throw new RelayError(400, `${name} must be an ISO 8601 time or Unix seconds (got "${raw}").`, { code: 'invalid_time', param: name });
  }
  return date;
}

function parseGroups(raw: string | undefined): UsageGroup[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const groups = raw.split(',').map((g) => g.trim().toLowerCase());
  const unknown = groups.filter((g) => !(USAGE_GROUPS as readonly string[]).includes(g));
  if (unknown.length) {
    throw new RelayError(400, `group_by takes a comma-separated list of ${USAGE_GROUPS.join(', ')} (got "${unknown.join('", "')}").`, {
      code: 'invalid_group_by',
      param: 'group_by',
    });
  }
  return groups as UsageGroup[];
}

/** A group's totals as the endpoint shows them: the ledger's fields, the cost in dollars. */
function shown({ costMicros, unpricedRequests, day, ...rest }: UsageTotal) {
  return { ...(day !== undefined ? { day } : {}), ...rest, cost_usd: costMicros / 1e6, unpriced_requests: unpricedRequests };
}

export function registerAdminRoutes(app: OpenAPIHono<RelayEnv>, ops: Ops, opts: { metricsOnMainPort: boolean }): void {
  if (opts.metricsOnMainPort) {
    app.get('/metrics', async (c) => {
      const { contentType, body } = await ops.metrics.render();
      return c.body(body, 200, { 'content-type': contentType, 'x-request-id': c.get('requestId') });
    });
  }

  // Totals by key label, operation and model (or any of day, key, operation, model) over [from, to).
  // Default window: the last 24 hours; with group_by=day, the last DEFAULT_DAYS UTC days, today included.
  app.get('/v1/relay/usage', async (c) => {
    const groupBy = parseGroups(c.req.query('group_by'));
    const format = c.req.query('format') ?? 'json';
    if (format !== 'json' && format !== 'csv') {
      throw new RelayError(400, `format must be json or csv (got "${format}").`, { code: 'invalid_format', param: 'format' });
    }
    const to = parseTime(c.req.query('to'), 'to', new Date());
    const byDay = groupBy?.includes('day') ?? false;
    const defaultFrom = byDay ? new Date((Math.ceil(to.getTime() / DAY_MS) - DEFAULT_DAYS) * DAY_MS) : new Date(to.getTime() - DAY_MS);
    const from = parseTime(c.req.query('from'), 'from', defaultFrom);
    if (from >= to) throw new RelayError(400, '`from` must be before `to`.', { code: 'invalid_time', param: 'from' });
    const keyLabel = c.req.query('key') || undefined;
    const totals = await ops.usageTotals({ from, to, keyLabel, groupBy });
    const headers = { 'x-request-id': c.get('requestId') };
    if (format === 'csv') {
      const name = `relay-usage-${from.toISOString().slice(0, 10)}-${to.toISOString().slice(0, 10)}.csv`;
      return c.body(usageCsv(totals, groupBy), 200, {
        ...headers,
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="${name}"`,
      });
    }
    return c.json(
      {
        object: 'relay.usage',
        from: from.toISOString(),
        to: to.toISOString(),
        ...(keyLabel ? { key: keyLabel } : {}),
        group_by: groupBy ?? ['key', 'operation', 'model'],
        data: totals.map(shown),
      },
      200,
      headers,
    );
  });

  app.get('/v1/relay/prices', (c) => {
    const { table, origin } = ops.prices;
    return c.json({ object: 'relay.prices', from: origin === 'builtin' ? 'built-in' : 'PRICES_FILE', ...table }, 200, { 'x-request-id': c.get('requestId') });
  });
}
