import type { IncomingMessage, ServerResponse } from 'node:http';
import { matchOperation } from '../../generated/matcher.ts';
import type { RelayOperation } from '../../generated/routes.ts';
import type { RelayConfig } from '../config.ts';
import type { Ops } from '../ops/index.ts';
import { RelayError, writeError } from './errors.ts';
import type { Forwarder } from '../upstream/forward/index.ts';
import type { Gate } from './gate.ts';
import { createHostGuard } from './host-guard.ts';
import type { Logger } from './logger.ts';
import { canonicalUpstreamPath } from './path-params.ts';
import { refuseMalformedRequest } from './request-guard.ts';
import { nextRequestId } from './request-id.ts';

/**
 * The pass-through door: the plain, happy case of an OpenAI call (an SDK request with a valid relay key
 * to one of the spec's pass-through operations) goes from node's request straight to the forwarding core,
 * without building a Web Request and a Hono context around it — measured at about half the relay's
 * per-request CPU. It applies the same request guard, the same gate (key, limits, in-flight cap) and the
 * same core as the Hono app, and hands every other request to the app untouched: browsers (CORS),
 * anything malformed, unknown or unauthenticated, the relay's own endpoints. Those answers stay in one
 * place; this door only ever forwards, or refuses a request the gate refused after counting it.
 */
export type PassThroughDoor = (incoming: IncomingMessage, outgoing: ServerResponse) => boolean;

export function createPassThroughDoor(config: RelayConfig, deps: { forwarder: Forwarder; gate: Gate; ops: Ops; logger: Logger }): PassThroughDoor {
  const { forwarder, gate, ops, logger } = deps;
  // On loopback or with RELAY_AUTH=off, a Host the relay does not know goes to the app, which refuses it.
  const hostGuard = createHostGuard(config);
  const refuse = (outgoing: ServerResponse, err: RelayError, requestId: string, operation: RelayOperation, label: string, startedAt: number, started: number) => {
    writeError(outgoing, err, requestId);
    ops.record({ requestId, operation: operation.operationId, keyLabel: label, status: err.status, startedAt, ms: Math.round(performance.now() - started) });
  };

  const forward = (incoming: IncomingMessage, outgoing: ServerResponse, operation: RelayOperation, upstreamPath: string, search: string, label: string, requestId: string, startedAt: number, started: number) => {
    const full = gate.enter(label);
    if (full) return refuse(outgoing, full, requestId, operation, label, startedAt, started);
    let inFlight = true;
    const leave = () => {
      if (inFlight) gate.leave(label);
      inFlight = false;
    };
    let forwarding: Promise<void>;
    try {
      forwarding = forwarder.forwardToOpenAI(incoming, outgoing, { operation, upstreamPath, search, requestId, keyLabel: label, onDone: leave });
    } catch (err) {
      forwarding = Promise.reject(err);
    }
    forwarding.catch((err: unknown) => {
      leave();
      unexpected(outgoing, err, requestId, operation, label, startedAt, started);
    });
  };

  /** The error boundary, as the Hono door's onError: a 500 in OpenAI's shape (or a cut stream), logged. */
  const unexpected = (outgoing: ServerResponse, err: unknown, requestId: string, operation: RelayOperation, label: string, startedAt: number, started: number) => {
    logger.error({ reqId: requestId, err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error');
    refuse(outgoing, new RelayError(500, 'The relay failed to handle this request.', { code: 'relay_error' }), requestId, operation, label, startedAt, started);
  };

  return (incoming, outgoing) => {
    const method = incoming.method;
    if ((method !== 'GET' && method !== 'POST' && method !== 'DELETE') || incoming.headers.origin !== undefined) return false;
    if (refuseMalformedRequest(incoming, config.maxUrlBytes) || hostGuard?.refuse(incoming.headers)) return false;
    const url = incoming.url ?? '';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    // A match on one of the relay's own operations means the request is not a pass-through (nor is a retired one).
    const found = matchOperation(method, path);
    if (!found || found.operation.kind !== 'passthrough' || found.operation.retired) return false;
    let upstreamPath: string;
    try {
      upstreamPath = canonicalUpstreamPath(found.operation.path, decodeParams(found.params));
    } catch {
      return false; // bad encoding or a refused parameter: the app answers it
    }
    const who = gate.identify(incoming.headers);
    if ('error' in who) return false;

    const started = performance.now();
    const startedAt = Date.now();
    const requestId = nextRequestId();
    const { operation } = found;
    const search = queryStart === -1 ? '' : url.slice(queryStart);
    try {
      if (!gate.limited) {
        forward(incoming, outgoing, operation, upstreamPath, search, who.label, requestId, startedAt, started);
      } else {
        gate
          .admit(who.label)
          .then((refusal) => {
            if (refusal) refuse(outgoing, refusal, requestId, operation, who.label, startedAt, started);
            else forward(incoming, outgoing, operation, upstreamPath, search, who.label, requestId, startedAt, started);
          })
          .catch((err: unknown) => unexpected(outgoing, err, requestId, operation, who.label, startedAt, started));
      }
    } catch (err) {
      unexpected(outgoing, err, requestId, operation, who.label, startedAt, started);
    }
    return true;
  };
}

/** Percent-decoded path parameters, as the Hono router hands them over (throws on bad encoding). */
function decodeParams(params: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  let decoded: Record<string, string> | undefined;
  for (const name in params) {
    const value = params[name];
    if (value.includes('%')) (decoded ??= { ...params })[name] = decodeURIComponent(value);
  }
  return decoded ?? params;
}
