import http from 'node:http';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';

/**
 * Connection floods against the relay as `npm start` runs it (a child process, its open-file limit set to
 * 2,048): sockets that send nothing, and sockets that send a request head a byte at a time, held open by
 * the thousand, while keyed requests keep coming on fresh connections. Bounded: each case ends by itself
 * within its time limit, and every socket the test opened is closed.
 */

const RELAY_KEY = 'flood-test-relay-key-0123456789';
const ADMIN_KEY = 'flood-test-admin-key-0123456789';
const FD_LIMIT = 2048;
const HEAD_TIMEOUT_MS = 2000;

let upstream: LocalUpstream;
let relay: ChildRelay;
const port = () => Number(new URL(relay.url).port);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  upstream = await startLocalUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-5', object: 'model' }] }));
    });
  });
  relay = await startChildRelay(
    {
      OPENAI_API_KEY: 'sk-flood-test-server-key-0123456789',
      RELAY_KEY,
      RELAY_ADMIN_KEY: ADMIN_KEY,
      OPENAI_BASE_URL: upstream.baseUrl,
      REQUEST_HEAD_TIMEOUT_MS: String(HEAD_TIMEOUT_MS),
      USAGE_LEDGER: 'off',
    },
    { fdLimit: FD_LIMIT },
  );
});

afterAll(async () => {
  await relay?.stop();
  await upstream?.close();
});

/** A keyed GET /v1/models on a connection of its own; its status, or 0 when the connection failed. */
function keyedRequest(timeoutMs = 5000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port: port(), path: '/v1/models', agent: false, headers: { authorization: `Bearer ${RELAY_KEY}` }, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Resolves with how long the relay took to close `socket`, and what it sent before; rejects past `limitMs`. */
function closedWithin(socket: net.Socket, limitMs = HEAD_TIMEOUT_MS + 5000): Promise<{ ms: number; answer: string }> {
  const started = performance.now();
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the relay still held the socket after ${limitMs} ms`));
    }, limitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - started, answer });
    });
  });
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: port() });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

const relayFds = () => readdirSync(`/proc/${relay.child.pid}/fd`).length;

async function metric(name: string): Promise<string[]> {
  const res = await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return (await res.text()).split('\n').filter((l) => l.startsWith(name));
}

describe('sockets that send no complete request head', () => {
  test(`a socket that sends nothing is closed within REQUEST_HEAD_TIMEOUT_MS (${HEAD_TIMEOUT_MS} ms), not after a minute`, async () => {
    const socket = await connect();
    socket.on('error', () => {});
    const { ms } = await closedWithin(socket);
    expect(ms).toBeGreaterThan(HEAD_TIMEOUT_MS - 200);
    expect(ms).toBeLessThan(HEAD_TIMEOUT_MS + 2000);
  });

  test('a request head sent a byte at a time is cut at the same limit, with a 408 in OpenAI shape', async () => {
    const socket = await connect();
    socket.on('error', () => {});
    const closed = closedWithin(socket);
    const head = `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${RELAY_KEY}\r\nX-Slow: ${'a'.repeat(200)}`;
    let i = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed && i < head.length) socket.write(head[i++]);
    }, 100);
    const { ms, answer } = await closed;
    clearInterval(trickle);
    expect(ms).toBeLessThan(HEAD_TIMEOUT_MS + 2000);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code).toBe('request_timeout');
  });
});

describe('a flood of idle and slow-header sockets', () => {
  test('3,000 sockets held against a 2,048-descriptor relay: keyed requests on fresh connections are all served (retrying as the OpenAI SDK does)', { timeout: 60_000 }, async () => {
    const FLOOD = 3000;
    const SLOW = 500;
    const KEYED = 40;
    const flood = new Set<net.Socket>();
    let opened = 0;
    let running = true;
    let peakHeld = 0;
    let peakRelayFds = 0;

    // Opens one flood socket; when the relay closes it, another takes its place (a flood that keeps up).
    const open = (slow: boolean) => {
      if (!running) return;
      const socket = net.connect({ host: '127.0.0.1', port: port() });
      opened++;
      flood.add(socket);
      socket.on('error', () => {});
      let trickle: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        if (!slow) return;
        socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        trickle = setInterval(() => socket.write('X'), 500);
      });
      socket.on('close', () => {
        clearInterval(trickle);
        flood.delete(socket);
        setTimeout(() => open(slow), 100);
      });
    };
    try {
      for (let i = 0; i < FLOOD; i++) {
        open(i < SLOW);
        if (i % 100 === 99) await sleep(30);
      }
      await sleep(1000);

      // Keyed callers, four at a time, each on a fresh connection, while the flood is held.
      const statuses: number[] = [];
      // A keyed connection can be evicted before the relay has read its head (on a busy machine the flood
      // can overtake it): the caller then sees a reset and connects again, as the OpenAI SDK does on a
      // connection error (two retries by default, after 0.5 s and 1 s).
      let retried = 0;
      const sample = setInterval(() => {
        peakHeld = Math.max(peakHeld, flood.size);
        peakRelayFds = Math.max(peakRelayFds, relayFds());
      }, 200);
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < KEYED) {
            next++;
            let status = await keyedRequest();
            for (let retry = 0; status === 0 && retry < 2; retry++) {
              retried++;
              await sleep(500 * 2 ** retry);
              status = await keyedRequest();
            }
            statuses.push(status);
            await sleep(50);
          }
        }),
      );
      clearInterval(sample);
      const shed = await metric('relay_connections_shed_total');
      const openGauge = await metric('relay_open_connections');
      console.log(
        `connection flood: ${FLOOD} flood sockets kept open from the client (${SLOW} slow-header), ${opened} opened in all, peak ${peakHeld} open at once; ` +
          `relay at most ${peakRelayFds} descriptors (limit ${FD_LIMIT}); keyed requests served ${statuses.filter((s) => s === 200).length}/${KEYED} (${retried} retries); ${shed.join(', ')}; ${openGauge.join(', ')}`,
      );
      expect(statuses.filter((s) => s !== 200), 'keyed requests not served during the flood').toEqual([]);
      // The flood outnumbers what the relay holds (its cap, read from its gauge) and, over the run, its
      // descriptors many times over (how many it keeps open at once depends on the machine's speed).
      const cap = Number(/relay_open_connections (\d+)/.exec(openGauge.join('\n'))?.[1]);
      expect(peakHeld).toBeGreaterThan(1.5 * cap);
      expect(opened).toBeGreaterThan(5 * FD_LIMIT);
      expect(peakRelayFds).toBeLessThan(FD_LIMIT);
      expect(shed.some((l) => /reason="evicted"} [1-9]/.test(l))).toBe(true);
      expect(relay.output()).toContain('connection cap reached');
    } finally {
      running = false;
      for (const socket of flood) socket.destroy();
    }
    // Once the flood is gone, the relay's descriptors come back down.
    for (let i = 0; i < 50 && relayFds() > 100; i++) await sleep(100);
    expect(relayFds()).toBeLessThan(100);
    expect(await keyedRequest()).toBe(200);
  });
});
