import { createServer, connect, type Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1 in front of a server, counting the bytes that pass each way: what a client has
 * really sent (`up`) or been sent (`down`), for proving that a body streams rather than being gathered first.
 * `close()` refuses new connections and cuts the open ones (a server that went away).
 */
export interface TcpProxy {
  url: string;
  up: number;
  down: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: TcpProxy = { url: '', up: 0, down: 0, close: async () => {} };
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => (proxy.up += chunk.length));
    upstream.on('data', (chunk: Buffer) => (proxy.down += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
