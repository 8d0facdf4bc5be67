import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { createApp } from './app.ts';
import type { RelayConfig } from './config.ts';
import { errorResponse, RelayError } from './core/errors.ts';
import { defaultMaxConnections, guardConnections } from './core/connection-guard.ts';
import { markContinuePending } from './core/expect-continue.ts';
import { createPassThroughDoor } from './core/fast-path.ts';
import { createGate } from './core/gate.ts';
import { createBlobLinks } from './actions/blob-links.ts';
import type { ActionServices } from './actions/context.ts';
import { createFileRefFetcher } from './actions/file-fetch.ts';
import { openBlobStore } from './actions/open-blob-store.ts';
import { openRelayKeys, type RelayKeysOverrides } from './auth/managed-keys/index.ts';
import { createOAuth, type OAuthOverrides } from './auth/oauth/index.ts';
import { createOps, type Ops } from './ops/index.ts';
import type { Logger } from './core/logger.ts';
import { checkStorage, describeSetup } from './startup.ts';
import { createOpenAIClients } from './upstream/client.ts';
import { createForwarder } from './upstream/forward/index.ts';
import { createUpstreamPolicy } from './upstream/policy.ts';
import { createWebSocketDoor } from './upstream/websocket/door.ts';
import { configuredModels, listModelsUpstream, startModelCheck } from './ops/model-check.ts';

export interface RunningRelay {
  server: Server;
  /** `http://host:port` the relay listens on (loopback-friendly for tests). */
  url: string;
  /**
   * Stops accepting and writes the queued usage rows at once; lets in-flight requests finish (up to
   * SHUTDOWN_GRACE_MS) while the ledger keeps writing each second; then closes the rest, writes the last
   * rows and closes the stores. Idempotent.
   */
  shutdown(): Promise<void>;
  /** During shutdown (a second signal): stop waiting for in-flight requests; the last rows are still written. */
  endDrain(): void;
}

export interface RelayOverrides {
  /** DNS for openaiFileIdRefs hosts (tests answer with fixed public addresses instead of asking DNS). */
  resolveFileHost?: (hostname: string) => Promise<string[]>;
  /** OAuth for /mcp: DNS of client metadata documents, clock, Postgres schema (tests). */
  oauth?: OAuthOverrides;
  /**
   * Check the configured models against GET /v1/models at start-up and every MODEL_CHECK_HOURS
   * (src/main.ts turns it on; a relay a test starts makes no upstream call of its own unless asked).
   */
  checkModels?: boolean;
  /** Managed relay keys: Postgres schema, clock (tests). */
  keys?: RelayKeysOverrides;
}

export async function startRelay(config: RelayConfig, logger: Logger, overrides: RelayOverrides = {}): Promise<RunningRelay> {
  // Before anything opens: every local path the relay writes to, named in the refusal.
  checkStorage(config);
  const { actions: a } = config;
  // First: an unreachable S3 bucket stops start-up before any ledger or Redis connection is open.
  const blobs = await openBlobStore(a, logger);
  const ops = await createOps(config, logger);
  // Every call to OpenAI, forwarded or the relay's own, under one policy.
  const policy = createUpstreamPolicy(config, ops, logger);
  const forwarder = createForwarder(config, policy, ops);
  const clients = createOpenAIClients(policy);
  const models =
    overrides.checkModels && a.modelCheckMs > 0
      ? startModelCheck({
          models: configuredModels(a),
          listModels: listModelsUpstream(clients, ops.record),
          logger,
          registry: ops.metrics.registry,
          intervalMs: a.modelCheckMs,
        })
      : undefined;
  const actions: ActionServices = {
    config,
    clients,
    models,
    blobs,
    links: createBlobLinks({ secret: a.blobLinkSecret, ttlMs: a.blobTtlMs }),
    fetcher: createFileRefFetcher({
      allowedHosts: a.fileHosts,
      maxBytes: a.fileMaxBytes,
      timeoutMs: a.fileTimeoutMs,
      maxRedirects: a.fileMaxRedirects,
      resolve: overrides.resolveFileHost,
    }),
  };
  const keys = await openRelayKeys(config, logger, overrides.keys);
  const oauth = await createOAuth(config, logger, overrides.oauth, keys.directory);
  const gate = createGate(config, ops, oauth, keys.directory);
  const app = createApp(config, { forwarder, ops, gate, logger, actions, oauth, keys });
  const passThrough = createPassThroughDoor(config, { forwarder, gate, ops, logger });
  const webSockets = createWebSocketDoor(config, { gate, ops, policy, logger });
  const metricsServer = config.ops.metricsPort ? await serveMetrics(ops, config.host, config.ops.metricsPort) : undefined;
  return new Promise<RunningRelay>((resolve, reject) => {
    // Requests @hono/node-server itself refuses (a backslash in the path, a bad Host) still get the
    // relay's own error answer rather than an empty 400.
    const listener = getRequestListener(app.fetch, {
      errorHandler: () =>
        errorResponse(
          new RelayError(400, 'The request target or Host header is not valid for this relay.', { code: 'invalid_request_target' }),
          `req_relay_${randomUUID().replaceAll('-', '')}`,
        ),
    });
    // Node's 300 s whole-request timeout would cut long uploads; the forwarding core enforces its own
    // per-class deadlines. A request head must arrive within REQUEST_HEAD_TIMEOUT_MS (slowloris, idle
    // sockets), checked this often.
    const active = { count: 0 };
    const server = createServer({
      requestTimeout: 0,
      headersTimeout: config.requestHeadTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.requestHeadTimeoutMs / 4))),
      keepAliveTimeout: 65_000,
      maxHeaderSize: config.maxHeaderBytes,
      // Node would answer a missing Host with a bare 400; the adapter's error handler answers it in OpenAI's shape.
      requireHostHeader: false,
      // Only WebSocket upgrades go to the upgrade door; any other Upgrade (h2c) is served as plain HTTP/1.1.
      shouldUpgradeCallback: (req) => req.headers.upgrade?.toLowerCase() === 'websocket',
    });
    const connections = guardConnections(server, {
      max: config.maxConnections ?? defaultMaxConnections(),
      logger,
      onShed: ops.metrics.connectionShed,
    });
    ops.metrics.setOpenConnections(() => connections.open);
    // Plain pass-through calls take the short door to the forwarding core; everything else, the app.
    const handle = (incoming: IncomingMessage, outgoing: ServerResponse) => {
      // Every request counts for the drain on shutdown: forwarded ones, and actions or MCP calls that
      // may wait on OpenAI for tens of seconds.
      active.count++;
      const { socket } = incoming;
      connections.requestStarted(socket);
      outgoing.once('close', () => {
        active.count--;
        connections.requestEnded(socket);
      });
      if (!passThrough(incoming, outgoing)) void listener(incoming, outgoing);
    };
    server.on('request', handle);
    // `Expect: 100-continue`: no `100 Continue` up front; the relay sends it when it starts reading the
    // body, so a request it refuses (too large, no key, over a limit) gets its final answer instead.
    server.on('checkContinue', (incoming: IncomingMessage, outgoing: ServerResponse) => {
      markContinuePending(incoming);
      handle(incoming, outgoing);
    });
    server.on('upgrade', webSockets.upgrade);
    server.listen(config.port, config.host);
    answerMalformedRequests(server);
    server.once('error', reject);
    server.once('listening', () => {
      const { port } = server.address() as AddressInfo;
      const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      logger.info({ url, ...describeSetup(config) }, 'relay listening');
      let stopping: Promise<void> | undefined;
      const hurry = new AbortController();
      resolve({
        server,
        url,
        shutdown: () =>
          (stopping ??= (async () => {
            // Rows of requests already answered are written now, not after a drain a platform may cut
            // short (docker stop: 10 s); during the drain the ledger writes every second.
            const written = ops.flush();
            try {
              // WebSockets get the same grace, then 1001; the server closes once they are gone.
              await Promise.all([drain(server, active, config.shutdownGraceMs, logger, hurry.signal), webSockets.close(config.shutdownGraceMs, hurry.signal)]);
            } finally {
              models?.stop();
              forwarder.close();
              blobs.close();
              metricsServer?.close();
              await oauth?.close();
              await keys.close();
              await written;
              // Every finished request's row is queued by now: write them all, then close the stores.
              await ops.close();
            }
          })()),
        endDrain: () => hurry.abort(),
      });
    });
  });
}

/** Prometheus metrics on a port of their own (METRICS_PORT), for scrapers inside the private network. */
async function serveMetrics(ops: Ops, host: string, port: number): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    const { contentType, body } = await ops.metrics.render();
    res.writeHead(200, { 'content-type': contentType }).end(body);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}

/**
 * Requests node's HTTP parser rejects before any handler runs (oversized headers, unknown methods,
 * malformed framing) and CONNECT tunnels still get an honest status in OpenAI's error shape.
 */
function answerMalformedRequests(server: Server): void {
  const rawError = (status: number, reason: string, message: string, code: string, extra = '') => {
    const body = JSON.stringify(new RelayError(status, message, { code }).toJSON());
    return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`;
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const answer =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? rawError(431, 'Request Header Fields Too Large', "The request headers exceed this relay's limit.", 'headers_too_large')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? rawError(408, 'Request Timeout', 'The request headers took too long to arrive.', 'request_timeout')
          : rawError(400, 'Bad Request', 'The request is not valid HTTP/1.1 (bad framing, header or method).', 'bad_request');
    socket.end(answer);
  });
  server.on('connect', (_req, socket: Duplex) => {
    socket.end(rawError(405, 'Method Not Allowed', 'CONNECT is not supported by this relay.', 'method_not_allowed', 'Allow: GET, POST, DELETE\r\n'));
  });
}

async function drain(server: Server, active: { count: number }, graceMs: number, logger: Logger, hurry: AbortSignal): Promise<void> {
  logger.info({ inFlight: active.count, graceMs }, 'shutting down: draining in-flight requests');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const deadline = Date.now() + graceMs;
  while (active.count > 0 && Date.now() < deadline && !hurry.aborted) {
    await new Promise((r) => setTimeout(r, 50));
    server.closeIdleConnections();
  }
  if (active.count > 0) {
    logger.warn({ inFlight: active.count }, hurry.aborted ? 'drain ended early: closing remaining connections' : 'grace period over: closing remaining connections');
  }
  server.closeAllConnections();
  await closed;
  // A request cut above records its usage row (status 499) when its response closes, which may come
  // after the server's own close: wait for those (briefly), so the final ledger write includes them.
  const settled = Date.now() + 2000;
  while (active.count > 0 && Date.now() < settled) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setImmediate(r));
}
