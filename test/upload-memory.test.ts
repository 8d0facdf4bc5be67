import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { sample } from './helpers/assertions.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';

/**
 * A 200 MB multipart upload through a relay process of its own, to a real upstream on loopback: the bytes
 * arrive intact and the relay's resident memory stays flat: the forwarding core collects the young
 * generation every STREAM_GC_MIB streamed (core/stream-memory.ts), so the socket buffers of chunks
 * already forwarded do not pile up until V8's ~64 MB external-memory trigger.
 */
const ADMIN_KEY = 'admin-key-for-upload-memory-0123';
const MB = 1024 * 1024;
const FILE_MB = 200;

let upstream: LocalUpstream;
let relay: ChildRelay;
const received: { hash: string; bytes: number; contentType: string }[] = [];

beforeAll(async () => {
  upstream = await startLocalUpstream((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => {
      if (req.method === 'POST') received.push({ hash: hash.digest('hex'), bytes, contentType: String(req.headers['content-type']) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'file-big', object: 'file', bytes }));
    });
  });
  relay = await startChildRelay({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, RELAY_ADMIN_KEY: ADMIN_KEY, OPENAI_BASE_URL: upstream.baseUrl });
});

afterAll(async () => {
  await relay?.stop();
  await upstream?.close();
});

test(`a ${FILE_MB} MB multipart upload streams through with its hash intact and flat memory`, async () => {
  const boundary = 'relay-test-boundary-7MA4YWxkTrZu0gW';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const block = randomBytes(MB);
  const sent = createHash('sha256');

  // Warm up so the baseline includes the first request's one-off allocations.
  await fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${RELAY_KEY}` } }).then((r) => r.arrayBuffer());
  const idle = relay.rssBytes();
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, relay.rssBytes())), 20);

  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${relay.url}/v1/files`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${RELAY_KEY}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': head.length + FILE_MB * MB + tail.length,
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    let i = 0;
    const pump = () => {
      while (i <= FILE_MB + 1) {
        const chunk = i === 0 ? head : i === FILE_MB + 1 ? tail : block;
        i++;
        sent.update(chunk);
        if (i === FILE_MB + 2) {
          req.end(chunk);
          return;
        }
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  clearInterval(sampler);

  expect(answer.status).toBe(200);
  expect(received).toHaveLength(1);
  expect(received[0].contentType).toBe(`multipart/form-data; boundary=${boundary}`);
  expect(received[0].bytes).toBe(head.length + FILE_MB * MB + tail.length);
  expect(received[0].hash).toBe(sent.digest('hex'));
  const growthMb = (peak - idle) / MB;
  console.log(`relay RSS idle ${(idle / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB, growth ${growthMb.toFixed(1)} MB for a ${FILE_MB} MB upload`);
  // Without the stream collections V8 lets ~64 MB of socket buffers pile up (growth measured 61-70 MB);
  // with them, 15-20 MB.
  expect(growthMb).toBeLessThan(45);
  // One collection per 8 MiB (the default STREAM_GC_MIB) of bulk chunks (socket reads of 16 KB and more:
  // nearly all of an upload), counted where operators can see it.
  const metrics = await (await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
  const collections = sample(metrics, 'relay_stream_gc_total')!;
  expect(collections).toBeLessThanOrEqual(Math.floor((head.length + FILE_MB * MB + tail.length) / (8 * MB)));
  expect(collections).toBeGreaterThanOrEqual(20);
});
