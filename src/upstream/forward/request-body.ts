import type { ClientRequest, IncomingMessage } from 'node:http';
import type { RelayOperation } from '../../../generated/routes.ts';
import { RelayError } from '../../core/errors.ts';
import { askUsageInHeldBody, createUsageSplice } from '../stream-usage/request.ts';
import type { Exchange } from './exchange.ts';

/**
 * The caller's request body on its way upstream: checked before anything is read, a small JSON body
 * read whole first (refusable by its cap with no upstream request at all, and replayable for a retry),
 * anything larger streamed on with its cap counted as it goes — never held whole.
 */

/** How much of a JSON request body is read before the upstream request opens. */
export const PREBUFFER_BYTES = 64 * 1024;

/** A refusal for what the headers already show (too large a Content-Length, a media type the operation does not take). */
export function checkRequestBody(incoming: IncomingMessage, operation: RelayOperation, streamBody: boolean, cap: number): RelayError | undefined {
  if (!streamBody) return undefined;
  const length = incoming.headers['content-length'];
  const hasBody = length !== undefined ? Number(length) > 0 : incoming.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return undefined;
  if (length !== undefined && Number(length) > cap) return tooLarge(cap, operation.body === 'multipart');
  const mediaType = (incoming.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
  const accepted = operation.requestContentTypes.length > 0 ? operation.requestContentTypes : ['application/json'];
  if (!accepted.includes(mediaType)) {
    return new RelayError(
      415,
      `${operation.method.toUpperCase()} ${operation.path} takes ${accepted.join(' or ')}, not ${mediaType || 'a body without Content-Type'}.`,
      { code: 'unsupported_media_type' },
    );
  }
  return undefined;
}

export function tooLarge(cap: number, multipart: boolean): RelayError {
  return new RelayError(413, `The request body exceeds this relay's ${multipart ? 'upload' : 'JSON body'} limit of ${cap} bytes.`, {
    code: 'request_too_large',
  });
}

const cutOff = () => new RelayError(400, 'The request body was cut off.', { code: 'request_aborted' });

/**
 * Reads a JSON body up to PREBUFFER_BYTES, then calls `start`: with the body held whole when it ended
 * within that (nearly all do), else with what was read kept as the prefix of a stream.
 */
export function readPrefixThenStart(x: Exchange, start: () => void): void {
  const { incoming } = x;
  const stop = () => {
    incoming.off('data', onData);
    incoming.off('end', onEnd);
    incoming.off('error', onError);
  };
  const onData = (chunk: Buffer) => {
    x.prefix.push(chunk);
    x.prefixBytes += chunk.length;
    if (x.prefixBytes > x.cap) {
      stop();
      incoming.pause();
      x.fail(tooLarge(x.cap, false));
    } else if (x.prefixBytes > PREBUFFER_BYTES) {
      stop();
      incoming.pause();
      start();
    }
  };
  const onEnd = () => {
    stop();
    x.heldBody = Buffer.concat(x.prefix, x.prefixBytes);
    x.prefix = [];
    x.streaming = false;
    start();
  };
  const onError = () => {
    stop();
    x.fail(cutOff());
  };
  incoming.on('data', onData);
  incoming.on('end', onEnd);
  incoming.on('error', onError);
}

/**
 * A streamed request of an operation that reports stream usage only when asked (Chat Completions): ask,
 * in the held body or as the body streams (stream-usage/request.ts), when a ledger or a budget counts it.
 */
export function askForStreamUsage(x: Exchange): void {
  if (!x.ctx.policy.wantsUsage || !x.req.operation.usage.streamOption) return;
  if (x.heldBody !== undefined) {
    const asked = askUsageInHeldBody(x.heldBody);
    x.heldBody = asked.body;
    x.withholdUsage = asked.injected;
  } else if (x.streaming) {
    x.usageSplice = createUsageSplice();
  }
}

const usageRequired = () =>
  new RelayError(400, 'This relay counts the usage of every stream: with `stream: true`, set `stream_options.include_usage` to true, or leave `stream_options` out.', {
    code: 'stream_usage_required',
    param: 'stream_options.include_usage',
  });

/** Streams the rest of the caller's body (after any prefix) into the upstream request, with backpressure and the cap. */
export function pipeRequestBody(x: Exchange, upstreamReq: ClientRequest): void {
  const { incoming } = x;
  const splice = x.usageSplice;
  let received = x.prefixBytes;
  for (const chunk of x.prefix) upstreamReq.write(splice ? splice.write(chunk) : chunk);
  x.prefix = [];
  const multipart = x.req.operation.body === 'multipart';
  incoming.on('data', (chunk: Buffer) => {
    received += chunk.length;
    x.ctx.streamMemory.streamed(chunk.length);
    if (received > x.cap) {
      incoming.pause();
      x.fail(tooLarge(x.cap, multipart));
      return;
    }
    if (!upstreamReq.write(splice ? splice.write(chunk) : chunk)) incoming.pause();
  });
  upstreamReq.on('drain', () => incoming.resume());
  incoming.on('end', () => {
    if (!splice) return upstreamReq.end();
    const ending = splice.end();
    if (ending.refused) return x.fail(usageRequired());
    x.withholdUsage = ending.injected;
    upstreamReq.end(ending.tail);
  });
  incoming.on('error', () => x.fail(cutOff()));
  incoming.resume();
}
