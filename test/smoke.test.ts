import { http, HttpResponse } from 'msw';
import { beforeAll, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';

const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => { relay = await startTestRelay(); return () => relay.shutdown(); });

test('smoke', async () => {
  let auth = '';
  server.use(http.get(`${OPENAI_BASE}/v1/files/:id`, ({ request, params }) => { auth = request.headers.get('authorization')!; return HttpResponse.json({ id: params.id }); }));
  const res = await relay.call('/v1/files/file-abc?include=a&include=b');
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ id: 'file-abc' });
  expect(auth).toBe(`Bearer ${OPENAI_KEY}`);
  expect(upstream.map((r) => r.url.search)).toEqual(['?include=a&include=b']);
});
