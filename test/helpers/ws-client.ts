import type { IncomingHttpHeaders } from 'node:http';
import WebSocket, { type ClientOptions } from 'ws';

/** A caller's WebSocket to the relay, as the test sees it: open, or refused with an HTTP answer. */
export type Opened =
  | { kind: 'open'; ws: WebSocket; headers: IncomingHttpHeaders }
  | { kind: 'refused'; status: number; headers: IncomingHttpHeaders; body: string };

/** Opens `url` (ws://...) and settles once: with the open socket, or the HTTP answer that refused it. */
export function openSocket(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    track(ws);
    let headers: IncomingHttpHeaders = {};
    ws.once('upgrade', (res) => (headers = res.headers));
    ws.once('open', () => resolve({ kind: 'open', ws, headers }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        resolve({ kind: 'refused', status: res.statusCode ?? 0, headers: res.headers, body });
        req.destroy();
      });
    });
    ws.on('error', (err) => reject(err));
  });
}

/** The open socket, or a failed test saying what answered instead. */
export async function mustOpen(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  const opened = await openSocket(url, protocols, options);
  if (opened.kind !== 'open') throw new Error(`expected the WebSocket to open; got ${opened.status}: ${opened.body}`);
  return opened.ws;
}

interface Message {
  data: Buffer;
  isBinary: boolean;
}
const inboxes = new WeakMap<WebSocket, { queued: Message[]; waiting: ((m: Message) => void)[] }>();

/** Keeps every message `ws` receives from now on for `nextMessage` (call it before the socket can receive any). */
export function track(ws: WebSocket): void {
  if (inboxes.has(ws)) return;
  const inbox = { queued: [] as Message[], waiting: [] as ((m: Message) => void)[] };
  inboxes.set(ws, inbox);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const waiter = inbox.waiting.shift();
    if (waiter) waiter({ data, isBinary });
    else inbox.queued.push({ data, isBinary });
  });
}

/** The next message on a tracked `ws` (the first not yet taken). */
export function nextMessage(ws: WebSocket): Promise<Message> {
  const inbox = inboxes.get(ws);
  if (!inbox) throw new Error('nextMessage needs track(ws) first');
  const queued = inbox.queued.shift();
  return queued ? Promise.resolve(queued) : new Promise((resolve) => inbox.waiting.push(resolve));
}

/** The close code and reason `ws` ends with. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

/** Resolves when `check` holds, polling (fails after `ms`). */
export async function until(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
