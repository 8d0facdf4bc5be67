import http from 'node:http';
import { http as mswHttp, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { operations, type RelayOperation } from '../generated/routes.ts';
import { heldSseStream, OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { expectOpenAIError } from './helpers/assertions.ts';

/**
 * POST /v1/proxy: the JSON envelope {method, path, query?|params?, body?|json?|payload?} reaches exactly the
 * JSON passthrough operations of the generated route table, with the server's key, and refuses everything
 * else in OpenAI's error shape without a single upstream request.
 */
const { server, upstream } = useMockOpenAI();
const ENVELOPE_CAP = 4096;
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay({ MAX_PROXY_ENVELOPE_BYTES: String(ENVELOPE_CAP) });
});
afterAll(() => relay.shutdown());


function proxy(envelope: unknown, init: { headers?: Record<string, string> } = {}): Promise<Response> {
  return relay.call('/v1/proxy', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof envelope === 'string' ? envelope : JSON.stringify(envelope),
  });
}

/** Anything that reaches "OpenAI" is answered 200, so a leak shows up as a recorded upstream request. */
function catchAllUpstream() {
  server.use(mswHttp.all(`${OPENAI_BASE}/*`, () => HttpResponse.json({ reached: 'upstream' })));
}

interface OpenAIError {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

async function expectRefusal(res: Response, status: number): Promise<OpenAIError> {
  expect(res.headers.get('x-request-id')).toBeTruthy();
  const error = await expectOpenAIError(res, status);
  expect(upstream, 'requests that reached upstream').toEqual([]);
  return error;
}

/** An operation's path with every `{param}` filled in, e.g. /v1/files/{file_id}/content → /v1/files/id_1/content. */
function concretePath(op: RelayOperation): string {
  let n = 0;
  return op.path.replace(/\{[^}]+\}/g, () => `id_${++n}`);
}

describe('forwarding', () => {
  test('GET /v1/models through the proxy: upstream sees GET /v1/models with the server key; status, body and x-request-id come back', async () => {
    server.use(
      mswHttp.get(`${OPENAI_BASE}/v1/models`, () =>
        HttpResponse.json({ object: 'list', data: [{ id: 'gpt-5', object: 'model' }] }, { headers: { 'x-request-id': 'req_up_models' } }),
      ),
    );
    const res = await proxy({ method: 'GET', path: '/v1/models' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req_up_models');
    expect(await res.json()).toEqual({ object: 'list', data: [{ id: 'gpt-5', object: 'model' }] });
    expect(upstream).toHaveLength(1);
    expect(upstream[0].method).toBe('GET');
    expect(upstream[0].url.pathname).toBe('/v1/models');
    expect(upstream[0].url.search).toBe('');
    expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    for (const [name, value] of upstream[0].headers) {
      expect(value, name).not.toContain(RELAY_KEY);
      expect(value, name).not.toContain(RELAY_KEY_2);
    }
    // The envelope is the relay's business: it is never sent upstream as a body.
    expect(upstream[0].headers.get('content-length') ?? '0').toBe('0');
  });

  test('lower-case method works the same', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/models/gpt-5`, () => HttpResponse.json({ id: 'gpt-5' })));
    const res = await proxy({ method: 'get', path: '/v1/models/gpt-5' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 'gpt-5' });
    expect(upstream.map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['GET /v1/models/gpt-5']);
  });

  test('POST /v1/vector_stores/vs_1/search: upstream gets exactly the JSON of `body`, as application/json', async () => {
    const body = { query: 'what is a relay?', max_num_results: 3, filters: { type: 'eq', key: 'k', value: 'v' }, rewrite_query: false, unicode: 'héllo ✓' };
    let seen: { text: string; contentType: string | null; contentLength: string | null } | undefined;
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/vector_stores/:id/search`, async ({ request, params }) => {
        seen = { text: await request.text(), contentType: request.headers.get('content-type'), contentLength: request.headers.get('content-length') };
        return HttpResponse.json({ object: 'vector_store.search_results.page', search_query: params.id, data: [] });
      }),
    );
    const res = await proxy({ method: 'POST', path: '/v1/vector_stores/vs_1/search', body });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ object: 'vector_store.search_results.page', search_query: 'vs_1', data: [] });
    expect(seen?.text).toBe(JSON.stringify(body));
    expect(seen?.contentType).toBe('application/json');
    expect(seen?.contentLength).toBe(String(Buffer.byteLength(JSON.stringify(body))));
    expect(upstream.map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['POST /v1/vector_stores/vs_1/search']);
  });

  test.each(['json', 'payload'])('`%s` is an alias of `body`', async (alias) => {
    const body = { model: 'text-embedding-3-small', input: ['a', 'b'] };
    let seen = '';
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/embeddings`, async ({ request }) => {
        seen = await request.text();
        return HttpResponse.json({ object: 'list', data: [] });
      }),
    );
    const res = await proxy({ method: 'POST', path: '/v1/embeddings', [alias]: body });
    expect(res.status).toBe(200);
    expect(seen).toBe(JSON.stringify(body));
    expect(upstream).toHaveLength(1);
  });

  test('`params` is an alias of `query`', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ object: 'list', data: [] })));
    const res = await proxy({ method: 'GET', path: '/v1/files', params: { limit: 2, order: 'asc', purpose: 'assistants' } });
    expect(res.status).toBe(200);
    expect(upstream).toHaveLength(1);
    expect(upstream[0].url.search).toBe('?limit=2&order=asc&purpose=assistants');
  });

  test('query arrays become repeated parameters, in order; scalars keep their text', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/responses/:id`, ({ params }) => HttpResponse.json({ id: params.id })));
    const res = await proxy({
      method: 'GET',
      path: '/v1/responses/resp_1',
      query: { include: ['message.output_text.logprobs', 'file_search_call.results', 'reasoning.encrypted_content'], stream: false, starting_after: 7 },
    });
    expect(res.status).toBe(200);
    expect(upstream).toHaveLength(1);
    const search = upstream[0].url.searchParams;
    expect(search.getAll('include')).toEqual(['message.output_text.logprobs', 'file_search_call.results', 'reasoning.encrypted_content']);
    expect(search.get('stream')).toBe('false');
    expect(search.get('starting_after')).toBe('7');
    expect(upstream[0].url.search).toBe(
      '?include=message.output_text.logprobs&include=file_search_call.results&include=reasoning.encrypted_content&stream=false&starting_after=7',
    );
  });

  test('query values that need encoding are encoded, never spliced into the path', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ object: 'list', data: [] })));
    const res = await proxy({ method: 'GET', path: '/v1/files', query: { after: 'a&b=c/../x#y', 'we ird': '✓' } });
    expect(res.status).toBe(200);
    expect(upstream).toHaveLength(1);
    expect(upstream[0].url.pathname).toBe('/v1/files');
    expect(upstream[0].url.searchParams.get('after')).toBe('a&b=c/../x#y');
    expect(upstream[0].url.searchParams.get('we ird')).toBe('✓');
    expect([...upstream[0].url.searchParams.keys()]).toEqual(['after', 'we ird']);
  });

  test.each(['models', '/models', 'v1/models'])('path %j without the /v1/ prefix (or leading slash) reaches /v1/models', async (path) => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
    const res = await proxy({ method: 'GET', path });
    expect(res.status).toBe(200);
    expect(upstream.map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['GET /v1/models']);
  });

  test.each([404, 429])('upstream %i passes through with its status, body and retry-after', async (status) => {
    const body = { error: { message: `upstream says ${status}`, type: status === 429 ? 'rate_limit_error' : 'invalid_request_error', param: null, code: `c_${status}` } };
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/chat/completions`, () =>
        HttpResponse.json(body, { status, headers: { 'retry-after': '17', 'x-request-id': `req_up_${status}`, 'x-ratelimit-remaining-requests': '0' } }),
      ),
    );
    const res = await proxy({ method: 'POST', path: '/v1/chat/completions', body: { model: 'gpt-5', messages: [] } });
    expect(res.status).toBe(status);
    expect(res.headers.get('retry-after')).toBe('17');
    expect(res.headers.get('x-request-id')).toBe(`req_up_${status}`);
    expect(res.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(await res.json()).toEqual(body);
    // A POST without Idempotency-Key is never retried; a 429/404 is never retried at all.
    expect(upstream).toHaveLength(1);
  });

  test('`stream: true` in a /v1/responses body streams SSE incrementally: the first event arrives before upstream has finished', async () => {
    const sse = heldSseStream();
    let seenBody: unknown;
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        seenBody = await request.json();
        return new HttpResponse(sse.stream, { headers: { 'content-type': 'text/event-stream', 'x-request-id': 'req_up_sse' } });
      }),
    );
    const body = { model: 'gpt-5', input: 'hi', stream: true };
    const res = await proxy({ method: 'POST', path: '/v1/responses', body });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toBe('req_up_sse');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const first = decoder.decode((await reader.read()).value);
    expect(first).toContain('response.created');
    expect(sse.finished).toBe(false);
    sse.release();
    let restText = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      restText += decoder.decode(value, { stream: true });
    }
    expect(restText).toContain('response.completed');
    expect(sse.finished).toBe(true);
    expect(seenBody).toEqual(body);
  });
});

describe('the action budget (the proxy is a GPT Action operation)', () => {
  test('an answer under 100,000 characters comes back byte for byte', async () => {
    const text = '{"object":"list",  "data":[{"id":"file-1","filename":"a.txt"}],"has_more":false}';
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/files`, () => new HttpResponse(text, { headers: { 'content-type': 'application/json' } })));
    const res = await proxy({ method: 'GET', path: '/v1/files' });
    expect(res.headers.get('x-relay-truncated')).toBeNull();
    expect(await res.text()).toBe(text);
  });

  test('a list over 100,000 characters is cut to fit: truncated, has_more and last_id follow the items kept', async () => {
    const data = Array.from({ length: 200 }, (_, i) => ({ id: `file-${String(i).padStart(3, '0')}`, object: 'file', filename: `${'n'.repeat(2000)}-${i}.txt` }));
    server.use(
      mswHttp.get(`${OPENAI_BASE}/v1/files`, () =>
        HttpResponse.json({ object: 'list', data, first_id: 'file-000', last_id: 'file-199', has_more: false }),
      ),
    );
    const res = await proxy({ method: 'GET', path: '/v1/files', query: { limit: 200 } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-relay-truncated')).toBe('true');
    const text = await res.text();
    expect(text.length).toBeLessThan(100_000);
    const body = JSON.parse(text) as { data: { id: string }[]; has_more: boolean; last_id: string; truncated: boolean };
    expect(body.truncated).toBe(true);
    expect(body.has_more).toBe(true);
    expect(body.data.length).toBeGreaterThan(10);
    expect(body.data.length).toBeLessThan(200);
    expect(body.last_id).toBe(body.data[body.data.length - 1].id);
    expect(body.data.map((d) => d.id)).toEqual(data.slice(0, body.data.length).map((d) => d.id));
  });

  test('the proxy answers within the action deadline, whatever the operation\'s own timeout class', async () => {
    const quick = await startTestRelay({ ACTION_DEADLINE_MS: '700' });
    try {
      server.use(mswHttp.post(`${OPENAI_BASE}/v1/responses`, () => new Promise<Response>(() => {})));
      const started = performance.now();
      const res = await quick.call('/v1/proxy', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ method: 'POST', path: '/v1/responses', body: { model: 'gpt-5', input: 'slow' } }),
      });
      expect(res.status).toBe(504);
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upstream_timeout');
    } finally {
      await quick.shutdown();
    }
  });
});

describe('refusals: OpenAI error shape, zero upstream requests', () => {
  const notJson = operations.filter(
    (op) =>
      op.kind === 'passthrough' &&
      !op.retired &&
      (op.answer === 'binary' || (op.requestContentTypes.length > 0 && !op.requestContentTypes.includes('application/json'))),
  );

  test('the table has multipart-only, SDP and binary operations to check', () => {
    expect(notJson.some((op) => op.answer === 'binary')).toBe(true);
    expect(notJson.some((op) => op.body === 'multipart')).toBe(true);
    expect(notJson.some((op) => op.body === 'sdp')).toBe(true);
  });

  test.each(notJson.map((op) => [`${op.method.toUpperCase()} ${op.path}`, op] as const))(
    '%s (multipart-only or binary) → 400 naming the direct route',
    async (_name, op) => {
      catchAllUpstream();
      const path = concretePath(op);
      const res = await proxy({ method: op.method.toUpperCase(), path });
      const error = await expectRefusal(res, 400);
      expect(error.message).toContain(`${op.method.toUpperCase()} ${path}`);
    },
  );

  test.each(['/v1/proxy', 'proxy', '/proxy'])('the proxy itself (%j) → 400', async (path) => {
    catchAllUpstream();
    const res = await proxy({ method: 'POST', path, body: { method: 'GET', path: '/v1/models' } });
    await expectRefusal(res, 400);
  });

  const relayOps = operations.filter((op) => op.kind === 'relay' && !op.retired);
  test.each(relayOps.map((op) => [`${op.method.toUpperCase()} ${op.path}`, op] as const))(
    'relay operation %s is refused: call it directly',
    async (_name, op) => {
      catchAllUpstream();
      const res = await proxy({ method: op.method.toUpperCase(), path: concretePath(op) });
      const text = await res.text();
      expect([400, 403], text).toContain(res.status);
      expect(upstream).toEqual([]);
      expect(JSON.parse(text)).toMatchObject({ error: { message: expect.any(String) } });
    },
  );

  test.each([
    ['DELETE', '/v1/models'],
    ['POST', '/v1/models'],
    ['GET', '/v1/embeddings'],
    ['DELETE', '/v1/responses'],
    ['POST', '/v1/files/file-1/content'],
  ])('method mismatch %s %s → 405', async (method, path) => {
    catchAllUpstream();
    const res = await proxy({ method, path });
    await expectRefusal(res, 405);
  });

  test.each(['/v1/nonexistent', '/v1/organization/users', '/v1/fine_tuning/jobs', '/v1/models/gpt-5/extra', '/v2/models', 'assistants'])(
    'unknown path %j → 403',
    async (path) => {
      catchAllUpstream();
      const res = await proxy({ method: 'GET', path });
      await expectRefusal(res, 403);
    },
  );

  test('an envelope over MAX_PROXY_ENVELOPE_BYTES → 413 (with Content-Length)', async () => {
    catchAllUpstream();
    const res = await proxy({ method: 'POST', path: '/v1/embeddings', body: { model: 'm', input: 'x'.repeat(ENVELOPE_CAP) } });
    await expectRefusal(res, 413);
  });

  test('an envelope over MAX_PROXY_ENVELOPE_BYTES → 413 (chunked, no Content-Length)', async () => {
    catchAllUpstream();
    const { hostname, port } = new URL(relay.url);
    const envelope = JSON.stringify({ method: 'POST', path: '/v1/embeddings', body: { model: 'm', input: 'x'.repeat(ENVELOPE_CAP * 4) } });
    const answer = await new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request(
        {
          hostname,
          port,
          method: 'POST',
          path: '/v1/proxy',
          agent: false,
          headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', () => {}); // the relay may answer and hang up before the rest is written
      let offset = 0;
      const next = () => {
        if (offset >= envelope.length) return req.end();
        req.write(envelope.slice(offset, offset + 1024));
        offset += 1024;
        setTimeout(next, 2);
      };
      next();
    });
    expect(answer.status, answer.body).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { message: expect.any(String), type: expect.any(String) } });
    expect(upstream).toEqual([]);
  });

  test.each([
    ['text/plain', '{"method":"GET","path":"/v1/models"}'],
    ['application/x-www-form-urlencoded', 'method=GET&path=%2Fv1%2Fmodels'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="method"\r\n\r\nGET\r\n--x--\r\n'],
    ['application/jsonp', '{"method":"GET","path":"/v1/models"}'],
    ['', '{"method":"GET","path":"/v1/models"}'],
  ])('content-type %j → 415', async (contentType, body) => {
    catchAllUpstream();
    const headers: Record<string, string> = { authorization: `Bearer ${RELAY_KEY}` };
    if (contentType) headers['content-type'] = contentType;
    const res = await fetch(`${relay.url}/v1/proxy`, {
      method: 'POST',
      headers,
      // A Blob without a type keeps fetch from adding text/plain on its own.
      body: new Blob([body]),
    });
    await expectRefusal(res, 415);
  });

  test('application/json; charset=utf-8 is accepted', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
    const res = await proxy({ method: 'GET', path: '/v1/models' }, { headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(res.status).toBe(200);
    expect(upstream).toHaveLength(1);
  });

  test.each(['{"method":"GET","path":"/v1/models"', '', 'not json', '{method: "GET"}', "{'method':'GET'}", '\u0000'])(
    'invalid JSON %j → 400',
    async (raw) => {
      catchAllUpstream();
      const res = await proxy(raw);
      await expectRefusal(res, 400);
    },
  );

  test.each([
    { method: 'GET', path: '/v1/models', headers: { authorization: 'Bearer sk-other' } },
    { method: 'GET', path: '/v1/models', url: 'https://evil.example/' },
    { method: 'GET', path: '/v1/models', host: 'evil.example' },
    { method: 'GET', path: '/v1/models', Method: 'DELETE' },
    '{"method":"GET","path":"/v1/models","__proto__":{"x":1}}',
    '{"method":"GET","path":"/v1/models","constructor":"x"}',
  ] as unknown[])('unknown envelope key → 400 (%j)', async (envelope) => {
    catchAllUpstream();
    const res = await proxy(envelope);
    await expectRefusal(res, 400);
  });

  test.each([
    ['GET', '/v1/models', 'body'],
    ['GET', '/v1/files', 'json'],
    ['GET', '/v1/responses/resp_1', 'payload'],
    ['DELETE', '/v1/files/file-1', 'body'],
  ])('a body on %s %s (as %s) → 400', async (method, path, key) => {
    catchAllUpstream();
    const res = await proxy({ method, path, [key]: { a: 1 } });
    await expectRefusal(res, 400);
  });

  test('body given twice (body and json) → 400', async () => {
    catchAllUpstream();
    const res = await proxy({ method: 'POST', path: '/v1/embeddings', body: { input: 'a' }, json: { input: 'b' } });
    await expectRefusal(res, 400);
  });

  test('query given twice (query and params) → 400', async () => {
    catchAllUpstream();
    const res = await proxy({ method: 'GET', path: '/v1/files', query: { limit: 1 }, params: { limit: 2 } });
    await expectRefusal(res, 400);
  });

  test('without a relay key the proxy answers 401 and forwards nothing', async () => {
    catchAllUpstream();
    const res = await fetch(`${relay.url}/v1/proxy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'GET', path: '/v1/models' }),
    });
    await expectRefusal(res, 401);
  });
});
