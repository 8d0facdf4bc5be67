import type { IncomingMessage } from 'node:http';
import { RelayError } from '../../core/errors.ts';
import { outboundRequestHeaders, type OutboundBody } from '../headers.ts';
import { isRetryableError, isRetryableStatus, retryAfterMs, retryDelayMs } from '../retry.ts';
import { onResponse } from './answer.ts';
import type { Exchange } from './exchange.ts';
import { askForStreamUsage, pipeRequestBody } from './request-body.ts';

/**
 * One attempt at OpenAI: the upstream request with the policy's headers, its connect deadline, and the
 * decision to try again (only what can be replayed unchanged, before any byte reached the caller, within
 * the retry budget and the deadline).
 */

/** A POST sent without a body. */
const NO_BODY = { contentType: undefined, length: 0 };

export function send(x: Exchange): void {
  if (x.settled) return;
  x.attempt++;
  const { ctx, incoming, req } = x;
  if (x.headers === undefined) askForStreamUsage(x);
  x.headers ??= outboundRequestHeaders(incoming.headers, ctx.policy.identity, ctx.hostHeader, bodyHeaders(x));
  const upstream = ctx.policy.base;
  const upstreamReq = ctx.transport.request({
    protocol: upstream.protocol,
    hostname: upstream.hostname,
    port: upstream.port || undefined,
    method: x.method,
    path: ctx.basePath + req.upstreamPath + req.search,
    headers: x.headers,
    agent: ctx.agent,
  });
  x.current = upstreamReq;

  upstreamReq.on('socket', (socket) => {
    if (!socket.connecting) return;
    const connectTimer = setTimeout(() => {
      const err = Object.assign(new Error('connect timeout'), { code: 'ECONNECT_TIMEOUT' });
      upstreamReq.destroy(err);
    }, ctx.config.connectTimeoutMs);
    socket.once('connect', () => clearTimeout(connectTimer));
    socket.once('close', () => clearTimeout(connectTimer));
  });
  upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
    if (x.current !== upstreamReq || x.upstreamRes) return;
    if (isRetryableError(err.code) && retryLater(x, 0)) return;
    x.fail(transportError(err, ctx.config.connectTimeoutMs));
  });

  if (x.heldBody !== undefined) upstreamReq.end(x.heldBody);
  else if (x.streaming) pipeRequestBody(x, upstreamReq);
  else upstreamReq.end();

  upstreamReq.on('response', (res: IncomingMessage) => {
    if (isRetryableStatus(res.statusCode ?? 502) && retryLater(x, retryAfterMs(res.headers))) {
      res.resume();
      return;
    }
    onResponse(x, res);
  });
}

/** Body headers of the upstream request: the caller's stream as it comes, a held body's exact length, or none. */
function bodyHeaders(x: Exchange): OutboundBody {
  if (x.streaming) return x.usageSplice ? { contentType: x.incoming.headers['content-type'], length: undefined } : 'caller';
  if (x.heldBody !== undefined) {
    const contentType = x.req.jsonBody !== undefined ? 'application/json' : x.incoming.headers['content-type'];
    return { contentType, length: x.heldBody.length };
  }
  // A POST without a body says so, rather than being sent as an empty chunked one.
  return x.method === 'POST' ? NO_BODY : undefined;
}

/** Another attempt, if the policy, the attempt count and the time left all allow it. */
function retryLater(x: Exchange, afterMs: number): boolean {
  const policy = x.ctx.policy.retry;
  if (x.streaming || !x.replaySafe || x.attempt > policy.maxRetries || x.outgoing.headersSent) return false;
  const delay = retryDelayMs(x.attempt, afterMs, policy);
  if (performance.now() - x.started + delay > Math.min(policy.budgetMs, x.deadlineMs)) return false;
  x.current = undefined;
  x.retryTimer = setTimeout(send, delay, x);
  return true;
}

function transportError(err: NodeJS.ErrnoException, connectTimeoutMs: number): RelayError {
  if (err.code === 'ECONNECT_TIMEOUT') {
    return new RelayError(504, `Could not connect to OpenAI within ${connectTimeoutMs} ms.`, { code: 'upstream_connect_timeout' });
  }
  if (err.code === 'ETIMEDOUT') return new RelayError(504, 'Timed out talking to OpenAI.', { code: 'upstream_timeout' });
  return new RelayError(502, `Could not reach OpenAI (${err.code ?? 'connection error'}).`, { code: 'upstream_unreachable' });
}
