import type { IncomingMessage } from 'node:http';
import { RelayError } from '../../core/errors.ts';
import { createUsageWithholder } from '../stream-usage/answer.ts';
import { relayErrorAnswer } from './error-answer.ts';
import type { Exchange } from './exchange.ts';
import { fitHeldAnswer, MAX_FITTED_ANSWER_BYTES, relayHeldAnswer } from './held-answer.ts';

/**
 * OpenAI's answer on its way to the caller: allowlisted headers, byte for byte with backpressure, each
 * chunk restarting the idle deadline and passing the usage tap; held whole only when the relay must
 * see it entire (an error answer, to redact the server key: error-answer.ts; an over-long action answer,
 * to shorten it). An event stream has the key redacted as it passes (it may carry an error event).
 */
export function onResponse(x: Exchange, res: IncomingMessage): void {
  const { ctx, outgoing, req } = x;
  const status = res.statusCode ?? 502;
  x.upstreamRes = res;
  x.upstreamMs = Math.round(performance.now() - x.started);
  x.deadlineTimer?.refresh();
  const upstreamId = res.headers['x-request-id'];
  if (typeof upstreamId === 'string') x.upstreamRequestId = ctx.policy.redact(upstreamId);

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
  if (status >= 400) {
    relayErrorAnswer(x, res, status, answerHeaders);
    return;
  }
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
  const redactor = x.sse ? ctx.policy.streamRedactor() : undefined;
  res.on('end', () => {
    if (!outgoing.writableEnded) {
      const rest = withholder?.end();
      outgoing.end(redactor ? Buffer.concat([redactor.write(rest ?? Buffer.alloc(0)), redactor.end()]) : rest);
    }
    x.finish(status, undefined, x.tap?.end());
  });

  // Every chunk of the answer restarts the timer: OpenAI is still sending.
  const restartTimer = () => x.deadlineTimer!.refresh();
  const fitter = req.fitAnswer;
  if (
    fitter &&
    !x.sse &&
    String(contentType ?? '').startsWith('application/json') &&
    !(Number(res.headers['content-length']) <= fitter.maxChars)
  ) {
    const onChunk = (chunk: Buffer) => {
      restartTimer();
      x.tap?.write(chunk);
    };
    const rewrite = fitHeldAnswer(fitter, answerHeaders);
    relayHeldAnswer(res, outgoing, status, answerHeaders, MAX_FITTED_ANSWER_BYTES, rewrite, onChunk, (err) => x.fail(err));
    return;
  }
  outgoing.writeHead(status, answerHeaders);
  const { streamMemory } = ctx;
  res.on('data', (chunk: Buffer) => {
    restartTimer();
    let out = withholder ? withholder.write(chunk) : chunk;
    if (redactor) out = redactor.write(out);
    if (out.length > 0 && !outgoing.write(out)) {
      // The caller's socket is full: OpenAI's answer waits for it, and the silence that follows is the caller's.
      res.pause();
      x.callerFellBehind();
    }
    x.tap?.write(chunk);
    streamMemory.streamed(chunk.length);
  });
  outgoing.on('drain', () => {
    x.callerCaughtUp();
    res.resume();
  });
}
