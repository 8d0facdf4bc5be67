import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACTION_MODEL_DEFAULTS } from '../src/config.ts';
import type { RunningRelay } from '../src/server.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, PUBLIC_FILE_HOST_DNS, RELAY_KEY, startTestRelay } from './helpers/relay.ts';
import { makePng } from './helpers/files.ts';
import { expectOpenAIError } from './helpers/assertions.ts';
import { withFastSleeps, withSkippableDate } from './helpers/clock.ts';

/**
 * The GPT Action operations end to end: a real relay socket, the relay key, MSW playing OpenAI and
 * ChatGPT's file host (files.oaiusercontent.com, answered by fixed public DNS).
 */
const { server, upstream } = useMockOpenAI();

const FILES = 'https://files.oaiusercontent.com';
const openaiCalls = () => upstream.filter((r) => r.url.host === 'api.openai.com');
const fileHostCalls = () => upstream.filter((r) => r.url.host === 'files.oaiusercontent.com');

// ------------------------------------------------------------------------------------------ fixtures


const PNG = makePng(64, 64);
const MASK = makePng(16, 16);
const TEXT = Buffer.from('Quarterly notes\nline two\n'.repeat(20));
const PDF = Buffer.concat([Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n', 'latin1'), randomBytes(2000)]);

/** Serves `bytes` at files.oaiusercontent.com/<name> (any query), with Content-Length. */
function fileHost(files: Record<string, Buffer>) {
  server.use(
    http.get(`${FILES}/*`, ({ request }) => {
      const name = new URL(request.url).pathname.slice(1);
      const body = files[name];
      if (!body) return new HttpResponse('not found', { status: 404 });
      return new HttpResponse(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } });
    }),
  );
}
const ref = (name: string, mime: string) => ({ name, id: `file-${name}`, mime_type: mime, download_link: `${FILES}/${name}?se=2030-01-01T00%3A00%3A00Z&sp=r&sig=abc` });

// ------------------------------------------------------------------------------------------ relays

interface ActionRelay extends RunningRelay {
  blobDir: string;
  call(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}
const started: ActionRelay[] = [];
const dirs: string[] = [];

async function startActionRelay(env: Record<string, string> = {}, blobDir?: string): Promise<ActionRelay> {
  const dir = blobDir ?? mkdtempSync(join(tmpdir(), 'relay-action-blobs-'));
  if (!blobDir) dirs.push(dir);
  const relay = await startTestRelay({ BLOB_DIR: dir, LOG_LEVEL: 'silent', ...env }, PUBLIC_FILE_HOST_DNS);
  const wrapped: ActionRelay = {
    ...relay,
    blobDir: dir,
    call(path, init = {}) {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${RELAY_KEY}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(relay.url + path, { ...rest, headers, ...(json !== undefined ? { method: rest.method ?? 'POST', body: JSON.stringify(json) } : {}) });
    },
  };
  started.push(wrapped);
  return wrapped;
}

let relay: ActionRelay;
beforeAll(async () => {
  relay = await startActionRelay();
});
afterAll(async () => {
  for (const r of started) await r.shutdown();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Asserts OpenAI's error shape and returns the error object. */

/** An error answer in OpenAI's shape whose message is a sentence. */
const openaiError = (res: Response, status: number) => expectOpenAIError(res, status, { minMessageLength: 11 });

async function ok(res: Response): Promise<any> {
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(text.length).toBeLessThan(100_000);
  return JSON.parse(text);
}

/** A request with its target sent byte for byte (no client-side URL normalisation), answered as a Response. */
function rawCall(r: RunningRelay, method: string, path: string, body?: string): Promise<Response> {
  const { hostname, port } = new URL(r.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers: { authorization: `Bearer ${RELAY_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Fetches a relay blob link WITHOUT a relay key. */
async function fetchLink(url: string) {
  const res = await fetch(url);
  return { res, bytes: Buffer.from(await res.arrayBuffer()) };
}

function expectRelayLink(url: string, base = relay.url) {
  expect(url.startsWith(`${base}/v1/relay/blobs/`), url).toBe(true);
  expect(new URL(url).searchParams.get('expires')).toMatch(/^\d+$/);
  expect(new URL(url).searchParams.get('signature')).toMatch(/^[A-Za-z0-9_-]{43}$/);
}

function expectAboutAnHourAhead(expiresAt: unknown) {
  expect(Number.isInteger(expiresAt)).toBe(true);
  const ahead = (expiresAt as number) - Date.now() / 1000;
  expect(ahead).toBeGreaterThan(3600 - 60);
  expect(ahead).toBeLessThan(3600 + 5);
}

const noLongBase64 = (text: string) => expect(text).not.toMatch(/[A-Za-z0-9+/=]{200,}/);

const message = (...parts: string[]) => ({ type: 'message', role: 'assistant', content: parts.map((text) => ({ type: 'output_text', text, annotations: [] })) });

// ------------------------------------------------------------------------------------------ responses

describe('createActionResponse / getActionResponse / waitForActionResponse', () => {
  test('starts in background with store, default model and web_search, polls until completed, joins the output text', async () => {
    let created: any;
    let auth = '';
    let polls = 0;
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        created = await request.json();
        auth = request.headers.get('authorization') ?? '';
        return HttpResponse.json({ id: 'resp_1', object: 'response', status: 'queued', output: [] });
      }),
      http.get(`${OPENAI_BASE}/v1/responses/resp_1`, () => {
        polls++;
        return HttpResponse.json({
          id: 'resp_1',
          object: 'response',
          status: 'completed',
          output: [{ type: 'reasoning', summary: [] }, { type: 'web_search_call', id: 'ws_1' }, message('Hello', 'world'), message('Bye')],
        });
      }),
    );
    const answer = await ok(await withFastSleeps(() => relay.call('/v1/actions/responses', { json: { input: 'Say hello', web_search: true } })));
    expect(created).toMatchObject({ model: ACTION_MODEL_DEFAULTS.ACTION_DEFAULT_MODEL, input: 'Say hello', background: true, store: true, tools: [{ type: 'web_search' }] });
    expect(auth).toBe(`Bearer ${OPENAI_KEY}`);
    expect(polls).toBe(1);
    expect(answer).toEqual({ id: 'resp_1', status: 'completed', output_text: 'Hello\n\nworld\n\nBye' });
  });

  test('no web_search → no tools; the given model and instructions are sent', async () => {
    let created: any;
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        created = await request.json();
        return HttpResponse.json({ id: 'resp_2', status: 'completed', output: [message('done')] });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/responses', { json: { input: 'x', model: 'gpt-5', instructions: 'be brief' } }));
    expect(created).toMatchObject({ model: 'gpt-5', instructions: 'be brief', background: true, store: true });
    expect(created.tools).toBeUndefined();
    expect(answer).toEqual({ id: 'resp_2', status: 'completed', output_text: 'done' });
    expect(openaiCalls()).toHaveLength(1);
  });

  test('wait_seconds 0 → the handle at once, no polling', async () => {
    server.use(http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json({ id: 'resp_3', status: 'queued', output: [] })));
    const t0 = Date.now();
    const answer = await ok(await relay.call('/v1/actions/responses', { json: { input: 'x', wait_seconds: 0 } }));
    expect(Date.now() - t0).toBeLessThan(900);
    expect(answer).toEqual({ id: 'resp_3', status: 'queued', poll_after_seconds: expect.any(Number) });
    expect(answer.poll_after_seconds).toBeGreaterThan(0);
    expect(openaiCalls().map((r) => r.method)).toEqual(['POST']);
  });

  test('an answer that stays in_progress with wait_seconds 2 → status and poll_after_seconds after about 2 s', async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json({ id: 'resp_4', status: 'in_progress', output: [] })),
      http.get(`${OPENAI_BASE}/v1/responses/resp_4`, () => HttpResponse.json({ id: 'resp_4', status: 'in_progress', output: [] })),
    );
    // Elapsed on the relay's (fast) clock: it polled for the 2 s asked, without the test waiting them.
    const { res, elapsed } = await withFastSleeps(async () => {
      const t0 = Date.now();
      const res = await relay.call('/v1/actions/responses', { json: { input: 'long job', wait_seconds: 2 } });
      return { res, elapsed: Date.now() - t0 };
    });
    const answer = await ok(res);
    expect(answer).toEqual({ id: 'resp_4', status: 'in_progress', poll_after_seconds: expect.any(Number) });
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(3_500);
    expect(openaiCalls().filter((r) => r.method === 'GET').length).toBeGreaterThanOrEqual(1);
  });

  test('getActionResponse: completed, failed (with the error message), incomplete (with the reason)', async () => {
    server.use(
      http.get(`${OPENAI_BASE}/v1/responses/:id`, ({ params }) => {
        if (params.id === 'resp_ok') return HttpResponse.json({ id: 'resp_ok', status: 'completed', output: [message('the answer')], usage: { total_tokens: 12 } });
        if (params.id === 'resp_bad') return HttpResponse.json({ id: 'resp_bad', status: 'failed', output: [], error: { code: 'server_error', message: 'The model crashed.' } });
        return HttpResponse.json({ id: 'resp_cut', status: 'incomplete', output: [message('partial')], incomplete_details: { reason: 'max_output_tokens' } });
      }),
    );
    expect(await ok(await relay.call('/v1/actions/responses/resp_ok'))).toEqual({ id: 'resp_ok', status: 'completed', output_text: 'the answer', usage: { total_tokens: 12 } });
    expect(await ok(await relay.call('/v1/actions/responses/resp_bad'))).toMatchObject({ id: 'resp_bad', status: 'failed', error: 'The model crashed.' });
    const cut = await ok(await relay.call('/v1/actions/responses/resp_cut'));
    expect(cut).toMatchObject({ id: 'resp_cut', status: 'incomplete', output_text: 'partial' });
    expect(cut.error).toContain('max_output_tokens');
    expect(openaiCalls().map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      'GET /v1/responses/resp_ok',
      'GET /v1/responses/resp_bad',
      'GET /v1/responses/resp_cut',
    ]);
  });

  test('waitForActionResponse polls until completed', async () => {
    let polls = 0;
    server.use(
      http.get(`${OPENAI_BASE}/v1/responses/resp_w`, () => {
        polls++;
        return polls < 2
          ? HttpResponse.json({ id: 'resp_w', status: 'in_progress', output: [] })
          : HttpResponse.json({ id: 'resp_w', status: 'completed', output: [message('finally')] });
      }),
    );
    const answer = await ok(await withFastSleeps(() => relay.call('/v1/actions/responses/resp_w/wait', { json: { timeout_seconds: 5 } })));
    expect(answer).toEqual({ id: 'resp_w', status: 'completed', output_text: 'finally' });
    expect(polls).toBe(2);
  });

  test('waitForActionResponse on a failed answer returns its error without waiting', async () => {
    server.use(http.get(`${OPENAI_BASE}/v1/responses/resp_f`, () => HttpResponse.json({ id: 'resp_f', status: 'failed', output: [], error: { message: 'Quota exhausted.' } })));
    const t0 = Date.now();
    const answer = await ok(await relay.call('/v1/actions/responses/resp_f/wait', { json: {} }));
    expect(Date.now() - t0).toBeLessThan(900);
    expect(answer).toMatchObject({ id: 'resp_f', status: 'failed', error: 'Quota exhausted.' });
  });
});

// ------------------------------------------------------------------------------------------ images

describe('generateActionImage / editActionImage', () => {
  test('b64_json upstream → relay links, no base64 in the answer; the link serves the exact PNG keyless', async () => {
    let sent: any;
    server.use(
      http.post(`${OPENAI_BASE}/v1/images/generations`, async ({ request }) => {
        sent = await request.json();
        return HttpResponse.json({ created: 1, data: [{ b64_json: PNG.toString('base64'), revised_prompt: 'a red cat' }], output_format: 'png', usage: { total_tokens: 5 } });
      }),
    );
    const res = await relay.call('/v1/actions/images/generations', { json: { prompt: 'a cat', size: '1024x1024' } });
    const text = await res.clone().text();
    const answer = await ok(res);
    expect(sent).toMatchObject({ prompt: 'a cat', model: ACTION_MODEL_DEFAULTS.ACTION_IMAGE_MODEL, size: '1024x1024' });
    expect(answer.images).toHaveLength(1);
    expect(answer.revised_prompt).toBe('a red cat');
    const [image] = answer.images;
    expectRelayLink(image.url);
    expect(image.mime_type).toBe('image/png');
    expectAboutAnHourAhead(image.expires_at);
    noLongBase64(text);
    expect(text).not.toContain(PNG.toString('base64').slice(0, 40));
    expect(text).not.toContain('b64_json');

    const { res: blob, bytes } = await fetchLink(image.url);
    expect(blob.status).toBe(200);
    expect(blob.headers.get('content-type')).toBe('image/png');
    expect(blob.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(bytes.equals(PNG)).toBe(true);
  });

  test('two images (n: 2) → two distinct links', async () => {
    const second = makePng(8, 8);
    server.use(
      http.post(`${OPENAI_BASE}/v1/images/generations`, () =>
        HttpResponse.json({ data: [{ b64_json: PNG.toString('base64') }, { b64_json: second.toString('base64') }] }),
      ),
    );
    const answer = await ok(await relay.call('/v1/actions/images/generations', { json: { prompt: 'two cats', n: 2 } }));
    expect(answer.images).toHaveLength(2);
    expect(answer.images[0].url).not.toBe(answer.images[1].url);
    expect((await fetchLink(answer.images[1].url)).bytes.equals(second)).toBe(true);
  });

  test('edit: image + mask downloaded from the file host → multipart upstream with the exact bytes; answer has links', async () => {
    fileHost({ 'photo.png': PNG, 'mask.png': MASK });
    let form: FormData | undefined;
    let contentType = '';
    const result = makePng(8, 8);
    server.use(
      http.post(`${OPENAI_BASE}/v1/images/edits`, async ({ request }) => {
        contentType = request.headers.get('content-type') ?? '';
        form = await request.formData();
        return HttpResponse.json({ data: [{ b64_json: result.toString('base64') }] });
      }),
    );
    const res = await relay.call('/v1/actions/images/edits', {
      json: { prompt: 'add a hat', mask_index: 1, openaiFileIdRefs: [ref('photo.png', 'image/png'), ref('mask.png', 'image/png')] },
    });
    const text = await res.clone().text();
    const answer = await ok(res);
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(form!.get('prompt')).toBe('add a hat');
    expect(form!.get('model')).toBe(ACTION_MODEL_DEFAULTS.ACTION_IMAGE_MODEL);
    const image = form!.get('image') as File;
    const mask = form!.get('mask') as File;
    expect(image).toBeInstanceOf(File);
    expect(mask).toBeInstanceOf(File);
    expect(image.name).toBe('photo.png');
    expect(image.type).toBe('image/png');
    expect(Buffer.from(await image.arrayBuffer()).equals(PNG)).toBe(true);
    expect(Buffer.from(await mask.arrayBuffer()).equals(MASK)).toBe(true);
    expect(fileHostCalls()).toHaveLength(2);
    expect(openaiCalls()).toHaveLength(1);

    expect(answer.images).toHaveLength(1);
    expectRelayLink(answer.images[0].url);
    noLongBase64(text);
    expect((await fetchLink(answer.images[0].url)).bytes.equals(result)).toBe(true);
  });

  test('edit: mask_index out of range → 400 naming mask_index, nothing downloaded, no OpenAI call', async () => {
    fileHost({ 'photo.png': PNG, 'mask.png': MASK });
    const err = await openaiError(
      await relay.call('/v1/actions/images/edits', {
        json: { prompt: 'add a hat', mask_index: 5, openaiFileIdRefs: [ref('photo.png', 'image/png'), ref('mask.png', 'image/png')] },
      }),
      400,
    );
    expect(err.param).toBe('mask_index');
    expect(err.message).toContain('mask_index');
    expect(upstream).toHaveLength(0);
  });

  test('edit: a mask_index with only one attached file → 400', async () => {
    fileHost({ 'photo.png': PNG });
    const err = await openaiError(
      await relay.call('/v1/actions/images/edits', { json: { prompt: 'x', mask_index: 0, openaiFileIdRefs: [ref('photo.png', 'image/png')] } }),
      400,
    );
    expect(err.param).toBe('mask_index');
    expect(upstream).toHaveLength(0);
  });
});

// ------------------------------------------------------------------------------------------ files

describe('uploadActionFiles / listActionFiles / getActionFileContent', () => {
  function filesUpstream() {
    const uploads: { purpose: FormDataEntryValue | null; file: File }[] = [];
    const batches: { id: string; body: any }[] = [];
    server.use(
      http.post(`${OPENAI_BASE}/v1/files`, async ({ request }) => {
        const form = await request.formData();
        const file = form.get('file') as File;
        uploads.push({ purpose: form.get('purpose'), file });
        return HttpResponse.json({ id: `file-up${uploads.length}`, object: 'file', filename: file.name, bytes: file.size, purpose: form.get('purpose'), created_at: 1_700_000_000 });
      }),
      http.post(`${OPENAI_BASE}/v1/vector_stores/:id/file_batches`, async ({ request, params }) => {
        batches.push({ id: String(params.id), body: await request.json() });
        return HttpResponse.json({ id: 'vsfb_1', object: 'vector_store.files_batch', status: 'in_progress' });
      }),
    );
    return { uploads, batches };
  }

  test('two refs → two multipart uploads with the purpose and exact bytes, then one file batch with both ids', async () => {
    fileHost({ 'notes.txt': TEXT, 'paper.pdf': PDF });
    const { uploads, batches } = filesUpstream();
    const answer = await ok(
      await relay.call('/v1/actions/files', {
        json: { purpose: 'assistants', vector_store_id: 'vs_abc', openaiFileIdRefs: [ref('notes.txt', 'text/plain'), ref('paper.pdf', 'application/pdf')] },
      }),
    );
    expect(uploads.map((u) => u.purpose)).toEqual(['assistants', 'assistants']);
    expect(uploads.map((u) => u.file.name)).toEqual(['notes.txt', 'paper.pdf']);
    expect(Buffer.from(await uploads[0].file.arrayBuffer()).equals(TEXT)).toBe(true);
    expect(Buffer.from(await uploads[1].file.arrayBuffer()).equals(PDF)).toBe(true);
    expect(uploads[1].file.type).toBe('application/pdf');
    expect(batches).toEqual([{ id: 'vs_abc', body: { file_ids: ['file-up1', 'file-up2'] } }]);
    expect(answer).toEqual({
      files: [
        { id: 'file-up1', filename: 'notes.txt', bytes: TEXT.length, purpose: 'assistants', created_at: 1_700_000_000 },
        { id: 'file-up2', filename: 'paper.pdf', bytes: PDF.length, purpose: 'assistants', created_at: 1_700_000_000 },
      ],
      vector_store_id: 'vs_abc',
    });
    expect(openaiCalls().map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['POST /v1/files', 'POST /v1/files', 'POST /v1/vector_stores/vs_abc/file_batches']);
  });

  test('default purpose is user_data; no vector store → no batch call', async () => {
    fileHost({ 'notes.txt': TEXT });
    const { uploads, batches } = filesUpstream();
    const answer = await ok(await relay.call('/v1/actions/files', { json: { openaiFileIdRefs: [ref('notes.txt', 'text/plain')] } }));
    expect(uploads.map((u) => u.purpose)).toEqual(['user_data']);
    expect(batches).toEqual([]);
    expect(answer.files).toHaveLength(1);
    expect(answer.files[0]).toMatchObject({ id: 'file-up1', purpose: 'user_data' });
    expect(answer.vector_store_id).toBeUndefined();
  });

  test('listActionFiles passes limit, after, purpose and order=desc; next_after is the last id when has_more', async () => {
    let query: URLSearchParams | undefined;
    server.use(
      http.get(`${OPENAI_BASE}/v1/files`, ({ request }) => {
        query = new URL(request.url).searchParams;
        return HttpResponse.json({
          object: 'list',
          data: [
            { id: 'file-b', object: 'file', filename: 'b.txt', bytes: 3, purpose: 'assistants', created_at: 2, status: 'processed' },
            { id: 'file-c', object: 'file', filename: 'c.txt', bytes: 4, purpose: 'assistants', created_at: 1, status: 'processed' },
          ],
          has_more: true,
        });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/files?limit=2&after=file-a&purpose=assistants'));
    expect(query?.get('limit')).toBe('2');
    expect(query?.get('after')).toBe('file-a');
    expect(query?.get('purpose')).toBe('assistants');
    expect(query?.get('order')).toBe('desc');
    expect(answer).toEqual({
      data: [
        { id: 'file-b', filename: 'b.txt', bytes: 3, purpose: 'assistants', created_at: 2 },
        { id: 'file-c', filename: 'c.txt', bytes: 4, purpose: 'assistants', created_at: 1 },
      ],
      has_more: true,
      next_after: 'file-c',
    });
  });

  test('listActionFiles without parameters: default limit, no next_after on the last page', async () => {
    let query: URLSearchParams | undefined;
    server.use(
      http.get(`${OPENAI_BASE}/v1/files`, ({ request }) => {
        query = new URL(request.url).searchParams;
        return HttpResponse.json({ object: 'list', data: [{ id: 'file-z', filename: 'z.txt', bytes: 1, purpose: 'user_data', created_at: 1 }], has_more: false });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/files'));
    expect(query?.get('order')).toBe('desc');
    expect(query?.get('limit')).toBe('20');
    expect(query?.has('after')).toBe(false);
    expect(answer).toEqual({ data: [{ id: 'file-z', filename: 'z.txt', bytes: 1, purpose: 'user_data', created_at: 1 }], has_more: false });
  });

  test.each([true, false])('the 100k guard: 100 files with 5,000-character names (upstream has_more %s) → a shorter page the model can continue from', async (upstreamHasMore) => {
    const files = Array.from({ length: 100 }, (_, i) => ({
      id: `file-${String(i).padStart(3, '0')}`,
      object: 'file',
      filename: `${String(i).padStart(3, '0')}-${'n'.repeat(5_000)}.txt`,
      bytes: 10,
      purpose: 'user_data',
      created_at: 1_700_000_000 - i,
    }));
    server.use(http.get(`${OPENAI_BASE}/v1/files`, () => HttpResponse.json({ object: 'list', data: files, has_more: upstreamHasMore })));
    const res = await relay.call('/v1/actions/files');
    const text = await res.clone().text();
    const answer = await ok(res);
    expect(text.length).toBeLessThan(100_000);
    expect(answer.truncated).toBe(true);
    expect(answer.data.length).toBeGreaterThan(0);
    expect(answer.data.length).toBeLessThan(100);
    // The items kept are the first ones, whole; continuing from next_after must not skip any file.
    expect(answer.data.map((f: { id: string }) => f.id)).toEqual(files.slice(0, answer.data.length).map((f) => f.id));
    expect(answer.has_more).toBe(true);
    expect(answer.next_after).toBe(answer.data[answer.data.length - 1].id);
  });

  test('getActionFileContent: a 1 KB file → openaiFileResponse with base64 content', async () => {
    const small = Buffer.from('a,b,c\n'.repeat(170)).subarray(0, 1024);
    server.use(
      http.get(`${OPENAI_BASE}/v1/files/file-small`, () => HttpResponse.json({ id: 'file-small', object: 'file', filename: 'table.csv', bytes: small.length, purpose: 'user_data' })),
      http.get(`${OPENAI_BASE}/v1/files/file-small/content`, () =>
        new HttpResponse(small, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(small.length) } }),
      ),
    );
    const answer = await ok(await relay.call('/v1/actions/files/file-small/content'));
    expect(answer.openaiFileResponse).toHaveLength(1);
    const [file] = answer.openaiFileResponse;
    expect(file).toMatchObject({ name: 'table.csv', mime_type: 'text/csv' });
    expect(Buffer.from(file.content, 'base64').equals(small)).toBe(true);
    expect(answer.url).toBeUndefined();
  });

  test('getActionFileContent: a 300 KB file → openaiFileResponse [link] plus url; the link serves the bytes', async () => {
    const big = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(300 * 1024)]);
    server.use(
      http.get(`${OPENAI_BASE}/v1/files/file-big`, () => HttpResponse.json({ id: 'file-big', object: 'file', filename: 'report.pdf', bytes: big.length, purpose: 'user_data' })),
      http.get(`${OPENAI_BASE}/v1/files/file-big/content`, () => new HttpResponse(big, { headers: { 'content-length': String(big.length) } })),
    );
    const res = await relay.call('/v1/actions/files/file-big/content');
    const text = await res.clone().text();
    const answer = await ok(res);
    noLongBase64(text);
    expectRelayLink(answer.url);
    expect(answer.openaiFileResponse).toEqual([answer.url]);
    expect(answer).toMatchObject({ name: 'report.pdf', mime_type: 'application/pdf', bytes: big.length });
    expectAboutAnHourAhead(answer.expires_at);
    const { res: blob, bytes } = await fetchLink(answer.url);
    expect(blob.status).toBe(200);
    expect(blob.headers.get('content-type')).toBe('application/pdf');
    expect(blob.headers.get('content-disposition')).toBe('attachment; filename="report.pdf"');
    expect(bytes.equals(big)).toBe(true);
  });

  test('getActionFileContent: an 11 MB file → url only, no openaiFileResponse', async () => {
    const MB = 1024 * 1024;
    const chunk = Buffer.alloc(MB, 0x61);
    server.use(
      http.get(`${OPENAI_BASE}/v1/files/file-huge`, () => HttpResponse.json({ id: 'file-huge', object: 'file', filename: 'dump.jsonl', bytes: 11 * MB, purpose: 'batch' })),
      http.get(`${OPENAI_BASE}/v1/files/file-huge/content`, () => {
        let sent = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent === 11) return controller.close();
            sent++;
            controller.enqueue(new Uint8Array(chunk));
          },
        });
        return new HttpResponse(stream, { headers: { 'content-length': String(11 * MB) } });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/files/file-huge/content'));
    expect(answer.openaiFileResponse).toBeUndefined();
    expectRelayLink(answer.url);
    expect(answer.bytes).toBe(11 * MB);
    const { res, bytes } = await fetchLink(answer.url);
    expect(res.status).toBe(200);
    expect(bytes.length).toBe(11 * MB);
  });
});

// ------------------------------------------------------------------------------------------ vector stores

describe('listActionVectorStores / createActionVectorStore / searchActionVectorStore', () => {
  test('list maps to {data, has_more, next_after} and passes limit/after/order', async () => {
    let query: URLSearchParams | undefined;
    server.use(
      http.get(`${OPENAI_BASE}/v1/vector_stores`, ({ request }) => {
        query = new URL(request.url).searchParams;
        return HttpResponse.json({
          object: 'list',
          data: [{ id: 'vs_1', object: 'vector_store', name: 'Docs', status: 'completed', file_counts: { completed: 3, total: 3 }, created_at: 5, usage_bytes: 99, metadata: {} }],
          has_more: true,
        });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/vector_stores?limit=1&after=vs_0'));
    expect(query?.get('limit')).toBe('1');
    expect(query?.get('after')).toBe('vs_0');
    expect(query?.get('order')).toBe('desc');
    expect(answer).toEqual({
      data: [{ id: 'vs_1', name: 'Docs', status: 'completed', file_counts: { completed: 3, total: 3 }, created_at: 5 }],
      has_more: true,
      next_after: 'vs_1',
    });
  });

  test('create sends name and file_ids and answers the summary', async () => {
    let sent: any;
    server.use(
      http.post(`${OPENAI_BASE}/v1/vector_stores`, async ({ request }) => {
        sent = await request.json();
        return HttpResponse.json({ id: 'vs_new', object: 'vector_store', name: sent.name, status: 'in_progress', file_counts: { in_progress: 2 }, created_at: 7 });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/vector_stores', { json: { name: 'Research', file_ids: ['file-1', 'file-2'] } }));
    expect(sent).toEqual({ name: 'Research', file_ids: ['file-1', 'file-2'] });
    expect(answer).toEqual({ id: 'vs_new', name: 'Research', status: 'in_progress', file_counts: { in_progress: 2 }, created_at: 7 });
  });

  test('search joins the text of content parts', async () => {
    let sent: any;
    server.use(
      http.post(`${OPENAI_BASE}/v1/vector_stores/vs_1/search`, async ({ request }) => {
        sent = await request.json();
        return HttpResponse.json({
          object: 'vector_store.search_results.page',
          search_query: ['x'],
          data: [{ file_id: 'file-1', filename: 'a.md', score: 0.9, attributes: {}, content: [{ type: 'text', text: 'first' }, { type: 'text', text: 'second' }] }],
          has_more: false,
        });
      }),
    );
    const answer = await ok(await relay.call('/v1/actions/vector_stores/vs_1/search', { json: { query: 'what is x' } }));
    expect(sent).toMatchObject({ query: 'what is x', max_num_results: 10 });
    expect(answer.data).toEqual([{ file_id: 'file-1', filename: 'a.md', score: 0.9, text: 'first\nsecond' }]);
    expect(answer.truncated).toBeFalsy();
  });

  test('huge search results are trimmed to fit: truncated true, answer < 100k', async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/vector_stores/vs_1/search`, () =>
        HttpResponse.json({
          data: Array.from({ length: 20 }, (_, i) => ({ file_id: `file-${i}`, filename: `f${i}.md`, score: 1 - i / 100, content: [{ type: 'text', text: 'w'.repeat(30_000) }] })),
        }),
      ),
    );
    const res = await relay.call('/v1/actions/vector_stores/vs_1/search', { json: { query: 'x', max_num_results: 20 } });
    const text = await res.clone().text();
    const answer = await ok(res);
    expect(text.length).toBeLessThan(100_000);
    expect(answer.truncated).toBe(true);
    expect(answer.data.length).toBeGreaterThan(0);
    expect(answer.data[0].file_id).toBe('file-0');
  });
});

// ------------------------------------------------------------------------------------------ validation

describe('validation and auth', () => {
  test('an unknown body field → 400 naming the field, no OpenAI call', async () => {
    const err = await openaiError(await relay.call('/v1/actions/responses', { json: { input: 'hi', temprature: 0.2 } }), 400);
    expect(err.type).toBe('invalid_request_error');
    expect(`${err.message} ${err.param}`).toContain('temprature');
    expect(upstream).toHaveLength(0);
  });

  test('a missing required field → 400 naming it, no OpenAI call', async () => {
    const err = await openaiError(await relay.call('/v1/actions/images/generations', { json: { size: '1024x1024' } }), 400);
    expect(`${err.message} ${err.param}`).toContain('prompt');
    expect(upstream).toHaveLength(0);
  });

  test('a wrong type or out-of-range value → 400', async () => {
    await openaiError(await relay.call('/v1/actions/responses', { json: { input: 'x', wait_seconds: 99 } }), 400);
    await openaiError(await relay.call('/v1/actions/conversations/conv_1/items?limit=500'), 400);
    expect(upstream).toHaveLength(0);
  });

  test.each([
    ['GET', '/v1/actions/responses/..%2F..%2Fmodels'],
    ['GET', '/v1/actions/files/..%2Ffile-1/content'],
    ['GET', '/v1/actions/conversations/%2e%2e/items'],
    ['POST', '/v1/actions/vector_stores/vs_1%2F..%2F..%2Ffiles/search'],
  ])('a path parameter with an encoded traversal (%s %s) → 400, zero OpenAI calls', async (method, path) => {
    // Sent raw: fetch's URL parser would resolve %2e%2e before the relay ever saw it.
    const res = await rawCall(relay, method, path, method === 'POST' ? JSON.stringify({ query: 'x' }) : undefined);
    await openaiError(res, 400);
    expect(upstream).toHaveLength(0);
  });

  test('no relay key → 401; a wrong one → 401', async () => {
    const res = await fetch(`${relay.url}/v1/actions/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x' }) });
    const err = await openaiError(res, 401);
    expect(err.type).toBe('authentication_error');
    await openaiError(await relay.call('/v1/actions/files', { headers: { authorization: 'Bearer not-the-relay-key-000000' } }), 401);
    await openaiError(await relay.call('/v1/actions/files', { headers: { authorization: `Bearer ${OPENAI_KEY}` } }), 401);
    expect(upstream).toHaveLength(0);
  });
});

// ------------------------------------------------------------------------------------------ upstream errors

describe('upstream errors', () => {
  test("an upstream 400 → 400 with OpenAI's message in OpenAI's shape", async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () =>
        HttpResponse.json({ error: { message: "Invalid value for 'instructions': too many tools.", type: 'invalid_request_error', param: 'instructions', code: 'invalid_value' } }, { status: 400 }),
      ),
    );
    const err = await openaiError(await relay.call('/v1/actions/responses', { json: { input: 'x', instructions: 'y' } }), 400);
    expect(err.message).toBe("Invalid value for 'instructions': too many tools.");
    expect(err.code).toBe('invalid_value');
    expect(err.param).toBe('instructions');
    expect(err.message).not.toContain(OPENAI_KEY);
  });

  test('an upstream 429 → 429 with its message and retry-after', async () => {
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, () =>
        HttpResponse.json(
          { error: { message: 'Rate limit reached for gpt-5-mini.', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } },
          { status: 429, headers: { 'retry-after': '7' } },
        ),
      ),
    );
    const res = await relay.call('/v1/actions/responses', { json: { input: 'x' } });
    expect(res.headers.get('retry-after')).toBe('7');
    const err = await openaiError(res, 429);
    expect(err.message).toBe('Rate limit reached for gpt-5-mini.');
    expect(err.type).toBe('rate_limit_error');
  });

  test('ACTION_DEADLINE_MS=500 and an upstream that never answers → 504 in under 2 s', async () => {
    const slow = await startActionRelay({ ACTION_DEADLINE_MS: '500' });
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        await new Promise((resolve) => {
          request.signal.addEventListener('abort', resolve, { once: true });
          setTimeout(resolve, 8_000).unref();
        });
        return HttpResponse.json({ error: { message: 'too late' } }, { status: 500 });
      }),
    );
    const t0 = Date.now();
    const err = await openaiError(await slow.call('/v1/actions/responses', { json: { input: 'x' } }), 504);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2_000);
    expect(err.type).toBe('timeout_error');
  });
});

// ------------------------------------------------------------------------------------------ blob links

describe('blob links', () => {
  async function makeImage(r: ActionRelay, png = PNG): Promise<string> {
    server.use(http.post(`${OPENAI_BASE}/v1/images/generations`, () => HttpResponse.json({ data: [{ b64_json: png.toString('base64') }] })));
    const answer = await ok(await r.call('/v1/actions/images/generations', { json: { prompt: 'p' } }));
    return answer.images[0].url;
  }

  test('a tampered signature, expiry or id → 403', async () => {
    const url = new URL(await makeImage(relay));
    const sig = url.searchParams.get('signature')!;
    const flipped = new URL(url);
    flipped.searchParams.set('signature', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
    await openaiError(await fetch(flipped.href), 403);

    const later = new URL(url);
    later.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    await openaiError(await fetch(later.href), 403);

    const missing = new URL(url);
    missing.searchParams.delete('signature');
    await openaiError(await fetch(missing.href), 403);

    const otherId = new URL(url);
    otherId.pathname = otherId.pathname.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    await openaiError(await fetch(otherId.href), 403);

    // The untouched link still works.
    expect((await fetchLink(url.href)).res.status).toBe(200);
  });

  test('an expired link (BLOB_TTL_MS=1000) → 410', async () => {
    await withSkippableDate(async (skip) => {
      const short = await startActionRelay({ BLOB_TTL_MS: '1000' });
      const url = await makeImage(short);
      expectRelayLink(url, short.url);
      // Past the link's expiry (whole seconds) without waiting for it.
      skip(Number(new URL(url).searchParams.get('expires')) * 1000 - Date.now() + 100);
      const err = await openaiError(await fetch(url), 410);
      expect(err.message).toMatch(/expired/i);
    });
  });

  test('a link made by a relay with another OPENAI_API_KEY (another derived secret) → 403, even over the same blob directory', async () => {
    const url = new URL(await makeImage(relay));
    const other = await startActionRelay({ OPENAI_API_KEY: 'sk-test-other-server-key-9876543210' }, relay.blobDir);
    await openaiError(await fetch(`${other.url}${url.pathname}${url.search}`), 403);
    // A replica with the same OpenAI key derives the same secret and serves the same link.
    const replica = await startActionRelay({}, relay.blobDir);
    const { res, bytes } = await fetchLink(`${replica.url}${url.pathname}${url.search}`);
    expect(res.status).toBe(200);
    expect(bytes.equals(PNG)).toBe(true);
  });
});
