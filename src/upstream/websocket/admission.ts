import type { IncomingMessage } from 'node:http';
import { matchWebSocket, type WebSocketRoute } from '../../../generated/websockets.ts';
import type { RelayConfig } from '../../config.ts';
import { corsPolicy } from '../../core/cors.ts';
import { RelayError } from '../../core/errors.ts';
import type { Gate } from '../../core/gate.ts';
import { canonicalUpstreamPath } from '../../core/path-params.ts';
import { createHostGuard } from '../../core/host-guard.ts';
import { refuseMalformedRequest } from '../../core/request-guard.ts';
import { handshakeProblem, notWebSocket, offeredProtocols } from './handshake.ts';

/**
 * Whether an upgrade request may become a relayed WebSocket, decided before anything is opened upstream,
 * in this order: the request guard, the route (the spec's WebSocket endpoints), the handshake itself, a
 * browser's Origin against CORS_ORIGINS, the relay key (in the headers, or a browser's
 * `openai-insecure-api-key.` subprotocol), and the key's limits (requests per minute, tokens per day).
 * The in-flight slot is the door's to take, since it holds it for the socket's life.
 */

export interface Admitted {
  route: WebSocketRoute;
  keyLabel: string;
  /** The route's path with its parameters checked: the upstream path. */
  upstreamPath: string;
  /** The query as the caller sent it (`?model=...`), or ''. */
  search: string;
  /** The caller's subprotocols that go upstream (never the key's). */
  protocols: string[];
}

export interface Refused {
  error: RelayError;
  /** What the refusal's record names: the endpoint's operation, once the route is known. */
  operation: string;
  keyLabel: string;
}

export type Admission = (req: IncomingMessage) => Promise<Admitted | Refused>;

export function createAdmission(config: RelayConfig, gate: Gate): Admission {
  const cors = corsPolicy(config.corsOrigins);
  // On loopback or with RELAY_AUTH=off, the Host is checked against DNS rebinding (the Origin below, always).
  const hostGuard = createHostGuard(config);
  return async (req) => {
    let operation = 'unmatched';
    let keyLabel = 'anonymous';
    const refused = (error: RelayError): Refused => ({ error, operation, keyLabel });

    const malformed = refuseMalformedRequest(req, config.maxUrlBytes) ?? hostGuard?.refuse(req.headers, false) ?? notWebSocket(req.headers);
    if (malformed) return refused(malformed);
    const url = req.url ?? '';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const found = matchWebSocket(path);
    if (!found) return refused(new RelayError(404, `No WebSocket endpoint at ${path}: this relay serves none there.`, { code: 'unknown_url' }));
    const { route } = found;
    operation = route.operationId;
    const notHandshake = handshakeProblem(req.method, req.headers);
    if (notHandshake) return refused(notHandshake);
    const origin = req.headers.origin;
    if (origin !== undefined && cors.answerHeaders(origin) === undefined) {
      return refused(new RelayError(403, `Origin ${origin} may not open WebSockets on this relay (see CORS_ORIGINS).`, { code: 'origin_not_allowed' }));
    }
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    if (!offered) return refused(new RelayError(400, 'Sec-WebSocket-Protocol must be a list of distinct subprotocol names.', { code: 'invalid_subprotocol' }));
    // A browser's key travels as a subprotocol; a key in the headers wins.
    const headerKey = req.headers.authorization !== undefined || req.headers['x-relay-key'] !== undefined;
    const who = gate.identify(headerKey || offered.key === undefined ? req.headers : { 'x-relay-key': offered.key });
    if ('error' in who) return refused(who.error);
    keyLabel = who.label;
    let upstreamPath: string;
    try {
      upstreamPath = canonicalUpstreamPath(route.path, decodedParams(found.params));
    } catch (err) {
      return refused(err instanceof RelayError ? err : new RelayError(400, 'A path parameter is not validly percent-encoded.', { code: 'invalid_path_parameter' }));
    }
    if (gate.limited) {
      const over = await gate.admit(keyLabel);
      if (over) return refused(over);
    }
    return { route, keyLabel, upstreamPath, search: queryStart === -1 ? '' : url.slice(queryStart), protocols: offered.forwarded };
  };
}

/** Percent-decoded path parameters (throws on bad encoding). */
function decodedParams(params: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in params) out[name] = decodeURIComponent(params[name]!);
  return out;
}
