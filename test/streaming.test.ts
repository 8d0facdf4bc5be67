import { createHash, randomBytes } from 'node:crypto';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startLocalUpstream } from './helpers/local-upstream.ts';
import { heldSseStream, OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { startTestRelay, type TestRelay } from './helpers/relay.ts';

const { server } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(() => relay.shutdown());


describe('SSE', () => {
  test('events arrive one by one: the first reaches the caller before upstream has finished', async () => {
    const sse = heldSseStream();
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        const body = (await request.json()) as { stream?: boolean };
        expect(body.stream).toBe(true);
        return new HttpResponse(sse.stream, { headers: { 'content-type': 'text/event-stream', 'x-request-id': 'req_up_1' } });
      }),
    );
    const res = await relay.call('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-5', input: 'hi', stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-request-id')).toBe('req_up_1');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('response.created');
    expect(sse.finished).toBe(false);
    sse.release();
    let restText = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      restText += new TextDecoder().decode(value);
    }
    expect(restText).toContain('response.completed');
    expect(sse.finished).toBe(true);
  });
});

describe('binary download', () => {
  test('a file download arrives byte-identical', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    server.use(
      http.get(`${OPENAI_BASE}/v1/files/:id/content`, () =>
        new HttpResponse(bytes, { headers: { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="x.bin"' } }),
      ),
    );
    const res = await relay.call('/v1/files/file-1/content');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="x.bin"');
    const got = Buffer.from(await res.arrayBuffer());
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});

describe('client abort', () => {
  test('a caller hanging up mid-stream aborts the upstream request', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const upstream = await startLocalUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n');
      const timer = setInterval(() => res.write('data: {"n":2}\n\n'), 50);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed();
      });
    });
    const local = await startTestRelay({ OPENAI_BASE_URL: upstream.baseUrl });
    try {
      const controller = new AbortController();
      const res = await local.call('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-5', messages: [], stream: true }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
      await expect(Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 3000))])).resolves.toBe('closed');
    } finally {
      await local.shutdown();
      await upstream.close();
    }
  });
});
