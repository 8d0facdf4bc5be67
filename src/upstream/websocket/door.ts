import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { matchWebSocket, type WebSocketRoute } from '../../../generated/websockets.ts';
import type { RelayConfig } from '../../config.ts';
import { corsPolicy } from '../../core/cors.ts';
import { RelayError } from '../../core/errors.ts';
import type { Gate } from '../../core/gate.ts';
import type { Logger } from '../../core/logger.ts';
import { canonicalUpstreamPath } from '../../core/path-params.ts';
import { refuseMalformedRequest } from '../../core/request-guard.ts';
import { nextRequestId } from '../../core/request-id.ts';
import type { Ops } from '../../ops/index.ts';
import type { UpstreamPolicy } from '../policy.ts';
import { modelName } from '../usage-tap/read.ts';
import { bridge, type Bridge } from './bridge.ts';
import { dialOpenAI, type Dial, type Dialed } from './dial.ts';
import { handshakeProblem, offeredProtocols, refuseUpgrade, writeUpgradeAnswer } from './handshake.ts';
import { createWebSocketMetrics } from './metrics.ts';
import { createSocketUsage } from './usage.ts';

/**
 * The relay's door for WebSockets (node's `upgrade` event): the spec's WebSocket endpoints
 * (generated/websockets.ts), each relayed to the same path at OpenAI under the upstream policy.
 *
 * An upgrade is checked like any request — the request guard, the route, the handshake, the browser's
 * Origin against CORS_ORIGINS, the relay key (headers, or a browser's `openai-insecure-api-key.` subprotocol),
 * the key's limits and an in-flight slot, held while the socket is open — and refused with an HTTP answer in
 * OpenAI's error shape before anything is opened upstream. Only then is OpenAI dialed; its refusal reaches
 * the caller as its status and body, and only its acceptance completes the caller's handshake.
 *
 * Records: one per socket when it closes (status 101, its lifetime, the close code), one per response whose
 * usage a server event reports (status 200, under the same request id), one per refused upgrade.
 */
export interface WebSocketDoor {
  /** node's `upgrade` listener. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Shutdown: new upgrades are refused (503); open sockets may finish within `graceMs`, then both sides get
   * 1001. Resolves once every socket is closed and recorded.
   */
  close(graceMs: number): Promise<void>;
}

export interface WebSocketDoorDeps {
  gate: Gate;
  ops: Ops;
  policy: UpstreamPolicy;
  logger: Logger;
}

interface OpenSocket {
  bridge: Bridge;
  caller: WebSocket;
  upstream: WebSocket;
  /** When the idle sweep last saw it active. */
  activeAt: number;
}

/** How long a closing socket may take to finish its close handshakes on shutdown before it is cut. */
const CLOSE_WAIT_MS = 5_000;

export function createWebSocketDoor(config: RelayConfig, deps: WebSocketDoorDeps): WebSocketDoor {
  const { gate, ops, policy, logger } = deps;
  const { maxMessageBytes, idleTimeoutMs } = config.webSockets;
  const cors = corsPolicy(config.corsOrigins);
  const metrics = createWebSocketMetrics(ops.metrics.registry);
  const open = new Set<OpenSocket>();
  const dialing = new Set<Dial>();
  let closing = false;
  let allClosed: (() => void) | undefined;

  // What the caller's 101 carries, set just before ws completes it (synchronously) for that request.
  const accepted = new WeakMap<IncomingMessage, { protocol: string; headers: OutgoingHttpHeaders }>();
  const server = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: maxMessageBytes,
    autoPong: false,
    clientTracking: false,
    // OpenAI chose the subprotocol; the caller gets that one (ws would otherwise echo the first offered,
    // which may be the one carrying the key).
    handleProtocols: (_offered, req) => accepted.get(req)?.protocol || false,
  });
  server.on('headers', (lines: string[], req: IncomingMessage) => {
    for (const [name, value] of Object.entries(accepted.get(req)?.headers ?? {})) {
      for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) lines.push(`${name}: ${v}`);
    }
  });

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const s of open) {
      if (s.bridge.active) {
        s.bridge.active = false;
        s.activeAt = now;
      } else if (now - s.activeAt >= idleTimeoutMs) {
        s.bridge.close(1000, `Idle for ${Math.round(idleTimeoutMs / 1000)} s: closed by the relay.`);
      }
    }
  }, Math.min(Math.max(idleTimeoutMs / 4, 50), 10_000));
  sweep.unref();

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now();
    const startedAt = Date.now();
    const requestId = nextRequestId();
    let operation = 'unmatched';
    let keyLabel = 'anonymous';
    const ms = () => Math.round(performance.now() - started);
    const refuse = (err: RelayError) => {
      refuseUpgrade(socket, err, requestId);
      ops.record({ requestId, operation, keyLabel, status: err.status, startedAt, ms: ms() });
    };
    socket.on('error', () => {});

    if (closing) return refuse(new RelayError(503, 'The relay is shutting down; connect again.', { code: 'shutting_down' }));
    const malformed = refuseMalformedRequest(req, config.maxUrlBytes);
    if (malformed) return refuse(malformed);
    const url = req.url ?? '';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const search = queryStart === -1 ? '' : url.slice(queryStart);
    const found = matchWebSocket(path);
    if (!found) return refuse(new RelayError(404, `No WebSocket endpoint at ${path}: this relay serves none there.`, { code: 'unknown_url' }));
    const { route } = found;
    operation = route.operationId;
    const notHandshake = handshakeProblem(req.method, req.headers);
    if (notHandshake) return refuse(notHandshake);
    const origin = req.headers.origin;
    if (origin !== undefined && cors.answerHeaders(origin) === undefined) {
      return refuse(new RelayError(403, `Origin ${origin} may not open WebSockets on this relay (see CORS_ORIGINS).`, { code: 'origin_not_allowed' }));
    }
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    if (!offered) return refuse(new RelayError(400, 'Sec-WebSocket-Protocol must be a list of distinct subprotocol names.', { code: 'invalid_subprotocol' }));
    // A browser's key travels as a subprotocol; a key in the headers wins.
    const hasHeaderKey = req.headers.authorization !== undefined || req.headers['x-relay-key'] !== undefined;
    const who = gate.identify(hasHeaderKey || offered.key === undefined ? req.headers : { 'x-relay-key': offered.key });
    if ('error' in who) return refuse(who.error);
    keyLabel = who.label;
    let upstreamPath: string;
    try {
      upstreamPath = canonicalUpstreamPath(route.path, decodedParams(found.params));
    } catch (err) {
      return refuse(err instanceof RelayError ? err : new RelayError(400, 'A path parameter is not validly percent-encoded.', { code: 'invalid_path_parameter' }));
    }
    if (gate.limited) {
      const over = await gate.admit(keyLabel);
      if (over) return refuse(over);
    }
    if (socket.destroyed) return ops.record({ requestId, operation, keyLabel, status: 499, startedAt, ms: ms(), note: 'client_closed' });
    const full = gate.enter(keyLabel);
    if (full) return refuse(full);

    let slot = true;
    const leave = () => {
      if (slot) gate.leave(keyLabel);
      slot = false;
    };
    const target = policy.upgradeTarget(upstreamPath, search, req.headers);
    const dial = dialOpenAI({
      url: target.url,
      headers: target.headers,
      protocols: offered.forwarded,
      maxPayload: maxMessageBytes,
      handshakeTimeoutMs: config.timeouts[route.timeout],
    });
    dialing.add(dial);
    const callerLeft = () => dial.abort();
    socket.once('close', callerLeft);
    const dialed = await dial.result;
    dialing.delete(dial);
    socket.off('close', callerLeft);

    if (dialed.kind !== 'open') {
      leave();
      if (socket.destroyed) return ops.record({ requestId, operation, keyLabel, status: 499, startedAt, ms: ms(), note: 'client_closed' });
      if (closing) return refuse(new RelayError(503, 'The relay is shutting down; connect again.', { code: 'shutting_down' }));
      return answerNotOpened(dialed, route, requestId, socket, (status, note) => ops.record({ requestId, operation, keyLabel, status, startedAt, ms: ms(), note }));
    }
    const upstream = dialed.socket;
    const upstreamRequestId = typeof dialed.headers['x-request-id'] === 'string' ? dialed.headers['x-request-id'] : undefined;
    if (closing || socket.destroyed || !socket.writable) {
      upstream.terminate();
      leave();
      if (closing && !socket.destroyed) return refuse(new RelayError(503, 'The relay is shutting down; connect again.', { code: 'shutting_down' }));
      return ops.record({ requestId, operation, keyLabel, status: 499, startedAt, ms: ms(), note: 'client_closed' });
    }

    const answerHeaders = policy.answerHeaders(dialed.headers);
    for (const name of Object.keys(answerHeaders)) if (name.startsWith('content-')) delete answerHeaders[name];
    accepted.set(req, { protocol: upstream.protocol, headers: answerHeaders });
    let caller: WebSocket | undefined;
    server.handleUpgrade(req, socket, head, (ws) => (caller = ws));
    if (!caller) {
      // ws refused the handshake itself (and answered it): nothing to relay.
      upstream.terminate();
      leave();
      return ops.record({ requestId, operation, keyLabel, status: 400, startedAt, ms: ms(), upstreamRequestId });
    }

    const tally = metrics.opened(operation);
    const queryModel = route.modelQuery ? modelName(new URLSearchParams(search).get(route.modelQuery)) : undefined;
    const usage = policy.wantsUsage
      ? createSocketUsage(queryModel, (u, responseMs) =>
          ops.record({ requestId, operation, keyLabel, status: 200, startedAt: Date.now() - responseMs, ms: responseMs, usage: u, upstreamRequestId }),
        )
      : undefined;
    const entry: OpenSocket = {
      caller,
      upstream,
      activeAt: Date.now(),
      bridge: bridge(caller, upstream, {
        message(direction, data, isBinary) {
          tally.message(direction, data.length);
          if (usage && direction === 'to_caller' && !isBinary) usage.read(data);
        },
        closed(code) {
          open.delete(entry);
          tally.closed();
          leave();
          ops.record({ requestId, operation, keyLabel, status: 101, startedAt, ms: ms(), upstreamRequestId, note: `closed ${code}` });
          if (open.size === 0) allClosed?.();
        },
      }),
    };
    open.add(entry);
  }

  function answerNotOpened(dialed: Exclude<Dialed, { kind: 'open' }>, route: WebSocketRoute, requestId: string, socket: Duplex, record: (status: number, note?: string) => void): void {
    const operation = route.operationId;
    if (dialed.kind === 'refused') {
      if (dialed.status === 401) {
        const err = policy.serverKeyRefused(operation, requestId);
        refuseUpgrade(socket, err, requestId);
        return record(err.status, 'upstream_auth');
      }
      if (dialed.status < 400) {
        const err = new RelayError(502, `OpenAI answered the WebSocket upgrade with ${dialed.status} instead of opening it.`, { code: 'upstream_protocol' });
        refuseUpgrade(socket, err, requestId);
        return record(err.status, 'protocol');
      }
      // OpenAI's own refusal (a bad model, its rate limit): its status and error body, the server key redacted.
      const body = Buffer.from(policy.redact(dialed.body.toString('utf8')));
      writeUpgradeAnswer(socket, dialed.status, policy.answerHeaders(dialed.headers), body);
      return record(dialed.status);
    }
    policy.upstreamError(operation, dialed.reason);
    logger.warn({ reqId: requestId, op: operation, reason: dialed.reason, err: { message: policy.redact(dialed.message) } }, 'WebSocket to OpenAI not opened');
    const err =
      dialed.reason === 'timeout'
        ? new RelayError(504, `OpenAI did not accept the WebSocket within ${config.timeouts[route.timeout]} ms.`, { code: 'upstream_timeout' })
        : dialed.reason === 'protocol'
          ? new RelayError(502, "OpenAI's answer to the WebSocket upgrade was not a valid handshake.", { code: 'upstream_protocol' })
          : new RelayError(502, 'Could not open a WebSocket to OpenAI.', { code: 'upstream_unreachable' });
    refuseUpgrade(socket, err, requestId);
    record(err.status);
  }

  return {
    upgrade(req, socket, head) {
      upgrade(req, socket, head).catch((err: unknown) => {
        logger.error({ err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error on a WebSocket upgrade');
        socket.destroy();
      });
    },
    async close(graceMs) {
      closing = true;
      clearInterval(sweep);
      for (const dial of dialing) dial.abort();
      const settled = () => new Promise<void>((resolve) => (open.size === 0 ? resolve() : (allClosed = resolve)));
      await within(settled(), graceMs);
      if (open.size === 0) return;
      logger.warn({ sockets: open.size }, 'grace period over: closing WebSockets (1001)');
      for (const s of open) s.bridge.close(1001, 'The relay is shutting down.');
      await within(settled(), CLOSE_WAIT_MS);
      for (const s of open) {
        s.caller.terminate();
        s.upstream.terminate();
      }
      await settled();
    },
  };
}

/** Percent-decoded path parameters (throws on bad encoding). */
function decodedParams(params: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in params) out[name] = decodeURIComponent(params[name]!);
  return out;
}

/** `promise`, or nothing once `ms` have passed. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
