import type { OpenAPIHono } from '@hono/zod-openapi';
import { operations } from '../../generated/routes.ts';
import type { RelayEnv } from '../core/env.ts';
import { retiredError } from '../core/retired.ts';

/**
 * Operations OpenAI has shut down stay in the route table so their callers learn why: each answers 410
 * with the retirement sentence (after the caller's relay key was checked), never reaching OpenAI. The
 * pass-through and action routes leave them to this module.
 */
export function registerRetiredRoutes(app: OpenAPIHono<RelayEnv>): void {
  for (const operation of operations) {
    const gone = retiredError(operation);
    if (!gone) continue;
    app.on(operation.method.toUpperCase(), operation.honoPath, (c) => {
      c.set('operation', operation.operationId);
      throw gone;
    });
  }
}
