import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';

/**
 * MSW stands in for OpenAI. Every request that leaves the process is either answered by a handler or
 * recorded as unhandled and failed, so no test can reach the real internet; the suite's own calls to
 * the relay on 127.0.0.1 pass through.
 */
export const OPENAI_BASE = 'https://api.openai.com';

export interface SeenRequest {
  method: string;
  url: URL;
  headers: Headers;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function useMockOpenAI() {
  const server = setupServer();
  const unhandled: string[] = [];
  const upstream: SeenRequest[] = [];

  server.events.on('request:start', ({ request }) => {
    const url = new URL(request.url);
    if (!LOOPBACK.has(url.hostname)) upstream.push({ method: request.method, url, headers: request.headers });
  });

  beforeAll(() =>
    server.listen({
      onUnhandledFrame({ frame, defaults }) {
        const request = (frame as unknown as { data: { request: Request } }).data.request;
        const url = new URL(request.url);
        if (LOOPBACK.has(url.hostname)) return;
        unhandled.push(`${request.method} ${request.url}`);
        defaults.error();
      },
    }),
  );
  afterEach(() => {
    server.resetHandlers();
    upstream.length = 0;
    const leaked = unhandled.splice(0);
    expect(leaked, 'requests that reached no MSW handler').toEqual([]);
  });
  afterAll(() => server.close());

  return { server, upstream };
}

/**
 * An upstream SSE answer held open between its two events: `response.created` at once, then
 * `response.completed` only after `release()` — to prove the first event reaches the caller first.
 */
export function heldSseStream() {
  const encoder = new TextEncoder();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const state = { finished: false };
  const stream = new ReadableStream({
    async start(controller) {
      controller.enqueue(encoder.encode('event: response.created\ndata: {"type":"response.created"}\n\n'));
      await released;
      controller.enqueue(encoder.encode('event: response.completed\ndata: {"type":"response.completed"}\n\n'));
      state.finished = true;
      controller.close();
    },
  });
  return { stream, release, get finished() { return state.finished; } };
}
