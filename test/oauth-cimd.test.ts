import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { useMockOpenAI } from './helpers/mock-openai.ts';
import { authorizationUrl, consentWith, loopbackClientMetadata, MemoryOAuthProvider, openConsent, pkce, startOAuthRelay, type OAuthRelay } from './helpers/oauth.ts';
import { RELAY_KEY } from './helpers/relay.ts';

/**
 * Client ID Metadata Documents: a client_id that is an https URL names the client's own metadata, which
 * the relay fetches (MSW plays the client's web server; DNS is injected, public unless a test says
 * otherwise) under the file-link SSRF rules. The official SDK client (clientMetadataUrl) connects this way
 * when the server advertises client_id_metadata_document_supported.
 */
const { server, upstream } = useMockOpenAI();

const DOC_URL = 'https://client.example.com/oauth/client.json';
const REDIRECT = 'http://127.0.0.1:43111/callback';
const dns: Record<string, string[]> = {};

let relay: OAuthRelay;
let issuer: string;
beforeAll(async () => {
  relay = await startOAuthRelay({}, { oauth: { resolveClientHost: async (host) => dns[host] ?? ['203.0.113.20'] } });
  issuer = relay.issuer;
});
afterAll(() => relay.shutdown());

const document = (url: string, extra: Record<string, unknown> = {}) => ({ client_id: url, client_name: 'Document Client', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', ...extra });
const fetchesOf = (url: string) => upstream.filter((r) => r.url.href === url).length;

test('the SDK client connects with its metadata URL as client_id: fetched once, its redirect URIs enforced', async () => {
  server.use(http.get(DOC_URL, () => HttpResponse.json(document(DOC_URL), { headers: { 'cache-control': 'max-age=600' } })));
  const provider = new MemoryOAuthProvider(REDIRECT, loopbackClientMetadata(REDIRECT), DOC_URL);
  const mcpUrl = new URL(`${issuer}/mcp`);
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await expect(new Client({ name: 'cimd', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
  expect(provider.clientInformation()!.client_id).toBe(DOC_URL);

  const page = await openConsent(provider.authorizationUrl!);
  expect(page.status).toBe(200);
  expect(page.html).toContain('Document Client');
  expect(page.html).toContain('identified by its published metadata');
  const callback = await consentWith(provider.authorizationUrl!, issuer, RELAY_KEY);
  await transport.finishAuth(callback.searchParams.get('code')!);
  const client = new Client({ name: 'cimd', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  await client.close();
  expect(fetchesOf(DOC_URL)).toBe(1);

  // A redirect URI the document does not list gets the error page, without a new fetch (cached).
  const other = await openConsent(authorizationUrl(issuer, { clientId: DOC_URL, challenge: pkce().challenge, redirectUri: 'http://127.0.0.1:43111/elsewhere' }));
  expect(other.status).toBe(400);
  expect(other.location).toBeUndefined();
});

test('documents that cannot be used: each an error page, nothing redirected', async () => {
  const cases: [string, () => void, string][] = [
    ['https://bad.example.com/a.json', () => server.use(http.get('https://bad.example.com/a.json', () => HttpResponse.json(document('https://bad.example.com/other.json')))), 'client_id is not exactly its own URL'],
    ['https://bad.example.com/b.json', () => server.use(http.get('https://bad.example.com/b.json', () => HttpResponse.json(document('https://bad.example.com/b.json', { redirect_uris: ['https://evil.example.com/cb'] })))), 'not on OAUTH_REDIRECT_HOSTS'],
    ['https://bad.example.com/c.json', () => server.use(http.get('https://bad.example.com/c.json', () => HttpResponse.json(document('https://bad.example.com/c.json', { client_secret: 'x' })))), 'must not carry a client secret'],
    ['https://bad.example.com/d.json', () => server.use(http.get('https://bad.example.com/d.json', () => new HttpResponse(null, { status: 302, headers: { location: 'https://client.example.com/oauth/client.json' } }))), 'answered HTTP 302'],
    ['https://bad.example.com/e.json', () => server.use(http.get('https://bad.example.com/e.json', () => HttpResponse.json({ ...document('https://bad.example.com/e.json'), padding: 'x'.repeat(70_000) }))), 'larger than 65536 bytes'],
    ['https://bad.example.com/f.json', () => server.use(http.get('https://bad.example.com/f.json', () => new HttpResponse('not json'))), 'not valid JSON'],
    ['https://internal.example.com/g.json', () => (dns['internal.example.com'] = ['10.0.0.5']), 'private or internal address'],
    ['https://[::1]/h.json', () => {}, 'IP address'],
    ['https://203.0.113.9/i.json', () => {}, 'IP address'],
    ['https://client.example.com:8443/j.json', () => {}, 'names a port'],
    ['https://client.example.com/', () => {}, 'has no path'],
  ];
  for (const [clientId, setup, reason] of cases) {
    setup();
    const page = await openConsent(authorizationUrl(issuer, { clientId, challenge: pkce().challenge, redirectUri: REDIRECT }));
    expect(page.status, clientId).toBe(400);
    expect(page.location).toBeUndefined();
    expect(page.html, clientId).toContain(reason);
  }
  // Nothing was fetched from the private, IP-literal or malformed ones.
  for (const host of ['internal.example.com', '[::1]', '203.0.113.9']) expect(upstream.some((r) => r.url.host === host), host).toBe(false);
});
