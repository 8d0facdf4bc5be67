import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { RelayConfig } from '../../config.ts';
import { RelayError, writeError } from '../../core/errors.ts';
import type { Ops } from '../../ops/index.ts';
import type { UpstreamPolicy } from '../policy.ts';
import { createStreamMemory } from '../stream-memory.ts';
import { send } from './attempt.ts';
import { Exchange, type ForwarderContext, type ForwardRequest } from './exchange.ts';
import { checkRequestBody, readPrefixThenStart } from './request-body.ts';

export type { ForwardRequest } from './exchange.ts';

/**
 * The one forwarding core. Every pass-through route and the proxy end here: it streams the caller's body
 * to OpenAI and OpenAI's answer back, byte for byte, on raw node streams (no Web-stream conversion, no
 * parsing, no re-serialization), with size caps, per-class deadlines, header allowlists, safe retries
 * and abort propagation, under the upstream policy. The request's life is split by concern:
 * request-body.ts (what goes up), attempt.ts (each try and retry), answer.ts (what comes back),
 * exchange.ts (the state they share, and how a request ends).
 */
export function createForwarder(config: RelayConfig, policy: UpstreamPolicy, ops: Ops) {
  const upstream = policy.base;
  const isHttps = upstream.protocol === 'https:';
  const agentOptions = { keepAlive: true, noDelay: true, maxSockets: 512, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const ctx: ForwarderContext = {
    config,
    policy,
    ops,
    transport: isHttps ? https : http,
    agent: isHttps ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
    hostHeader: upstream.host,
    basePath: upstream.pathname === '/' ? '' : upstream.pathname,
    streamMemory: createStreamMemory(config.streamGcBytes, { onCollect: ops.metrics.streamCollected }),
  };

  function forwardToOpenAI(incoming: IncomingMessage, outgoing: ServerResponse, req: ForwardRequest): Promise<void> {
    return new Promise<void>((resolve) => {
      const x = new Exchange(ctx, incoming, outgoing, req, resolve);
      const refusal = checkRequestBody(incoming, req.operation, x.streamBody, x.cap);
      if (refusal) {
        writeError(outgoing, refusal, req.requestId, x.extra);
        x.finish(refusal.status, refusal.code ?? undefined);
        return;
      }
      // One timer for both limits: until OpenAI's answer starts it is the deadline from the moment the
      // request arrived (covering a caller trickling its body, every retry, and OpenAI's time to first
      // byte); from then on it is restarted by each chunk of the answer, so it fires only when OpenAI
      // stops sending for that long.
      x.deadlineTimer = setTimeout(onDeadline, x.deadlineMs, x);
      // The caller went away (or the answer finished): stop spending tokens upstream.
      outgoing.on('close', () => {
        if (!outgoing.writableFinished) {
          x.current?.destroy();
          x.upstreamRes?.destroy();
          x.finish(499, 'client_closed');
        }
      });
      if (x.streamBody && req.operation.body !== 'multipart') readPrefixThenStart(x, () => send(x));
      else send(x);
    });
  }

  return { forwardToOpenAI, close: () => ctx.agent.destroy() };
}

export type Forwarder = ReturnType<typeof createForwarder>;

function onDeadline(x: Exchange): void {
  x.fail(
    x.upstreamRes
      ? new RelayError(504, `OpenAI stopped sending for ${x.deadlineMs} ms.`, { code: 'upstream_timeout' })
      : new RelayError(504, `No answer from OpenAI within ${x.deadlineMs} ms of the request.`, { code: 'upstream_timeout' }),
  );
}
