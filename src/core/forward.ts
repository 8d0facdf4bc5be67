import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { RelayConfig } from '../config.ts';
import type { RelayOperation } from '../../generated/routes.ts';
import { RelayError, sseErrorEvent, writeError } from './errors.ts';
import { inboundResponseHeaders, outboundRequestHeaders, upstreamIdentityHeaders } from './headers.ts';
import type { Logger } from './logger.ts';

/**
 * The one forwarding core. Every OpenAI route ends here: it streams the caller's body to OpenAI and
 * OpenAI's answer back, byte for byte, on raw node streams (no Web-stream conversion, no parsing, no
 * re-serialization), with size caps, per-class deadlines, header allowlists and abort propagation.
 */

export interface ForwardRequest {
  operation: RelayOperation;
  /** Canonical upstream path (from `canonicalUpstreamPath`), starting with `/v1/`. */
  upstreamPath: string;
  /** The caller's raw query string including `?`, or '' — passed through intact (repeated keys too). */
  search: string;
  requestId: string;
  /** Headers the relay adds to the answer (CORS and the like). */
  extraHeaders?: Record<string, string>;
}

export interface ForwardStats {
  inFlight: number;
}

/** Error answers are small; the key is redacted from them in case upstream ever echoes it. */
const MAX_REDACTED_ERROR_BYTES = 1024 * 1024;

export function createForwarder(config: RelayConfig, logger: Logger) {
  const upstream = config.upstreamBase;
  const isHttps = upstream.protocol === 'https:';
  const transport = isHttps ? https : http;
  const agentOptions = { keepAlive: true, maxSockets: 512, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = isHttps ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const identity = upstreamIdentityHeaders(config);
  const basePath = upstream.pathname === '/' ? '' : upstream.pathname;
  const redact = makeRedactor([config.openaiApiKey]);
  const stats: ForwardStats = { inFlight: 0 };

  function forwardToOpenAI(incoming: IncomingMessage, outgoing: ServerResponse, req: ForwardRequest): Promise<void> {
    const { operation, requestId } = req;
    const started = performance.now();
    const method = operation.method.toUpperCase();
    const forwardBody = operation.body !== 'none' || method === 'POST';
    const cap = operation.body === 'multipart' ? config.maxUploadBytes : config.maxJsonBodyBytes;
    const deadlineMs = config.timeouts[operation.timeout];
    const extra = req.extraHeaders ?? {};

    return new Promise<void>((resolve) => {
      stats.inFlight++;
      let settled = false;
      const finish = (status: number, note?: string) => {
        if (settled) return;
        settled = true;
        stats.inFlight--;
        clearTimeout(headersTimer);
        logger.info({ reqId: requestId, op: operation.operationId, status, ms: Math.round(performance.now() - started), note }, 'request');
        resolve();
      };

      const refusal = checkRequestBody(incoming, operation, forwardBody, cap);
      if (refusal) {
        writeError(outgoing, refusal, requestId, extra);
        finish(refusal.status, refusal.code ?? undefined);
        return;
      }

      const upstreamReq = transport.request({
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port || undefined,
        method,
        path: basePath + req.upstreamPath + req.search,
        headers: outboundRequestHeaders(incoming.headers, identity, forwardBody),
        agent,
      });

      // Fail the request, whichever side is still open: an error answer if nothing was sent yet,
      // an SSE `error` event on a started event stream, otherwise a cut connection (never a fake success).
      let upstreamRes: IncomingMessage | undefined;
      let sse = false;
      const fail = (err: RelayError) => {
        if (settled) return;
        upstreamReq.destroy();
        upstreamRes?.destroy();
        if (!outgoing.headersSent) {
          writeError(outgoing, err, requestId, extra);
        } else if (sse && !outgoing.writableEnded) {
          outgoing.end(sseErrorEvent(err));
        } else {
          outgoing.destroy();
        }
        finish(err.status, err.code ?? undefined);
      };

      const headersTimer = setTimeout(
        () => fail(new RelayError(504, `OpenAI did not answer within ${deadlineMs} ms.`, { code: 'upstream_timeout' })),
        deadlineMs,
      );
      upstreamReq.setTimeout(deadlineMs, () =>
        fail(new RelayError(504, `OpenAI stopped sending for ${deadlineMs} ms.`, { code: 'upstream_timeout' })),
      );
      upstreamReq.on('socket', (socket) => {
        if (!socket.connecting) return;
        const connectTimer = setTimeout(
          () => fail(new RelayError(504, `Could not connect to OpenAI within ${config.connectTimeoutMs} ms.`, { code: 'upstream_connect_timeout' })),
          config.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
        socket.once('close', () => clearTimeout(connectTimer));
      });
      upstreamReq.on('error', (err: NodeJS.ErrnoException) => fail(transportError(err)));

      // The caller went away (or the answer finished): stop spending tokens upstream.
      outgoing.on('close', () => {
        if (!outgoing.writableFinished) {
          upstreamReq.destroy();
          upstreamRes?.destroy();
          finish(499, 'client_closed');
        }
      });

      if (forwardBody) {
        let received = 0;
        incoming.on('data', (chunk: Buffer) => {
          received += chunk.length;
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
      } else {
        upstreamReq.end();
      }

      upstreamReq.on('response', (res) => {
        upstreamRes = res;
        clearTimeout(headersTimer);
        const status = res.statusCode ?? 502;
        const headers = inboundResponseHeaders(res.headers);
        Object.assign(headers, extra);
        if (headers['x-request-id'] === undefined) headers['x-request-id'] = requestId;
        sse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
        if (sse) {
          headers['cache-control'] = 'no-cache';
          headers['x-accel-buffering'] = 'no';
        }

        const cutOff = () => fail(new RelayError(502, 'OpenAI closed the connection mid-answer.', { code: 'upstream_reset' }));
        res.on('error', cutOff);
        res.on('close', () => {
          if (!res.complete) cutOff();
        });
        res.on('end', () => {
          if (!outgoing.writableEnded) outgoing.end();
          finish(status);
        });

        if (
          status >= 400 &&
          !sse &&
          res.headers['content-encoding'] === undefined &&
          Number(res.headers['content-length'] ?? 0) <= MAX_REDACTED_ERROR_BYTES
        ) {
          relayErrorAnswer(res, outgoing, status, headers, redact);
          return;
        }
        outgoing.writeHead(status, headers);
        res.on('data', (chunk: Buffer) => {
          if (!outgoing.write(chunk)) res.pause();
        });
        outgoing.on('drain', () => res.resume());
      });
    });
  }

  return { forwardToOpenAI, stats, close: () => agent.destroy() };
}

export type Forwarder = ReturnType<typeof createForwarder>;

function checkRequestBody(
  incoming: IncomingMessage,
  operation: RelayOperation,
  forwardBody: boolean,
  cap: number,
): RelayError | undefined {
  const length = incoming.headers['content-length'];
  const hasBody = length !== undefined ? Number(length) > 0 : incoming.headers['transfer-encoding'] !== undefined;
  if (!hasBody || !forwardBody) return undefined;
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

function transportError(err: NodeJS.ErrnoException): RelayError {
  if (err.code === 'ETIMEDOUT') {
    return new RelayError(504, 'Timed out talking to OpenAI.', { code: 'upstream_timeout' });
  }
  return new RelayError(502, `Could not reach OpenAI (${err.code ?? 'connection error'}).`, { code: 'upstream_unreachable' });
}

/** Buffers a (small) upstream error answer so a secret it might echo is redacted before the caller sees it. */
function relayErrorAnswer(
  res: IncomingMessage,
  outgoing: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  redact: (text: string) => string,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_REDACTED_ERROR_BYTES) {
      res.destroy();
      outgoing.destroy();
      return;
    }
    chunks.push(chunk);
  });
  res.prependOnceListener('end', () => {
    const body = Buffer.from(redact(Buffer.concat(chunks).toString('utf8')), 'utf8');
    headers['content-length'] = body.length;
    outgoing.writeHead(status, headers);
    outgoing.end(body);
  });
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
