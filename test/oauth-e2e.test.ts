import type { IncomingHttpHeaders } from 'node:http';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort, startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { consentWith, loopbackClientMetadata, MemoryOAuthProvider } from './helpers/oauth.ts';

/**
 * The whole OAuth story end to end, against the relay as `npm start` runs it (a child process, the
 * SQLite ledger file, a real upstream on 127.0.0.1 playing OpenAI), driven by the official MCP SDK
 * client's OAuth support (@modelcontextprotocol/sdk 1.x, protocol 2025-11-25, dynamic client
 * registration): the 401 names the resource metadata, the client discovers the authorization server,
 * registers, is sent to the consent page (filled in here with a relay key, as a person would), trades
 * the code for tokens, lists and calls tools (the call reaches the upstream with the server's OpenAI
 * key, never the token), refreshes, and after revocation is refused.
 */

const OPENAI_KEY = 'sk-e2e-server-key-0123456789abcdef';
const ALICE_KEY = 'alice-relay-key-0123456789abcdef';
const ADMIN_KEY = 'admin-relay-key-0123456789abcdef';
const REDIRECT = 'http://127.0.0.1:53682/callback';

let upstream: LocalUpstream;
let relay: ChildRelay;
let issuer: string;
const seen: { method?: string; url?: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  upstream = await startLocalUpstream((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-5', object: 'model', owned_by: 'openai' }] }));
  });
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  relay = await startChildRelay({
    PORT: String(port),
    PUBLIC_BASE_URL: issuer,
    OPENAI_API_KEY: OPENAI_KEY,
    OPENAI_BASE_URL: upstream.baseUrl,
    RELAY_KEY: `alice:${ALICE_KEY}`,
    RELAY_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: 'info',
  });
});
afterAll(async () => {
  await relay?.stop();
  await upstream?.close();
});

test('discovery from the 401, registration, consent with a relay key, tokens, tools, refresh, revocation', async () => {
  const mcpUrl = new URL(`${issuer}/mcp`);

  // The 401 a client gets first names the resource metadata, which names the authorization server.
  const first = await fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(first.status).toBe(401);
  expect(first.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp", scope="mcp"`);

  const provider = new MemoryOAuthProvider(REDIRECT, loopbackClientMetadata(REDIRECT));
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await expect(new Client({ name: 'e2e', version: '1.0.0' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);

  // The SDK discovered, registered (DCR) and built the authorization URL with PKCE S256 and the resource.
  const registered = provider.clientInformation()!;
  expect(registered.client_id).toMatch(/^rcl_/);
  const authorizationUrl = provider.authorizationUrl!;
  expect(authorizationUrl.origin + authorizationUrl.pathname).toBe(`${issuer}/oauth/authorize`);
  expect(authorizationUrl.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorizationUrl.searchParams.get('resource')).toBe(`${issuer}/mcp`);

  // A person opens it, types their relay key, and is sent back with code, state and iss.
  const callback = await consentWith(authorizationUrl, issuer, ALICE_KEY);
  expect(callback.origin + callback.pathname).toBe(REDIRECT);
  expect(callback.searchParams.get('state')).toBe(provider.expectedState);
  expect(callback.searchParams.get('iss')).toBe(issuer);
  await transport.finishAuth(callback.searchParams.get('code')!);
  const tokens = provider.tokens()!;
  expect(tokens.access_token).toMatch(/^rly_at_/);
  expect(tokens.refresh_token).toMatch(/^rly_rt_/);
  expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'mcp' });

  // The client is connected: tools are listed and a call reaches the upstream with the server's key.
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toContain('relayProxy');
  const result = (await client.callTool({ name: 'relayProxy', arguments: { method: 'GET', path: '/v1/models' } })) as CallToolResult;
  expect(result.isError).toBeFalsy();
  expect(result.structuredContent).toMatchObject({ object: 'list', data: [{ id: 'gpt-5' }] });
  const models = seen.filter((r) => r.url === '/v1/models');
  expect(models).toHaveLength(1);
  expect(models[0].headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
  expect(JSON.stringify(seen)).not.toContain(tokens.access_token);

  // Usage is recorded under the label of the key the token was granted with.
  const usage = (await (await fetch(`${issuer}/v1/relay/usage`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { data: { keyLabel: string; requests: number }[] };
  expect(usage.data.filter((row) => row.keyLabel === 'alice').reduce((sum, row) => sum + row.requests, 0)).toBeGreaterThanOrEqual(3);

  // Refresh: the SDK trades the refresh token for a new pair (the refresh token rotates).
  expect(await auth(provider, { serverUrl: mcpUrl })).toBe('AUTHORIZED');
  const refreshed = provider.tokens()!;
  expect(refreshed.access_token).not.toBe(tokens.access_token);
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  await client.close();
  const again = new Client({ name: 'e2e', version: '1.0.0' });
  await again.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  expect((await again.listTools()).tools.length).toBeGreaterThan(0);
  await again.close();

  // Revocation (RFC 7009) ends the connection: the access token is refused at once.
  const revoked = await fetch(`${issuer}/oauth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: refreshed.refresh_token!, token_type_hint: 'refresh_token', client_id: registered.client_id }),
  });
  expect(revoked.status).toBe(200);
  const after = await fetch(mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${refreshed.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  expect(after.status).toBe(401);
  expect(after.headers.get('www-authenticate')).toContain('error="invalid_token"');

  // The log (complete once the relay has stopped): requests under alice's label, no token, no key.
  expect(await relay.stop()).toBe(0);
  const log = relay.output();
  expect(log).toContain('"key":"alice"');
  expect(log).toContain('oauth consent: allowed');
  for (const secret of [tokens.access_token, tokens.refresh_token!, refreshed.access_token, ALICE_KEY]) expect(log).not.toContain(secret);
});
