import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 playing OpenAI, for what an in-process mock cannot show: socket-level
 * aborts, resets, and memory while hundreds of megabytes stream through the relay.
 */
export interface LocalUpstream {
  baseUrl: string;
  close(): Promise<void>;
}

export async function startLocalUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LocalUpstream> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
