import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../core/env.ts';
import { SPEC_INFO } from '../../generated/documents.ts';
import { actionDeps, type ActionServices } from '../actions/context.ts';
import { isLoopbackHost } from '../auth/oauth/redirect-uris.ts';
import { corsPolicy } from '../core/cors.ts';
import { RelayError } from '../core/errors.ts';
import { isObj } from '../core/json.ts';
import { readJsonBody } from '../core/read-body.ts';
import { actionServerUrl } from '../http/server-url.ts';
import { createUsageAccount } from '../upstream/usage-account.ts';

/**
 * POST /mcp: the action operations as MCP tools, over Streamable HTTP — the successor of GPT Actions
 * for ChatGPT (developer mode, Plugins), Claude, Codex and other MCP clients.
 *
 * One endpoint, every current protocol version, all through the official SDK (v2): clients of
 * 2025-06-18 and 2025-11-25 start with `initialize` and are answered by a stateless Streamable HTTP
 * transport; clients of 2026-07-28 send the per-request envelope (`_meta` protocol version and
 * capabilities, `Mcp-Method`/`Mcp-Name` headers, `server/discover` instead of `initialize`) and are
 * answered by the SDK's modern handler, which also checks that headers and body agree. The SDK's own
 * classifier decides which is which. Either way each POST gets a fresh server and is answered as one
 * JSON body; GET (a server-sent event stream) and DELETE (ending a session) answer 405.
 *
 * /mcp is not a public path: the relay-auth middleware has already identified the caller (a relay key,
 * or an OAuth access token acting as the relay key it was granted with: src/auth/oauth/), checked the
 * per-key request limits and the in-flight cap, exactly as for /v1/actions/*, and the app's request
 * record (log line, metrics, ledger row under the key's label) is written for it too: the answer goes
 * back through Hono, not around it. No token is ever passed upstream: the OpenAI key stays the only
 * upstream credential.
 */
export function registerMcpRoutes(app: OpenAPIHono<RelayEnv>, services: ActionServices): void {
  // The MCP SDK is a large module tree: it loads in the background once the relay is up (and at the latest
  // on the first /mcp request), so it never delays start-up. The tools themselves are generated
  // (generated/mcp-tools.ts); a failure to load answers every /mcp request.
  let loading: Promise<McpRuntime> | undefined;
  const load = () => (loading ??= loadMcpRuntime());
  setTimeout(() => void load().catch(() => {}), 250).unref();
  const info = { name: 'openai-relay', title: SPEC_INFO.title, version: SPEC_INFO.version };
  const { config } = services;
  // Streamable HTTP: a request from a browser origin the relay does not serve is refused (403), so a
  // page whose DNS name was rebound to the relay's address cannot use it. Allowed: CORS_ORIGINS, the
  // relay's public origin, and the relay's own loopback origin (a rebound name is never a loopback one).
  const cors = corsPolicy(config.corsOrigins);
  const ownOrigin = config.publicBaseUrl?.origin;
  const originAllowed = (origin: string, host: string | undefined) =>
    origin === ownOrigin || cors.answerHeaders(origin) !== undefined || (host !== undefined && origin === `http://${host}` && isLoopbackHost(new URL(origin).hostname));

  app.post('/mcp', async (c) => {
    const { incoming } = c.env;
    c.set('operation', 'mcp:other');
    const origin = c.req.header('origin');
    if (origin !== undefined && !originAllowed(origin, c.req.header('host'))) {
      throw new RelayError(403, `Requests from the web origin ${origin.slice(0, 100)} are not allowed on /mcp; the relay's operator can add it to CORS_ORIGINS.`, { code: 'origin_not_allowed' });
    }
    const limits = { cap: config.maxProxyEnvelopeBytes, timeoutMs: config.requestBodyTimeoutMs };
    const message = await readJsonBody(c.env, limits, 'MCP message', 'a JSON-RPC message');
    // Limits count HTTP requests: a JSON-RPC batch may carry notifications, but at most one request.
    if (Array.isArray(message) && message.filter((m) => isObj(m) && 'method' in m && 'id' in m).length > 1) {
      throw new RelayError(400, 'Send one JSON-RPC request per HTTP request (a batch may hold at most one request).', { code: 'batch_not_supported' });
    }

    const { tools, createMcpServer, sdk, invalidParamsAnswer } = await load();
    const misfit = invalidParamsAnswer(message);
    if (misfit) return c.json(misfit, 200, { 'x-request-id': c.get('requestId') });
    // The request is recorded under what it did (a tool's name, or the MCP method), with the usage of the
    // upstream calls its tool made.
    c.set('operation', mcpOperation(message, tools.byName));
    const account = createUsageAccount();
    c.set('usage', account);
    const server = createMcpServer(tools, actionDeps(services, account), { baseUrl: actionServerUrl(config.publicBaseUrl, incoming.headers), signal: c.req.raw.signal }, info);
    // The body is already read and parsed; the SDK looks only at the headers (Accept, protocol version, Mcp-*).
    const request = c.req.raw;
    let response: Response;
    if (await sdk.isLegacyRequest(request, message)) {
      const transport = new sdk.WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      await server.connect(transport);
      try {
        response = await transport.handleRequest(request, { parsedBody: message });
      } finally {
        await server.close();
      }
    } else {
      response = await sdk.createMcpHandler(() => server, { legacy: 'reject', responseMode: 'auto' }).fetch(request, { parsedBody: message });
    }
    response.headers.set('x-request-id', c.get('requestId'));
    return response;
  });

  app.all('/mcp', (c) => {
    c.set('operation', 'mcp:other');
    throw new RelayError(
      405,
      `This MCP server is stateless: send JSON-RPC messages with POST /mcp (${c.req.method} opens no event stream and ends no session).`,
      { code: 'method_not_allowed', headers: { allow: 'POST' } },
    );
  });
}

type McpRuntime = Awaited<ReturnType<typeof loadMcpRuntime>>;

async function loadMcpRuntime() {
  const [{ createMcpServer, createMcpTools }, sdk, { invalidParamsAnswer }] = await Promise.all([
    import('../mcp/server.ts'),
    import('@modelcontextprotocol/server'),
    import('../mcp/params.ts'),
  ]);
  return { tools: createMcpTools(), createMcpServer, sdk, invalidParamsAnswer };
}

/** MCP methods a record may name; anything else is recorded as `mcp:other` (metric labels stay bounded). */
const MCP_METHODS = new Set(['initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'prompts/list', 'notifications/initialized', 'server/discover']);

/** The operation an MCP request is recorded under: the tool a `tools/call` names, else `mcp:<method>`. */
export function mcpOperation(message: unknown, tools: ReadonlyMap<string, unknown>): string {
  const request = (Array.isArray(message) ? message.find((m) => isObj(m) && 'id' in m) ?? message[0] : message) as { method?: unknown; params?: { name?: unknown } } | undefined;
  const method = isObj(request) && typeof request.method === 'string' ? request.method : undefined;
  if (method === 'tools/call') {
    const name = request?.params?.name;
    return typeof name === 'string' && tools.has(name) ? name : 'mcp:tools/call';
  }
  return method !== undefined && MCP_METHODS.has(method) ? `mcp:${method}` : 'mcp:other';
}
