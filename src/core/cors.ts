/**
 * CORS for the browser-side callers the relay expects (ChatGPT's origins by default). Computed as a plain
 * header object so the same headers reach both Hono-made answers and answers the forwarding core writes
 * straight to the socket. (hono/cors edits `c.res` after the handler, which for a raw-streamed answer
 * would edit @hono/node-server's shared RESPONSE_ALREADY_SENT object.)
 */
const ALLOW_METHODS = 'GET,POST,DELETE,OPTIONS';
const ALLOW_HEADERS =
  'authorization,content-type,accept,x-relay-key,openai-beta,idempotency-key,x-client-request-id,mcp-protocol-version,mcp-session-id,mcp-method,mcp-name';
// www-authenticate: a browser-based MCP client reads the resource metadata URL from a 401.
const EXPOSE_HEADERS = 'x-request-id,openai-processing-ms,retry-after,x-ratelimit-limit-requests,x-ratelimit-remaining-requests,www-authenticate';

export interface CorsPolicy {
  /** Headers for an actual request from `origin`, or undefined when the origin is not allowed. */
  answerHeaders(origin: string | undefined): Record<string, string> | undefined;
  /** Headers for a preflight from `origin`, or undefined when the origin is not allowed. */
  preflightHeaders(origin: string | undefined): Record<string, string> | undefined;
}

export function corsPolicy(allowedOrigins: readonly string[]): CorsPolicy {
  const allowed = new Set(allowedOrigins.map((o) => o.replace(/\/+$/, '')));
  const anyOrigin = allowed.has('*');
  const allows = (origin: string | undefined): origin is string => !!origin && (anyOrigin || allowed.has(origin));
  return {
    answerHeaders(origin) {
      if (!allows(origin)) return undefined;
      return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSE_HEADERS, vary: 'Origin' };
    },
    preflightHeaders(origin) {
      if (!allows(origin)) return undefined;
      return {
        'access-control-allow-origin': origin,
        'access-control-allow-methods': ALLOW_METHODS,
        'access-control-allow-headers': ALLOW_HEADERS,
        'access-control-max-age': '600',
        vary: 'Origin',
      };
    },
  };
}
