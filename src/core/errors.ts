import type { ServerResponse } from 'node:http';

/**
 * Errors the relay makes itself, shaped like OpenAI's own so SDKs surface them the same way:
 * `{"error": {"message", "type", "param", "code"}}` with an honest HTTP status.
 */

export type RelayErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: RelayErrorType; param: string | null; code: string | null };
}

export class RelayError extends Error {
  readonly status: number;
  readonly type: RelayErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    opts: { type?: RelayErrorType; code?: string; param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'RelayError';
    this.status = status;
    this.type = opts.type ?? defaultType(status);
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function defaultType(status: number): RelayErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 504) return 'timeout_error';
  if (status === 502 || status === 503) return 'upstream_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** A Web Response carrying the error, for handlers that answer through Hono. */
export function errorResponse(err: RelayError, requestId: string): Response {
  return new Response(JSON.stringify(err.toJSON()), {
    status: err.status,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...err.headers },
  });
}

/** The same error written straight to a node response (the streaming core answers without Hono's Response). */
export function writeError(
  outgoing: ServerResponse,
  err: RelayError,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): void {
  if (outgoing.headersSent || outgoing.destroyed) {
    outgoing.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON());
  outgoing.writeHead(err.status, {
    ...extraHeaders,
    ...err.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  });
  outgoing.end(body);
}

/** The `error` event a relay writes into an SSE stream that broke after it started. */
export function sseErrorEvent(err: RelayError): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', ...err.toJSON() })}\n\n`;
}
