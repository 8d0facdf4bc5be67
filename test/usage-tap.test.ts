import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createUsageTap, withRequestModel, type UsageInfo } from '../src/upstream/usage-tap/index.ts';

function run(contentType: string | undefined, chunks: (string | Buffer)[], opts?: Parameters<typeof createUsageTap>[1]): UsageInfo | undefined {
  const tap = createUsageTap(contentType, opts);
  if (tap === undefined) throw new Error('no tap');
  for (const c of chunks) tap.write(typeof c === 'string' ? Buffer.from(c) : c);
  return tap.end();
}

const json = (v: unknown) => JSON.stringify(v);
const sse = (events: unknown[], eol = '\n') =>
  events
    .map((e) =>
      typeof e === 'string'
        ? `data: ${e}${eol}${eol}`
        : `event: ${(e as { type?: string }).type ?? 'message'}${eol}data: ${json(e)}${eol}${eol}`,
    )
    .join('');

const responsesUsage = {
  input_tokens: 36,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 87,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 123,
};

function responseObject(status: string, usage: unknown, outputText = 'Hello') {
  return {
    id: 'resp_1',
    object: 'response',
    created_at: 1741476542,
    status,
    error: null,
    incomplete_details: null,
    instructions: 'say "model": {"usage": 1}',
    model: 'gpt-4.1-2025-04-14',
    output: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: outputText, annotations: [] }] }],
    parallel_tool_calls: true,
    tools: [],
    usage,
    user: null,
    metadata: {},
  };
}

const responsesStream = sse([
  { type: 'response.created', sequence_number: 0, response: responseObject('in_progress', null) },
  { type: 'response.in_progress', sequence_number: 1, response: responseObject('in_progress', null) },
  { type: 'response.output_text.delta', sequence_number: 2, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'He said \\"usage\\": {' },
  { type: 'response.output_text.delta', sequence_number: 3, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'llo ✓ 𝄞' },
  { type: 'response.completed', sequence_number: 4, response: responseObject('completed', responsesUsage) },
]);

const chatChunk = (delta: unknown, extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1694268190,
  model: 'gpt-4o-mini-2024-07-18',
  system_fingerprint: 'fp_44709d6fcb',
  choices: delta === null ? [] : [{ index: 0, delta, logprobs: null, finish_reason: null }],
  ...extra,
});

const chatStream = sse([
  chatChunk({ role: 'assistant', content: '' }, { usage: null }),
  chatChunk({ content: 'Hel' }, { usage: null }),
  chatChunk({ content: 'lo' }, { usage: null }),
  chatChunk({}, { usage: null }),
  chatChunk(null, { usage: { prompt_tokens: 19, completion_tokens: 10, total_tokens: 29, prompt_tokens_details: { cached_tokens: 0 } } }),
  '[DONE]',
]);

describe('createUsageTap: which answers', () => {
  test('JSON and SSE get a tap (media type parameters and case ignored); others do not', () => {
    expect(createUsageTap('application/json')).toBeDefined();
    expect(createUsageTap('Application/JSON; charset=utf-8')).toBeDefined();
    expect(createUsageTap('text/event-stream; charset=utf-8')).toBeDefined();
    expect(createUsageTap(undefined)).toBeUndefined();
    expect(createUsageTap('')).toBeUndefined();
    expect(createUsageTap('audio/mpeg')).toBeUndefined();
    expect(createUsageTap('application/octet-stream')).toBeUndefined();
    expect(createUsageTap('text/plain')).toBeUndefined();
    expect(createUsageTap('application/json', { contentEncoding: 'gzip' })).toBeUndefined();
    expect(createUsageTap('application/json', { contentEncoding: 'identity' })).toBeDefined();
  });
});

describe('JSON answers', () => {
  test('Responses', () => {
    expect(run('application/json', [json(responseObject('completed', responsesUsage))])).toEqual({
      model: 'gpt-4.1-2025-04-14',
      inputTokens: 36,
      outputTokens: 87,
      totalTokens: 123,
    });
  });

  test('Chat Completions, in several chunks', () => {
    const body = json({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-2024-08-06',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21, completion_tokens_details: { reasoning_tokens: 0 } },
    });
    expect(run('application/json', [body.slice(0, 10), body.slice(10, 50), body.slice(50)])).toEqual({
      model: 'gpt-4o-2024-08-06',
      inputTokens: 9,
      outputTokens: 12,
      totalTokens: 21,
    });
  });

  test('Embeddings (no output tokens)', () => {
    const body = json({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.0023, -0.0093] }],
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 8, total_tokens: 8 },
    });
    expect(run('application/json', [body])).toEqual({ model: 'text-embedding-3-small', inputTokens: 8, totalTokens: 8 });
  });

  test('images (usage without model)', () => {
    const body = json({
      created: 1713833628,
      data: [{ b64_json: 'aGVsbG8=' }],
      usage: { total_tokens: 100, input_tokens: 50, output_tokens: 50, input_tokens_details: { text_tokens: 10, image_tokens: 40 } },
    });
    expect(run('application/json', [body])).toEqual({ inputTokens: 50, outputTokens: 50, totalTokens: 100, details: { imageInput: 40 } });
  });

  test('no usage, no model: undefined; model alone is kept', () => {
    expect(run('application/json', [json({ id: 'file-1', object: 'file', bytes: 10 })])).toBeUndefined();
    expect(run('application/json', [json({ object: 'response', model: 'gpt-4o', usage: null })])).toEqual({ model: 'gpt-4o' });
    expect(run('application/json', [])).toBeUndefined();
    expect(run('application/json', ['[1,2,3]'])).toBeUndefined();
  });

  test('nested usage in a list is not the answer\'s usage', () => {
    const body = json({ object: 'list', data: [{ id: 'chatcmpl-1', model: 'gpt-4o', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }], has_more: false });
    expect(run('application/json', [body])).toBeUndefined();
  });

  test('a 2 MB embeddings list reports the usage at its end, holding only its edges', () => {
    const vector = Array.from({ length: 1536 }, (_, i) => Math.sin(i) / 7);
    const data = Array.from({ length: 70 }, (_, index) => ({ object: 'embedding', index, embedding: vector }));
    const body = Buffer.from(json({ object: 'list', data, model: 'text-embedding-3-large', usage: { prompt_tokens: 4242, total_tokens: 4242 } }));
    expect(body.length).toBeGreaterThan(2_000_000);
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += 16 * 1024) chunks.push(body.subarray(i, i + 16 * 1024));
    expect(run('application/json', chunks)).toEqual({ model: 'text-embedding-3-large', inputTokens: 4242, totalTokens: 4242 });
  });

  test('a big image answer (base64 first, usage last) and a big Responses answer (model first, usage last)', () => {
    const b64 = Buffer.alloc(1_500_000, 7).toString('base64');
    const image = json({ created: 1, background: 'opaque', data: [{ b64_json: b64 }], output_format: 'png', quality: 'high', size: '1024x1024', usage: { input_tokens: 12, output_tokens: 4160, total_tokens: 4172, input_tokens_details: { image_tokens: 0, text_tokens: 12 } } });
    expect(run('application/json', [image])).toEqual({ inputTokens: 12, outputTokens: 4160, totalTokens: 4172 });


    const response = json(responseObject('completed', responsesUsage, 'x'.repeat(600_000)));
    expect(run('application/json', [response.slice(0, 1000), response.slice(1000)])).toEqual({
      model: 'gpt-4.1-2025-04-14',
      inputTokens: 36,
      outputTokens: 87,
      totalTokens: 123,
    });
  });

  test('a big Responses answer whose metadata (16 pairs of 512 characters) follows its usage', () => {
    const metadata = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`.padEnd(64, 'k'), 'v'.repeat(512)]));
    const body = json({ ...responseObject('completed', responsesUsage, 'x'.repeat(100_000)), user: null, metadata });
    expect(body.indexOf('"usage"')).toBeLessThan(body.length - 9000);
    expect(run('application/json', [body])).toEqual({ model: 'gpt-4.1-2025-04-14', inputTokens: 36, outputTokens: 87, totalTokens: 123 });
  });

  test('a big list of stored completions reports nothing (its usages are nested)', () => {
    const item = { id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o', choices: [{ message: { content: 'y'.repeat(2000) } }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
    const body = json({ object: 'list', data: Array.from({ length: 200 }, () => item), first_id: 'a', last_id: 'b', has_more: false });
    expect(body.length).toBeGreaterThan(256 * 1024);
    expect(run('application/json', [body])).toBeUndefined();
  });

  test('maxJsonBytes is honoured', () => {
    const body = json({ model: 'gpt-4o', pad: 'z'.repeat(50_000), usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } });
    // past the cap the edges still find both (model in the first 4 KB, usage in the last)
    expect(run('application/json', [body], { maxJsonBytes: 1000 })).toEqual({ model: 'gpt-4o', inputTokens: 1, outputTokens: 2, totalTokens: 3 });
  });

  test('a body cut short still reports what its edges show', () => {
    const body = json(responseObject('completed', responsesUsage));
    expect(run('application/json', [body.slice(0, body.length - 5)])).toEqual({ model: 'gpt-4.1-2025-04-14', inputTokens: 36, outputTokens: 87, totalTokens: 123 });
    expect(run('application/json', [body.slice(0, body.indexOf('"usage"') + 20)])).toEqual({ model: 'gpt-4.1-2025-04-14' });
  });
});

describe('token details and service tier: what prices a call', () => {
  test('Responses: cached input, cache writes and reasoning; zeros are not kept; the tier beside usage', () => {
    const usage = { input_tokens: 2000, input_tokens_details: { cached_tokens: 1536, cache_write_tokens: 64 }, output_tokens: 900, output_tokens_details: { reasoning_tokens: 640 }, total_tokens: 2900 };
    const body = json({ ...responseObject('completed', usage), service_tier: 'flex' });
    expect(run('application/json', [body])).toEqual({
      model: 'gpt-4.1-2025-04-14',
      serviceTier: 'flex',
      inputTokens: 2000,
      outputTokens: 900,
      totalTokens: 2900,
      details: { cachedInput: 1536, cacheWrite: 64, reasoning: 640 },
    });
    expect(run('application/json', [json(responseObject('completed', responsesUsage))])).not.toHaveProperty('details');
  });

  test('Chat Completions: prompt and completion details (audio, cached), JSON and the streamed usage chunk', () => {
    const usage = {
      prompt_tokens: 300,
      completion_tokens: 120,
      total_tokens: 420,
      prompt_tokens_details: { cached_tokens: 128, audio_tokens: 100, text_tokens: 200, image_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 80, accepted_prediction_tokens: 0, rejected_prediction_tokens: 3 },
    };
    const expected = { model: 'gpt-4o-mini-2024-07-18', serviceTier: 'priority', inputTokens: 300, outputTokens: 120, totalTokens: 420, details: { cachedInput: 128, audioInput: 100, audioOutput: 80 } };
    const body = json({ id: 'c', object: 'chat.completion', model: 'gpt-4o-mini-2024-07-18', choices: [], usage, service_tier: 'priority', system_fingerprint: 'fp' });
    expect(run('application/json', [body])).toEqual(expected);
    const stream = sse([chatChunk({ role: 'assistant' }, { usage: null, service_tier: 'priority' }), chatChunk(null, { usage, service_tier: 'priority' }), '[DONE]']);
    expect(run('text/event-stream', [stream])).toEqual(expected);
  });

  test('Realtime and transcription shapes: input_token_details with the cached part by modality', () => {
    const usage = {
      total_tokens: 700,
      input_tokens: 500,
      output_tokens: 200,
      input_token_details: { cached_tokens: 300, text_tokens: 100, audio_tokens: 350, image_tokens: 50, cached_tokens_details: { text_tokens: 40, audio_tokens: 250, image_tokens: 10 } },
      output_token_details: { text_tokens: 20, audio_tokens: 180 },
    };
    expect(run('application/json', [json({ object: 'realtime.response', model: 'gpt-realtime', usage })])).toMatchObject({
      details: { cachedInput: 300, audioInput: 350, imageInput: 50, cachedAudioInput: 250, cachedImageInput: 10, audioOutput: 180 },
    });
  });

  test('image generation: output details split image and text tokens', () => {
    const usage = { input_tokens: 60, output_tokens: 1100, total_tokens: 1160, input_tokens_details: { text_tokens: 20, image_tokens: 40 }, output_tokens_details: { image_tokens: 1056, text_tokens: 44 } };
    expect(run('application/json', [json({ created: 1, data: [], usage })])).toEqual({ inputTokens: 60, outputTokens: 1100, totalTokens: 1160, details: { imageInput: 40, imageOutput: 1056 } });
  });

  test('the tier is only looked for in answers that generated output (embeddings are not searched)', () => {
    const embeddings = json({ object: 'list', data: [], model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 }, service_tier: 'flex' });
    expect(run('application/json', [embeddings])).toEqual({ model: 'text-embedding-3-small', inputTokens: 8, totalTokens: 8 });
  });

  test('a big answer: the tier from its tail (near usage), or its head; a nested tier is not the answer\'s', () => {
    const usage = { input_tokens: 1, output_tokens: 2, total_tokens: 3 };
    const tail = json({ model: 'gpt-5', pad: 'z'.repeat(100_000), service_tier: 'flex', usage });
    expect(run('application/json', [tail])).toMatchObject({ serviceTier: 'flex' });
    const head = json({ model: 'gpt-5', service_tier: 'priority', pad: 'z'.repeat(100_000), usage });
    expect(run('application/json', [head])).toMatchObject({ serviceTier: 'priority' });
    const nested = json({ model: 'gpt-5', tools: [{ service_tier: 'flex' }], usage });
    expect(run('application/json', [nested])).not.toHaveProperty('serviceTier');
  });
});

describe('withRequestModel: the model of an answer that names none, from the held request body', () => {
  test('the body\'s top-level model only, and only when the answer named none', () => {
    const body = (v: unknown) => Buffer.from(JSON.stringify(v));
    expect(withRequestModel({ inputTokens: 1 }, body({ prompt: 'a "model": "x"', metadata: { model: 'nested' }, model: 'gpt-image-1' }))).toEqual({ inputTokens: 1, model: 'gpt-image-1' });
    expect(withRequestModel({ model: 'gpt-5', inputTokens: 1 }, body({ model: 'gpt-image-1' }))).toEqual({ model: 'gpt-5', inputTokens: 1 });
    expect(withRequestModel({ inputTokens: 1 }, body({ metadata: { model: 'nested' } }))).toEqual({ inputTokens: 1 });
    expect(withRequestModel({ inputTokens: 1 }, undefined)).toEqual({ inputTokens: 1 });
    expect(withRequestModel({ inputTokens: 1 }, Buffer.from('not json'))).toEqual({ inputTokens: 1 });
  });
});

describe('SSE answers', () => {
  test('Responses: model and usage from response.completed; null usages and escaped text ignored', () => {
    expect(run('text/event-stream', [responsesStream])).toEqual({
      model: 'gpt-4.1-2025-04-14',
      inputTokens: 36,
      outputTokens: 87,
      totalTokens: 123,
    });
  });

  test('Responses: incomplete and failed events carry usage too', () => {
    for (const type of ['response.incomplete', 'response.failed']) {
      const stream = sse([{ type, sequence_number: 1, response: responseObject(type.slice(9), { input_tokens: 5, output_tokens: 0, total_tokens: 5 }) }]);
      expect(run('text/event-stream', [stream])).toEqual({ model: 'gpt-4.1-2025-04-14', inputTokens: 5, outputTokens: 0, totalTokens: 5 });
    }
  });

  test('Chat Completions with include_usage: model from the first chunk, usage from the last', () => {
    expect(run('text/event-stream', [chatStream])).toEqual({
      model: 'gpt-4o-mini-2024-07-18',
      inputTokens: 19,
      outputTokens: 10,
      totalTokens: 29,
    });
  });

  test('Chat Completions without include_usage: the model alone', () => {
    const stream = sse([chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: 'x' }), '[DONE]']);
    expect(run('text/event-stream', [stream])).toEqual({ model: 'gpt-4o-mini-2024-07-18' });
  });

  test('CRLF line endings, and a last line without its newline', () => {
    expect(run('text/event-stream', [sse([chatChunk(null, { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })], '\r\n')])).toEqual({
      model: 'gpt-4o-mini-2024-07-18',
      inputTokens: 1,
      outputTokens: 2,
      totalTokens: 3,
    });
    const last = `data: ${json({ type: 'transcript.text.done', text: 'hi', usage: { type: 'tokens', input_tokens: 14, output_tokens: 45, total_tokens: 59 } })}`;
    expect(run('text/event-stream', [last])).toEqual({ inputTokens: 14, outputTokens: 45, totalTokens: 59 });
  });

  test('nothing useful: undefined', () => {
    expect(run('text/event-stream', [': keep-alive\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n'])).toBeUndefined();
    expect(run('text/event-stream', [])).toBeUndefined();
  });

  test('the same result whatever the split (every split in two and three)', () => {
    for (const stream of [responsesStream, chatStream]) {
      const bytes = Buffer.from(stream);
      const expected = run('text/event-stream', [bytes]);
      expect(expected).toBeDefined();
      for (let i = 0; i <= bytes.length; i++) {
        expect(run('text/event-stream', [bytes.subarray(0, i), bytes.subarray(i)])).toEqual(expected);
      }
      for (let i = 0; i <= bytes.length; i += 11) {
        for (let j = i; j <= bytes.length; j += 17) {
          expect(run('text/event-stream', [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)])).toEqual(expected);
        }
      }
      // byte by byte
      const single: Buffer[] = [];
      for (let i = 0; i < bytes.length; i++) single.push(bytes.subarray(i, i + 1));
      expect(run('text/event-stream', single)).toEqual(expected);
    }
  });

  test('property: any chunking gives the same result', () => {
    const bytes = Buffer.from(responsesStream + chatStream);
    const expected = run('text/event-stream', [bytes]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: bytes.length }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const chunks = points.slice(1).map((p, k) => bytes.subarray(points[k], p));
        expect(run('text/event-stream', chunks)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  test('a response.completed line over the line cap still yields its usage (from its edges)', () => {
    const b64 = Buffer.alloc(1_200_000, 3).toString('base64');
    const response = {
      ...responseObject('completed', { input_tokens: 2000, output_tokens: 1500, total_tokens: 3500 }),
      output: [{ type: 'image_generation_call', id: 'ig_1', status: 'completed', result: b64 }],
    };
    const stream = sse([{ type: 'response.completed', sequence_number: 9, response }]);
    const bytes = Buffer.from(stream);
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536));
    expect(run('text/event-stream', chunks)).toEqual({ model: 'gpt-4.1-2025-04-14', inputTokens: 2000, outputTokens: 1500, totalTokens: 3500 });
    // and a cap that drops the line to its edges gives the same as holding it whole
    expect(run('text/event-stream', [responsesStream], { maxLineBytes: 100 })).toEqual(run('text/event-stream', [responsesStream]));
  });

  test('long lines that are not data are not held', () => {
    const tap = createUsageTap('text/event-stream')!;
    tap.write(Buffer.from(': ' + 'x'.repeat(3_000_000)));
    tap.write(Buffer.from('\n' + sse([chatChunk(null, { usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })])));
    expect(tap.end()).toEqual({ model: 'gpt-4o-mini-2024-07-18', inputTokens: 1, outputTokens: 1, totalTokens: 2 });
  });
});

describe('garbage never throws', () => {
  test('random bytes, random JSON, random text into both taps', () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
      fc.json().map((s) => Buffer.from(s)),
      fc.string({ unit: 'binary', maxLength: 500 }).map((s) => Buffer.from('data: ' + s + '\n')),
      fc.constantFrom(
        Buffer.from('data: {"usage":{"input_tokens":-1,"output_tokens":1e400,"total_tokens":"9"}}\n'),
        Buffer.from('data: {"usage":{'),
        Buffer.from('{"model":{"x":1},"usage":[1,2]}'),
        Buffer.from('{"usage":{"prompt_tokens":1.5}}'),
        Buffer.from([0xff, 0xfe, 0x0a, 0xc3]),
        Buffer.from('"model":"a","usage":{}}]}}}}'),
      ),
    );
    fc.assert(
      fc.property(fc.array(input, { maxLength: 8 }), fc.constantFrom('application/json', 'text/event-stream'), (chunks, type) => {
        for (const maxJsonBytes of [undefined, 64]) {
          const tap = createUsageTap(type, { maxJsonBytes, maxLineBytes: maxJsonBytes })!;
          for (const c of chunks) tap.write(c);
          const out = tap.end();
          if (out !== undefined) {
            for (const k of ['inputTokens', 'outputTokens', 'totalTokens'] as const) {
              if (out[k] !== undefined) expect(Number.isSafeInteger(out[k]) && out[k]! >= 0).toBe(true);
            }
            if (out.model !== undefined) expect(typeof out.model).toBe('string');
          }
          tap.write(Buffer.from('after end'));
          expect(tap.end()).toBeUndefined();
        }
      }),
      { numRuns: 250 },
    );
  });

  test('invalid token values are ignored', () => {
    expect(run('application/json', ['{"model":"m","usage":{"input_tokens":-1,"output_tokens":1.5,"total_tokens":"9"}}'])).toEqual({ model: 'm' });
  });
});
