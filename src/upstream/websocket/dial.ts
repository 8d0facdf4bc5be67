import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import WebSocket from 'ws';

/**
 * Opening the WebSocket to OpenAI, before the caller's handshake is answered: so that a refusal (OpenAI's
 * status and error body) can still reach the caller as an HTTP answer. Settles once, with the open socket,
 * OpenAI's refusal, or why no answer came.
 */

/** How much of a refusal's body is kept for the caller (OpenAI's error bodies are a few hundred bytes). */
const MAX_REFUSAL_BYTES = 64 * 1024;

export type Dialed =
  /** Open and paused: resume it once its messages have somewhere to go. */
  | { kind: 'open'; socket: WebSocket; headers: IncomingHttpHeaders }
  | { kind: 'refused'; status: number; headers: IncomingHttpHeaders; body: Buffer }
  | { kind: 'failed'; reason: 'timeout' | 'connect' | 'protocol'; message: string };

export interface DialOptions {
  url: URL;
  headers: Record<string, string>;
  protocols: string[];
  maxPayload: number;
  /** Until OpenAI answers the upgrade. */
  handshakeTimeoutMs: number;
}

export interface Dial {
  readonly result: Promise<Dialed>;
  /** The caller left: drop whatever is under way (an open socket included, if it opened meanwhile). */
  abort(): void;
}

export function dialOpenAI(opts: DialOptions): Dial {
  let settle!: (d: Dialed) => void;
  const result = new Promise<Dialed>((resolve) => (settle = resolve));
  let settled = false;
  let aborted = false;
  let upgradeHeaders: IncomingHttpHeaders = {};
  const finish = (d: Dialed) => {
    if (settled) return;
    settled = true;
    settle(d);
  };

  let socket: WebSocket;
  try {
    socket = new WebSocket(opts.url, opts.protocols, {
      headers: opts.headers,
      perMessageDeflate: false,
      maxPayload: opts.maxPayload,
      // Pings and pongs cross end to end (the bridge forwards them), so neither leg answers on its own.
      autoPong: false,
      handshakeTimeout: opts.handshakeTimeoutMs,
      // A redirect would carry the server key to wherever it points.
      followRedirects: false,
    });
  } catch (err) {
    finish({ kind: 'failed', reason: 'protocol', message: (err as Error).message });
    return { result, abort() {} };
  }
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (settled) return;
    const timedOut = /timed out/i.test(err.message);
    const protocol = /subprotocol|Sec-WebSocket|Invalid Upgrade|extension/i.test(err.message);
    finish({ kind: 'failed', reason: timedOut ? 'timeout' : protocol ? 'protocol' : 'connect', message: err.message });
  });
  socket.once('upgrade', (res: IncomingMessage) => (upgradeHeaders = res.headers));
  socket.once('open', () => {
    if (aborted) return socket.terminate();
    // OpenAI speaks first (session.created), maybe in the very packet of its 101: nothing is read until
    // the bridge to the caller is in place and resumes the socket.
    socket.pause();
    finish({ kind: 'open', socket, headers: upgradeHeaders });
  });
  socket.once('unexpected-response', (req, res: IncomingMessage) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      finish({ kind: 'refused', status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) });
      req.destroy();
    };
    res.on('data', (chunk: Buffer) => {
      if (size < MAX_REFUSAL_BYTES) chunks.push(chunk.subarray(0, MAX_REFUSAL_BYTES - size));
      size += chunk.length;
      if (size >= MAX_REFUSAL_BYTES) done();
    });
    res.once('end', done);
    res.once('error', done);
    res.once('aborted', done);
  });
  return {
    result,
    abort() {
      aborted = true;
      if (socket.readyState !== WebSocket.CLOSED) socket.terminate();
      finish({ kind: 'failed', reason: 'connect', message: 'aborted' });
    },
  };
}
