import type { IncomingMessage } from 'node:http';
import { RelayError } from '../../core/errors.ts';
import { createUsageWithholder } from '../stream-usage/answer.ts';
import type { Exchange } from './exchange.ts';
import { fitHeldAnswer, MAX_FITTED_ANSWER_BYTES, MAX_REDACTED_ERROR_BYTES, relayHeldAnswer } from './held-answer.ts';

/**
 * OpenAI's answer on its way to the caller: allowlisted headers, byte for byte with backpressure, each
 * chunk restarting the idle deadline and passing the usage tap; held whole only when the relay must
 * see it entire (an error body, to redact the server key; an over-long action answer, to shorten it).
 */
export function onResponse(x: Exchange, res: IncomingMessage): void {
  const { ctx, outgoing, req } = x;
  const status = res.statusCode ?? 502;
  x.upstreamRes = res;
  x.upstreamMs = Math.round(performance.now() - x.started);
  x.deadlineTimer?.refresh();

  if (status === 401) {
    // The only credential sent upstream is the relay's own key.
    res.resume();
    x.fail(ctx.policy.serverKeyRefused(req.operation.operationId, req.requestId));
    return;
  }

  const contentType = res.headers['content-type'];
  const answerHeaders = ctx.policy.answerHeaders(res.headers, req.operation);
  Object.assign(answerHeaders, x.extra);
  if (answerHeaders['x-request-id'] === undefined) answerHeaders['x-request-id'] = req.requestId;
  x.sse = String(contentType ?? '').startsWith('text/event-stream');
  if (x.sse) {
    answerHeaders['cache-control'] = 'no-cache';
    answerHeaders['x-accel-buffering'] = 'no';
    x.endStream = ctx.ops.metrics.streamOpened();
  }
  x.tap = ctx.policy.usageTap(req.operation, x.method, status, contentType, res.headers['content-encoding']);

  const cutOff = () => x.fail(new RelayError(502, 'OpenAI closed the connection mid-answer.', { code: 'upstream_reset' }));
  res.on('error', cutOff);
  res.on('close', () => {
    if (!res.complete) cutOff();
  });
  // The relay asked this stream for its usage; the caller had not: the extra usage stays out of its answer.
  const withholder = x.withholdUsage && x.sse ? createUsageWithholder() : undefined;
  res.on('end', () => {
    if (!outgoing.writableEnded) outgoing.end(withholder?.end());
    x.finish(status, undefined, x.tap?.end());
  });

  // Every chunk of the answer restarts the timer: OpenAI is still sending.
  const restartTimer = () => x.deadlineTimer!.refresh();
  if (
    status >= 400 &&
    !x.sse &&
    res.headers['content-encoding'] === undefined &&
    Number(res.headers['content-length'] ?? 0) <= MAX_REDACTED_ERROR_BYTES
  ) {
    relayHeldAnswer(res, outgoing, status, answerHeaders, MAX_REDACTED_ERROR_BYTES, (body) => Buffer.from(ctx.policy.redact(body.toString('utf8')), 'utf8'), restartTimer);
    return;
  }
  const fitter = req.fitAnswer;
  if (
    fitter &&
    !x.sse &&
    status < 300 &&
    String(contentType ?? '').startsWith('application/json') &&
    !(Number(res.headers['content-length']) <= fitter.maxChars)
  ) {
    relayHeldAnswer(res, outgoing, status, answerHeaders, MAX_FITTED_ANSWER_BYTES, fitHeldAnswer(fitter, answerHeaders), (chunk) => {
      restartTimer();
      x.tap?.write(chunk);
    });
    return;
  }
  outgoing.writeHead(status, answerHeaders);
  const { streamMemory } = ctx;
  res.on('data', (chunk: Buffer) => {
    restartTimer();
    const out = withholder ? withholder.write(chunk) : chunk;
    if (out.length > 0 && !outgoing.write(out)) res.pause();
    x.tap?.write(chunk);
    streamMemory.streamed(chunk.length);
  });
  outgoing.on('drain', () => res.resume());
}
