import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { RelayConfig } from '../config.ts';

/**
 * Which headers cross the relay, in each direction. Both sides are allowlists: a header nobody listed
 * never crosses, so the caller's Authorization, X-Relay-Key, cookies, x-forwarded-* and hop-by-hop
 * headers cannot leak upstream, and upstream's set-cookie cannot reach the caller.
 */

/**
 * Caller headers OpenAI needs to see, unchanged. `accept-encoding` is deliberately absent: upstream then
 * answers uncompressed, so the relay never has to re-frame a decoded body and can inspect error bodies.
 */
const FORWARDED_REQUEST_HEADERS = [
  'content-type',
  'content-length',
  'accept',
  'openai-beta',
  'idempotency-key',
  'user-agent',
  'x-client-request-id',
] as const;

/**
 * Caller headers that cross on a WebSocket upgrade. The handshake's own (Sec-WebSocket-*, Upgrade) are the
 * WebSocket client's to write, and the caller's subprotocols are filtered by the upgrade door.
 */
const FORWARDED_UPGRADE_HEADERS = ['openai-beta', 'user-agent', 'x-client-request-id'] as const;

/**
 * Upstream answer headers the caller may see. Anything matching a prefix below passes too, and so do the
 * headers an operation declares in the spec (its route table's `responseHeaders`, e.g. the `Location` of a
 * created realtime call): nothing else widens the list.
 */
const FORWARDED_RESPONSE_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-disposition',
  'content-language',
  'cache-control',
  'etag',
  'last-modified',
  'retry-after',
  'retry-after-ms',
  'x-request-id',
  'x-client-request-id',
  'openai-processing-ms',
  'openai-version',
  'openai-model',
]);
const FORWARDED_RESPONSE_PREFIXES = ['x-ratelimit-'];

/** Headers the relay adds to every upstream request: the server key, never the caller's. */
export function upstreamIdentityHeaders(config: RelayConfig): Record<string, string> {
  const headers: Record<string, string> = { authorization: `Bearer ${config.openaiApiKey}` };
  if (config.openaiOrganization) headers['openai-organization'] = config.openaiOrganization;
  if (config.openaiProject) headers['openai-project'] = config.openaiProject;
  return headers;
}

/** The headers of a WebSocket upgrade to OpenAI: the caller's allowlisted ones, then the server key and identity. */
export function upgradeRequestHeaders(incoming: IncomingHttpHeaders, identity: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_UPGRADE_HEADERS) {
    const value = incoming[name];
    if (typeof value === 'string') out[name] = value;
  }
  return Object.assign(out, identity);
}

/** What goes upstream as the request body: the caller's stream as it comes, or a body of known length. */
export type OutboundBody = 'caller' | { contentType: string | undefined; length: number | undefined } | undefined;

/**
 * The upstream request's headers as a flat `[name, value, ...]` list, which node's ClientRequest writes
 * as it is; given an object it copies every header into the request's own map first, through
 * setHeader (measured: the ClientRequest constructor took 2-4x the raw pipe's CPU that way). With a list,
 * node adds no Host header of its own, so `host` (the upstream's, from its URL) comes first.
 * `body`: 'caller' forwards the caller's Content-Type and Content-Length (none: node sends it chunked);
 * a known body sends its exact length, even when the caller had sent it chunked (a body the relay changes as
 * it streams: no length, so node sends it chunked); undefined, no body headers.
 */
export function outboundRequestHeaders(
  incoming: IncomingHttpHeaders,
  /** `upstreamIdentityHeaders`, flattened. */
  identity: readonly string[],
  host: string,
  body: OutboundBody,
): string[] {
  const out = ['host', host];
  for (const name of FORWARDED_REQUEST_HEADERS) {
    if ((name === 'content-type' || name === 'content-length') && body !== 'caller') {
      if (body === undefined) continue;
      if (name === 'content-length') {
        if (body.length !== undefined) out.push(name, String(body.length));
      }
      else if (body.contentType !== undefined) out.push(name, body.contentType);
      continue;
    }
    const value = incoming[name];
    if (value !== undefined) out.push(name, value as string);
  }
  for (let i = 0; i < identity.length; i++) out.push(identity[i]!);
  return out;
}

export function inboundResponseHeaders(upstream: IncomingHttpHeaders, declared: readonly string[] = []): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (FORWARDED_RESPONSE_HEADERS.has(name) || FORWARDED_RESPONSE_PREFIXES.some((p) => name.startsWith(p)) || declared.includes(name)) {
      out[name] = upstream[name];
    }
  }
  return out;
}
