import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * The GPT Action slots the retired video actions left: stored conversations (createActionConversation,
 * listActionConversationItems, `conversation` on createActionResponse) and file search over vector stores
 * in model answers (`vector_store_ids`), against MSW playing OpenAI.
 */

const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(() => relay.shutdown());

const post = (path: string, body: unknown) => relay.call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function ok(res: Response): Promise<any> {
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}

const completed = (id: string) => ({ id, object: 'response', status: 'completed', output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Done.' }] }] });

describe('createActionConversation', () => {
  test('starts a conversation with the title in its metadata, with the server key', async () => {
    let sent: unknown;
    server.use(
      http.post(`${OPENAI_BASE}/v1/conversations`, async ({ request }) => {
        sent = await request.json();
        return HttpResponse.json({ id: 'conv_1', object: 'conversation', created_at: 1_767_225_600, metadata: { title: 'Q4 planning' } });
      }),
    );
    expect(await ok(await post('/v1/actions/conversations', { title: '  Q4 planning ' }))).toEqual({ id: 'conv_1', title: 'Q4 planning', created_at: 1_767_225_600 });
    expect(sent).toEqual({ metadata: { title: 'Q4 planning' } });
    expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
  });

  test('without a title (or a body): an empty conversation', async () => {
    let sent: unknown;
    server.use(
      http.post(`${OPENAI_BASE}/v1/conversations`, async ({ request }) => {
        sent = await request.json();
        return HttpResponse.json({ id: 'conv_2', object: 'conversation', created_at: 1, metadata: {} });
      }),
    );
    expect(await ok(await relay.call('/v1/actions/conversations', { method: 'POST' }))).toEqual({ id: 'conv_2', created_at: 1 });
    expect(sent).toEqual({});
  });
});

describe('listActionConversationItems', () => {
  test('oldest first by default: messages as role and text, other items as their type; has_more gives next_after', async () => {
    let url: URL | undefined;
    server.use(
      http.get(`${OPENAI_BASE}/v1/conversations/:id/items`, ({ request }) => {
        url = new URL(request.url);
        return HttpResponse.json({
          object: 'list',
          data: [
            { id: 'msg_1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Plan Q4.' }] },
            { id: 'fc_1', type: 'function_call', name: 'lookup', arguments: '{}' },
            { id: 'msg_2', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Step 1.' }, { type: 'output_text', text: 'Step 2.' }] },
          ],
          first_id: 'msg_1',
          last_id: 'msg_2',
          has_more: true,
        });
      }),
    );
    expect(await ok(await relay.call('/v1/actions/conversations/conv_1/items?limit=3'))).toEqual({
      data: [
        { id: 'msg_1', role: 'user', text: 'Plan Q4.' },
        { id: 'fc_1', role: 'function_call', text: '' },
        { id: 'msg_2', role: 'assistant', text: 'Step 1.\nStep 2.' },
      ],
      has_more: true,
      next_after: 'msg_2',
    });
    expect(url?.pathname).toBe('/v1/conversations/conv_1/items');
    expect(Object.fromEntries(url!.searchParams)).toEqual({ limit: '3', order: 'asc' });
  });

  test('order desc and the after cursor pass on', async () => {
    let search = '';
    server.use(
      http.get(`${OPENAI_BASE}/v1/conversations/:id/items`, ({ request }) => {
        search = new URL(request.url).search;
        return HttpResponse.json({ object: 'list', data: [], has_more: false });
      }),
    );
    expect(await ok(await relay.call('/v1/actions/conversations/conv_1/items?order=desc&after=msg_9'))).toEqual({ data: [], has_more: false });
    expect(search).toBe('?limit=20&order=desc&after=msg_9');
  });
});

describe('createActionResponse: conversation and file search', () => {
  test('conversation and vector_store_ids reach OpenAI as the conversation and a file_search tool (with web_search)', async () => {
    let created: any;
    server.use(
      http.post(`${OPENAI_BASE}/v1/responses`, async ({ request }) => {
        created = await request.json();
        return HttpResponse.json(completed('resp_c1'));
      }),
    );
    const answer = await ok(await post('/v1/actions/responses', { input: 'What is our refund policy?', conversation: 'conv_1', vector_store_ids: ['vs_1', 'vs_2'], web_search: true }));
    expect(answer).toEqual({ id: 'resp_c1', status: 'completed', output_text: 'Done.' });
    expect(created).toMatchObject({
      conversation: 'conv_1',
      tools: [{ type: 'web_search' }, { type: 'file_search', vector_store_ids: ['vs_1', 'vs_2'] }],
      background: true,
      store: true,
    });
    expect(created.previous_response_id).toBeUndefined();
  });

  test('previous_response_id and conversation together → 400, nothing sent', async () => {
    const res = await post('/v1/actions/responses', { input: 'x', conversation: 'conv_1', previous_response_id: 'resp_0' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string; message: string } }).error).toMatchObject({ param: 'conversation', message: expect.stringMatching(/not both/) });
    expect(upstream).toEqual([]);
  });

  test('more than two vector stores → 400 from the schema, nothing sent', async () => {
    const res = await post('/v1/actions/responses', { input: 'x', vector_store_ids: ['a', 'b', 'c'] });
    expect(res.status).toBe(400);
    expect(upstream).toEqual([]);
  });
});
