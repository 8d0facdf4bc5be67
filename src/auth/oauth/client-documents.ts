import dns from 'node:dns';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { isForbiddenAddress, pinnedGet } from '../../core/net-policy.ts';
import { checkClientMetadata, type ClientMetadata } from './client-metadata.ts';
import { OAuthError } from './errors.ts';
import type { RedirectRule } from './redirect-uris.ts';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25 and
 * later): a client whose `client_id` is an https URL is described by the JSON document at that URL. The
 * relay fetches it under the same rules as a GPT user's file link: https on port 443 to a host name
 * (never an IP literal) whose every address is public, the connection pinned to the checked address
 * (DNS rebinding cannot move it), no redirects (the draft forbids them), a size and a time cap. The
 * document must name itself (`client_id` equal to the URL) and pass the client metadata checks, its
 * redirect URIs included. Good documents are cached (Cache-Control max-age, clamped); failures are not.
 */

export interface ClientDocuments {
  /** The client's metadata, from the cache or fetched now; OAuthError invalid_client when unusable. */
  get(clientId: string): Promise<ClientMetadata>;
}

export interface ClientDocumentOptions {
  redirectRules: readonly RedirectRule[];
  /** Every address of a host; defaults to the system resolver. */
  resolve?: (hostname: string) => Promise<string[]>;
  maxBytes?: number;
  timeoutMs?: number;
  now?: () => number;
}

/** Real documents are larger than the draft's 5 KB suggestion (claude.ai's is): 64 KB leaves room. */
const MAX_BYTES = 64 * 1024;
const TIMEOUT_MS = 5_000;
const MIN_TTL_MS = 60_000;
const DEFAULT_TTL_MS = 5 * 60_000;
const MAX_TTL_MS = 24 * 60 * 60_000;
const MAX_CACHED = 1_000;

/** Whether a client_id names a metadata document (rather than a registered client). */
export const isClientDocumentId = (clientId: string) => /^https:\/\//i.test(clientId);

const defaultResolve = async (hostname: string) => (await dns.promises.lookup(hostname, { all: true, order: 'verbatim' })).map((a) => a.address);

export function createClientDocuments(opts: ClientDocumentOptions): ClientDocuments {
  const resolve = opts.resolve ?? defaultResolve;
  const maxBytes = opts.maxBytes ?? MAX_BYTES;
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { metadata: ClientMetadata; expiresAt: number }>();
  const pending = new Map<string, Promise<ClientMetadata>>();

  async function load(clientId: string): Promise<ClientMetadata> {
    const refuse = (why: string) =>
      new OAuthError('invalid_client', `The client metadata document ${clientId.slice(0, 300)} cannot be used: ${why}. The client's developer must fix it.`, 400);
    const url = checkDocumentUrl(clientId, refuse);
    const host = url.hostname.toLowerCase();
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch {
      throw refuse(`its host ${host} could not be looked up`);
    }
    if (!Array.isArray(addresses) || addresses.length === 0) throw refuse(`its host ${host} has no address`);
    if (addresses.some((a) => typeof a !== 'string' || isForbiddenAddress(a))) throw refuse(`its host ${host} resolves to a private or internal address`);

    const { status, body, maxAge } = await get(url, addresses, maxBytes, timeoutMs, refuse);
    if (status !== 200) throw refuse(`it answered HTTP ${status} (the relay follows no redirects)`);
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      throw refuse('it is not valid JSON');
    }
    if ((doc as { client_id?: unknown })?.client_id !== clientId) throw refuse('its client_id is not exactly its own URL');
    let metadata: ClientMetadata;
    try {
      metadata = checkClientMetadata(doc, opts.redirectRules, 'document');
    } catch (err) {
      throw err instanceof OAuthError ? refuse(err.message.replace(/\.$/, '')) : err;
    }
    const ttl = Math.min(Math.max(maxAge ?? DEFAULT_TTL_MS, MIN_TTL_MS), MAX_TTL_MS);
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(clientId, { metadata, expiresAt: now() + ttl });
    return metadata;
  }

  return {
    get(clientId) {
      const hit = cache.get(clientId);
      if (hit && hit.expiresAt > now()) return Promise.resolve(hit.metadata);
      let loading = pending.get(clientId);
      if (!loading) {
        loading = load(clientId).finally(() => pending.delete(clientId));
        pending.set(clientId, loading);
      }
      return loading;
    },
  };
}

/** The URL rules of the draft (§3) plus the relay's: https, port 443, a host name, a path, nothing odd. */
function checkDocumentUrl(clientId: string, refuse: (why: string) => OAuthError): URL {
  if (clientId.length > 2048) throw refuse('the URL is longer than 2048 characters');
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw refuse('it is not a valid URL');
  }
  const rawPath = clientId.replace(/^https:\/\/[^/?#]*/i, '').split(/[?#]/, 1)[0];
  if (url.protocol !== 'https:') throw refuse('it is not https');
  if (url.username || url.password) throw refuse('its URL carries credentials');
  if (clientId.includes('#')) throw refuse('its URL has a fragment');
  if (url.port !== '') throw refuse('its URL names a port (only 443)');
  if (net.isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0) throw refuse('its URL names an IP address instead of a host');
  if (rawPath === '' || rawPath === '/') throw refuse('its URL has no path');
  if (/\/\.\.?(\/|$)/.test(rawPath)) throw refuse('its URL has dot segments');
  return url;
}

function get(
  url: URL,
  addresses: string[],
  maxBytes: number,
  timeoutMs: number,
  refuse: (why: string) => OAuthError,
): Promise<{ status: number; body: string; maxAge?: number }> {
  return new Promise((resolve, reject) => {
    const req = pinnedGet(url, addresses, { accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': 'openai-relay (oauth client metadata)' });
    const timer = setTimeout(() => {
      req.destroy();
      reject(refuse(`it took longer than ${timeoutMs / 1000} s to fetch`));
    }, timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      req.destroy();
      reject(refuse(why));
    };
    req.once('error', (err: NodeJS.ErrnoException) => fail(`fetching it failed (${err.code ?? err.message})`));
    req.once('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.destroy();
        clearTimeout(timer);
        resolve({ status, body: '' });
        return;
      }
      const encoding = String(res.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (encoding !== 'identity') return fail('it was sent compressed');
      if (Number(res.headers['content-length'] ?? 0) > maxBytes) return fail(`it is larger than ${maxBytes} bytes`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) fail(`it is larger than ${maxBytes} bytes`);
        else chunks.push(chunk);
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status, body: Buffer.concat(chunks).toString('utf8'), maxAge: maxAgeOf(res.headers['cache-control']) });
      });
      res.once('error', () => fail('the answer was cut off'));
    });
    req.end();
  });
}

function maxAgeOf(cacheControl: string | undefined): number | undefined {
  if (!cacheControl) return undefined;
  if (/\bno-store\b|\bno-cache\b/i.test(cacheControl)) return 0;
  const match = /\bmax-age=(\d{1,9})\b/i.exec(cacheControl);
  return match ? Number(match[1]) * 1000 : undefined;
}
