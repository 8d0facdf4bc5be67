import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { operations } from '../../generated/routes.ts';
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
    if (operation.kind !== 'passthrough' || operation.retired) continue;
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
