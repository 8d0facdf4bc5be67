import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { operations, type RelayOperation } from '../../generated/routes.ts';
import type { RelayEnv } from '../core/env.ts';
import type { Forwarder } from '../upstream/forward/index.ts';
import { canonicalUpstreamPath } from '../core/path-params.ts';

/**
 * Every operation of schemas/openapi.yaml, wired to the one forwarding core. Routes are registered in the
 * OpenAPI registry for documentation and handled plainly: validating a pass-through body would mean
 * buffering and parsing it, and the relay must forward fields it does not know.
 */
export function registerOpenAIRoutes(app: OpenAPIHono<RelayEnv>, forwarder: Forwarder): void {
  for (const operation of operations) {
    if (operation.kind !== 'passthrough') continue;
    app.openAPIRegistry.registerPath(operation.route);
    app.on(operation.method.toUpperCase(), operation.honoPath, async (c) => {
      const upstreamPath = canonicalUpstreamPath(operation.path, c.req.param() as Record<string, string>);
      const { incoming, outgoing } = c.env;
      const url = incoming.url ?? '';
      const queryStart = url.indexOf('?');
      await forwarder.forwardToOpenAI(incoming, outgoing, {
        operation,
        upstreamPath,
        search: queryStart === -1 ? '' : url.slice(queryStart),
        requestId: c.get('requestId'),
        keyLabel: c.get('keyLabel'),
        extraHeaders: c.get('corsHeaders'),
      });
      return RESPONSE_ALREADY_SENT;
    });
  }
}

const pathMatchers = operations.map((op: RelayOperation) => ({
  pattern: new RegExp(`^${op.path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  method: op.method.toUpperCase(),
  operationId: op.operationId,
}));

/** The operation a request was for, even when it was answered before routing (401, 429): for its record. */
export function operationForPath(method: string, path: string): string | undefined {
  return pathMatchers.find((m) => m.method === method && m.pattern.test(path))?.operationId;
}

const byRoute = new Map(operations.map((op) => [`${op.method.toUpperCase()} ${op.honoPath}`, op.operationId]));

/** The operationId a matched Hono route serves (for records of answers the relay made itself). */
export function operationIdOf(method: string, honoPath: string): string | undefined {
  return byRoute.get(`${method} ${honoPath}`);
}

/** Methods the spec allows on a path, for an honest 405 instead of a 404. */
export function methodsForPath(path: string): string[] {
  return [...new Set(pathMatchers.filter((m) => m.pattern.test(path)).map((m) => m.method))];
}
