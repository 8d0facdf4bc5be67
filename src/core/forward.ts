import http, { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { RelayConfig } from '../config.ts';
import type { RelayOperation } from '../../generated/routes.ts';
import { RelayError, sseErrorEvent, writeError } from './errors.ts';
import { inboundResponseHeaders, outboundRequestHeaders, upstreamIdentityHeaders } from './headers.ts';
import type { Ops } from '../ops/index.ts';
import { createUsageTap, type UsageInfo, type UsageTap } from '../ops/usage-tap.ts';
import { retryDelayMs, type RetryPolicy } from './retry.ts';
import { createStreamMemory } from './stream-memory.ts';

/**
 * The one forwarding core. Every OpenAI route ends here: it streams the caller's body to OpenAI and
 * OpenAI's answer back, byte for byte, on raw node streams (no Web-stream conversion, no parsing, no
 * re-serialization), with size caps, per-class deadlines, header allowlists, safe retries and abort
 * propagation.
 */

export interface ForwardRequest {
  operation: RelayOperation;
  /** Canonical upstream path (from `canonicalUpstreamPath`), starting with `/v1/`. */
  upstreamPath: string;
  /** The query string including `?`, or '' — passed through intact (repeated keys too). */
  search: string;
  requestId: string;
  /** The caller's relay key label, for the request record (never the key). */
  keyLabel: string;
  /** Headers the relay adds to the answer (CORS and the like). */
  extraHeaders?: Record<string, string>;
  /**
   * A JSON body the relay already holds (the proxy envelope's `body`), sent instead of the caller's
   * stream; `null` sends no body. Being replayable, such a request can be retried.
   */
  jsonBody?: Buffer | null;
  /** A tighter deadline than the operation's class (the proxy serves GPT Actions: 45 s per call). */
  deadlineMs?: number;
  /**
   * Shortens a JSON answer longer than `maxChars` characters (a GPT Action takes at most 100,000): only
   * such answers are held and refitted; shorter ones stream through untouched.
   */
  fitAnswer?: { maxChars: number; fit(value: unknown): { value: unknown; truncated: boolean } };
  /** Called once when the request is over, just before the returned promise resolves (no extra promise on the hot path). */
  onDone?: () => void;
}

/** A POST sent without a body. */
const NO_BODY = { contentType: undefined, length: 0 };
/** Error answers are small; the key is redacted from them in case upstream ever echoes it. */
const MAX_REDACTED_ERROR_BYTES = 1024 * 1024;
const RETRYABLE_STATUS = new Set([502, 503, 504]);
/** How much of a JSON request body is read before the upstream request opens (see readPrefixThenStart). */
const PREBUFFER_BYTES = 64 * 1024;
const RETRYABLE_CODES = new Set(['ECONNECT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function createForwarder(config: RelayConfig, ops: Ops) {
  const upstream = config.upstreamBase;
  const isHttps = upstream.protocol === 'https:';
  const transport = isHttps ? https : http;
  const agentOptions = { keepAlive: true, noDelay: true, maxSockets: 512, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = isHttps ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const identity = Object.entries(upstreamIdentityHeaders(config)).flat();
  // What node would have sent as Host: the URL's host, its port only when not the scheme's default.
  const hostHeader = upstream.host;
  const basePath = upstream.pathname === '/' ? '' : upstream.pathname;
  const redact = makeRedactor([config.openaiApiKey]);
  const retryPolicy: RetryPolicy = config.retry;
  const streamMemory = createStreamMemory(config.streamGcBytes, { onCollect: ops.metrics.streamCollected });

  function forwardToOpenAI(incoming: IncomingMessage, outgoing: ServerResponse, req: ForwardRequest): Promise<void> {
    const { operation, requestId, jsonBody } = req;
    const started = performance.now();
    const startedAt = Date.now();
    const endInFlight = ops.metrics.requestStarted(operation.operationId);
    const method = operation.method.toUpperCase();
    const streamBody = jsonBody === undefined && (operation.body !== 'none' || method === 'POST');
    /** A complete body in hand (the proxy's, or a small JSON body read before going upstream). */
    let heldBody = jsonBody ?? undefined;
    /** The caller's body still arriving: it streams upstream after `prefix`. */
    let streaming = streamBody;
    let prefix: Buffer[] = [];
    let prefixBytes = 0;
    const cap = operation.body === 'multipart' ? config.maxUploadBytes : config.maxJsonBodyBytes;
    const deadlineMs = Math.min(config.timeouts[operation.timeout], req.deadlineMs ?? Infinity);
    const extra = req.extraHeaders ?? {};
    /** Made on the first attempt, once it is known whether the body is held whole. */
    let headers: string[] | undefined;
    // Retry only what can be sent again unchanged and safely: no body or a held body, and an
    // idempotent method or a caller-supplied Idempotency-Key.
    const replaySafe = method === 'GET' || method === 'DELETE' || incoming.headers['idempotency-key'] !== undefined;

    return new Promise<void>((resolve) => {
      let settled = false;
      let attempt = 0;
      let current: ClientRequest | undefined;
      let upstreamRes: IncomingMessage | undefined;
      let retryTimer: NodeJS.Timeout | undefined;
      let deadlineTimer: NodeJS.Timeout | undefined;
      let sse = false;
      let upstreamMs: number | undefined;
      let tap: UsageTap | undefined;
      let endStream: (() => void) | undefined;

      const finish = (status: number, note?: string, usage?: UsageInfo) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadlineTimer);
        clearTimeout(retryTimer);
        endInFlight();
        endStream?.();
        ops.record({
          requestId,
          operation: operation.operationId,
          keyLabel: req.keyLabel,
          status,
          startedAt,
          ms: Math.round(performance.now() - started),
          upstreamMs,
          upstreamRequestId: upstreamRes?.headers['x-request-id'] as string | undefined,
          usage,
          attempts: attempt,
          note,
        });
        req.onDone?.();
        resolve();
      };

      // Fail the request, whichever side is still open: an error answer if nothing was sent yet,
      // an SSE `error` event on a started event stream, otherwise a cut connection (never a fake success).
      const fail = (err: RelayError) => {
        if (settled) return;
        current?.destroy();
        upstreamRes?.destroy();
        if (!outgoing.headersSent) writeError(outgoing, err, requestId, extra);
        else if (sse && !outgoing.writableEnded) outgoing.end(sseErrorEvent(err));
        else outgoing.destroy();
        finish(err.status, err.code ?? undefined);
      };

      const refusal = checkRequestBody(incoming, operation, streamBody, cap);
      if (refusal) {
        writeError(outgoing, refusal, requestId, extra);
        finish(refusal.status, refusal.code ?? undefined);
        return;
      }

      // One timer for both limits: until OpenAI's answer starts it is the deadline from the moment the
      // request arrived (covering a caller trickling its body, every retry, and OpenAI's time to first
      // byte); from then on it is restarted by each chunk of the answer, so it fires only when OpenAI
      // stops sending for that long.
      deadlineTimer = setTimeout(
        () =>
          fail(
            upstreamRes
              ? new RelayError(504, `OpenAI stopped sending for ${deadlineMs} ms.`, { code: 'upstream_timeout' })
              : new RelayError(504, `No answer from OpenAI within ${deadlineMs} ms of the request.`, { code: 'upstream_timeout' }),
          ),
        deadlineMs,
      );
      const start = () => send();

      /** Another attempt, if the policy, the attempt count and the time left all allow it. */
      const retryLater = (afterMs: number): boolean => {
        if (streaming || !replaySafe || attempt > retryPolicy.maxRetries || outgoing.headersSent) return false;
        const delay = retryDelayMs(attempt, afterMs, retryPolicy);
        if (performance.now() - started + delay > Math.min(retryPolicy.budgetMs, deadlineMs)) return false;
        current = undefined;
        retryTimer = setTimeout(send, delay);
        return true;
      };

      // The caller went away (or the answer finished): stop spending tokens upstream.
      outgoing.on('close', () => {
        if (!outgoing.writableFinished) {
          current?.destroy();
          upstreamRes?.destroy();
          finish(499, 'client_closed');
        }
      });

      function send() {
        if (settled) return;
        attempt++;
        headers ??= outboundRequestHeaders(
          incoming.headers,
          identity,
          hostHeader,
          streaming
            ? 'caller'
            : heldBody !== undefined
              ? { contentType: jsonBody !== undefined ? 'application/json' : incoming.headers['content-type'], length: heldBody.length }
              : method === 'POST'
                ? NO_BODY // a POST without a body says so, rather than being sent as an empty chunked one
                : undefined,
        );
        const upstreamReq = transport.request({
          protocol: upstream.protocol,
          hostname: upstream.hostname,
          port: upstream.port || undefined,
          method,
          path: basePath + req.upstreamPath + req.search,
          headers,
          agent,
        });
        current = upstreamReq;

        upstreamReq.on('socket', (socket) => {
          if (!socket.connecting) return;
          const connectTimer = setTimeout(() => {
            const err = Object.assign(new Error('connect timeout'), { code: 'ECONNECT_TIMEOUT' });
            upstreamReq.destroy(err);
          }, config.connectTimeoutMs);
          socket.once('connect', () => clearTimeout(connectTimer));
          socket.once('close', () => clearTimeout(connectTimer));
        });
        upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
          if (current !== upstreamReq || upstreamRes) return;
          if (RETRYABLE_CODES.has(err.code ?? '') && retryLater(0)) return;
          fail(transportError(err, config.connectTimeoutMs));
        });

        if (heldBody !== undefined) upstreamReq.end(heldBody);
        else if (streaming) pipeRequestBody(upstreamReq);
        else upstreamReq.end();

        upstreamReq.on('response', (res) => onResponse(res));
      }

      function pipeRequestBody(upstreamReq: ClientRequest) {
        let received = prefixBytes;
        for (const chunk of prefix) upstreamReq.write(chunk);
        prefix = [];
        incoming.on('data', (chunk: Buffer) => {
          received += chunk.length;
          streamMemory.streamed(chunk.length);
          if (received > cap) {
            incoming.pause();
            fail(tooLarge(cap, operation.body === 'multipart'));
            return;
          }
          if (!upstreamReq.write(chunk)) incoming.pause();
        });
        upstreamReq.on('drain', () => incoming.resume());
        incoming.on('end', () => upstreamReq.end());
        incoming.on('error', () => fail(new RelayError(400, 'The request body was cut off.', { code: 'request_aborted' })));
        incoming.resume();
      }

      /**
       * A JSON body is read up to PREBUFFER_BYTES before anything goes upstream: a small body (nearly all
       * of them) is then complete — refused by its cap with no upstream request at all, and replayable for a
       * retry. A larger one streams on from there, never held whole.
       */
      function readPrefixThenStart() {
        const stop = () => {
          incoming.off('data', onData);
          incoming.off('end', onEnd);
          incoming.off('error', onError);
        };
        const onData = (chunk: Buffer) => {
          prefix.push(chunk);
          prefixBytes += chunk.length;
          if (prefixBytes > cap) {
            stop();
            incoming.pause();
            fail(tooLarge(cap, false));
          } else if (prefixBytes > PREBUFFER_BYTES) {
            stop();
            incoming.pause();
            start();
          }
        };
        const onEnd = () => {
          stop();
          heldBody = Buffer.concat(prefix, prefixBytes);
          prefix = [];
          streaming = false;
          start();
        };
        const onError = () => {
          stop();
          fail(new RelayError(400, 'The request body was cut off.', { code: 'request_aborted' }));
        };
        incoming.on('data', onData);
        incoming.on('end', onEnd);
        incoming.on('error', onError);
      }

      function onResponse(res: IncomingMessage) {
        const status = res.statusCode ?? 502;
        if (RETRYABLE_STATUS.has(status) && retryLater(retryAfterMs(res))) {
          res.resume();
          return;
        }
        upstreamRes = res;
        upstreamMs = Math.round(performance.now() - started);
        deadlineTimer?.refresh();
        const answerHeaders = inboundResponseHeaders(res.headers);
        Object.assign(answerHeaders, extra);
        if (answerHeaders['x-request-id'] === undefined) answerHeaders['x-request-id'] = requestId;
        sse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
        if (sse) {
          answerHeaders['cache-control'] = 'no-cache';
          answerHeaders['x-accel-buffering'] = 'no';
          endStream = ops.metrics.streamOpened();
        }
        // Only POSTs spend tokens: a GET of a stored response repeats its usage, which must not count twice.
        if (ops.wantsUsage && status < 400 && method === 'POST') {
          tap = createUsageTap(res.headers['content-type'], { contentEncoding: res.headers['content-encoding'] });
        }

        const cutOff = () => fail(new RelayError(502, 'OpenAI closed the connection mid-answer.', { code: 'upstream_reset' }));
        res.on('error', cutOff);
        res.on('close', () => {
          if (!res.complete) cutOff();
        });
        res.on('end', () => {
          if (!outgoing.writableEnded) outgoing.end();
          finish(status, undefined, tap?.end());
        });

        // Every chunk of the answer restarts the timer: OpenAI is still sending.
        const restartTimer = () => deadlineTimer!.refresh();
        if (
          status >= 400 &&
          !sse &&
          res.headers['content-encoding'] === undefined &&
          Number(res.headers['content-length'] ?? 0) <= MAX_REDACTED_ERROR_BYTES
        ) {
          // Error answers are small; the key is redacted from them in case upstream ever echoes it.
          relayHeldAnswer(res, outgoing, status, answerHeaders, MAX_REDACTED_ERROR_BYTES, (body) => Buffer.from(redact(body.toString('utf8')), 'utf8'), restartTimer);
          return;
        }
        const fitter = req.fitAnswer;
        if (
          fitter &&
          !sse &&
          status < 300 &&
          String(res.headers['content-type'] ?? '').startsWith('application/json') &&
          !(Number(res.headers['content-length']) <= fitter.maxChars)
        ) {
          relayHeldAnswer(res, outgoing, status, answerHeaders, MAX_FITTED_ANSWER_BYTES, fitHeldAnswer(fitter, answerHeaders), (chunk) => {
            restartTimer();
            tap?.write(chunk);
          });
          return;
        }
        outgoing.writeHead(status, answerHeaders);
        res.on('data', (chunk: Buffer) => {
          restartTimer();
          if (!outgoing.write(chunk)) res.pause();
          tap?.write(chunk);
          streamMemory.streamed(chunk.length);
        });
        outgoing.on('drain', () => res.resume());
      }

      if (streamBody && operation.body !== 'multipart') readPrefixThenStart();
      else start();
    });
  }

  return { forwardToOpenAI, close: () => agent.destroy() };
}

export type Forwarder = ReturnType<typeof createForwarder>;

function checkRequestBody(
  incoming: IncomingMessage,
  operation: RelayOperation,
  streamBody: boolean,
  cap: number,
): RelayError | undefined {
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

function tooLarge(cap: number, multipart: boolean): RelayError {
  return new RelayError(413, `The request body exceeds this relay's ${multipart ? 'upload' : 'JSON body'} limit of ${cap} bytes.`, {
    code: 'request_too_large',
  });
}

function transportError(err: NodeJS.ErrnoException, connectTimeoutMs: number): RelayError {
  if (err.code === 'ECONNECT_TIMEOUT') {
    return new RelayError(504, `Could not connect to OpenAI within ${connectTimeoutMs} ms.`, { code: 'upstream_connect_timeout' });
  }
  if (err.code === 'ETIMEDOUT') return new RelayError(504, 'Timed out talking to OpenAI.', { code: 'upstream_timeout' });
  return new RelayError(502, `Could not reach OpenAI (${err.code ?? 'connection error'}).`, { code: 'upstream_unreachable' });
}

/** Retry-After / retry-after-ms of an upstream answer, in ms (0 when absent). */
function retryAfterMs(res: IncomingMessage): number {
  const ms = Number(res.headers['retry-after-ms']);
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = res.headers['retry-after'];
  if (!raw) return 0;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now());
}

/**
 * Holds a bounded upstream answer whole, lets `rewrite` change it, then sends it with its own length:
 * for the few answers the relay must see entire (error bodies, to redact; over-long action answers, to
 * shorten). Past `maxBytes` the answer is cut rather than held.
 */
function relayHeldAnswer(
  res: IncomingMessage,
  outgoing: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  maxBytes: number,
  rewrite: (body: Buffer) => Buffer,
  onChunk?: (chunk: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) {
      res.destroy();
      outgoing.destroy();
      return;
    }
    chunks.push(chunk);
    onChunk?.(chunk);
  });
  res.prependOnceListener('end', () => {
    const body = rewrite(Buffer.concat(chunks, size));
    headers['content-length'] = body.length;
    outgoing.writeHead(status, headers);
    outgoing.end(body);
  });
}

/** Most of an over-long JSON answer the relay will hold to refit it; a larger one is cut. */
const MAX_FITTED_ANSWER_BYTES = 32 * 1024 * 1024;

/** Shortens a JSON answer (saying so in `x-relay-truncated`) only when it is longer than allowed. */
function fitHeldAnswer(fitter: NonNullable<ForwardRequest['fitAnswer']>, headers: OutgoingHttpHeaders) {
  return (body: Buffer): Buffer => {
    if (body.length <= fitter.maxChars) return body;
    try {
      const fitted = fitter.fit(JSON.parse(body.toString('utf8')));
      if (!fitted.truncated) return body;
      headers['x-relay-truncated'] = 'true';
      return Buffer.from(JSON.stringify(fitted.value), 'utf8');
    } catch {
      return body; // not JSON after all: pass it on as it came
    }
  };
}

export function makeRedactor(secrets: string[]): (text: string) => string {
  const needles = secrets.filter((s) => s.length >= 8);
  return (text) => {
    for (const secret of needles) {
      if (text.includes(secret)) text = text.split(secret).join('[redacted]');
    }
    return text;
  };
}
