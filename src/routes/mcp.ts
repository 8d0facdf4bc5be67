import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../core/env.ts';
import { SPEC_INFO } from '../../generated/documents.ts';
import { actionDeps, type ActionServices } from '../actions/context.ts';
import { RelayError } from '../core/errors.ts';
import { isObj } from '../core/json.ts';
import { readJsonBody } from '../core/read-body.ts';
import { actionServerUrl } from '../http/server-url.ts';
import { createUsageAccount } from '../upstream/usage-account.ts';

/**
 * POST /mcp: the action operations as MCP tools, over Streamable HTTP — the successor of GPT Actions
 * for ChatGPT (developer mode / connectors), Claude, Codex and other MCP clients.
 *
 * Stateless: every POST gets a fresh MCP server and transport (no session id, no server-to-client
 * stream), answered as one JSON body. So GET (the optional server-sent event stream) and DELETE (ending
 * a session) answer 405, as the Streamable HTTP spec allows.
 *
 * /mcp is not a public path: the relay-auth middleware has already checked the relay key, the per-key
 * request limits and the in-flight cap before this route runs, exactly as for /v1/actions/*, and the
 * app's request record (log line, metrics, ledger row under the key's label) is written for it too:
 * the answer goes back through Hono, not around it.
 *
 * OAuth, later (ChatGPT connectors want OAuth or no auth; a static bearer key works for Claude, Codex,
 * the Inspector and ChatGPT developer mode clients that can send a header):
 *  - serve protected-resource metadata (RFC 9728) at /.well-known/oauth-protected-resource (public path):
 *    `{resource: "<base>/mcp", authorization_servers: ["<issuer>"], scopes_supported: [...]}`;
 *  - on a missing or bad token answer 401 with
 *    `WWW-Authenticate: Bearer resource_metadata="<base>/.well-known/oauth-protected-resource"`
 *    (today relay-auth says `Bearer realm="openai-relay"`), so clients can discover the issuer;
 *  - validate the access token (JWT signature against the issuer's JWKS, `iss`, `exp`, and `aud` equal to
 *    this resource — RFC 8707 — or token introspection) in relay-auth, in place of the relay-key lookup,
 *    for /mcp only (the relay keys keep working everywhere else);
 *  - map the token's subject (or a client/group claim) to a key label, so per-key limits, the in-flight
 *    cap and the usage ledger stay keyed exactly as they are for relay keys;
 *  - never pass the token upstream (the OpenAI key stays the only upstream credential, as now).
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

  app.post('/mcp', async (c) => {
    const { incoming } = c.env;
    c.set('operation', 'mcp:other');
    const limits = { cap: config.maxProxyEnvelopeBytes, timeoutMs: config.requestBodyTimeoutMs };
    const message = await readJsonBody(c.env, limits, 'MCP message', 'a JSON-RPC message');
    // Limits count HTTP requests: a JSON-RPC batch may carry notifications, but at most one request.
    if (Array.isArray(message) && message.filter((m) => isObj(m) && 'method' in m && 'id' in m).length > 1) {
      throw new RelayError(400, 'Send one JSON-RPC request per HTTP request (a batch may hold at most one request).', { code: 'batch_not_supported' });
    }

    const { tools, createMcpServer, Transport, invalidParamsAnswer } = await load();
    const misfit = invalidParamsAnswer(message);
    if (misfit) return c.json(misfit, 200, { 'x-request-id': c.get('requestId') });
    // The request is recorded under what it did (a tool's name, or the MCP method), with the usage of the
    // upstream calls its tool made.
    c.set('operation', mcpOperation(message, tools.byName));
    const account = createUsageAccount();
    c.set('usage', account);
    const transport = new Transport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = createMcpServer(tools, actionDeps(services, account), { baseUrl: actionServerUrl(config.publicBaseUrl, incoming.headers), signal: c.req.raw.signal }, info);
    await server.connect(transport);
    try {
      // The body is already read and parsed; the transport only looks at the headers (Accept, protocol version).
      const response = await transport.handleRequest(c.req.raw, { parsedBody: message });
      response.headers.set('x-request-id', c.get('requestId'));
      return response;
    } finally {
      await server.close();
    }
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
  const [{ createMcpServer, createMcpTools }, { WebStandardStreamableHTTPServerTransport }, { invalidParamsAnswer }] = await Promise.all([
    import('../mcp/server.ts'),
    import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
    import('../mcp/params.ts'),
  ]);
  return { tools: createMcpTools(), createMcpServer, Transport: WebStandardStreamableHTTPServerTransport, invalidParamsAnswer };
}

/** MCP methods a record may name; anything else is recorded as `mcp:other` (metric labels stay bounded). */
const MCP_METHODS = new Set(['initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'prompts/list', 'notifications/initialized']);

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
