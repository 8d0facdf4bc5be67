import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { WebSocketRoute } from '../../../generated/websockets.ts';
import type { RelayConfig } from '../../config.ts';
import { RelayError } from '../../core/errors.ts';
import type { Gate } from '../../core/gate.ts';
import type { Logger } from '../../core/logger.ts';
import { nextRequestId } from '../../core/request-id.ts';
import type { Ops } from '../../ops/index.ts';
import type { UpstreamPolicy } from '../policy.ts';
import { modelName } from '../usage-tap/read.ts';
import { createAdmission, type Admitted } from './admission.ts';
import { bridge, type Bridge } from './bridge.ts';
import { dialOpenAI, type Dial, type Dialed } from './dial.ts';
import { refuseUpgrade, writeUpgradeAnswer } from './handshake.ts';
import { createWebSocketMetrics } from './metrics.ts';
import { createSocketUsage } from './usage.ts';

/**
 * The relay's door for WebSockets (node's `upgrade` event): the spec's WebSocket endpoints
 * (generated/websockets.ts), each relayed to the same path at OpenAI under the upstream policy.
 *
 * An upgrade is admitted like any request (admission.ts: the request guard, the route, the handshake, a
 * browser's Origin, the relay key, the key's limits) and takes an in-flight slot, held while the socket is
 * open; a refusal is an HTTP answer in OpenAI's error shape, before anything is opened upstream. Only then
 * is OpenAI dialed; its refusal reaches the caller as its status and body, and only its acceptance
 * completes the caller's handshake.
 *
 * Records: one per socket when it closes (status 101, its lifetime, the close code), one per response whose
 * usage a server event reports (status 200, under the same request id), one per refused upgrade.
 */
export interface WebSocketDoor {
  /** node's `upgrade` listener. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Shutdown: new upgrades are refused (503); open sockets may finish within `graceMs` (or until `hurry`
   * aborts), then both sides get 1001. Resolves once every socket is closed and recorded.
   */
  close(graceMs: number, hurry?: AbortSignal): Promise<void>;
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

/** One upgrade request, from its arrival to its records. */
interface Attempt {
  readonly requestId: string;
  readonly startedAt: number;
  operation: string;
  keyLabel: string;
  ms(): number;
  record(status: number, extra?: { note?: string; upstreamRequestId?: string }): void;
  /** Answers the upgrade with `err` (and records it). */
  refuse(err: RelayError): void;
  /** Gives the in-flight slot back (once). */
  leave(): void;
}

/** How long a closing socket may take to finish its close handshakes on shutdown before it is cut. */
const CLOSE_WAIT_MS = 5_000;

export function createWebSocketDoor(config: RelayConfig, deps: WebSocketDoorDeps): WebSocketDoor {
  const { gate, ops, policy, logger } = deps;
  const { maxMessageBytes, idleTimeoutMs } = config.webSockets;
  const admit = createAdmission(config, gate);
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
    socket.on('error', () => {});
    const started = performance.now();
    const attempt: Attempt = {
      requestId: nextRequestId(),
      startedAt: Date.now(),
      operation: 'unmatched',
      keyLabel: 'anonymous',
      ms: () => Math.round(performance.now() - started),
      record(status, extra = {}) {
        ops.record({ requestId: this.requestId, operation: this.operation, keyLabel: this.keyLabel, status, startedAt: this.startedAt, ms: this.ms(), ...extra });
      },
      refuse(err) {
        refuseUpgrade(socket, err, this.requestId);
        this.record(err.status);
      },
      leave() {},
    };
    if (closing) return attempt.refuse(shuttingDown());
    const admitted = await admit(req);
    attempt.operation = 'error' in admitted ? admitted.operation : admitted.route.operationId;
    attempt.keyLabel = admitted.keyLabel;
    if ('error' in admitted) return attempt.refuse(admitted.error);
    if (socket.destroyed) return attempt.record(499, { note: 'client_closed' });
    const full = gate.enter(admitted.keyLabel);
    if (full) return attempt.refuse(full);
    let slot = true;
    attempt.leave = () => {
      if (slot) gate.leave(admitted.keyLabel);
      slot = false;
    };
    try {
      await connect(req, socket, head, admitted, attempt);
    } catch (err) {
      attempt.leave();
      throw err;
    }
  }

  /** Dials OpenAI for an admitted upgrade, then completes the caller's handshake and joins the two. */
  async function connect(req: IncomingMessage, socket: Duplex, head: Buffer, admitted: Admitted, attempt: Attempt): Promise<void> {
    const { route } = admitted;
    const target = policy.upgradeTarget(admitted.upstreamPath, admitted.search, req.headers);
    const dial = dialOpenAI({
      url: target.url,
      headers: target.headers,
      protocols: admitted.protocols,
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
      attempt.leave();
      if (socket.destroyed) return attempt.record(499, { note: 'client_closed' });
      if (closing) return attempt.refuse(shuttingDown());
      return answerNotOpened(dialed, route, socket, attempt);
    }
    const upstream = dialed.socket;
    const upstreamRequestId = typeof dialed.headers['x-request-id'] === 'string' ? dialed.headers['x-request-id'] : undefined;
    if (closing || socket.destroyed || !socket.writable) {
      upstream.terminate();
      attempt.leave();
      if (closing && !socket.destroyed) return attempt.refuse(shuttingDown());
      return attempt.record(499, { note: 'client_closed' });
    }

    const answerHeaders = policy.answerHeaders(dialed.headers);
    for (const name of Object.keys(answerHeaders)) if (name.startsWith('content-')) delete answerHeaders[name];
    accepted.set(req, { protocol: upstream.protocol, headers: answerHeaders });
    let caller: WebSocket | undefined;
    server.handleUpgrade(req, socket, head, (ws) => (caller = ws));
    if (!caller) {
      // ws refused the handshake itself (and answered it): nothing to relay.
      upstream.terminate();
      attempt.leave();
      return attempt.record(400, { upstreamRequestId });
    }

    const tally = metrics.opened(route.operationId);
    const queryModel = route.modelQuery ? modelName(new URLSearchParams(admitted.search).get(route.modelQuery)) : undefined;
    const usage = policy.wantsUsage
      ? createSocketUsage(queryModel, (u, ms) =>
          ops.record({ requestId: attempt.requestId, operation: route.operationId, keyLabel: admitted.keyLabel, status: 200, startedAt: Date.now() - ms, ms, usage: u, upstreamRequestId }),
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
          attempt.leave();
          attempt.record(101, { upstreamRequestId, note: `closed ${code}` });
          if (open.size === 0) allClosed?.();
        },
      }),
    };
    open.add(entry);
  }

  function answerNotOpened(dialed: Exclude<Dialed, { kind: 'open' }>, route: WebSocketRoute, socket: Duplex, attempt: Attempt): void {
    const operation = route.operationId;
    if (dialed.kind === 'refused') {
      if (dialed.status === 401) return attempt.refuse(policy.serverKeyRefused(operation, attempt.requestId));
      if (dialed.status < 400) {
        return attempt.refuse(new RelayError(502, `OpenAI answered the WebSocket upgrade with ${dialed.status} instead of opening it.`, { code: 'upstream_protocol' }));
      }
      // OpenAI's own refusal (a bad model, its rate limit): its status and error body, the server key redacted.
      const headers = policy.answerHeaders(dialed.headers);
      const encoded = headers['content-encoding'] !== undefined && headers['content-encoding'] !== 'identity';
      writeUpgradeAnswer(socket, dialed.status, headers, encoded ? dialed.body : Buffer.from(policy.redact(dialed.body.toString('utf8'))));
      return attempt.record(dialed.status);
    }
    policy.upstreamError(operation, dialed.reason);
    logger.warn({ reqId: attempt.requestId, op: operation, reason: dialed.reason, err: { message: policy.redact(dialed.message) } }, 'WebSocket to OpenAI not opened');
    const err =
      dialed.reason === 'timeout'
        ? new RelayError(504, `OpenAI did not accept the WebSocket within ${config.timeouts[route.timeout]} ms.`, { code: 'upstream_timeout' })
        : dialed.reason === 'protocol'
          ? new RelayError(502, "OpenAI's answer to the WebSocket upgrade was not a valid handshake.", { code: 'upstream_protocol' })
          : new RelayError(502, 'Could not open a WebSocket to OpenAI.', { code: 'upstream_unreachable' });
    attempt.refuse(err);
  }

  return {
    upgrade(req, socket, head) {
      upgrade(req, socket, head).catch((err: unknown) => {
        logger.error({ err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error on a WebSocket upgrade');
        socket.destroy();
      });
    },
    async close(graceMs, hurry) {
      closing = true;
      clearInterval(sweep);
      for (const dial of dialing) dial.abort();
      const settled = () => new Promise<void>((resolve) => (open.size === 0 ? resolve() : (allClosed = resolve)));
      const hurried = new Promise<void>((resolve) => (hurry?.aborted ? resolve() : hurry?.addEventListener('abort', () => resolve(), { once: true })));
      await within(Promise.race([settled(), hurried]), graceMs);
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

const shuttingDown = () => new RelayError(503, 'The relay is shutting down; connect again.', { code: 'shutting_down' });

/** `promise`, or nothing once `ms` have passed. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
