import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../app.ts';
import { actionServerUrl, isObj } from '../actions/action-schema.ts';
import type { ActionDeps } from '../actions/context.ts';
import { isLoopbackHost } from '../auth/oauth/redirect-uris.ts';
import { corsPolicy } from '../core/cors.ts';
import { RelayError } from '../core/errors.ts';
import { readJsonBody } from '../core/read-body.ts';

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
export function registerMcpRoutes(app: OpenAPIHono<RelayEnv>, deps: ActionDeps, contract: object): void {
  // The MCP SDK is a large module tree: it loads in the background once the relay is up (and at the latest
  // on the first /mcp request), so it never delays start-up. Building the tools checks that every spec
  // action has a handler and that the route table is fresh; a failure answers every /mcp request.
  let loading: Promise<McpRuntime> | undefined;
  const load = () => (loading ??= loadMcpRuntime(contract));
  setTimeout(() => void load().catch(() => {}), 250).unref();
  const docInfo = isObj((contract as { info?: unknown }).info) ? (contract as { info: Record<string, unknown> }).info : {};
  const info = {
    name: 'openai-relay',
    title: typeof docInfo.title === 'string' ? docInfo.title : 'OpenAI Relay',
    version: typeof docInfo.version === 'string' ? docInfo.version : '1.0.0',
  };
  const { config } = deps;
  // Streamable HTTP: a request from a browser origin the relay does not serve is refused (403), so a
  // page whose DNS name was rebound to the relay's address cannot use it. Allowed: CORS_ORIGINS, the
  // relay's public origin, and the relay's own loopback origin (a rebound name is never a loopback one).
  const cors = corsPolicy(config.corsOrigins);
  const ownOrigin = config.publicBaseUrl?.origin;
  const originAllowed = (origin: string, host: string | undefined) =>
    origin === ownOrigin || cors.answerHeaders(origin) !== undefined || (host !== undefined && origin === `http://${host}` && isLoopbackHost(new URL(origin).hostname));

  app.post('/mcp', async (c) => {
    const { incoming } = c.env;
    const origin = c.req.header('origin');
    if (origin !== undefined && !originAllowed(origin, c.req.header('host'))) {
      throw new RelayError(403, `Requests from the web origin ${origin.slice(0, 100)} are not allowed on /mcp; the relay's operator can add it to CORS_ORIGINS.`, { code: 'origin_not_allowed' });
    }
    const message = await readJsonBody(incoming, config.maxProxyEnvelopeBytes, 'MCP message', 'a JSON-RPC message');
    // Limits count HTTP requests: a JSON-RPC batch may carry notifications, but at most one request.
    if (Array.isArray(message) && message.filter((m) => isObj(m) && 'method' in m && 'id' in m).length > 1) {
      throw new RelayError(400, 'Send one JSON-RPC request per HTTP request (a batch may hold at most one request).', { code: 'batch_not_supported' });
    }

    const { tools, createMcpServer, sdk } = await load();
    const server = createMcpServer(tools, deps, { baseUrl: actionServerUrl(config.publicBaseUrl, incoming.headers), signal: c.req.raw.signal }, info);
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
    throw new RelayError(
      405,
      `This MCP server is stateless: send JSON-RPC messages with POST /mcp (${c.req.method} opens no event stream and ends no session).`,
      { code: 'method_not_allowed', headers: { allow: 'POST' } },
    );
  });
}

type McpRuntime = Awaited<ReturnType<typeof loadMcpRuntime>>;

async function loadMcpRuntime(contract: object) {
  const [{ createMcpServer, createMcpTools }, sdk] = await Promise.all([import('../mcp/server.ts'), import('@modelcontextprotocol/server')]);
  return { tools: createMcpTools(contract), createMcpServer, sdk };
}
