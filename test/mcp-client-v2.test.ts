import { Client, StreamableHTTPClientTransport, UnauthorizedError, type CallToolResult } from '@modelcontextprotocol/client';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { consentWith, loopbackClientMetadata, MemoryOAuthProvider, startOAuthRelay, type OAuthRelay } from './helpers/oauth.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';

/**
 * The official SDK's v2 client (@modelcontextprotocol/client, protocol 2026-07-28) against the relay:
 * with `auto` negotiation it probes with server/discover and picks 2026-07-28; it gets its token through
 * the relay's OAuth (checking the authorization response's `iss` against the issuer, as 2026-07-28
 * requires), then lists and calls tools statelessly. MSW plays OpenAI.
 */
const { server, upstream } = useMockOpenAI();

let relay: OAuthRelay;
beforeAll(async () => {
  relay = await startOAuthRelay();
});
afterAll(() => relay.shutdown());

const REDIRECT = 'http://127.0.0.1:45123/callback';

test('2026-07-28 client: discover, OAuth (DCR, iss checked), tools/list and tools/call without initialize', async () => {
  server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [{ id: 'gpt-5', object: 'model' }] })));
  const mcpUrl = new URL(`${relay.issuer}/mcp`);
  const provider = new MemoryOAuthProvider(REDIRECT, loopbackClientMetadata(REDIRECT));
  const newClient = () => new Client({ name: 'v2-client', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });

  // What the client sends to /mcp, as the relay receives it.
  const sent: { method: string; version: string | null; mcpMethod: string | null }[] = [];
  const recording = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (url.pathname === '/mcp' && init?.method === 'POST' && typeof init.body === 'string') {
      const headers = new Headers(init.headers);
      sent.push({ method: (JSON.parse(init.body) as { method: string }).method, version: headers.get('mcp-protocol-version'), mcpMethod: headers.get('mcp-method') });
    }
    return fetch(input, init);
  };

  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recording });
  await expect(newClient().connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
  const callback = await consentWith(provider.authorizationUrl!, relay.issuer, RELAY_KEY);
  expect(callback.searchParams.get('iss')).toBe(relay.issuer);
  await transport.finishAuth(callback.searchParams);
  expect(provider.tokens()!.access_token).toMatch(/^rly_at_/);

  sent.length = 0;
  const client = newClient();
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recording }));
  expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toContain('relayProxy');
  const result = (await client.callTool({ name: 'relayProxy', arguments: { method: 'GET', path: '/v1/models' } })) as CallToolResult;
  expect(result.structuredContent).toMatchObject({ object: 'list', data: [{ id: 'gpt-5' }] });
  expect(upstream.map((r) => r.headers.get('authorization'))).toEqual([`Bearer ${OPENAI_KEY}`]);
  await client.close();

  // Stateless 2026-07-28 all the way: discover, list, call; no initialize; headers mirror the body.
  expect(sent.map((r) => r.method)).toEqual(['server/discover', 'tools/list', 'tools/call']);
  for (const r of sent) expect(r).toMatchObject({ version: '2026-07-28', mcpMethod: r.method });
});
