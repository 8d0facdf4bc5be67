import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningRelay } from '../src/server.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, PUBLIC_FILE_HOST_DNS, RELAY_KEY, startTestRelay } from './helpers/relay.ts';
import { makePng } from './helpers/files.ts';

/**
 * openaiFileIdRefs are written by the model, so every part of them is hostile until checked. Each refusal
 * here is a 4xx in OpenAI's error shape whose message says what went wrong, with ZERO calls to
 * api.openai.com — and, where the refusal comes before connecting, zero calls to the download host.
 */
const { server, upstream } = useMockOpenAI();

const FILES = 'https://files.oaiusercontent.com';
const MAX_BYTES = 1000;
const openaiCalls = () => upstream.filter((r) => r.url.host === 'api.openai.com');
const hostCalls = (host = 'files.oaiusercontent.com') => upstream.filter((r) => r.url.host === host);


const SMALL_PNG = makePng(4, 4); // well under MAX_BYTES
const BIG_PNG = makePng(32, 32); // ~4 KB, over MAX_BYTES
const SMALL_TEXT = Buffer.from('hello, file\n'.repeat(10));
const BIG_TEXT = Buffer.from('x'.repeat(2 * MAX_BYTES));
const PDF = Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n');
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(200)]);
expect(SMALL_PNG.length).toBeLessThan(MAX_BYTES);
expect(BIG_PNG.length).toBeGreaterThan(MAX_BYTES);

// ------------------------------------------------------------------------------------------ relay

/** DNS answers for download hosts, by host name; anything else resolves to a public TEST-NET address. */
let dnsAnswers: Record<string, string[]> = {};
const lookups: string[] = [];
let relay: RunningRelay;
let blobDir: string;

beforeAll(async () => {
  blobDir = mkdtempSync(join(tmpdir(), 'relay-ssrf-blobs-'));
  relay = await startTestRelay(
    { BLOB_DIR: blobDir, LOG_LEVEL: 'silent', ACTION_FILE_MAX_BYTES: String(MAX_BYTES), ACTION_FILE_TIMEOUT_MS: '5000' },
    {
      resolveFileHost: async (host) => {
        lookups.push(host);
        return dnsAnswers[host] ?? ['203.0.113.10'];
      },
    },
  );
});
afterAll(async () => {
  await relay?.shutdown();
  rmSync(blobDir, { recursive: true, force: true });
});

function call(path: string, body: unknown): Promise<Response> {
  return fetch(relay.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function refusal(res: Response, status: number | '4xx') {
  const text = await res.text();
  if (status === '4xx') {
    expect(res.status, text).toBeGreaterThanOrEqual(400);
    expect(res.status, text).toBeLessThan(500);
  } else expect(res.status, text).toBe(status);
  const body = JSON.parse(text);
  expect(body).toEqual({
    error: {
      message: expect.any(String),
      type: expect.any(String),
      param: expect.toSatisfy((p: unknown) => p === null || typeof p === 'string'),
      code: expect.toSatisfy((c: unknown) => c === null || typeof c === 'string'),
    },
  });
  expect(openaiCalls(), 'calls to api.openai.com').toEqual([]);
  return body.error as { message: string; type: string; param: string | null; code: string | null };
}

const ref = (link: string, name = 'photo.png', mime = 'image/png') => ({ name, id: 'file-user1', mime_type: mime, download_link: link });

/** One openaiFileIdRefs entry through either operation; `kind` picks a file type the operation accepts. */
const OPERATIONS = [
  {
    op: 'editActionImage',
    send: (refs: object[]) => call('/v1/actions/images/edits', { prompt: 'make it blue', openaiFileIdRefs: refs }),
    name: 'photo.png',
    mime: 'image/png',
    small: SMALL_PNG,
    big: BIG_PNG,
  },
  {
    op: 'uploadActionFiles',
    send: (refs: object[]) => call('/v1/actions/files', { purpose: 'user_data', openaiFileIdRefs: refs }),
    name: 'notes.txt',
    mime: 'text/plain',
    small: SMALL_TEXT,
    big: BIG_TEXT,
  },
] as const;

/** The file host, answering each path with a handler. */
function fileHost(routes: Record<string, (request: Request) => Response | Promise<Response>>) {
  server.use(
    http.get(`${FILES}/*`, ({ request }) => {
      const path = new URL(request.url).pathname;
      const handler = routes[path];
      return handler ? handler(request) : new HttpResponse('no such file', { status: 404 });
    }),
  );
}

const bytes = (body: Buffer, headers: Record<string, string> = {}) =>
  new HttpResponse(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers } });

/** A body without Content-Length, in small chunks. */
const streamed = (body: Buffer) =>
  new HttpResponse(
    new ReadableStream<Uint8Array>({
      async start(controller) {
        for (let i = 0; i < body.length; i += 256) {
          controller.enqueue(new Uint8Array(body.subarray(i, i + 256)));
          await new Promise((r) => setTimeout(r, 1));
        }
        controller.close();
      },
    }),
    { headers: { 'content-type': 'application/octet-stream' } },
  );

// ------------------------------------------------------------------------------------------ per operation

describe.each(OPERATIONS)('$op', ({ send, name, mime, small, big }) => {
  const link = (path: string) => `${FILES}${path}?se=2030-01-01T00%3A00%3A00Z&sig=abc`;
  const one = (downloadLink: string) => send([ref(downloadLink, name, mime)]);

  test('an http:// link → 400 (must be https), nothing fetched', async () => {
    lookups.length = 0;
    const err = await refusal(await one('http://files.oaiusercontent.com/file-abc?se=1'), 400);
    expect(err.message).toMatch(/https/);
    expect(err.param).toBe('openaiFileIdRefs');
    expect(upstream).toEqual([]);
    expect(lookups).not.toContain('files.oaiusercontent.com');
  });

  test.each([
    ['https://evil.example.com/x', /evil\.example\.com.*not an allowed file host/],
    ['https://files.oaiusercontent.com.evil.com/x', /not an allowed file host/],
    ['https://oaiusercontent.com.attacker.net/file-abc', /not an allowed file host/],
    ['https://169.254.169.254/latest/meta-data/', /IP address/],
    ['https://[::1]/x', /IP address/],
    ['https://files.oaiusercontent.com:8443/file-abc', /port/],
    ['https://user:secret@files.oaiusercontent.com/file-abc', /user name or password/],
    ['file:///etc/passwd', /https/],
    ['not a url', /not a valid URL/],
  ])('a link off the allowlist (%s) → 400 saying why, nothing fetched', async (downloadLink, why) => {
    lookups.length = 0;
    const err = await refusal(await one(downloadLink), 400);
    expect(err.message).toMatch(why);
    expect(err.message).toMatch(/attach/);
    expect(upstream).toEqual([]);
    expect(lookups).toEqual([]);
  });

  test.each([[['10.0.0.5']], [['127.0.0.1']], [['169.254.169.254']], [['::1']], [['::ffff:127.0.0.1']], [['fd00::1']], [['203.0.113.10', '192.168.1.1']]])(
    'a DNS answer in a private range (%j) → 400 before connecting',
    async (addresses) => {
      dnsAnswers = { 'files.oaiusercontent.com': addresses };
      try {
        fileHost({ [`/${name}`]: () => bytes(small) });
        const err = await refusal(await one(link(`/${name}`)), 400);
        expect(err.message).toMatch(/private or internal network address/);
        expect(err.code).toBe('file_host_forbidden');
        expect(upstream).toEqual([]);
      } finally {
        dnsAnswers = {};
      }
    },
  );

  test.each([
    ['https://evil.example.com/stolen', /not an allowed file host/],
    ['http://files.oaiusercontent.com/file-abc', /https/],
    ['https://169.254.169.254/latest/meta-data/iam', /IP address/],
  ])('a redirect off the allowlist (302 → %s) → 400, the target never fetched', async (location, why) => {
    fileHost({ '/moved': () => new HttpResponse(null, { status: 302, headers: { location } }) });
    const err = await refusal(await one(link('/moved')), 400);
    expect(err.message).toMatch(/redirected/);
    expect(err.message).toMatch(why);
    expect(hostCalls()).toHaveLength(1);
    expect(upstream).toHaveLength(1);
  });

  test('a redirect to an allowed host that resolves privately → 400, the target never fetched', async () => {
    dnsAnswers = { 'internal.oaiusercontent.com': ['10.1.2.3'] };
    try {
      fileHost({ '/moved': () => new HttpResponse(null, { status: 302, headers: { location: 'https://internal.oaiusercontent.com/admin' } }) });
      const err = await refusal(await one(link('/moved')), 400);
      expect(err.message).toMatch(/private or internal network address/);
      expect(hostCalls('internal.oaiusercontent.com')).toEqual([]);
      expect(upstream).toHaveLength(1);
    } finally {
      dnsAnswers = {};
    }
  });

  test('too many redirects → 400 after at most ACTION_FILE_MAX_REDIRECTS + 1 requests', async () => {
    server.use(
      http.get(`${FILES}/loop/:n`, ({ params }) => new HttpResponse(null, { status: 302, headers: { location: `/loop/${Number(params.n) + 1}` } })),
    );
    const err = await refusal(await one(link('/loop/0')), 400);
    expect(err.message).toMatch(/redirected .* more than 3 times/);
    expect(err.code).toBe('file_too_many_redirects');
    expect(hostCalls()).toHaveLength(4);
  });

  test('a file over ACTION_FILE_MAX_BYTES with Content-Length → 413', async () => {
    fileHost({ [`/${name}`]: () => bytes(big) });
    const err = await refusal(await one(link(`/${name}`)), 413);
    expect(err.message).toMatch(/limit/);
    expect(err.message).toContain('1000 bytes');
  });

  test('a file over ACTION_FILE_MAX_BYTES without Content-Length → 413', async () => {
    fileHost({ [`/${name}`]: () => streamed(big) });
    const err = await refusal(await one(link(`/${name}`)), 413);
    expect(err.message).toMatch(/limit/);
  });

  test('an expired link (the file host answers 403) → 4xx asking the user to attach the file again', async () => {
    fileHost({ [`/${name}`]: () => new HttpResponse('<Error><Code>AuthenticationFailed</Code></Error>', { status: 403 }) });
    const err = await refusal(await one(link(`/${name}`)), '4xx');
    expect(err.message).toMatch(/expired/);
    expect(err.message).toMatch(/ask the user to attach the file again/i);
  });

  test('a 404 from the file host → 4xx asking the user to attach the file again', async () => {
    fileHost({});
    const err = await refusal(await one(link('/gone.png')), '4xx');
    expect(err.message).toMatch(/attach the file again/i);
  });

  test('more than 10 refs → 400, nothing fetched', async () => {
    fileHost({ [`/${name}`]: () => bytes(small) });
    const refs = Array.from({ length: 11 }, () => ref(link(`/${name}`), name, mime));
    const err = await refusal(await send(refs), 400);
    expect(`${err.message} ${err.param}`).toContain('openaiFileIdRefs');
    expect(upstream).toEqual([]);
  });

  test('a ref that is not an object with a download_link → 400, nothing fetched', async () => {
    await refusal(await send([{ name, id: 'file-1', mime_type: mime }]), 400);
    await refusal(await send([{ name, download_link: 42 }]), 400);
    expect(upstream).toEqual([]);
  });

  test('one good ref and one off-allowlist ref → 400 and nothing reaches OpenAI', async () => {
    fileHost({ [`/${name}`]: () => bytes(small) });
    // Should OpenAI be called anyway, it answers normally, so the failure shows the call rather than a 502.
    server.use(
      http.post(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ id: 'file-orphan', filename: name, bytes: small.length, purpose: 'user_data' })),
      http.post(`${OPENAI_BASE}/v1/images/edits`, () => HttpResponse.json({ data: [{ b64_json: SMALL_PNG.toString('base64') }] })),
    );
    const err = await refusal(await send([ref(link(`/${name}`), name, mime), ref('https://evil.example.com/x', name, mime)]), 400);
    expect(err.message).toMatch(/not an allowed file host/);
    expect(hostCalls('evil.example.com')).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------ types

describe('wrong file types (judged from the bytes)', () => {
  const link = (path: string) => `${FILES}${path}?se=1&sig=abc`;

  test('a PDF where an image is required (editActionImage) → 415 naming both', async () => {
    fileHost({ '/photo.png': () => bytes(PDF) });
    // The name and mime_type claim PNG; the bytes are a PDF.
    const err = await refusal(await call('/v1/actions/images/edits', { prompt: 'x', openaiFileIdRefs: [ref(link('/photo.png'))] }), 415);
    expect(err.message).toMatch(/PDF/);
    expect(err.message).toMatch(/PNG/);
    expect(err.code).toBe('unsupported_file_type');
  });

  test('a JPEG as the mask (a PNG is required) → 415', async () => {
    fileHost({ '/photo.png': () => bytes(SMALL_PNG), '/mask.jpg': () => bytes(JPEG) });
    const err = await refusal(
      await call('/v1/actions/images/edits', { prompt: 'x', mask_index: 1, openaiFileIdRefs: [ref(link('/photo.png')), ref(link('/mask.jpg'), 'mask.jpg', 'image/jpeg')] }),
      415,
    );
    expect(err.message).toMatch(/JPEG/);
  });

  test('a PDF as an image to edit → 415', async () => {
    fileHost({ '/start.png': () => bytes(PDF) });
    const err = await refusal(await call('/v1/actions/images/edits', { prompt: 'x', openaiFileIdRefs: [ref(link('/start.png'), 'start.png')] }), 415);
    expect(err.message).toMatch(/PDF/);
  });

  test('an empty file → 400', async () => {
    fileHost({ '/empty.txt': () => bytes(Buffer.alloc(0)) });
    const err = await refusal(await call('/v1/actions/files', { openaiFileIdRefs: [ref(link('/empty.txt'), 'empty.txt', 'text/plain')] }), 400);
    expect(err.message).toMatch(/empty/);
  });
});

// A sanity check that the same relay does accept a good file (so the refusals above are not a blanket "no").
test('control: an allowed https link with a public DNS answer and a small file is uploaded', async () => {
  fileHost({ '/notes.txt': () => bytes(SMALL_TEXT) });
  let got: Buffer | undefined;
  server.use(
    http.post(`${OPENAI_BASE}/v1/files`, async ({ request }) => {
      got = Buffer.from(await ((await request.formData()).get('file') as File).arrayBuffer());
      return HttpResponse.json({ id: 'file-ok', filename: 'notes.txt', bytes: SMALL_TEXT.length, purpose: 'user_data' });
    }),
  );
  const res = await call('/v1/actions/files', { openaiFileIdRefs: [ref(`${FILES}/notes.txt?se=1`, 'notes.txt', 'text/plain')] });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(got?.equals(SMALL_TEXT)).toBe(true);
});
