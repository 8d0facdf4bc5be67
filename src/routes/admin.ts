import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../core/env.ts';
import { RelayError } from '../core/errors.ts';
import type { Ops } from '../ops/index.ts';

/** Admin paths, behind RELAY_ADMIN_KEY (see relayAuth): usage totals and, unless on its own port, metrics. */
export const ADMIN_PATHS = new Set(['/metrics', '/v1/relay/usage']);

const DAY_MS = 86_400_000;

function parseTime(raw: string | undefined, name: string, fallback: Date): Date {
  if (raw === undefined || raw === '') return fallback;
  const asNumber = Number(raw);
  const date = Number.isFinite(asNumber) ? new Date(asNumber * 1000) : new Date(raw);
  if (Number.isNaN(date.getTime())) {
    throw new RelayError(400, `${name} must be an ISO 8601 time or Unix seconds (got "${raw}").`, { code: 'invalid_time', param: name });
  }
  return date;
}

export function registerAdminRoutes(app: OpenAPIHono<RelayEnv>, ops: Ops, opts: { metricsOnMainPort: boolean }): void {
  if (opts.metricsOnMainPort) {
    app.get('/metrics', async (c) => {
      const { contentType, body } = await ops.metrics.render();
      return c.body(body, 200, { 'content-type': contentType, 'x-request-id': c.get('requestId') });
    });
  }

  // Totals by key label, operation and model over [from, to): default the last 24 hours.
  app.get('/v1/relay/usage', async (c) => {
    const to = parseTime(c.req.query('to'), 'to', new Date());
    const from = parseTime(c.req.query('from'), 'from', new Date(to.getTime() - DAY_MS));
    if (from >= to) throw new RelayError(400, '`from` must be before `to`.', { code: 'invalid_time', param: 'from' });
    const keyLabel = c.req.query('key') || undefined;
    const data = await ops.usageTotals({ from, to, keyLabel });
    return c.json(
      { object: 'relay.usage', from: from.toISOString(), to: to.toISOString(), ...(keyLabel ? { key: keyLabel } : {}), data },
      200,
      { 'x-request-id': c.get('requestId') },
    );
  });
}
