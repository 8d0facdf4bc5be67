import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { RelayError } from '../../core/errors.ts';

/**
 * The caller's side of a WebSocket handshake, read before anything is opened upstream: whether it is a
 * handshake at all, the subprotocols it offers (one of which may carry a browser's relay key), and the
 * raw HTTP answer that refuses it.
 */

/** RFC 6455 §4.1: a base64-encoded 16-byte nonce. */
const NONCE = /^[+/0-9A-Za-z]{22}==$/;
/** RFC 7230 token characters, which a subprotocol name is made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** OpenAI's convention for browsers, which cannot set headers on a WebSocket: the key as a subprotocol. */
export const KEY_PROTOCOL_PREFIX = 'openai-insecure-api-key.';
/** Subprotocols naming what only the relay decides (the key, the organization, the project): never forwarded. */
const WITHHELD_PREFIXES = [KEY_PROTOCOL_PREFIX, 'openai-organization.', 'openai-project.'];

export interface OfferedProtocols {
  /** The relay key a browser sent as `openai-insecure-api-key.<key>`, if any. */
  key: string | undefined;
  /** What goes upstream, in the caller's order: everything else it offered. */
  forwarded: string[];
}

/** The caller's Sec-WebSocket-Protocol, split into the key it carries and what is forwarded; undefined when malformed. */
export function offeredProtocols(header: string | undefined): OfferedProtocols | undefined {
  const offered = { key: undefined as string | undefined, forwarded: [] as string[] };
  if (header === undefined || header.trim() === '') return offered;
  const seen = new Set<string>();
  for (const raw of header.split(',')) {
    const name = raw.trim();
    if (!TOKEN.test(name) || seen.has(name)) return undefined;
    seen.add(name);
    if (name.startsWith(KEY_PROTOCOL_PREFIX)) offered.key ??= name.slice(KEY_PROTOCOL_PREFIX.length);
    else if (!WITHHELD_PREFIXES.some((p) => name.startsWith(p))) offered.forwarded.push(name);
  }
  return offered;
}

/**
 * Another protocol's upgrade (h2c). Node ≥ 22.21 / 24.9 serves those as plain HTTP/1.1 before they get
 * here (server.ts: shouldUpgradeCallback); an older Node hands every upgrade to the door, which refuses them.
 */
export function notWebSocket(headers: IncomingHttpHeaders): RelayError | undefined {
  if (headers.upgrade?.toLowerCase() === 'websocket') return undefined;
  return new RelayError(400, 'Only WebSocket upgrades are served (Upgrade: websocket); send other requests without an Upgrade header.', { code: 'invalid_upgrade' });
}

/** Why this WebSocket upgrade request is not a handshake the relay can complete, or undefined when it is one. */
export function handshakeProblem(method: string | undefined, headers: IncomingHttpHeaders): RelayError | undefined {
  if (method !== 'GET') {
    return new RelayError(405, 'A WebSocket is opened with GET.', { code: 'method_not_allowed', headers: { allow: 'GET' } });
  }
  if (headers['sec-websocket-version'] !== '13') {
    return new RelayError(426, 'This relay speaks WebSocket version 13: send Sec-WebSocket-Version: 13.', {
      code: 'unsupported_websocket_version',
      headers: { 'sec-websocket-version': '13' },
    });
  }
  const nonce = headers['sec-websocket-key'];
  if (typeof nonce !== 'string' || !NONCE.test(nonce.trim())) {
    return new RelayError(400, 'The WebSocket handshake needs a valid Sec-WebSocket-Key.', { code: 'invalid_upgrade' });
  }
  return undefined;
}

/** Answers an upgrade request with a plain HTTP response and closes the connection. */
export function writeUpgradeAnswer(socket: Duplex, status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === 'content-length' || name === 'connection' || name === 'transfer-encoding') continue;
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  lines.push(`content-length: ${Buffer.byteLength(body)}`, 'connection: close', '', '');
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), typeof body === 'string' ? Buffer.from(body) : body]), () => socket.destroy());
}

/** A relay error as the answer to an upgrade request, in OpenAI's error shape. */
export function refuseUpgrade(socket: Duplex, err: RelayError, requestId: string, extraHeaders: Record<string, string> = {}): void {
  writeUpgradeAnswer(socket, err.status, { ...extraHeaders, ...err.headers, 'content-type': 'application/json', 'x-request-id': requestId }, JSON.stringify(err.toJSON()));
}
