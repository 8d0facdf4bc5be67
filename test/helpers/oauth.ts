import { createHash, randomBytes } from 'node:crypto';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { RelayOverrides } from '../../src/server.ts';
import { freePort } from './child-relay.ts';
import { startTestRelay, type TestRelay } from './relay.ts';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

/**
 * What a browser does with the relay's consent page, and an in-memory OAuth client for the MCP SDK.
 * Nothing here knows the relay's internals: the page is read as HTML (its form's hidden fields), the
 * form is posted back with the cookie the page set, from the relay's origin, like a browser would.
 */

export interface ConsentAnswer {
  status: number;
  /** Where the relay sent the browser (a 302/303 Location), if anywhere. */
  location?: string;
  html: string;
  headers: Headers;
}

export interface ConsentPage extends ConsentAnswer {
  fields: Record<string, string>;
  cookie?: string;
}

/** GET the authorization URL as a browser would (no redirects followed). */
export async function openConsent(authorizationUrl: string | URL): Promise<ConsentPage> {
  const res = await fetch(authorizationUrl, { redirect: 'manual' });
  const html = await res.text();
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[unescape(match[1])] = unescape(match[2]);
  const setCookie = res.headers.get('set-cookie');
  return { status: res.status, location: res.headers.get('location') ?? undefined, html, headers: res.headers, fields, cookie: setCookie?.split(';', 1)[0] };
}

/** Posts the consent form: the page's hidden fields plus `relay_key` (and `changes`), from `origin`. */
export async function postConsent(
  page: ConsentPage,
  issuer: string,
  relayKey: string,
  opts: { origin?: string | null; cookie?: string | null; changes?: Record<string, string | undefined> } = {},
): Promise<ConsentAnswer> {
  const form = new URLSearchParams({ ...page.fields, relay_key: relayKey, decision: 'allow' });
  for (const [name, value] of Object.entries(opts.changes ?? {})) {
    if (value === undefined) form.delete(name);
    else form.set(name, value);
  }
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const origin = opts.origin === undefined ? issuer : opts.origin;
  if (origin !== null) headers.origin = origin;
  const cookie = opts.cookie === undefined ? page.cookie : opts.cookie;
  if (cookie) headers.cookie = cookie;
  const res = await fetch(`${issuer}/oauth/authorize`, { method: 'POST', headers, body: form, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location') ?? undefined, html: await res.text(), headers: res.headers };
}

/** Consent given with `relayKey`: the code (and the whole callback URL) the relay redirected to. */
export async function consentWith(authorizationUrl: string | URL, issuer: string, relayKey: string): Promise<URL> {
  const page = await openConsent(authorizationUrl);
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}: ${page.location ?? page.html.slice(0, 300)}`);
  const answer = await postConsent(page, issuer, relayKey);
  if (answer.status !== 303 || !answer.location) throw new Error(`consent post answered ${answer.status}: ${answer.html.slice(0, 300)}`);
  return new URL(answer.location);
}

function unescape(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
}

/** An OAuthClientProvider kept in memory: what a desktop MCP client stores, minus the browser. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  authorizationUrl?: URL;
  private info?: OAuthClientInformationMixed;
  private saved?: OAuthTokens;
  private verifier?: string;
  readonly expectedState = `state-${Math.random().toString(36).slice(2)}`;

  readonly redirectUrl: string;
  readonly clientMetadata: OAuthClientMetadata;
  readonly clientMetadataUrl?: string;

  constructor(redirectUrl: string, clientMetadata: OAuthClientMetadata, clientMetadataUrl?: string) {
    this.redirectUrl = redirectUrl;
    this.clientMetadata = clientMetadata;
    this.clientMetadataUrl = clientMetadataUrl;
  }

  state() {
    return this.expectedState;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }
}

/** The metadata a loopback (Claude Code / Codex style) public client registers. */
export function loopbackClientMetadata(redirectUrl: string): OAuthClientMetadata {
  return {
    client_name: 'Relay test client',
    redirect_uris: [redirectUrl],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

// ------------------------------------------------------------------------------------------ raw flows

/** A PKCE pair (RFC 7636, S256). */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export const LOOPBACK_REDIRECT = 'http://127.0.0.1:7777/callback';

/** Registers a client (RFC 7591) and returns the parsed answer. */
export async function registerClient(issuer: string, metadata: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await fetch(`${issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'Raw test client', redirect_uris: [LOOPBACK_REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], ...metadata }),
  });
  const body = (await res.json()) as Record<string, any>;
  if (res.status !== 201) throw new Error(`registration answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

export interface AuthorizeParams {
  clientId: string;
  challenge: string;
  redirectUri?: string;
  resource?: string | null;
  method?: string | null;
  state?: string;
  extra?: Record<string, string>;
}

export function authorizationUrl(issuer: string, p: AuthorizeParams): URL {
  const url = new URL(`${issuer}/oauth/authorize`);
  const params: Record<string, string | null | undefined> = {
    response_type: 'code',
    client_id: p.clientId,
    redirect_uri: p.redirectUri ?? LOOPBACK_REDIRECT,
    state: p.state ?? 'state-1',
    code_challenge: p.challenge,
    code_challenge_method: p.method === undefined ? 'S256' : p.method,
    resource: p.resource === undefined ? `${issuer}/mcp` : p.resource,
    scope: 'mcp',
    ...p.extra,
  };
  for (const [name, value] of Object.entries(params)) if (value !== null && value !== undefined) url.searchParams.set(name, value);
  return url;
}

/** POST /oauth/token with form parameters (and optional extra headers). */
export function tokenRequest(issuer: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${issuer}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
}

export interface Connected {
  clientId: string;
  access: string;
  refresh: string;
  code: string;
  verifier: string;
}

/** Register, consent with `relayKey`, trade the code: a connected client's tokens. */
export async function connectWithOAuth(issuer: string, relayKey: string, metadata: Record<string, unknown> = {}): Promise<Connected> {
  const client = await registerClient(issuer, metadata);
  const { verifier, challenge } = pkce();
  const callback = await consentWith(authorizationUrl(issuer, { clientId: client.client_id, challenge }), issuer, relayKey);
  const code = callback.searchParams.get('code')!;
  const res = await tokenRequest(issuer, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: LOOPBACK_REDIRECT, client_id: client.client_id, resource: `${issuer}/mcp` });
  const body = (await res.json()) as Record<string, string>;
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${JSON.stringify(body)}`);
  return { clientId: client.client_id, access: body.access_token, refresh: body.refresh_token, code, verifier };
}

/** tools/list on /mcp with a bearer credential (2025-11-25, no initialize needed by this stateless server). */
export function mcpToolsList(issuer: string, bearer: string): Promise<Response> {
  return fetch(`${issuer}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
}

/** A relay with OAuth on: PUBLIC_BASE_URL is its own loopback URL (so the port is chosen first). */
export type OAuthRelay = TestRelay & { issuer: string };

export async function startOAuthRelay(env: Record<string, string> = {}, overrides: RelayOverrides = {}): Promise<OAuthRelay> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const relay = await startTestRelay({ PORT: String(port), PUBLIC_BASE_URL: issuer, LOG_LEVEL: 'silent', ...env }, overrides);
  return Object.assign(relay, { issuer });
}
