import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { http as mswHttp, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { startLocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { rawRequest, type RawAnswer } from './helpers/raw-http.ts';
import { expectOpenAIErrorBody } from './helpers/assertions.ts';

/**
 * One regression test per fault of the old Python relay (shared/reference/seed-relay.md, "Its faults")
 * that applies to the foundation. None of them may come back.
 */
const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay({ MAX_JSON_BODY_BYTES: '1000', MAX_UPLOAD_BYTES: '200000' });
});
afterAll(() => relay.shutdown());

const AUTH = { authorization: `Bearer ${RELAY_KEY}` };


const raw = rawRequest;


/**
 * Anything that reaches "OpenAI" is answered 200 (after reading the whole body, as a real server would),
 * so a leak shows as a 200 and a recorded request.
 */
function catchAllUpstream() {
  server.use(
    mswHttp.all(`${OPENAI_BASE}/*`, async ({ request }) => {
      await request.arrayBuffer().catch(() => undefined); // the relay may abort mid-body (413)
      return HttpResponse.json({ reached: 'upstream' });
    }),
  );
}

/** The request ended as a plain logged request (no crash inside the forwarding core). */
async function expectCleanFinish(r: TestRelay, fromLine: number, status: number) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  const lines = r.logs.slice(fromLine).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.filter((l) => l.msg === 'unhandled error'), 'unhandled errors logged').toEqual([]);
  expect(lines.some((l) => l.msg === 'request' && l.status === status), `a request log line with status ${status}`).toBe(true);
}

describe('fault 1: path traversal never reaches another OpenAI path', () => {
  const attempts = [
    '/v1/files/%2e%2e%2Forganization%2Fusers',
    '/v1/files/%2e%2e/organization/users',
    '/v1/models/..%2F..%2Forganization',
    '/v1/models/..%2f..%2forganization%2fadmin_api_keys',
    '/v1/files/%2E%2E%2Forganization',
    '/v1/files/%2E%2E',
    '/v1/models/%2e',
    '/v1/files/..%5corganization',
    '/v1/files/..%5Corganization%5Cusers',
    '/v1/files/%252e%252e%252forganization',
    '/v1/files/%252e%252e',
    '/v1/files/../organization/users',
    '/v1/../v1/organization/users',
    '/v1/files/file-1/../../organization/users',
    '/v1/files/file-1/content/..',
    '/v1/models/..',
    '/v1/models/.',
    '/v1/models/./gpt-5',
    '/v1/files/..\\organization',
    '/v1/files//organization',
    '/v1/responses/resp_1/%2e%2e/%2e%2e/organization/projects',
    '/v1/vector_stores/vs_1/files/%2e%2e%2f%2e%2e%2forganization/content',
    '/v1/files/file%00-1',
    '/v1/files/file-1%2fcontent',
    '/v1/files/file-1%3Fpurpose=x',
    '/v1/files/file-1%23frag',
  ];
  for (const path of attempts) {
    test(`GET ${path} → 4xx, nothing sent upstream`, async () => {
      catchAllUpstream();
      const res = await raw(relay.url, { path, headers: AUTH });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body).not.toContain('upstream');
      // (A raw backslash is refused by the HTTP adapter before the app runs, with an empty body; see
      // headers.test.ts for the x-request-id/error-shape expectation on that answer.)
      if (res.body !== '') expectOpenAIErrorBody(JSON.parse(res.body));
      expect(upstream).toEqual([]);
    });
  }

  test('the same holds for POST and DELETE, and without a relay key', async () => {
    catchAllUpstream();
    for (const [method, path] of [
      ['POST', '/v1/files/%2e%2e%2Forganization%2Finvites'],
      ['DELETE', '/v1/models/..%2F..%2Forganization%2Fusers%2Fuser-1'],
      ['POST', '/v1/responses/..%2F..%2Forganization/cancel'],
    ]) {
      for (const headers of [AUTH, {}]) {
        const res = await raw(relay.url, { method, path, headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });
        expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${method} ${path}`).toBeLessThan(500);
      }
    }
    expect(upstream).toEqual([]);
  });

  test('ordinary ids with dots, colons and dashes still pass, as exactly one segment', async () => {
    catchAllUpstream();
    for (const model of ['gpt-3.5-turbo', 'ft:gpt-4o-mini:my-org:custom:abc123', 'text-embedding-3-small']) {
      const res = await raw(relay.url, { path: `/v1/models/${model}`, headers: AUTH });
      expect(res.status, model).toBe(200);
    }
    // Each id is one segment upstream (`:` may or may not be percent-encoded; both mean the same).
    expect(upstream.map((r) => r.url.pathname.split('/').map(decodeURIComponent))).toEqual([
      ['', 'v1', 'models', 'gpt-3.5-turbo'],
      ['', 'v1', 'models', 'ft:gpt-4o-mini:my-org:custom:abc123'],
      ['', 'v1', 'models', 'text-embedding-3-small'],
    ]);
  });

  test('an unknown path (e.g. /v1/organization/users) is a 404, not forwarded', async () => {
    catchAllUpstream();
    const res = await raw(relay.url, { path: '/v1/organization/users', headers: AUTH });
    expect(res.status).toBe(404);
    expect(upstream).toEqual([]);
  });
});

describe('fault 2: no leaks across the relay', () => {
  test('relay key (either header), cookies and forwarding headers are not forwarded; set-cookie does not come back', async () => {
    server.use(
      mswHttp.get(`${OPENAI_BASE}/v1/models`, () =>
        HttpResponse.json({ object: 'list', data: [] }, { headers: { 'set-cookie': '__cf_bm=upstream-cookie; HttpOnly' } }),
      ),
    );
    const res = await raw(relay.url, {
      path: '/v1/models',
      headers: { ...AUTH, 'x-relay-key': RELAY_KEY_2, cookie: 'session=caller-cookie', 'x-forwarded-for': '198.51.100.1' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(upstream).toHaveLength(1);
    const sent = upstream[0].headers;
    expect(sent.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    expect(sent.get('x-relay-key')).toBeNull();
    expect(sent.get('cookie')).toBeNull();
    expect(sent.get('x-forwarded-for')).toBeNull();
    for (const [, value] of sent) {
      expect(value).not.toContain(RELAY_KEY);
      expect(value).not.toContain(RELAY_KEY_2);
      expect(value).not.toContain('caller-cookie');
    }
  });
});

describe('fault 3: never an open proxy by accident', () => {
  test('loadConfig refuses to start without RELAY_KEY', () => {
    for (const RELAY_KEY of [undefined, '', ',', '  ']) {
      expect(() => loadConfig({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY })).toThrow(ConfigError);
    }
  });

  test('so does the test relay, the same way main.ts builds one', async () => {
    await expect(startTestRelay({ RELAY_KEY: '' })).rejects.toThrow(/RELAY_AUTH=off/);
  });
});

describe('fault 4: body size caps', () => {
  const bigJson = JSON.stringify({ model: 'text-embedding-3-small', input: 'x'.repeat(2000) });

  test('a JSON body over MAX_JSON_BODY_BYTES (Content-Length) → 413 before anything goes upstream', async () => {
    catchAllUpstream();
    const mark = relay.logs.length;
    const res = await raw(relay.url, {
      method: 'POST',
      path: '/v1/embeddings',
      headers: { ...AUTH, 'content-type': 'application/json', 'content-length': Buffer.byteLength(bigJson) },
      body: bigJson,
    });
    expect(res.status).toBe(413);
    const error = expectOpenAIErrorBody(JSON.parse(res.body));
    expect(error.message).toMatch(/1000/);
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(upstream).toEqual([]);
    await expectCleanFinish(relay, mark, 413);
  });

  test('a chunked JSON body (no Content-Length) that grows over the cap → 413', async () => {
    catchAllUpstream();
    const chunks = Array.from({ length: 6 }, (_, i) => Buffer.from((i === 0 ? '{"input":"' : '') + 'y'.repeat(400)));
    const res = await raw(relay.url, {
      method: 'POST',
      path: '/v1/embeddings',
      headers: { ...AUTH, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      chunks,
    });
    expect(res.status).toBe(413);
    expectOpenAIErrorBody(JSON.parse(res.body));
  });

  test('a body under the cap passes whole', async () => {
    let got = '';
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/embeddings`, async ({ request }) => {
        got = await request.text();
        return HttpResponse.json({ object: 'list', data: [] });
      }),
    );
    const small = JSON.stringify({ model: 'm', input: 'z'.repeat(900) });
    const res = await raw(relay.url, { method: 'POST', path: '/v1/embeddings', headers: { ...AUTH, 'content-type': 'application/json' }, body: small });
    expect(res.status).toBe(200);
    expect(got).toBe(small);
  });

  test('a multipart upload over MAX_UPLOAD_BYTES (and the 256 KiB framing allowance) → 413 with nothing sent upstream', async () => {
    catchAllUpstream();
    const body = Buffer.alloc(200_000 + 256 * 1024 + 1, 0x61);
    const res = await raw(relay.url, {
      method: 'POST',
      path: '/v1/files',
      headers: { ...AUTH, 'content-type': 'multipart/form-data; boundary=xyz', 'content-length': body.length },
      body,
    });
    expect(res.status).toBe(413);
    expect(upstream).toEqual([]);
  });
});

describe('fault 5: multipart bodies are labelled multipart and arrive whole', () => {
  function multipart(boundary: string, file: Buffer, fields: Record<string, string>): Buffer {
    const parts: Buffer[] = [];
    for (const [name, value] of Object.entries(fields)) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
    }
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="data.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    );
    return Buffer.concat(parts);
  }

  for (const [path, fields] of [
    ['/v1/files', { purpose: 'assistants' }],
    ['/v1/uploads/upload_abc/parts', {}],
  ] as const) {
    test(`POST ${path}: upstream sees the caller's multipart content-type and every byte`, async () => {
      let seenType = '';
      let seenBody = Buffer.alloc(0);
      server.use(
        mswHttp.post(`${OPENAI_BASE}${path}`, async ({ request }) => {
          seenType = request.headers.get('content-type') ?? '';
          seenBody = Buffer.from(await request.arrayBuffer());
          return HttpResponse.json({ id: 'file-new', object: 'file' });
        }),
      );
      const boundary = '----relaytest' + randomBytes(8).toString('hex');
      const body = multipart(boundary, randomBytes(50_000), fields);
      const contentType = `multipart/form-data; boundary=${boundary}`;
      const res = await raw(relay.url, { method: 'POST', path, headers: { ...AUTH, 'content-type': contentType, 'content-length': body.length }, body });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ id: 'file-new', object: 'file' });
      expect(seenType).toBe(contentType);
      expect(seenBody.equals(body)).toBe(true);
      expect(upstream).toHaveLength(1);
    });
  }

  test('a fetch FormData upload (as SDKs send it) arrives as multipart with its file', async () => {
    let seenType = '';
    let seenFile: { name: string; size: number; purpose: unknown } | undefined;
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/files`, async ({ request }) => {
        seenType = request.headers.get('content-type') ?? '';
        const form = await request.formData();
        const file = form.get('file') as File;
        seenFile = { name: file.name, size: file.size, purpose: form.get('purpose') };
        return HttpResponse.json({ id: 'file-2' });
      }),
    );
    const form = new FormData();
    form.set('purpose', 'batch');
    form.set('file', new Blob([randomBytes(12_345)]), 'input.jsonl');
    const res = await relay.call('/v1/files', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(seenType).toMatch(/^multipart\/form-data; boundary=/);
    expect(seenFile).toEqual({ name: 'input.jsonl', size: 12_345, purpose: 'batch' });
  });

  test('a multipart-only route refuses a body labelled application/json (415), nothing sent upstream', async () => {
    catchAllUpstream();
    const mark = relay.logs.length;
    const res = await raw(relay.url, {
      method: 'POST',
      path: '/v1/files',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: '{"purpose":"assistants"}',
    });
    expect(res.status).toBe(415);
    expectOpenAIErrorBody(JSON.parse(res.body));
    expect(upstream).toEqual([]);
    await expectCleanFinish(relay, mark, 415);
  });
});

describe('fault 6: honest status codes, real upstream calls', () => {
  for (const status of [500, 503]) {
    test(`upstream ${status} on /v1/embeddings → ${status} to the caller, with upstream's error body`, async () => {
      const upstreamError = { error: { message: `The server had an error (${status}).`, type: 'server_error', param: null, code: null } };
      server.use(mswHttp.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(upstreamError, { status })));
      const res = await relay.call('/v1/embeddings', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'text-embedding-3-small', input: 'hi' }),
      });
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual(upstreamError);
      expect(upstream.length).toBeGreaterThanOrEqual(1);
    });
  }

  test('upstream 429 with retry-after comes back as 429 with retry-after', async () => {
    server.use(
      mswHttp.post(`${OPENAI_BASE}/v1/embeddings`, () =>
        HttpResponse.json({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }, { status: 429, headers: { 'retry-after': '3' } }),
      ),
    );
    const res = await relay.call('/v1/embeddings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","input":"x"}' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
  });

  test('/v1/models is forwarded to OpenAI, not a local stub', async () => {
    const list = { object: 'list', data: [{ id: 'model-only-upstream-knows', object: 'model', created: 42, owned_by: 'me' }] };
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json(list)));
    const res = await relay.call('/v1/models');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(list);
    expect(upstream.map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['GET /v1/models']);
  });

  test('/v1/models upstream 401 is an honest 502 upstream_auth_failed (no stub hiding it, and not blamed on the caller\'s key)', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ error: { message: 'bad key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }, { status: 401 })));
    const res = await relay.call('/v1/models');
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upstream_auth_failed');
    expect(upstream.map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['GET /v1/models']);
  });
});

describe('fault 7: query strings pass intact', () => {
  test('repeated parameters arrive repeated and in order', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/responses/:id/input_items`, () => HttpResponse.json({ object: 'list', data: [] })));
    const search = '?include=b&limit=5&include=a&include=b&include%5B%5D=file_search_call.results&include%5B%5D=message.input_image.image_url&order=asc';
    const res = await raw(relay.url, { path: `/v1/responses/resp_1/input_items${search}`, headers: AUTH });
    expect(res.status).toBe(200);
    expect(upstream).toHaveLength(1);
    expect(upstream[0].url.search).toBe(search);
    expect(upstream[0].url.searchParams.getAll('include')).toEqual(['b', 'a', 'b']);
    expect(upstream[0].url.searchParams.getAll('include[]')).toEqual(['file_search_call.results', 'message.input_image.image_url']);
  });

  test('list values are not stringified and encoded characters stay encoded', async () => {
    server.use(mswHttp.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ object: 'list', data: [] })));
    const search = '?purpose=fine-tune&after=file%2Dabc&metadata%5Bk%5D=v%20w&q=a+b';
    const res = await raw(relay.url, { path: `/v1/files${search}`, headers: AUTH });
    expect(res.status).toBe(200);
    expect(upstream[0].url.search).toBe(search);
    expect(upstream[0].url.search).not.toContain('[1');
  });
});

describe('fault 8: CORS preflights are not rejected by auth', () => {
  for (const path of ['/v1/responses', '/v1/files/file-1/content', '/v1/models']) {
    test(`OPTIONS ${path} from https://chatgpt.com without a key → 204 with allow-origin, nothing upstream`, async () => {
      catchAllUpstream();
      const res = await fetch(relay.url + path, {
        method: 'OPTIONS',
        headers: { origin: 'https://chatgpt.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://chatgpt.com');
      expect(upstream).toEqual([]);
    });
  }
});

describe('fault 9: deadlines fit a GPT Action budget', () => {
  test('an upstream that never answers → 504 in OpenAI shape, well under 2 s (UPSTREAM_TIMEOUT_SHORT_MS=300)', async () => {
    const silent = await startLocalUpstream(() => {
      /* never answers */
    });
    const local = await startTestRelay({ OPENAI_BASE_URL: silent.baseUrl, UPSTREAM_TIMEOUT_SHORT_MS: '300' });
    try {
      const started = performance.now();
      const res = await local.call('/v1/models');
      const elapsed = performance.now() - started;
      expect(res.status).toBe(504);
      const error = expectOpenAIErrorBody(JSON.parse(await res.text()));
      expect(error.type).toBe('timeout_error');
      expect(res.headers.get('x-request-id')).toBeTruthy();
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(2000);
    } finally {
      await local.shutdown();
      await silent.close();
    }
  });

  test('an upstream that sends headers then stalls mid-body is cut, not waited on forever', async () => {
    const stalling = await startLocalUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"object":"list",');
    });
    const local = await startTestRelay({ OPENAI_BASE_URL: stalling.baseUrl, UPSTREAM_TIMEOUT_SHORT_MS: '300' });
    try {
      const started = performance.now();
      const outcome = await local
        .call('/v1/models')
        .then((res) => res.text())
        .then(
          (text) => `complete:${text}`,
          () => 'cut',
        );
      expect(outcome).toBe('cut'); // never a truncated body presented as a success
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await local.shutdown();
      await stalling.close();
    }
  });

  test('an unreachable upstream (closed port) → 502 in OpenAI shape', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const local = await startTestRelay({ OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` });
    try {
      const started = performance.now();
      const res = await local.call('/v1/models');
      expect(res.status).toBe(502);
      const error = expectOpenAIErrorBody(JSON.parse(await res.text()));
      expect(error.type).toBe('upstream_error');
      expect(res.headers.get('x-request-id')).toBeTruthy();
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      await local.shutdown();
    }
  });
});
