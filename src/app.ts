import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { OpenAPIHono } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { matchOperation, methodsForPath } from '../generated/matcher.ts';
import { matchWebSocket } from '../generated/websockets.ts';
import type { RelayConfig } from './config.ts';
import { corsPolicy } from './core/cors.ts';
import type { RelayEnv } from './core/env.ts';
import { errorResponse, RelayError } from './core/errors.ts';
import type { Forwarder } from './upstream/forward/index.ts';
import type { Logger } from './core/logger.ts';
import type { Gate } from './core/gate.ts';
import { createHostGuard, hostGuardApplies, hostGuardChecksOrigin } from './core/host-guard.ts';
import { relayAuth } from './core/relay-auth.ts';
import { nextRequestId } from './core/request-id.ts';
import { refuseMalformedRequest } from './core/request-guard.ts';
import type { OAuth } from './auth/oauth/index.ts';
import { MCP_PATH } from './auth/oauth/metadata.ts';
import type { Ops } from './ops/index.ts';
import { ADMIN_PATHS, registerAdminRoutes } from './routes/admin.ts';
import { isKeysPath, registerKeyRoutes } from './routes/keys.ts';
import { isAdminPagePath, registerAdminPage } from './routes/admin-page.ts';
import type { RelayKeys } from './auth/managed-keys/index.ts';
import type { ActionServices } from './actions/context.ts';
import { BLOB_ROUTE_PREFIX } from './actions/blob-links.ts';
import { registerActionRoutes } from './routes/actions.ts';
import { registerMcpRoutes } from './routes/mcp.ts';
import { registerOAuthRoutes } from './routes/oauth.ts';
import { registerOAuthAuthorizeRoutes } from './routes/oauth-authorize.ts';
import { registerBlobRoutes } from './routes/blobs.ts';
import { DOCUMENT_PATHS, registerDocumentRoutes } from './routes/documents.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerOpenAIRoutes } from './routes/openai.ts';
import { registerProxyRoute } from './routes/proxy.ts';
import { registerRetiredRoutes } from './routes/retired.ts';

/** Paths anyone may call without a relay key (they reveal nothing secret). */
const PUBLIC_PATHS = new Set(['/health', '/v1/health', ...DOCUMENT_PATHS]);
/**
 * Signed blob links carry their own proof (an HMAC), checked by the blob route: ChatGPT fetches them keyless.
 * OAuth discovery and endpoints are how a client gets a credential, so they need none (an unknown
 * /.well-known/ path is then a plain 404). The admin page checks its own sign-in session.
 */
const isPublicPath = (path: string) =>
  PUBLIC_PATHS.has(path) || path.startsWith(BLOB_ROUTE_PREFIX) || path.startsWith('/.well-known/') || path.startsWith('/oauth/') || isAdminPagePath(path);

/** HEAD is GET without the body, answered where the relay itself answers GET (never upstream). */
const answersHead = (path: string) => isPublicPath(path) || ADMIN_PATHS.has(path);

export interface AppDeps {
  forwarder: Forwarder;
  ops: Ops;
  gate: Gate;
  logger: Logger;
  actions: ActionServices;
  /** The OAuth authorization server for /mcp; undefined when it is off. */
  oauth?: OAuth;
  /** Relay keys and, with RELAY_ADMIN_KEY, their admin operations. */
  keys?: RelayKeys;
}

export function createApp(config: RelayConfig, deps: AppDeps) {
  const app = new OpenAPIHono<RelayEnv>({
    // Requests the generated zod schemas refuse get OpenAI's error shape, naming the offending field.
    defaultHook: (result, c) => {
      if (result.success) return;
      const issue = result.error.issues[0];
      const param = issue.path.join('.') || undefined;
      return errorResponse(
        new RelayError(400, `Invalid request${param ? ` at ${param}` : ''}: ${issue.message}.`, { code: 'invalid_request', param }),
        c.get('requestId'),
      );
    },
  });
  const cors = corsPolicy(config.corsOrigins);
  const hostGuard = createHostGuard(config);

  // Request id and CORS first; preflights are answered here, before auth (browsers send no key on them).
  app.use(async (c, next) => {
    const started = performance.now();
    const startedAt = Date.now();
    c.set('requestId', nextRequestId());
    const { incoming } = c.env;
    const refusal =
      refuseMalformedRequest(incoming, config.maxUrlBytes, answersHead) ?? (hostGuard && hostGuardApplies(c.req.path) ? hostGuard.refuse(incoming.headers, hostGuardChecksOrigin(c.req.path)) : undefined);
    const origin = incoming.headers.origin;
    if (refusal) {
      c.res = errorResponse(refusal, c.get('requestId'));
    } else if (origin !== undefined && c.req.method === 'OPTIONS') {
      c.res = new Response(null, { status: 204, headers: cors.preflightHeaders(origin) ?? {} });
    } else {
      if (origin !== undefined) c.set('corsHeaders', cors.answerHeaders(origin));
      await next();
    }
    // Answers the relay made itself (the forwarding core records its own): CORS headers and a record.
    // Answered on the socket already: by identity, and by the socket (should the marker be another object).
    if (c.res !== RESPONSE_ALREADY_SENT && !c.env.outgoing.headersSent) {
      const corsHeaders = c.get('corsHeaders');
      if (corsHeaders) for (const [name, value] of Object.entries(corsHeaders)) c.res.headers.set(name, value);
      const ms = Math.round(performance.now() - started);
      if (isPublicPath(c.req.path)) {
        deps.logger.debug({ reqId: c.get('requestId'), path: c.req.path, status: c.res.status, ms }, 'request');
      } else {
        const routePath = c.req.routePath;
        // An action or MCP call: the upstream calls it made, summed (a background poll may still be counting).
        const account = c.get('usage');
        if (account) await account.settled();
        deps.ops.record({
          requestId: c.get('requestId'),
          operation:
            c.get('operation') ??
            // The operation the request was for, even when it was answered before routing (401, 429).
            matchOperation(c.req.method, c.req.path)?.operation.operationId ??
            (routePath && routePath !== '/*' ? routePath : 'unmatched'),
          keyLabel: c.get('keyLabel') ?? 'anonymous',
          status: c.res.status,
          startedAt,
          ms,
          upstreamMs: account?.upstreamMs,
          upstreamRequestId: account?.upstreamRequestId,
          usage: account?.usage,
          attempts: account?.attempts,
        });
      }
    }
  });

  registerHealthRoutes(app);
  registerDocumentRoutes(app, config);
  registerBlobRoutes(app, deps.actions.blobs, deps.actions.links);
  if (deps.oauth) {
    registerOAuthRoutes(app, deps.oauth);
    registerOAuthAuthorizeRoutes(app, deps.oauth, deps.logger);
  }

  registerAdminPage(app, { config, ops: deps.ops, admin: deps.keys?.admin, logger: deps.logger });

  app.use(relayAuth(deps.gate, { isPublic: isPublicPath, isAdmin: (path) => ADMIN_PATHS.has(path) || isKeysPath(path), isMcp: (path) => path === MCP_PATH }));
  registerAdminRoutes(app, deps.ops, { metricsOnMainPort: config.ops.metricsPort === undefined });
  if (deps.keys?.admin) registerKeyRoutes(app, deps.keys.admin);

  registerRetiredRoutes(app);
  registerProxyRoute(app, config, deps.forwarder);
  registerActionRoutes(app, deps.actions);
  registerMcpRoutes(app, deps.actions);
  registerOpenAIRoutes(app, deps.forwarder);

  app.notFound((c) => {
    const methods = methodsForPath(c.req.path);
    const err = c.req.method === 'GET' && matchWebSocket(c.req.path)
      ? new RelayError(426, `${c.req.path} is a WebSocket endpoint: open it with Upgrade: websocket.`, { code: 'websocket_required', headers: { upgrade: 'websocket' } })
      : methods.length
      ? new RelayError(405, `Method ${c.req.method} is not allowed on ${c.req.path}; use ${methods.join(' or ')}.`, {
          code: 'method_not_allowed',
          headers: { allow: methods.join(', ') },
        })
      : new RelayError(404, `Invalid URL (${c.req.method} ${c.req.path}): this relay serves no such operation.`, { code: 'unknown_url' });
    return errorResponse(err, c.get('requestId'));
  });

  app.onError((err, c) => {
    // The forwarding core may already have answered (an error after its headers went out): the caller's
    // answer is what it is; end it rather than write a second one.
    if (c.env.outgoing.headersSent) {
      deps.logger.warn({ reqId: c.get('requestId'), err: { message: err.message } }, 'error after the answer started');
      if (!c.env.outgoing.writableEnded) c.env.outgoing.destroy();
      return RESPONSE_ALREADY_SENT;
    }
    if (err instanceof RelayError) return errorResponse(err, c.get('requestId'));
    // A refusal from Hono's own middleware (a 4xx it decided): its status, in OpenAI's shape.
    if (err instanceof HTTPException && err.status < 500) {
      return errorResponse(new RelayError(err.status, `${err.message || 'The request was refused'}.`, { code: 'invalid_request' }), c.get('requestId'));
    }
    deps.logger.error({ reqId: c.get('requestId'), err: { message: err.message, stack: err.stack } }, 'unhandled error');
    return errorResponse(new RelayError(500, 'The relay failed to handle this request.', { code: 'relay_error' }), c.get('requestId'));
  });

  return app;
}

export type RelayApp = ReturnType<typeof createApp>;
