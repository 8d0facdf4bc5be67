import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { RelayError } from './errors.ts';
import type { Logger } from './logger.ts';

/**
 * Caller connections, bounded. A flood of sockets that send nothing (or a request head one byte at a time)
 * used to live 30-60 s each until the relay ran out of file descriptors, and keyed requests failed with it.
 * Now the number of open connections is capped, and when a new connection arrives at the cap the oldest
 * connection that has no request in progress makes room for it: first one that has not yet sent a
 * complete request head, then an idle keep-alive one. A caller that sends its request at once is served
 * whatever the flood; only when every connection is busy with a request is a new one refused (503). The
 * short wait for a first request head is node's headersTimeout (REQUEST_HEAD_TIMEOUT_MS), set in server.ts.
 */
export interface ConnectionGuard {
  /** A request started on `socket` (the connection is busy until `requestEnded`). */
  requestStarted(socket: Socket): void;
  requestEnded(socket: Socket): void;
  readonly open: number;
  readonly max: number;
}

export interface ConnectionGuardOptions {
  max: number;
  logger: Logger;
  /** A connection closed to make room (`evicted`) or refused at the cap (`refused`). */
  onShed?(reason: 'evicted' | 'refused'): void;
}

/** At most one log line about the cap per this many ms, with the counts since the last one. */
const LOG_EVERY_MS = 10_000;

export function guardConnections(server: Server, opts: ConnectionGuardOptions): ConnectionGuard {
  const { max, logger } = opts;
  // Connections with no request in progress, oldest first: those that never completed a request head,
  // and keep-alive connections between requests (Maps and Sets iterate in insertion order).
  const fresh = new Set<Socket>();
  const idle = new Set<Socket>();
  // Requests in progress per socket (pipelined requests count one each). Kept here rather than as a
  // property on the socket: a property added to some Socket objects gives node's own socket code (caller
  // and upstream sockets share the class) a second object shape on every request it handles.
  const busy = new Map<Socket, number>();
  let open = 0;
  const shed = { evicted: 0, refused: 0, loggedAt: 0 };

  const report = () => {
    const now = Date.now();
    if (now - shed.loggedAt < LOG_EVERY_MS) return;
    logger.warn(
      { open, maxConnections: max, evicted: shed.evicted, refused: shed.refused },
      'connection cap reached (MAX_CONNECTIONS): closing connections without a request in progress, oldest first',
    );
    shed.loggedAt = now;
    shed.evicted = 0;
    shed.refused = 0;
  };

  const evictOne = (): boolean => {
    for (const pool of [fresh, idle]) {
      for (const socket of pool) {
        pool.delete(socket);
        socket.destroy();
        shed.evicted++;
        opts.onShed?.('evicted');
        return true;
      }
    }
    return false;
  };

  server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => {
      open--;
      fresh.delete(socket);
      idle.delete(socket);
      busy.delete(socket);
    });
    if (open > max && !evictOne()) {
      shed.refused++;
      opts.onShed?.('refused');
      report();
      socket.on('error', () => {});
      socket.end(refusal(max));
      socket.destroySoon();
      return;
    }
    if (shed.evicted > 0) report();
    fresh.add(socket);
  });

  // An upgraded connection (a relayed WebSocket) is busy for as long as it lives; it never returns to idle.
  server.prependListener('upgrade', (_req, socket: Socket) => {
    busy.set(socket, 1);
    fresh.delete(socket);
    idle.delete(socket);
  });

  return {
    requestStarted(socket) {
      busy.set(socket, (busy.get(socket) ?? 0) + 1);
      fresh.delete(socket);
      idle.delete(socket);
    },
    requestEnded(socket) {
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) return void busy.set(socket, left);
      busy.delete(socket);
      if (!socket.destroyed) idle.add(socket);
    },
    get open() {
      return open;
    },
    max,
  };
}

function refusal(max: number): string {
  const body = JSON.stringify(
    new RelayError(503, `The relay holds its maximum of ${max} connections, all busy with requests (MAX_CONNECTIONS); retry shortly.`, {
      code: 'too_many_connections',
    }).toJSON(),
  );
  return `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * The default cap: what the process's open-file limit allows when every connection is busy (a caller socket
 * and an upstream one each), after node's accept backlog (511 connections it may accept in one burst) and
 * a reserve for the ledger, logs and files; at most 10,000. Linux only (/proc); elsewhere 1,024.
 */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  let soft: number | undefined;
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const value = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    soft = value === 'unlimited' ? Infinity : Number(value);
  } catch {
    return 1024;
  }
  if (soft === undefined || !(soft > 0)) return 1024;
  return Math.max(64, Math.min(10_000, Math.floor((soft - 511 - 128) / 2)));
}
