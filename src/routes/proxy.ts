import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { routes } from '../../generated/routes.ts';
import type { RelayConfig } from '../config.ts';
import type { RelayEnv } from '../core/env.ts';
import { readJsonBody } from '../core/read-body.ts';
import { httpEnvelopeRefusal, parseProxyEnvelope, PROXY_ANSWER_FIT } from '../actions/proxy-envelope.ts';
import type { Forwarder } from '../upstream/forward/index.ts';

/**
 * POST /v1/proxy: one JSON operation that reaches every JSON OpenAI operation of the route table — a GPT
 * Action may declare only 30 operations. Being part of the action surface, it answers within the action
 * deadline, and an answer over 100,000 characters is shortened (lists cut, long text trimmed,
 * `truncated: true`, header `x-relay-truncated: true`); every other answer is OpenAI's, byte for byte.
 * A thin adapter: the envelope's rules (shared with the MCP tool) in actions/proxy-envelope.ts, then the
 * resolved operation through the same forwarding core as the direct routes.
 */
export function registerProxyRoute(app: OpenAPIHono<RelayEnv>, config: RelayConfig, forwarder: Forwarder): void {
  app.openAPIRegistry.registerPath(routes.relayProxy);
  app.post('/v1/proxy', async (c) => {
    const { incoming, outgoing } = c.env;
    const json = await readJsonBody(incoming, config.maxProxyEnvelopeBytes, 'proxy envelope', 'an envelope {method, path, query?, body?}');
    const call = parseProxyEnvelope(json, httpEnvelopeRefusal, { allowStream: true });
    await forwarder.forwardToOpenAI(incoming, outgoing, {
      operation: call.operation,
      upstreamPath: call.upstreamPath,
      search: call.search,
      requestId: c.get('requestId'),
      keyLabel: c.get('keyLabel'),
      extraHeaders: c.get('corsHeaders'),
      jsonBody: call.body === undefined ? null : Buffer.from(JSON.stringify(call.body)),
      // The proxy serves GPT Actions: an answer within their 45 s, and under their 100,000 characters.
      deadlineMs: config.actions.deadlineMs,
      fitAnswer: PROXY_ANSWER_FIT,
    });
    return RESPONSE_ALREADY_SENT;
  });
}
