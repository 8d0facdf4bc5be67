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
