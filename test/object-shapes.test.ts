import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { guardConnections } from '../src/core/connection-guard.ts';
import { inviteBody, markContinuePending } from '../src/core/expect-continue.ts';
import { createLogger } from '../src/core/logger.ts';

/**
 * The relay keeps its own bookkeeping beside node's objects, never on them: a property added to some
 * sockets or requests gives node's socket and stream code (shared by caller and upstream connections) a
 * second object shape on every request it handles. The connection guard and the 100-continue marks
 * used to add a symbol each; this pins that they add nothing.
 */

let server: http.Server;
let url: string;
const seen: { socketBefore: PropertyKey[]; socketAfter: PropertyKey[]; requestBefore: PropertyKey[]; requestAfter: PropertyKey[] }[] = [];

beforeAll(async () => {
  server = http.createServer();
  const guard = guardConnections(server, { max: 100, logger: createLogger('silent') });
  const handle = (incoming: IncomingMessage, outgoing: http.ServerResponse, expectsContinue: boolean) => {
    incoming.on('end', () => {
      outgoing.end('ok');
      guard.requestEnded(incoming.socket);
      seen.push({ socketBefore, socketAfter: Reflect.ownKeys(incoming.socket), requestBefore, requestAfter: Reflect.ownKeys(incoming) });
    });
    incoming.resume();
    // What node itself adds for the listeners above is in the "before" picture; only the relay's part is compared.
    const socketBefore = Reflect.ownKeys(incoming.socket);
    const requestBefore = Reflect.ownKeys(incoming);
    guard.requestStarted(incoming.socket);
    if (expectsContinue) markContinuePending(incoming);
    inviteBody(incoming, outgoing);
  };
  server.on('request', (incoming, outgoing) => handle(incoming, outgoing, false));
  server.on('checkContinue', (incoming, outgoing) => handle(incoming, outgoing, true));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function post(agent: http.Agent, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/embeddings`, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } });
    req.on('continue', () => req.end('{}'));
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (!headers.expect) req.end('{}');
  });
}

test('the connection guard and the 100-continue marks add no property to node\'s sockets and requests', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    expect(await post(agent, {})).toBe(200);
    expect(await post(agent, { expect: '100-continue' })).toBe(200);
    expect(await post(agent, {})).toBe(200);
  } finally {
    agent.destroy();
  }
  expect(seen).toHaveLength(3);
  for (const s of seen) {
    expect(s.socketAfter.filter((k) => !s.socketBefore.includes(k))).toEqual([]);
    expect(s.requestAfter.filter((k) => !s.requestBefore.includes(k))).toEqual([]);
  }
});
