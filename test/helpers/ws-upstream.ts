import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { track } from './ws-client.ts';

/**
 * A real `ws` server on 127.0.0.1 playing OpenAI's WebSocket endpoints (msw cannot intercept `ws`). It
 * records every upgrade it sees, picks the first subprotocol offered (as OpenAI answers `realtime`), and
 * hands each connection to the test's handler; `refuse` makes it answer upgrades with a plain HTTP error.
 */
export interface WsUpstream {
  /** For OPENAI_BASE_URL. */
  baseUrl: string;
  /** `ws://127.0.0.1:<port>`, for connecting to the mock directly. */
  wsUrl: string;
  upgrades: { url: string; headers: IncomingHttpHeaders }[];
  /** Server-side sockets currently open. */
  sockets: Set<WebSocket>;
  /** What each new connection does (default: nothing). */
  onConnection: (ws: WebSocket, req: IncomingMessage) => void;
  /** When set, upgrades are answered with this instead of 101. */
  refuse: { status: number; body: string; headers?: Record<string, string> } | undefined;
  close(): Promise<void>;
}

export async function startWsUpstream(options: { autoPong?: boolean; maxPayload?: number } = {}): Promise<WsUpstream> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({
    noServer: true,
    autoPong: options.autoPong ?? true,
    maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
    perMessageDeflate: false,
    handleProtocols: (offered) => offered.values().next().value ?? false,
  });
  // What OpenAI's 101 carries besides the handshake: a request id the caller may see, a cookie it may not.
  wss.on('headers', (lines) => lines.push('x-request-id: req_upstream_ws', 'set-cookie: __cf_bm=abc; Path=/'));
  const mock: WsUpstream = {
    baseUrl: '',
    wsUrl: '',
    upgrades: [],
    sockets: new Set(),
    onConnection: () => {},
    refuse: undefined,
    async close() {
      for (const ws of mock.sockets) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('upgrade', (req, socket, head) => {
    mock.upgrades.push({ url: req.url ?? '', headers: req.headers });
    socket.on('error', () => {});
    if (mock.refuse) {
      const { status, body, headers = {} } = mock.refuse;
      const extra = Object.entries({ 'content-type': 'application/json', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      track(ws);
      mock.sockets.add(ws);
      ws.on('close', () => mock.sockets.delete(ws));
      ws.on('error', () => {});
      mock.onConnection(ws, req);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  mock.baseUrl = `http://127.0.0.1:${port}/v1`;
  mock.wsUrl = `ws://127.0.0.1:${port}`;
  return mock;
}
