import type { OpenAPIHono } from '@hono/zod-openapi';
import { operations } from '../../generated/routes.ts';
import { actionSignal, fitActionAnswer } from '../actions/budget.ts';
import { actionDeps, type ActionServices } from '../actions/context.ts';
import { actionRunners } from '../actions/index.ts';
import type { RelayEnv } from '../core/env.ts';
import { bodyReader } from '../core/read-body.ts';
import { checkPathParam } from '../core/path-params.ts';
import { actionServerUrl } from '../http/server-url.ts';
import { transportFailure } from '../upstream/client.ts';
import { createUsageAccount } from '../upstream/usage-account.ts';

/**
 * The GPT Action operations under /v1/actions/: JSON in, validated by the generated
 * zod schemas; JSON out, within the action deadline and under 100,000 characters.
 */
export function registerActionRoutes(app: OpenAPIHono<RelayEnv>, services: ActionServices): void {
  const { config } = services;
  app.use('/v1/actions/*', bodyReader({ cap: config.maxProxyEnvelopeBytes, timeoutMs: config.requestBodyTimeoutMs }, 'action request'));

  for (const operation of operations) {
    if (operation.kind !== 'relay' || !operation.action || operation.retired || operation.operationId === 'relayProxy') continue;
    const handler = actionRunners[operation.operationId];
    if (!handler) throw new Error(`schemas/openapi.yaml declares action ${operation.operationId}, but src/actions has no handler for it.`);
    app.openapi(operation.route as never, (async (c: any) => {
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries<string>(c.req.valid('param') ?? {})) params[name] = checkPathParam(name, value);
      const { incoming } = c.env;
      const started = Date.now();
      // The action's upstream calls are counted into its own record (app.ts writes it).
      const account = createUsageAccount();
      c.set('usage', account);
      try {
        const result = await handler(
          {
            params,
            query: c.req.valid('query') ?? {},
            body: operation.body === 'json' ? (c.req.valid('json') ?? {}) : undefined,
            signal: actionSignal(config.actions.deadlineMs, c.req.raw.signal),
            deadlineAt: started + config.actions.deadlineMs,
            baseUrl: actionServerUrl(config.publicBaseUrl, incoming.headers),
          },
          actionDeps(services, account),
        );
        const fitted = fitActionAnswer(result);
        const answer = fitted.truncated ? { ...(fitted.value as object), truncated: true } : fitted.value;
        return c.json(answer, 200, { 'x-request-id': c.get('requestId') });
      } catch (err) {
        throw transportFailure(err);
      }
    }) as never);
  }
}
