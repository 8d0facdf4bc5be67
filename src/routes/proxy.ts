import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { routes } from '../../generated/routes.ts';
import { ProxyRequestSchema } from '../../generated/schemas.ts';
import type { RelayConfig } from '../config.ts';
import type { RelayEnv } from '../app.ts';
import { RelayError } from '../core/errors.ts';
import type { Forwarder } from '../core/forward.ts';
import { resolveProxyTarget } from '../core/proxy-target.ts';
import { readJsonBody } from '../core/read-body.ts';
import { fitUpstreamAnswer, MAX_ACTION_ANSWER_CHARS } from '../actions/budget.ts';

/**
 * POST /v1/proxy: one JSON operation that reaches every JSON OpenAI operation of the route table — a GPT
 * Action may declare only 30 operations. Being part of the action surface, it answers within the action
 * deadline, and an answer over 100,000 characters is shortened (lists cut, long text trimmed,
 * `truncated: true`, header `x-relay-truncated: true`); every other answer is OpenAI's, byte for byte. A thin adapter: parse and check the envelope, then hand the
 * resolved operation to the same forwarding core as the direct routes.
 */
export function registerProxyRoute(app: OpenAPIHono<RelayEnv>, config: RelayConfig, forwarder: Forwarder): void {
  const route = routes.relayProxy;
  app.openAPIRegistry.registerPath(route);
  app.post('/v1/proxy', async (c) => {
    const { incoming, outgoing } = c.env;
    const json = await readJsonBody(incoming, config.maxProxyEnvelopeBytes, 'proxy envelope', 'an envelope {method, path, query?, body?}');
    const parsed = ProxyRequestSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue.path.join('.') || null;
      throw new RelayError(400, `Invalid proxy envelope${param ? ` at ${param}` : ''}: ${issue.message}.`, {
        code: 'invalid_proxy_envelope',
        param: param ?? undefined,
      });
    }
    const envelope = parsed.data;
    const bodies = [envelope.body, envelope.json, envelope.payload].filter((b) => b !== undefined);
    if (bodies.length > 1) throw new RelayError(400, 'Give the body once: body, json or payload.', { code: 'invalid_proxy_envelope', param: 'body' });
    if (envelope.query && envelope.params) throw new RelayError(400, 'Give the query once: query or params.', { code: 'invalid_proxy_envelope', param: 'query' });

    const target = resolveProxyTarget(envelope.method, envelope.path, envelope.query ?? envelope.params);
    const body = bodies[0];
    if (body !== undefined && target.operation.method !== 'post') {
      throw new RelayError(400, `${target.operation.method.toUpperCase()} ${target.operation.path} takes no body.`, { code: 'invalid_proxy_envelope', param: 'body' });
    }
    await forwarder.forwardToOpenAI(incoming, outgoing, {
      ...target,
      requestId: c.get('requestId'),
      keyLabel: c.get('keyLabel'),
      extraHeaders: c.get('corsHeaders'),
      jsonBody: body === undefined ? null : Buffer.from(JSON.stringify(body)),
      // The proxy serves GPT Actions: an answer within their 45 s, and under their 100,000 characters.
      deadlineMs: config.actions.deadlineMs,
      fitAnswer: { maxChars: MAX_ACTION_ANSWER_CHARS, fit: fitUpstreamAnswer },
    });
    return RESPONSE_ALREADY_SENT;
  });
}
