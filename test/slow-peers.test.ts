import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';

/**
 * Slow peers against the relay as `npm start` runs it (a child process), on raw sockets: a caller whose
 * body stops arriving, and a caller that reads the answer slowly (or not at all). Each case is bounded: it
 * states how soon the relay must answer or close, and fails with a name instead of hanging.
 */

const RELAY_KEY = 'slow-peer-relay-key-0123456789';
/** One key per concurrent stream (MAX_IN_FLIGHT_PER_KEY is 1, for the slot checks). */
const STREAM_KEYS = ['slow-reader-key-a-0123456789', 'slow-reader-key-b-0123456789', 'slow-reader-key-c-0123456789'];
const BODY_TIMEOUT_MS = 600;
const STANDARD_TIMEOUT_MS = 1500;
const SHORT_TIMEOUT_MS = 1500;
// Well above the slow readers' two 2.5 s pauses below: the relay sees a caller read only when its socket
// drains (a sip may not free enough for that), so a reader behind for both pauses must stay under it.
const CLIENT_READ_TIMEOUT_MS = 8000;
/** The event stream the upstream sends: far more than the socket buffers between it and the caller hold. */
const STREAM_BYTES = 24 * 1024 * 1024;
const EVENT = `data: ${JSON.stringify({ type: 'response.output_text.delta', delta: 'x'.repeat(16 * 1024) })}\n\n`;

let upstream: LocalUpstream;
let relay: ChildRelay;
const upstreamStreams = { finished: 0, aborted: 0 };

/** `bytes`: Infinity streams until the relay closes the connection. */
async function streamEvents(res: ServerResponse, bytes: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let sent = 0;
  while (sent < bytes) {
    sent += EVENT.length;
    if (!res.write(EVENT)) {
      const closed = await new Promise<boolean>((resolve) => {
        const settle = (gone: boolean) => () => {
          res.off('drain', onDrain);
          res.off('close', onClose);
          resolve(gone);
        };
        const onDrain = settle(false);
        const onClose = settle(true);
        res.on('drain', onDrain);
        res.on('close', onClose);
      });
      if (closed) {
        upstreamStreams.aborted++;
        return;
      }
    }
  }
  res.end('event: response.completed\ndata: {"type":"response.completed"}\n\n');
  upstreamStreams.finished++;
}

beforeAll(async () => {
  upstream = await startLocalUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      // `?endless`: a stream no socket buffers can hold (loopback's grow to tens of MB: tcp_rmem), for the
      // caller that reads nothing, which the relay must cut however much the kernel would take.
      if (req.url?.startsWith('/v1/responses')) return void streamEvents(res, req.url.includes('endless') ? Infinity : STREAM_BYTES);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
    });
  });
  relay = await startChildRelay({
    OPENAI_API_KEY: 'sk-slow-peer-server-key-0123456789',
    RELAY_KEY: [RELAY_KEY, ...STREAM_KEYS].join(','),
    OPENAI_BASE_URL: upstream.baseUrl,
    REQUEST_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
    UPSTREAM_TIMEOUT_STANDARD_MS: String(STANDARD_TIMEOUT_MS),
    UPSTREAM_TIMEOUT_SHORT_MS: String(SHORT_TIMEOUT_MS),
    CLIENT_READ_TIMEOUT_MS: String(CLIENT_READ_TIMEOUT_MS),
    MAX_IN_FLIGHT_PER_KEY: '1',
    USAGE_LEDGER: 'off',
  });
});

afterAll(async () => {
  await relay?.stop();
  await upstream?.close();
});

interface RawExchange {
  socket: net.Socket;
  /** Everything received, once the relay closed the connection (or `limitMs` passed: then it rejects). */
  closed: Promise<{ raw: Buffer; ms: number }>;
}

/** Writes `head` (and `body`, if any) on a fresh socket and collects what comes back until the relay closes. */
function rawExchange(head: string, body: string | undefined, limitMs: number, opts: { paused?: boolean } = {}): RawExchange {
  const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(relay.url).port) });
  const chunks: Buffer[] = [];
  const started = performance.now();
  socket.on('error', () => {});
  socket.on('data', (c: Buffer) => chunks.push(c));
  if (opts.paused) socket.pause();
  socket.write(head + (body ?? ''));
  const closed = new Promise<{ raw: Buffer; ms: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the relay neither answered nor closed within ${limitMs} ms`));
    }, limitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ raw: Buffer.concat(chunks), ms: performance.now() - started });
    });
  });
  return { socket, closed };
}

function status(raw: Buffer): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw.toString('latin1'))?.[1] ?? 0);
}

/** The body of a raw HTTP/1.1 answer, chunked transfer coding undone (as far as it arrived). */
function bodyOf(raw: Buffer): string {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, headEnd).toString('latin1').toLowerCase();
  let rest = raw.subarray(headEnd + 4);
  if (!head.includes('transfer-encoding: chunked')) return rest.toString('utf8');
  const parts: Buffer[] = [];
  for (;;) {
    const line = rest.indexOf('\r\n');
    const size = line === -1 ? 0 : parseInt(rest.subarray(0, line).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(rest.subarray(line + 2, line + 2 + size));
    rest = rest.subarray(line + 2 + size + 2);
  }
  return Buffer.concat(parts).toString('utf8');
}

function errorOf(raw: Buffer): { code: string; type: string; message: string } {
  const text = raw.toString('utf8');
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error;
}

const keyed = (method: string, path: string, extra: string, key = RELAY_KEY) =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n${extra}\r\n`;

/** A keyed request with the same key: 200 only if the stalled request gave its in-flight slot back. */
async function slotIsFree(): Promise<number> {
  const res = await fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${RELAY_KEY}` } });
  await res.arrayBuffer();
  return res.status;
}

describe('a request body that stops arriving', () => {
  const stalled: Array<[string, string, string]> = [
    ['POST /v1/proxy', '/v1/proxy', '{"method":"GET","path":"/v1/mod'],
    ['POST /mcp', '/mcp', '{"jsonrpc":"2.0","id":1,"method":"too'],
    ['POST /v1/actions/vector_stores', '/v1/actions/vector_stores', '{"name":"sto'],
  ];
  test.each(stalled)(`%s: 408 in OpenAI's shape after REQUEST_BODY_TIMEOUT_MS (${BODY_TIMEOUT_MS} ms), connection closed, slot freed`, async (_name, path, part) => {
    const head = keyed('POST', path, 'Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 200\r\n');
    const { closed } = rawExchange(head, part, BODY_TIMEOUT_MS + 4000);
    const { raw, ms } = await closed;
    expect(status(raw), raw.toString()).toBe(408);
    expect(errorOf(raw)).toMatchObject({ code: 'request_timeout', type: 'invalid_request_error' });
    expect(errorOf(raw).message).toContain('REQUEST_BODY_TIMEOUT_MS');
    expect(ms).toBeGreaterThan(BODY_TIMEOUT_MS - 100);
    // MAX_IN_FLIGHT_PER_KEY=1: a 429 here would mean the stalled request still held the key's slot.
    expect(await slotIsFree()).toBe(200);
  });

  test('a forwarded JSON body that stops arriving: 408 (the caller was slow), not a 504 blaming OpenAI', async () => {
    const head = keyed('POST', '/v1/embeddings', 'Content-Type: application/json\r\nContent-Length: 200\r\n');
    const { closed } = rawExchange(head, '{"model":"text-embedding-3-small","inp', SHORT_TIMEOUT_MS + 4000);
    const { raw } = await closed;
    expect(status(raw), raw.toString()).toBe(408);
    expect(errorOf(raw).code).toBe('request_timeout');
    expect(await slotIsFree()).toBe(200);
  });
});

describe('a caller that reads slowly is not a silent upstream', () => {
  const STREAM_REQUEST = '{"model":"gpt-5","input":"hi","stream":true}';
  const streamHead = (key: string, path = '/v1/responses') =>
    keyed('POST', path, `Content-Type: application/json\r\nContent-Length: ${STREAM_REQUEST.length}\r\nConnection: close\r\n`, key);

  test(`three callers that stop reading for 2.5 s (deadline ${STANDARD_TIMEOUT_MS} ms) twice each get the whole ${STREAM_BYTES / 1024 / 1024} MB stream, no error event`, { timeout: 60_000 }, async () => {
    const before = upstreamStreams.finished;
    const readers = STREAM_KEYS.map(async (key) => {
      const { socket, closed } = rawExchange(streamHead(key), STREAM_REQUEST, 40_000, { paused: true });
      // Paused from the start: the buffers fill, OpenAI's stream is paused for us; then a sip (a real one,
      // 256 KiB, however busy the machine: the relay must see the caller read), and again.
      for (let i = 0; i < 2; i++) {
        await new Promise((r) => setTimeout(r, 2500));
        const read = socket.bytesRead;
        socket.resume();
        const until = performance.now() + 5000;
        while (socket.bytesRead - read < 256 * 1024 && !socket.destroyed && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
        socket.pause();
      }
      socket.resume();
      const { raw } = await closed;
      return raw;
    });
    for (const raw of await Promise.all(readers)) {
      const text = bodyOf(raw);
      const events = text.split('"type":"response.output_text.delta"').length - 1;
      // Checked as plain facts (the stream itself is megabytes: no diff of it in a failure).
      expect({ status: status(raw), errorEvent: text.includes('event: error'), completed: text.includes('event: response.completed'), events }).toEqual({
        status: 200,
        errorEvent: false,
        completed: true,
        events: Math.ceil(STREAM_BYTES / EVENT.length),
      });
    }
    expect(upstreamStreams.finished - before).toBe(3);
  });

  test(`a caller that reads nothing at all is cut after CLIENT_READ_TIMEOUT_MS (${CLIENT_READ_TIMEOUT_MS} ms), and OpenAI's stream with it`, { timeout: 30_000 }, async () => {
    const before = upstreamStreams.aborted;
    const started = performance.now();
    const { socket, closed } = rawExchange(streamHead(STREAM_KEYS[0], '/v1/responses?endless=1'), STREAM_REQUEST, 20_000, { paused: true });
    while (upstreamStreams.aborted === before && performance.now() - started < 15_000) await new Promise((r) => setTimeout(r, 50));
    const abortedAfter = performance.now() - started;
    expect(upstreamStreams.aborted - before, 'OpenAI stream closed by the relay').toBe(1);
    expect(abortedAfter).toBeGreaterThan(CLIENT_READ_TIMEOUT_MS - 200);
    expect(abortedAfter).toBeLessThan(CLIENT_READ_TIMEOUT_MS + 5000);
    // What had been sent is still in the sockets; read it: the connection ends without the rest.
    socket.resume();
    const { raw } = await closed;
    expect(raw.toString('latin1')).not.toContain('event: response.completed');
  });
});
