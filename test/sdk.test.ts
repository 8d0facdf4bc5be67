import { randomBytes } from 'node:crypto';
import { http, HttpResponse } from 'msw';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * The official `openai` SDK, pointed at the relay with a relay key, must work for every family the relay
 * serves: MSW plays OpenAI with minimal answers shaped like schemas/openapi.yaml, and every test checks
 * that the SDK returns the mocked data and that OpenAI only ever saw the server key.
 */

const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
let client: OpenAI;
beforeAll(async () => {
  relay = await startTestRelay();
  client = new OpenAI({ apiKey: RELAY_KEY, baseURL: `${relay.url}/v1`, maxRetries: 0 });
});
afterAll(() => relay.shutdown());

// ---------------------------------------------------------------------------------------------------
// MSW helpers

interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: Buffer;
  params: Record<string, string>;
}
let calls: Call[] = [];
beforeEach(() => {
  calls = [];
});

type Answer = object | ((request: Request) => Response | Promise<Response>);

/** One mocked OpenAI endpoint: JSON answer (with an upstream request id) or a custom Response. */
function mock(method: 'get' | 'post' | 'delete', path: string, answer: Answer): void {
  server.use(
    http[method](`${OPENAI_BASE}${path}`, async ({ request, params }) => {
      const url = new URL(request.url);
      calls.push({
        method: request.method,
        path: url.pathname,
        query: url.searchParams,
        headers: request.headers,
        body: Buffer.from(await request.clone().arrayBuffer()),
        params: params as Record<string, string>,
      });
      if (typeof answer === 'function') return answer(request);
      return HttpResponse.json(answer as Record<string, unknown>, { headers: { 'x-request-id': 'req_up_123' } });
    }),
  );
}

const encoder = new TextEncoder();

/** An SSE answer delivered frame by frame, the way OpenAI streams. */
function sseAnswer(frames: string[]): Response {
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const frame of frames) {
        controller.enqueue(encoder.encode(frame));
        await new Promise((r) => setTimeout(r, 1));
      }
      controller.close();
    },
  });
  return new HttpResponse(stream, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'x-request-id': 'req_up_sse' } });
}

function binaryAnswer(bytes: Uint8Array, contentType: string): Response {
  return new HttpResponse(bytes, { headers: { 'content-type': contentType, 'content-length': String(bytes.byteLength) } });
}

/** What OpenAI received, as `METHOD /path?query` lines. */
const upstreamSaw = () => upstream.map((r) => `${r.method} ${r.url.pathname}${r.url.search}`);

/** Every request that reached OpenAI carried the server key, and nothing of the relay keys. */
function expectServerKeyOnly(): void {
  expect(upstream.length, 'requests that reached OpenAI').toBeGreaterThan(0);
  for (const r of upstream) {
    expect(r.headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    expect(r.headers.get('x-relay-key')).toBeNull();
    for (const [name, value] of r.headers) {
      expect(value, `upstream header ${name}`).not.toContain(RELAY_KEY);
      expect(value, `upstream header ${name}`).not.toContain(RELAY_KEY_2);
    }
  }
}

/** A test whose every upstream request must carry the server key only. */
function sdkTest(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    await fn();
    expectServerKeyOnly();
  });
}

const jsonBody = (call: Call) => JSON.parse(call.body.toString('utf8')) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------
// Fixtures, shaped per schemas/openapi.yaml

const T = 1_767_225_600;

const responseObject = (id = 'resp_abc123', status = 'completed') => ({
  id,
  object: 'response',
  created_at: T,
  status,
  model: 'gpt-5',
  output:
    status === 'completed'
      ? [
          {
            id: 'msg_abc123',
            type: 'message',
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text: 'Hello from the relay!', annotations: [], logprobs: [] }],
          },
        ]
      : [],
  error: null,
  incomplete_details: null,
  instructions: null,
  metadata: {},
  parallel_tool_calls: true,
  temperature: 1,
  tool_choice: 'auto',
  tools: [],
  top_p: 1,
  usage:
    status === 'completed'
      ? { input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: 6, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 11 }
      : null,
});

const chatCompletion = (id = 'chatcmpl-abc123') => ({
  id,
  object: 'chat.completion',
  created: T,
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hi there!', refusal: null, annotations: [] }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
  service_tier: 'default',
  system_fingerprint: 'fp_abc',
  metadata: { team: 'relay' },
});

const list = <T extends { id?: string }>(data: T[], extra: Record<string, unknown> = {}) => ({
  object: 'list',
  data,
  first_id: data[0]?.id ?? null,
  last_id: data.at(-1)?.id ?? null,
  has_more: false,
  ...extra,
});

const fileObject = { id: 'file-abc123', object: 'file', bytes: 19, created_at: T, expires_at: null, filename: 'batch.jsonl', purpose: 'batch', status: 'processed' };
const upload = (status: string) => ({
  id: 'upload_abc123',
  object: 'upload',
  created_at: T,
  expires_at: T + 3600,
  filename: 'big.jsonl',
  bytes: 8,
  purpose: 'batch',
  status,
  file: status === 'completed' ? { ...fileObject, id: 'file-fromupload', filename: 'big.jsonl', bytes: 8 } : null,
});
const vectorStore = { id: 'vs_abc123', object: 'vector_store', created_at: T, name: 'Docs', usage_bytes: 0, file_counts: { in_progress: 0, completed: 1, failed: 0, cancelled: 0, total: 1 }, status: 'completed', expires_after: null, expires_at: null, last_active_at: T, metadata: {} };
const vectorStoreFile = { id: 'file-abc123', object: 'vector_store.file', usage_bytes: 1234, created_at: T, vector_store_id: 'vs_abc123', status: 'completed', last_error: null, chunking_strategy: { type: 'static', static: { max_chunk_size_tokens: 800, chunk_overlap_tokens: 400 } }, attributes: { lang: 'en' } };
const fileBatch = (status = 'in_progress') => ({ id: 'vsfb_abc123', object: 'vector_store.files_batch', created_at: T, vector_store_id: 'vs_abc123', status, file_counts: { in_progress: 1, completed: 0, failed: 0, cancelled: 0, total: 1 } });
const conversation = { id: 'conv_abc123', object: 'conversation', created_at: T, metadata: { topic: 'demo' } };
const conversationItem = { id: 'msg_abc123', type: 'message', status: 'completed', role: 'user', content: [{ type: 'input_text', text: 'Hello!' }] };
const container = { id: 'cntr_abc123', object: 'container', name: 'sandbox', created_at: T, status: 'running', last_active_at: T, expires_after: { anchor: 'last_active_at', minutes: 20 }, memory_limit: '1g' };
const containerFile = { id: 'cfile_abc123', object: 'container.file', container_id: 'cntr_abc123', created_at: T, bytes: 11, path: '/mnt/data/hello.txt', source: 'user' };
const batch = (status = 'validating') => ({ id: 'batch_abc123', object: 'batch', endpoint: '/v1/responses', model: 'gpt-5', errors: null, input_file_id: 'file-abc123', completion_window: '24h', status, output_file_id: null, error_file_id: null, created_at: T, in_progress_at: null, expires_at: T + 86400, completed_at: null, request_counts: { total: 0, completed: 0, failed: 0 }, metadata: { job: 'nightly' } });
const imagesResponse = (data: object[]) => ({ created: T, data, background: 'opaque', output_format: 'png', size: '1024x1024', quality: 'high', usage: { input_tokens: 10, output_tokens: 100, total_tokens: 110, input_tokens_details: { image_tokens: 0, text_tokens: 10 } } });

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
const WAV = Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1'), randomBytes(32)]);

// ---------------------------------------------------------------------------------------------------

describe('responses', () => {
  sdkTest('create', async () => {
    mock('post', '/v1/responses', responseObject());
    const res = await client.responses.create({ model: 'gpt-5', input: 'Say hello' });
    expect(res.id).toBe('resp_abc123');
    expect(res.output_text).toBe('Hello from the relay!');
    expect(res._request_id).toBe('req_up_123');
    expect(jsonBody(calls[0])).toMatchObject({ model: 'gpt-5', input: 'Say hello' });
    expect(upstreamSaw()).toEqual(['POST /v1/responses']);
  });

  const streamFrames = () => {
    const ev = (type: string, seq: number, data: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...data })}\n\n`;
    const final = responseObject();
    const item = final.output[0];
    const part = item.content[0];
    return [
      ev('response.created', 0, { response: responseObject('resp_abc123', 'in_progress') }),
      ev('response.in_progress', 1, { response: responseObject('resp_abc123', 'in_progress') }),
      ev('response.output_item.added', 2, { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }),
      ev('response.content_part.added', 3, { item_id: item.id, output_index: 0, content_index: 0, part: { ...part, text: '' } }),
      ev('response.output_text.delta', 4, { item_id: item.id, output_index: 0, content_index: 0, delta: 'Hello from ', logprobs: [] }),
      ev('response.output_text.delta', 5, { item_id: item.id, output_index: 0, content_index: 0, delta: 'the relay!', logprobs: [] }),
      ev('response.output_text.done', 6, { item_id: item.id, output_index: 0, content_index: 0, text: part.text, logprobs: [] }),
      ev('response.content_part.done', 7, { item_id: item.id, output_index: 0, content_index: 0, part }),
      ev('response.output_item.done', 8, { output_index: 0, item }),
      ev('response.completed', 9, { response: final }),
    ];
  };

  sdkTest('create with stream: true yields every event', async () => {
    mock('post', '/v1/responses', () => sseAnswer(streamFrames()));
    const stream = await client.responses.create({ model: 'gpt-5', input: 'Say hello', stream: true });
    const types: string[] = [];
    let text = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(text).toBe('Hello from the relay!');
    expect(completed?.usage?.total_tokens).toBe(11);
    expect(jsonBody(calls[0]).stream).toBe(true);
  });

  sdkTest('stream() helper assembles the final response', async () => {
    mock('post', '/v1/responses', () => sseAnswer(streamFrames()));
    const stream = client.responses.stream({ model: 'gpt-5', input: 'Say hello' });
    const final = await stream.finalResponse();
    expect(final.id).toBe('resp_abc123');
    expect(final.output_text).toBe('Hello from the relay!');
  });

  sdkTest('retrieve', async () => {
    mock('get', '/v1/responses/:id', responseObject());
    const res = await client.responses.retrieve('resp_abc123', { include: ['message.output_text.logprobs'] });
    expect(res.output_text).toBe('Hello from the relay!');
    expect(upstreamSaw()).toEqual(['GET /v1/responses/resp_abc123?include%5B%5D=message.output_text.logprobs']);
  });

  sdkTest('retrieve with stream: true resumes the event stream', async () => {
    mock('get', '/v1/responses/:id', () => sseAnswer(streamFrames().slice(4)));
    const stream = await client.responses.retrieve('resp_abc123', { stream: true, starting_after: 3 });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types[0]).toBe('response.output_text.delta');
    expect(types.at(-1)).toBe('response.completed');
    expect(calls[0].query.get('stream')).toBe('true');
    expect(calls[0].query.get('starting_after')).toBe('3');
  });

  sdkTest('delete', async () => {
    mock('delete', '/v1/responses/:id', { id: 'resp_abc123', object: 'response', deleted: true });
    // Typed `void` by the SDK (it sends Accept: */*); resolving is the success signal.
    await client.responses.delete('resp_abc123');
    expect(upstreamSaw()).toEqual(['DELETE /v1/responses/resp_abc123']);
  });

  sdkTest('cancel', async () => {
    mock('post', '/v1/responses/:id/cancel', { ...responseObject('resp_bg123', 'cancelled'), background: true });
    const res = await client.responses.cancel('resp_bg123');
    expect(res.status).toBe('cancelled');
    expect(upstreamSaw()).toEqual(['POST /v1/responses/resp_bg123/cancel']);
  });

  sdkTest('inputItems.list', async () => {
    mock('get', '/v1/responses/:id/input_items', list([{ id: 'msg_in1', type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'Say hello' }] }]));
    const page = await client.responses.inputItems.list('resp_abc123', { limit: 10, order: 'asc' });
    expect(page.data).toHaveLength(1);
    expect(page.data[0]).toMatchObject({ id: 'msg_in1', type: 'message' });
    expect(page.hasNextPage()).toBe(false);
    expect(calls[0].query.get('limit')).toBe('10');
    expect(calls[0].query.get('order')).toBe('asc');
  });

  sdkTest('inputTokens.count', async () => {
    mock('post', '/v1/responses/input_tokens', { object: 'response.input_tokens', input_tokens: 7 });
    const res = await client.responses.inputTokens.count({ model: 'gpt-5', input: 'Say hello' });
    expect(res).toMatchObject({ object: 'response.input_tokens', input_tokens: 7 });
    expect(upstreamSaw()).toEqual(['POST /v1/responses/input_tokens']);
  });

  sdkTest('compact', async () => {
    mock('post', '/v1/responses/compact', {
      id: 'resp_cmp123',
      object: 'response.compaction',
      created_at: T,
      output: [
        { id: 'msg_u1', type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'Say hello' }] },
        { id: 'cmp_1', type: 'compaction', encrypted_content: 'gAAAA...' },
      ],
      usage: { input_tokens: 50, input_tokens_details: { cached_tokens: 0 }, output_tokens: 10, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 60 },
    });
    const res = await client.responses.compact({ model: 'gpt-5', previous_response_id: 'resp_abc123' });
    expect(res.object).toBe('response.compaction');
    expect(res.output.at(-1)).toMatchObject({ type: 'compaction' });
    expect(upstreamSaw()).toEqual(['POST /v1/responses/compact']);
  });
});

describe('chat.completions', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-s1', object: 'chat.completion.chunk', created: T, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_abc', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  const chatFrames = () => [
    chunk({ role: 'assistant', content: '', refusal: null }),
    chunk({ content: 'Hi' }),
    chunk({ content: ' there!' }),
    chunk({}, 'stop'),
    'data: [DONE]\n\n',
  ];

  sdkTest('create', async () => {
    mock('post', '/v1/chat/completions', chatCompletion());
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] });
    expect(res.choices[0].message.content).toBe('Hi there!');
    expect(res.usage?.total_tokens).toBe(12);
    expect(jsonBody(calls[0])).toMatchObject({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] });
  });

  sdkTest('create with stream: true yields every chunk until [DONE]', async () => {
    mock('post', '/v1/chat/completions', () => sseAnswer(chatFrames()));
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }], stream: true });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    for await (const c of stream) {
      chunks++;
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(chunks).toBe(4);
    expect(text).toBe('Hi there!');
    expect(finish).toBe('stop');
    expect(jsonBody(calls[0]).stream).toBe(true);
  });

  sdkTest('stream() helper assembles the final message', async () => {
    mock('post', '/v1/chat/completions', () => sseAnswer(chatFrames()));
    const stream = client.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] });
    expect(await stream.finalContent()).toBe('Hi there!');
  });

  sdkTest('list', async () => {
    mock('get', '/v1/chat/completions', list([chatCompletion()]));
    const page = await client.chat.completions.list({ model: 'gpt-4o', limit: 5, metadata: { team: 'relay' } });
    expect(page.data.map((c) => c.id)).toEqual(['chatcmpl-abc123']);
    expect(calls[0].query.get('limit')).toBe('5');
    expect(calls[0].query.get('metadata[team]')).toBe('relay');
  });

  sdkTest('retrieve', async () => {
    mock('get', '/v1/chat/completions/:id', chatCompletion());
    const res = await client.chat.completions.retrieve('chatcmpl-abc123');
    expect(res.id).toBe('chatcmpl-abc123');
    expect(upstreamSaw()).toEqual(['GET /v1/chat/completions/chatcmpl-abc123']);
  });

  sdkTest('update', async () => {
    mock('post', '/v1/chat/completions/:id', { ...chatCompletion(), metadata: { team: 'blue' } });
    const res = await client.chat.completions.update('chatcmpl-abc123', { metadata: { team: 'blue' } });
    expect((res as unknown as { metadata: unknown }).metadata).toEqual({ team: 'blue' }); // not in the SDK's ChatCompletion type
    expect(jsonBody(calls[0])).toEqual({ metadata: { team: 'blue' } });
  });

  sdkTest('delete', async () => {
    mock('delete', '/v1/chat/completions/:id', { id: 'chatcmpl-abc123', object: 'chat.completion.deleted', deleted: true });
    expect(await client.chat.completions.delete('chatcmpl-abc123')).toMatchObject({ deleted: true });
  });

  sdkTest('messages.list', async () => {
    mock('get', '/v1/chat/completions/:id/messages', list([{ id: 'chatcmpl-abc123-0', role: 'user', content: 'Hello', name: null, content_parts: null }]));
    const page = await client.chat.completions.messages.list('chatcmpl-abc123', { limit: 20 });
    expect(page.data[0]).toMatchObject({ id: 'chatcmpl-abc123-0', content: 'Hello' });
    expect(upstreamSaw()).toEqual(['GET /v1/chat/completions/chatcmpl-abc123/messages?limit=20']);
  });
});

describe('embeddings and moderations', () => {
  sdkTest('embeddings.create (the SDK asks for base64 and decodes it)', async () => {
    const vector = new Float32Array([0.125, -0.5, 0.25, 1]);
    mock('post', '/v1/embeddings', async (request) => {
      const body = (await request.json()) as { encoding_format?: string };
      const embedding = body.encoding_format === 'base64' ? Buffer.from(vector.buffer).toString('base64') : Array.from(vector);
      return HttpResponse.json({
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding }],
        model: 'text-embedding-3-small',
        usage: { prompt_tokens: 2, total_tokens: 2 },
      });
    });
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' });
    expect(Array.from(res.data[0].embedding)).toEqual([0.125, -0.5, 0.25, 1]);
    expect(res.usage.total_tokens).toBe(2);
    expect(jsonBody(calls[0]).encoding_format).toBe('base64');
  });

  sdkTest('moderations.create', async () => {
    mock('post', '/v1/moderations', {
      id: 'modr-abc123',
      model: 'omni-moderation-latest',
      results: [{ flagged: false, categories: { harassment: false, violence: false }, category_scores: { harassment: 0.0001, violence: 0.0002 }, category_applied_input_types: { harassment: ['text'], violence: ['text'] } }],
    });
    const res = await client.moderations.create({ model: 'omni-moderation-latest', input: 'I love kittens' });
    expect(res.results[0].flagged).toBe(false);
    expect(res.id).toBe('modr-abc123');
  });
});

describe('models', () => {
  const model = { id: 'gpt-5', object: 'model', created: T, owned_by: 'openai' };

  sdkTest('list', async () => {
    mock('get', '/v1/models', { object: 'list', data: [model, { ...model, id: 'gpt-4o' }] });
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(['gpt-5', 'gpt-4o']);
  });

  sdkTest('retrieve', async () => {
    mock('get', '/v1/models/:model', model);
    expect(await client.models.retrieve('gpt-5')).toMatchObject({ id: 'gpt-5', owned_by: 'openai' });
    expect(upstreamSaw()).toEqual(['GET /v1/models/gpt-5']);
  });

  sdkTest('delete a fine-tuned model (colons in the id)', async () => {
    const id = 'ft:gpt-4o-mini:acme::abc123';
    mock('delete', '/v1/models/:model', { id, object: 'model', deleted: true });
    expect(await client.models.delete(id)).toEqual({ id, object: 'model', deleted: true });
    expect(decodeURIComponent(calls[0].path)).toBe(`/v1/models/${id}`);
  });
});

describe('files', () => {
  sdkTest('create from a Buffer via toFile', async () => {
    const content = Buffer.from('{"custom_id":"r1"}\n');
    let form: FormData | undefined;
    mock('post', '/v1/files', async (request) => {
      form = await request.formData();
      return HttpResponse.json(fileObject);
    });
    const res = await client.files.create({ file: await toFile(content, 'batch.jsonl'), purpose: 'batch' });
    expect(res).toMatchObject({ id: 'file-abc123', filename: 'batch.jsonl', purpose: 'batch' });
    expect(calls[0].headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/);
    expect(form?.get('purpose')).toBe('batch');
    const file = form?.get('file') as File;
    expect(file.name).toBe('batch.jsonl');
    expect(Buffer.from(await file.arrayBuffer()).equals(content)).toBe(true);
  });

  sdkTest('list', async () => {
    mock('get', '/v1/files', list([fileObject]));
    const page = await client.files.list({ purpose: 'batch', limit: 10 });
    expect(page.data.map((f) => f.id)).toEqual(['file-abc123']);
    expect(calls[0].query.get('purpose')).toBe('batch');
  });

  sdkTest('retrieve', async () => {
    mock('get', '/v1/files/:id', fileObject);
    expect(await client.files.retrieve('file-abc123')).toMatchObject({ id: 'file-abc123', bytes: 19 });
  });

  sdkTest('content returns the exact bytes', async () => {
    const bytes = randomBytes(64 * 1024 + 3);
    mock('get', '/v1/files/:id/content', () => binaryAnswer(bytes, 'application/octet-stream'));
    const res = await client.files.content('file-abc123');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    expect(upstreamSaw()).toEqual(['GET /v1/files/file-abc123/content']);
  });

  sdkTest('delete', async () => {
    mock('delete', '/v1/files/:id', { id: 'file-abc123', object: 'file', deleted: true });
    expect(await client.files.delete('file-abc123')).toEqual({ id: 'file-abc123', object: 'file', deleted: true });
  });
});

describe('uploads', () => {
  sdkTest('create', async () => {
    mock('post', '/v1/uploads', upload('pending'));
    const res = await client.uploads.create({ bytes: 8, filename: 'big.jsonl', mime_type: 'text/jsonl', purpose: 'batch' });
    expect(res).toMatchObject({ id: 'upload_abc123', status: 'pending' });
    expect(jsonBody(calls[0])).toEqual({ bytes: 8, filename: 'big.jsonl', mime_type: 'text/jsonl', purpose: 'batch' });
  });

  sdkTest('parts.create', async () => {
    const chunk = Buffer.from([0, 1, 2, 3, 250, 251, 252, 253]);
    let part: File | undefined;
    mock('post', '/v1/uploads/:id/parts', async (request) => {
      part = (await request.formData()).get('data') as File;
      return HttpResponse.json({ id: 'part_abc123', object: 'upload.part', created_at: T, upload_id: 'upload_abc123' });
    });
    const res = await client.uploads.parts.create('upload_abc123', { data: await toFile(chunk, 'part-1') });
    expect(res).toMatchObject({ id: 'part_abc123', upload_id: 'upload_abc123' });
    expect(Buffer.from(await part!.arrayBuffer()).equals(chunk)).toBe(true);
  });

  sdkTest('complete', async () => {
    mock('post', '/v1/uploads/:id/complete', upload('completed'));
    const res = await client.uploads.complete('upload_abc123', { part_ids: ['part_abc123'] });
    expect(res.status).toBe('completed');
    expect(res.file?.id).toBe('file-fromupload');
    expect(jsonBody(calls[0])).toEqual({ part_ids: ['part_abc123'] });
  });

  sdkTest('cancel', async () => {
    mock('post', '/v1/uploads/:id/cancel', upload('cancelled'));
    expect((await client.uploads.cancel('upload_abc123')).status).toBe('cancelled');
    expect(upstreamSaw()).toEqual(['POST /v1/uploads/upload_abc123/cancel']);
  });
});

describe('vectorStores', () => {
  sdkTest('create, retrieve, update, list, delete', async () => {
    mock('post', '/v1/vector_stores', vectorStore);
    mock('get', '/v1/vector_stores/:id', vectorStore);
    mock('post', '/v1/vector_stores/:id', { ...vectorStore, name: 'Renamed' });
    mock('get', '/v1/vector_stores', list([vectorStore]));
    mock('delete', '/v1/vector_stores/:id', { id: 'vs_abc123', object: 'vector_store.deleted', deleted: true });

    expect((await client.vectorStores.create({ name: 'Docs', file_ids: ['file-abc123'] })).id).toBe('vs_abc123');
    expect((await client.vectorStores.retrieve('vs_abc123')).file_counts.completed).toBe(1);
    expect((await client.vectorStores.update('vs_abc123', { name: 'Renamed' })).name).toBe('Renamed');
    expect((await client.vectorStores.list({ limit: 1 })).data.map((v) => v.id)).toEqual(['vs_abc123']);
    expect(await client.vectorStores.delete('vs_abc123')).toMatchObject({ deleted: true });
    expect(upstreamSaw()).toEqual([
      'POST /v1/vector_stores',
      'GET /v1/vector_stores/vs_abc123',
      'POST /v1/vector_stores/vs_abc123',
      'GET /v1/vector_stores?limit=1',
      'DELETE /v1/vector_stores/vs_abc123',
    ]);
    expect(upstream[0].headers.get('openai-beta')).toBe('assistants=v2');
  });

  sdkTest('search', async () => {
    mock('post', '/v1/vector_stores/:id/search', {
      object: 'vector_store.search_results.page',
      search_query: ['return policy'],
      data: [{ file_id: 'file-abc123', filename: 'policy.md', score: 0.87, attributes: { lang: 'en' }, content: [{ type: 'text', text: 'Returns are accepted within 30 days.' }] }],
      has_more: false,
      next_page: null,
    });
    const page = await client.vectorStores.search('vs_abc123', { query: 'return policy', max_num_results: 3 });
    expect(page.data[0]).toMatchObject({ file_id: 'file-abc123', score: 0.87 });
    expect(jsonBody(calls[0])).toEqual({ query: 'return policy', max_num_results: 3 });
  });

  sdkTest('files: create, retrieve, update, list, content, delete', async () => {
    mock('post', '/v1/vector_stores/:vs/files', vectorStoreFile);
    mock('get', '/v1/vector_stores/:vs/files/:id', vectorStoreFile);
    mock('post', '/v1/vector_stores/:vs/files/:id', { ...vectorStoreFile, attributes: { lang: 'de' } });
    mock('get', '/v1/vector_stores/:vs/files', list([vectorStoreFile]));
    mock('get', '/v1/vector_stores/:vs/files/:id/content', { object: 'vector_store.file_content.page', data: [{ type: 'text', text: 'Returns are accepted within 30 days.' }], has_more: false, next_page: null });
    mock('delete', '/v1/vector_stores/:vs/files/:id', { id: 'file-abc123', object: 'vector_store.file.deleted', deleted: true });

    const vs = { vector_store_id: 'vs_abc123' };
    expect((await client.vectorStores.files.create('vs_abc123', { file_id: 'file-abc123', attributes: { lang: 'en' } })).status).toBe('completed');
    expect((await client.vectorStores.files.retrieve('file-abc123', vs)).vector_store_id).toBe('vs_abc123');
    expect((await client.vectorStores.files.update('file-abc123', { ...vs, attributes: { lang: 'de' } })).attributes).toEqual({ lang: 'de' });
    expect((await client.vectorStores.files.list('vs_abc123', { filter: 'completed' })).data).toHaveLength(1);
    expect((await client.vectorStores.files.content('file-abc123', vs)).data[0].text).toBe('Returns are accepted within 30 days.');
    expect(await client.vectorStores.files.delete('file-abc123', vs)).toMatchObject({ deleted: true });
    expect(upstreamSaw()).toEqual([
      'POST /v1/vector_stores/vs_abc123/files',
      'GET /v1/vector_stores/vs_abc123/files/file-abc123',
      'POST /v1/vector_stores/vs_abc123/files/file-abc123',
      'GET /v1/vector_stores/vs_abc123/files?filter=completed',
      'GET /v1/vector_stores/vs_abc123/files/file-abc123/content',
      'DELETE /v1/vector_stores/vs_abc123/files/file-abc123',
    ]);
  });

  sdkTest('fileBatches: create, retrieve, cancel, listFiles', async () => {
    mock('post', '/v1/vector_stores/:vs/file_batches', fileBatch());
    mock('get', '/v1/vector_stores/:vs/file_batches/:id', fileBatch());
    mock('post', '/v1/vector_stores/:vs/file_batches/:id/cancel', fileBatch('cancelled'));
    mock('get', '/v1/vector_stores/:vs/file_batches/:id/files', list([vectorStoreFile]));

    const vs = { vector_store_id: 'vs_abc123' };
    expect((await client.vectorStores.fileBatches.create('vs_abc123', { file_ids: ['file-abc123'] })).id).toBe('vsfb_abc123');
    expect((await client.vectorStores.fileBatches.retrieve('vsfb_abc123', vs)).file_counts.total).toBe(1);
    expect((await client.vectorStores.fileBatches.cancel('vsfb_abc123', vs)).status).toBe('cancelled');
    expect((await client.vectorStores.fileBatches.listFiles('vsfb_abc123', vs)).data[0].id).toBe('file-abc123');
    expect(upstreamSaw()).toEqual([
      'POST /v1/vector_stores/vs_abc123/file_batches',
      'GET /v1/vector_stores/vs_abc123/file_batches/vsfb_abc123',
      'POST /v1/vector_stores/vs_abc123/file_batches/vsfb_abc123/cancel',
      'GET /v1/vector_stores/vs_abc123/file_batches/vsfb_abc123/files',
    ]);
  });
});

describe('conversations', () => {
  sdkTest('create, retrieve, update, delete', async () => {
    mock('post', '/v1/conversations', conversation);
    mock('get', '/v1/conversations/:id', conversation);
    mock('post', '/v1/conversations/:id', { ...conversation, metadata: { topic: 'updated' } });
    mock('delete', '/v1/conversations/:id', { id: 'conv_abc123', object: 'conversation.deleted', deleted: true });

    const created = await client.conversations.create({ metadata: { topic: 'demo' }, items: [{ type: 'message', role: 'user', content: 'Hello!' }] });
    expect(created).toMatchObject({ id: 'conv_abc123', object: 'conversation' });
    expect((await client.conversations.retrieve('conv_abc123')).metadata).toEqual({ topic: 'demo' });
    expect((await client.conversations.update('conv_abc123', { metadata: { topic: 'updated' } })).metadata).toEqual({ topic: 'updated' });
    expect(await client.conversations.delete('conv_abc123')).toMatchObject({ deleted: true });
    expect(jsonBody(calls[0])).toEqual({ metadata: { topic: 'demo' }, items: [{ type: 'message', role: 'user', content: 'Hello!' }] });
    expect(upstreamSaw()).toEqual(['POST /v1/conversations', 'GET /v1/conversations/conv_abc123', 'POST /v1/conversations/conv_abc123', 'DELETE /v1/conversations/conv_abc123']);
  });

  sdkTest('items: create, retrieve, list, delete', async () => {
    mock('post', '/v1/conversations/:id/items', list([conversationItem]));
    mock('get', '/v1/conversations/:id/items/:item', conversationItem);
    mock('get', '/v1/conversations/:id/items', list([conversationItem]));
    mock('delete', '/v1/conversations/:id/items/:item', conversation);

    const created = await client.conversations.items.create('conv_abc123', { items: [{ type: 'message', role: 'user', content: 'Hello!' }] });
    expect(created.data[0]).toMatchObject({ id: 'msg_abc123' });
    expect(await client.conversations.items.retrieve('msg_abc123', { conversation_id: 'conv_abc123' })).toMatchObject({ type: 'message', role: 'user' });
    expect((await client.conversations.items.list('conv_abc123', { order: 'asc' })).data).toHaveLength(1);
    expect((await client.conversations.items.delete('msg_abc123', { conversation_id: 'conv_abc123' })).id).toBe('conv_abc123');
    expect(upstreamSaw()).toEqual([
      'POST /v1/conversations/conv_abc123/items',
      'GET /v1/conversations/conv_abc123/items/msg_abc123',
      'GET /v1/conversations/conv_abc123/items?order=asc',
      'DELETE /v1/conversations/conv_abc123/items/msg_abc123',
    ]);
  });
});

describe('containers', () => {
  sdkTest('create, retrieve, list, delete', async () => {
    mock('post', '/v1/containers', container);
    mock('get', '/v1/containers/:id', container);
    mock('get', '/v1/containers', list([container]));
    mock('delete', '/v1/containers/:id', { id: 'cntr_abc123', object: 'container.deleted', deleted: true });

    expect((await client.containers.create({ name: 'sandbox', memory_limit: '1g' })).id).toBe('cntr_abc123');
    expect((await client.containers.retrieve('cntr_abc123')).status).toBe('running');
    expect((await client.containers.list({ limit: 2 })).data.map((c) => c.name)).toEqual(['sandbox']);
    await client.containers.delete('cntr_abc123'); // typed `void` by the SDK
    expect(upstreamSaw()).toEqual(['POST /v1/containers', 'GET /v1/containers/cntr_abc123', 'GET /v1/containers?limit=2', 'DELETE /v1/containers/cntr_abc123']);
  });

  sdkTest('files: create with a file, retrieve, list, content, delete', async () => {
    const bytes = Buffer.from('hello world');
    let uploaded: File | undefined;
    mock('post', '/v1/containers/:id/files', async (request) => {
      uploaded = (await request.formData()).get('file') as File;
      return HttpResponse.json(containerFile);
    });
    mock('get', '/v1/containers/:id/files/:file', containerFile);
    mock('get', '/v1/containers/:id/files', list([containerFile]));
    mock('get', '/v1/containers/:id/files/:file/content', () => binaryAnswer(bytes, 'application/octet-stream'));
    mock('delete', '/v1/containers/:id/files/:file', { id: 'cfile_abc123', object: 'container.file.deleted', deleted: true });

    const created = await client.containers.files.create('cntr_abc123', { file: await toFile(bytes, 'hello.txt') });
    expect(created).toMatchObject({ id: 'cfile_abc123', path: '/mnt/data/hello.txt' });
    expect(uploaded?.name).toBe('hello.txt');
    const c = { container_id: 'cntr_abc123' };
    expect((await client.containers.files.retrieve('cfile_abc123', c)).bytes).toBe(11);
    expect((await client.containers.files.list('cntr_abc123')).data[0].id).toBe('cfile_abc123');
    const content = await client.containers.files.content.retrieve('cfile_abc123', c);
    expect(Buffer.from(await content.arrayBuffer()).equals(bytes)).toBe(true);
    await client.containers.files.delete('cfile_abc123', c); // typed `void` by the SDK
    expect(upstreamSaw()).toEqual([
      'POST /v1/containers/cntr_abc123/files',
      'GET /v1/containers/cntr_abc123/files/cfile_abc123',
      'GET /v1/containers/cntr_abc123/files',
      'GET /v1/containers/cntr_abc123/files/cfile_abc123/content',
      'DELETE /v1/containers/cntr_abc123/files/cfile_abc123',
    ]);
  });
});

describe('batches', () => {
  sdkTest('create, retrieve, list, cancel', async () => {
    mock('post', '/v1/batches', batch());
    mock('get', '/v1/batches/:id', batch('in_progress'));
    mock('get', '/v1/batches', list([batch()]));
    mock('post', '/v1/batches/:id/cancel', batch('cancelling'));

    const created = await client.batches.create({ input_file_id: 'file-abc123', endpoint: '/v1/responses', completion_window: '24h', metadata: { job: 'nightly' } });
    expect(created).toMatchObject({ id: 'batch_abc123', status: 'validating' });
    expect((await client.batches.retrieve('batch_abc123')).status).toBe('in_progress');
    expect((await client.batches.list({ limit: 1, after: 'batch_prev' })).data[0].id).toBe('batch_abc123');
    expect((await client.batches.cancel('batch_abc123')).status).toBe('cancelling');
    expect(upstreamSaw()).toEqual(['POST /v1/batches', 'GET /v1/batches/batch_abc123', 'GET /v1/batches?limit=1&after=batch_prev', 'POST /v1/batches/batch_abc123/cancel']);
  });
});

describe('images', () => {
  const b64 = PNG.toString('base64');

  sdkTest('generate', async () => {
    mock('post', '/v1/images/generations', imagesResponse([{ b64_json: b64 }]));
    const res = await client.images.generate({ model: 'gpt-image-1', prompt: 'A red square', size: '1024x1024' });
    expect(res.data?.[0].b64_json).toBe(b64);
    expect(jsonBody(calls[0])).toMatchObject({ model: 'gpt-image-1', prompt: 'A red square' });
  });

  sdkTest('edit with a file', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/images/edits', async (request) => {
      form = await request.formData();
      return HttpResponse.json(imagesResponse([{ b64_json: b64 }]));
    });
    const res = await client.images.edit({ model: 'gpt-image-1', image: await toFile(PNG, 'in.png', { type: 'image/png' }), prompt: 'Make it blue' });
    expect(res.data?.[0].b64_json).toBe(b64);
    expect(form?.get('prompt')).toBe('Make it blue');
    const image = form?.get('image') as File;
    expect(image.name).toBe('in.png');
    expect(Buffer.from(await image.arrayBuffer()).equals(PNG)).toBe(true);
  });

  sdkTest('createVariation', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/images/variations', async (request) => {
      form = await request.formData();
      return HttpResponse.json({ created: T, data: [{ url: 'https://files.example/var-1.png' }, { url: 'https://files.example/var-2.png' }] });
    });
    const res = await client.images.createVariation({ model: 'dall-e-2', image: await toFile(PNG, 'in.png', { type: 'image/png' }), n: 2 });
    expect(res.data?.map((d) => d.url)).toEqual(['https://files.example/var-1.png', 'https://files.example/var-2.png']);
    expect(form?.get('n')).toBe('2');
  });
});

describe('videos (retired: OpenAI shut the Videos API down on 2026-09-24)', () => {
  test('every SDK videos call gets a 410 naming the shutdown, and OpenAI sees none of them', async () => {
    const attempts: [string, () => Promise<unknown>][] = [
      ['POST /v1/videos', () => client.videos.create({ model: 'sora-2', prompt: 'A cat on a skateboard' })],
      ['GET /v1/videos/{video_id}', () => client.videos.retrieve('video_abc123')],
      ['GET /v1/videos', () => client.videos.list()],
      ['GET /v1/videos/{video_id}/content', () => client.videos.downloadContent('video_abc123')],
      ['POST /v1/videos/{video_id}/remix', () => client.videos.remix('video_abc123', { prompt: 'Now at night' })],
      ['DELETE /v1/videos/{video_id}', () => client.videos.delete('video_abc123')],
    ];
    for (const [route, attempt] of attempts) {
      const err = (await attempt().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err, route).toBeInstanceOf(OpenAI.APIError);
      expect(err.status, route).toBe(410);
      expect(err.message).toContain(`${route} is retired`);
      expect(err.message).toContain('2026-09-24');
      expect((err.error as { code?: string }).code).toBe('operation_retired');
    }
    expect(upstream).toEqual([]);
  });
});

describe('audio', () => {
  sdkTest('speech returns the exact audio bytes', async () => {
    const mp3 = Buffer.concat([Buffer.from('ID3\x04\x00\x00', 'latin1'), randomBytes(8192)]);
    mock('post', '/v1/audio/speech', () => binaryAnswer(mp3, 'audio/mpeg'));
    const res = await client.audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'Hello there', response_format: 'mp3' });
    expect(res.headers.get('content-type')).toBe('audio/mpeg');
    expect(Buffer.from(await res.arrayBuffer()).equals(mp3)).toBe(true);
    expect(jsonBody(calls[0])).toEqual({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'Hello there', response_format: 'mp3' });
  });

  sdkTest('transcriptions with a file', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/audio/transcriptions', async (request) => {
      form = await request.formData();
      return HttpResponse.json({ text: 'Hello there.', usage: { type: 'tokens', input_tokens: 14, output_tokens: 4, total_tokens: 18 } });
    });
    const res = await client.audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await toFile(WAV, 'hello.wav', { type: 'audio/wav' }), language: 'en' });
    expect(res.text).toBe('Hello there.');
    expect(form?.get('model')).toBe('gpt-4o-transcribe');
    const file = form?.get('file') as File;
    expect(file.name).toBe('hello.wav');
    expect(Buffer.from(await file.arrayBuffer()).equals(WAV)).toBe(true);
  });

  sdkTest('transcriptions with stream: true', async () => {
    mock('post', '/v1/audio/transcriptions', () =>
      sseAnswer([
        `data: ${JSON.stringify({ type: 'transcript.text.delta', delta: 'Hello', logprobs: [] })}\n\n`,
        `data: ${JSON.stringify({ type: 'transcript.text.delta', delta: ' there.', logprobs: [] })}\n\n`,
        `data: ${JSON.stringify({ type: 'transcript.text.done', text: 'Hello there.', logprobs: [], usage: { type: 'tokens', input_tokens: 14, output_tokens: 4, total_tokens: 18 } })}\n\n`,
      ]),
    );
    const stream = await client.audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await toFile(WAV, 'hello.wav'), stream: true });
    const events: string[] = [];
    for await (const event of stream) events.push(event.type === 'transcript.text.delta' ? event.delta : `done:${event.type === 'transcript.text.done' ? event.text : ''}`);
    expect(events).toEqual(['Hello', ' there.', 'done:Hello there.']);
  });

  sdkTest('translations with a file', async () => {
    mock('post', '/v1/audio/translations', { text: 'Hello there.' });
    const res = await client.audio.translations.create({ model: 'whisper-1', file: await toFile(WAV, 'hallo.wav', { type: 'audio/wav' }) });
    expect(res.text).toBe('Hello there.');
    expect(calls[0].headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/);
  });
});

describe('realtime', () => {
  sdkTest('clientSecrets.create', async () => {
    mock('post', '/v1/realtime/client_secrets', {
      value: 'ek_abc123',
      expires_at: T + 600,
      session: { type: 'realtime', object: 'realtime.session', id: 'sess_abc123', model: 'gpt-realtime', output_modalities: ['audio'], instructions: 'Be brief.' },
    });
    const res = await client.realtime.clientSecrets.create({ expires_after: { anchor: 'created_at', seconds: 600 }, session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.' } });
    expect(res.value).toBe('ek_abc123');
    expect(res.session).toMatchObject({ id: 'sess_abc123', type: 'realtime' });
    expect(jsonBody(calls[0])).toEqual({ expires_after: { anchor: 'created_at', seconds: 600 }, session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.' } });
  });

  sdkTest('beta.realtime.sessions.create', async () => {
    mock('post', '/v1/realtime/sessions', { id: 'sess_abc123', object: 'realtime.session', model: 'gpt-4o-realtime-preview', expires_at: T + 60, instructions: 'Be brief.', client_secret: { value: 'ek_sess123', expires_at: T + 60 } });
    const res = await client.beta.realtime.sessions.create({ model: 'gpt-4o-realtime-preview', instructions: 'Be brief.' });
    expect(res.client_secret.value).toBe('ek_sess123');
  });

  sdkTest('beta.realtime.transcriptionSessions.create', async () => {
    mock('post', '/v1/realtime/transcription_sessions', { client_secret: { value: 'ek_tr123', expires_at: T + 60 }, modalities: ['text'], input_audio_format: 'pcm16', input_audio_transcription: { model: 'gpt-4o-transcribe' }, turn_detection: null });
    const res = await client.beta.realtime.transcriptionSessions.create({ input_audio_format: 'pcm16', input_audio_transcription: { model: 'gpt-4o-transcribe' } });
    expect(res.client_secret.value).toBe('ek_tr123');
  });
});

describe('realtime calls over WebRTC', () => {
  const OFFER = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';
  const ANSWER = 'v=0\r\no=- 8264920731 2 IN IP4 198.51.100.7\r\ns=OpenAI\r\nt=0 0\r\nm=audio 3478 UDP/TLS/RTP/SAVPF 111\r\n';
  const sdpAnswer = () =>
    new HttpResponse(ANSWER, {
      status: 201,
      headers: { 'content-type': 'application/sdp', location: '/v1/realtime/calls/rtc_u1_9c6574da8b8a41a1', 'x-request-id': 'req_up_call', 'x-envoy-upstream-service-time': '12' },
    });

  sdkTest('calls.create with an SDP offer only: the SDP answer and the Location header arrive', async () => {
    mock('post', '/v1/realtime/calls', sdpAnswer);
    const res = await client.realtime.calls.create({ sdp: OFFER });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/v1/realtime/calls/rtc_u1_9c6574da8b8a41a1');
    expect(res.headers.get('content-type')).toBe('application/sdp');
    expect(res.headers.get('x-envoy-upstream-service-time'), 'headers no allowlist names stay behind').toBeNull();
    expect(await res.text()).toBe(ANSWER);
    expect(calls[0].headers.get('content-type')).toBe('application/sdp');
    expect(calls[0].body.toString('utf8')).toBe(OFFER);
  });

  sdkTest('calls.create with a session config: multipart with sdp and session parts', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/realtime/calls', async (request) => {
      form = await request.formData();
      return sdpAnswer();
    });
    const res = await client.realtime.calls.create({ sdp: OFFER, session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.' } });
    expect(res.headers.get('location')).toBe('/v1/realtime/calls/rtc_u1_9c6574da8b8a41a1');
    expect(await res.text()).toBe(ANSWER);
    expect(calls[0].headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/);
    // Parts without a filename: a form reader hands them over as text.
    const part = (name: string) => form?.get(name);
    expect(calls[0].body.toString('utf8')).toMatch(/name="sdp"[^]*?\r\n[Cc]ontent-[Tt]ype: application\/sdp\r\n/);
    expect(part('sdp')).toBe(OFFER);
    expect(JSON.parse(String(part('session')))).toEqual({ type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.' });
  });

  sdkTest('accept, refer, reject and hangup on the call id', async () => {
    for (const verb of ['accept', 'refer', 'reject', 'hangup']) mock('post', `/v1/realtime/calls/:id/${verb}`, () => new HttpResponse(null, { status: 200 }));
    await client.realtime.calls.accept('rtc_u1_9c65', { type: 'realtime', model: 'gpt-realtime', instructions: 'Answer the phone.' });
    await client.realtime.calls.refer('rtc_u1_9c65', { target_uri: 'tel:+14155550123' });
    await client.realtime.calls.reject('rtc_u1_9c65', { status_code: 486 });
    await client.realtime.calls.hangup('rtc_u1_9c65');
    expect(upstreamSaw()).toEqual([
      'POST /v1/realtime/calls/rtc_u1_9c65/accept',
      'POST /v1/realtime/calls/rtc_u1_9c65/refer',
      'POST /v1/realtime/calls/rtc_u1_9c65/reject',
      'POST /v1/realtime/calls/rtc_u1_9c65/hangup',
    ]);
    expect(jsonBody(calls[0])).toEqual({ type: 'realtime', model: 'gpt-realtime', instructions: 'Answer the phone.' });
    expect(jsonBody(calls[1])).toEqual({ target_uri: 'tel:+14155550123' });
    expect(jsonBody(calls[2])).toEqual({ status_code: 486 });
    expect(calls[3].body.byteLength).toBe(0);
  });

  sdkTest('translations.clientSecrets.create', async () => {
    mock('post', '/v1/realtime/translations/client_secrets', { value: 'ek_tr_abc', expires_at: T + 600, session: { id: 'sess_tr1', model: 'gpt-realtime-translate' } });
    const res = await client.realtime.translations.clientSecrets.create({ session: { model: 'gpt-realtime-translate', audio: { output: { language: 'fr' } } } });
    expect(res.value).toBe('ek_tr_abc');
    expect(jsonBody(calls[0])).toEqual({ session: { model: 'gpt-realtime-translate', audio: { output: { language: 'fr' } } } });
  });
});

describe('chatkit (beta)', () => {
  const session = { id: 'cksess_123', object: 'chatkit.session', expires_at: T + 600, client_secret: 'ck_secret_abc', workflow: { id: 'wf_123', version: null, state_variables: null, tracing: { enabled: true } }, user: 'user_1', rate_limits: { max_requests_per_1_minute: 10 }, max_requests_per_1_minute: 10, status: 'active', chatkit_configuration: { automatic_thread_titling: { enabled: true }, file_upload: { enabled: false, max_file_size: null, max_files: null }, history: { enabled: true, recent_threads: null } } };
  const thread = { id: 'cthr_123', object: 'chatkit.thread', created_at: T, title: 'Hi', status: { type: 'active' }, user: 'user_1' };

  sdkTest('sessions.create mints a client secret, with the OpenAI-Beta header passed on; cancel', async () => {
    mock('post', '/v1/chatkit/sessions', session);
    mock('post', '/v1/chatkit/sessions/:id/cancel', { ...session, status: 'cancelled' });
    expect((await client.beta.chatkit.sessions.create({ user: 'user_1', workflow: { id: 'wf_123' } })).client_secret).toBe('ck_secret_abc');
    expect(calls[0].headers.get('openai-beta')).toBe('chatkit_beta=v1');
    expect(jsonBody(calls[0])).toEqual({ user: 'user_1', workflow: { id: 'wf_123' } });
    expect((await client.beta.chatkit.sessions.cancel('cksess_123')).status).toBe('cancelled');
  });

  sdkTest('threads: list, retrieve, listItems, delete', async () => {
    mock('get', '/v1/chatkit/threads', list([thread]));
    mock('get', '/v1/chatkit/threads/:id', thread);
    mock('get', '/v1/chatkit/threads/:id/items', list([{ id: 'cthi_1', object: 'chatkit.thread_item', created_at: T, thread_id: 'cthr_123', type: 'chatkit.user_message', content: [{ type: 'input_text', text: 'Hi' }], attachments: [], inference_options: null }]));
    mock('delete', '/v1/chatkit/threads/:id', { id: 'cthr_123', object: 'chatkit.thread.deleted', deleted: true });
    expect((await client.beta.chatkit.threads.list({ user: 'user_1', limit: 5 })).data.map((t) => t.id)).toEqual(['cthr_123']);
    expect((await client.beta.chatkit.threads.retrieve('cthr_123')).title).toBe('Hi');
    expect((await client.beta.chatkit.threads.listItems('cthr_123', { order: 'asc' })).data.map((i) => i.id)).toEqual(['cthi_1']);
    expect((await client.beta.chatkit.threads.delete('cthr_123')).deleted).toBe(true);
    expect(upstreamSaw()).toEqual(['GET /v1/chatkit/threads?user=user_1&limit=5', 'GET /v1/chatkit/threads/cthr_123', 'GET /v1/chatkit/threads/cthr_123/items?order=asc', 'DELETE /v1/chatkit/threads/cthr_123']);
  });
});

describe('skills', () => {
  const skill = { id: 'skill_123', object: 'skill', name: 'csv-insights', description: 'Summarise CSV files', created_at: T, default_version: '1', latest_version: '2' };
  const version = { object: 'skill.version', id: 'skillver_2', skill_id: 'skill_123', version: '2', created_at: T, name: 'csv-insights', description: 'Summarise CSV files' };
  const ZIP = Buffer.concat([Buffer.from('504b0304', 'hex'), randomBytes(1024)]);

  sdkTest('create from files (multipart), retrieve, update, list, delete', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/skills', async (request) => {
      form = await request.formData();
      return HttpResponse.json(skill);
    });
    mock('get', '/v1/skills/:id', skill);
    mock('post', '/v1/skills/:id', { ...skill, default_version: '2' });
    mock('get', '/v1/skills', list([skill]));
    mock('delete', '/v1/skills/:id', { object: 'skill.deleted', deleted: true, id: 'skill_123' });
    const md = Buffer.from('---\nname: csv-insights\ndescription: Summarise CSV files\n---\nRead the CSV.\n');
    expect((await client.skills.create({ files: [await toFile(md, 'csv-insights/SKILL.md', { type: 'text/markdown' })] })).id).toBe('skill_123');
    expect(Buffer.from(await (form?.getAll('files[]')[0] as File ?? form?.getAll('files')[0] as File).arrayBuffer()).equals(md)).toBe(true);
    expect((await client.skills.retrieve('skill_123')).name).toBe('csv-insights');
    expect((await client.skills.update('skill_123', { default_version: '2' })).default_version).toBe('2');
    expect((await client.skills.list({ limit: 2 })).data.map((x) => x.id)).toEqual(['skill_123']);
    expect((await client.skills.delete('skill_123')).deleted).toBe(true);
  });

  sdkTest('versions: create, retrieve, list, delete; content of a skill and a version as zip bytes', async () => {
    mock('post', '/v1/skills/:id/versions', version);
    mock('get', '/v1/skills/:id/versions/:v', version);
    mock('get', '/v1/skills/:id/versions', list([version]));
    mock('delete', '/v1/skills/:id/versions/:v', { object: 'skill.version.deleted', deleted: true, id: 'skillver_2', version: '2' });
    mock('get', '/v1/skills/:id/content', () => binaryAnswer(ZIP, 'application/zip'));
    mock('get', '/v1/skills/:id/versions/:v/content', () => binaryAnswer(ZIP, 'application/zip'));
    const bundle = await toFile(ZIP, 'csv-insights.zip', { type: 'application/zip' });
    expect((await client.skills.versions.create('skill_123', { files: bundle, default: true })).version).toBe('2');
    expect((await client.skills.versions.retrieve('2', { skill_id: 'skill_123' })).id).toBe('skillver_2');
    expect((await client.skills.versions.list('skill_123')).data.map((v) => v.version)).toEqual(['2']);
    expect((await client.skills.versions.delete('2', { skill_id: 'skill_123' })).deleted).toBe(true);
    const content = await client.skills.content.retrieve('skill_123');
    expect(content.headers.get('content-type')).toBe('application/zip');
    expect(Buffer.from(await content.arrayBuffer()).equals(ZIP)).toBe(true);
    const versionContent = await client.skills.versions.content.retrieve('2', { skill_id: 'skill_123' });
    expect(Buffer.from(await versionContent.arrayBuffer()).equals(ZIP)).toBe(true);
    expect(upstreamSaw()).toEqual([
      'POST /v1/skills/skill_123/versions',
      'GET /v1/skills/skill_123/versions/2',
      'GET /v1/skills/skill_123/versions',
      'DELETE /v1/skills/skill_123/versions/2',
      'GET /v1/skills/skill_123/content',
      'GET /v1/skills/skill_123/versions/2/content',
    ]);
  });
});

describe('custom voices and voice consents', () => {
  const consent = { object: 'audio.voice_consent', id: 'cons_123', name: 'Ada', language: 'en-US', created_at: T };

  sdkTest('voiceConsents: create (multipart recording), retrieve, update, list, delete', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/audio/voice_consents', async (request) => {
      form = await request.formData();
      return HttpResponse.json(consent);
    });
    mock('get', '/v1/audio/voice_consents/:id', consent);
    mock('post', '/v1/audio/voice_consents/:id', { ...consent, name: 'Ada L.' });
    mock('get', '/v1/audio/voice_consents', list([consent]));
    mock('delete', '/v1/audio/voice_consents/:id', { id: 'cons_123', object: 'audio.voice_consent', deleted: true });
    expect((await client.audio.voiceConsents.create({ name: 'Ada', language: 'en-US', recording: await toFile(WAV, 'consent.wav', { type: 'audio/wav' }) })).id).toBe('cons_123');
    expect(Buffer.from(await (form?.get('recording') as File).arrayBuffer()).equals(WAV)).toBe(true);
    expect((await client.audio.voiceConsents.retrieve('cons_123')).language).toBe('en-US');
    expect((await client.audio.voiceConsents.update('cons_123', { name: 'Ada L.' })).name).toBe('Ada L.');
    expect((await client.audio.voiceConsents.list({ limit: 10 })).data.map((c) => c.id)).toEqual(['cons_123']);
    expect((await client.audio.voiceConsents.delete('cons_123')).deleted).toBe(true);
  });

  sdkTest('voices.create from a sample and a consent', async () => {
    let form: FormData | undefined;
    mock('post', '/v1/audio/voices', async (request) => {
      form = await request.formData();
      return HttpResponse.json({ object: 'audio.voice', id: 'voice_123', name: 'Ada', created_at: T });
    });
    expect((await client.audio.voices.create({ name: 'Ada', consent: 'cons_123', audio_sample: await toFile(WAV, 'sample.wav', { type: 'audio/wav' }) })).id).toBe('voice_123');
    expect(form?.get('consent')).toBe('cons_123');
  });
});

describe('the SDK also gets OpenAI errors through the relay', () => {
  sdkTest('a 404 from OpenAI becomes the SDK NotFoundError with the upstream message', async () => {
    mock('get', '/v1/files/:id', () =>
      HttpResponse.json(
        { error: { message: "No such File object: file-missing", type: 'invalid_request_error', param: 'id', code: null } },
        { status: 404, headers: { 'x-request-id': 'req_up_404' } },
      ),
    );
    const err = await client.files.retrieve('file-missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).message).toContain('No such File object: file-missing');
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).requestID).toBe('req_up_404');
  });
});
