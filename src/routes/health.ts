import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../core/env.ts';

const startedAt = Date.now();

/** Public liveness for load balancers (Render, Docker HEALTHCHECK). Says nothing about keys or upstream. */
export function registerHealthRoutes(app: OpenAPIHono<RelayEnv>): void {
  for (const path of ['/health', '/v1/health']) {
    app.get(path, (c) =>
      c.json({ status: 'ok', uptime_s: Math.round((Date.now() - startedAt) / 1000) }, 200, { 'x-request-id': c.get('requestId') }),
    );
  }
}
