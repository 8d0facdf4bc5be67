import { describe, expect, test } from 'vitest';
import { operations } from '../generated/routes.ts';
import { buildFullSchema } from '../scripts/generate/emit-documents.ts';
import { acknowledgementsOf, declaredResponseHeaders, retirementOf } from '../scripts/generate/marks.ts';
import { actionMark, listOperations, loadSpec } from '../scripts/generate/spec.ts';

/**
 * The x-relay marks of scripts/generate/marks.ts: the body kind `sdp`, declared response headers,
 * retirements and acknowledged differences, as the generator checks them and writes them into the
 * route table (which the relay reads instead of the spec).
 */

const SOURCE = 'https://developers.openai.com/api/docs/deprecations';
const retired = { date: '2026-09-24', source: SOURCE, replacement: null, product: 'the Videos API' };

/** A one-operation spec with `relay` as the operation's x-relay and `extra` merged into it. */
function tinySpec(relay: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    openapi: '3.1.0',
    info: { title: 't', version: '1' },
    paths: {
      '/v1/things': {
        post: {
          operationId: 'createThing',
          requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
          responses: { '200': { description: 'OK' } },
          'x-relay': { body: 'json', answer: 'json', timeout: 'short', ...relay },
          ...extra,
        },
      },
    },
  };
}

describe('retirements', () => {
  test('a complete mark makes the sentence the relay answers with', () => {
    expect(retirementOf({ retired }, 'GET /v1/videos', [])).toEqual({
      date: '2026-09-24',
      source: SOURCE,
      replacement: null,
      message: `GET /v1/videos is retired: OpenAI shut down the Videos API on 2026-09-24 (${SOURCE}), so this relay no longer forwards it. OpenAI names no replacement.`,
    });
    expect(retirementOf({ retired: { ...retired, replacement: 'POST /v1/responses' } }, 'X', [])?.message).toMatch(/Use POST \/v1\/responses instead\.$/);
    expect(retirementOf({}, 'X', [])).toBeNull();
  });

  test('every field is checked: a date, an https source, a replacement said on purpose, a product', () => {
    const problems: string[] = [];
    retirementOf({ retired: { date: '24/09/2026', source: 'http://x', product: '' } }, 'GET /v1/videos', problems);
    expect(problems).toEqual([
      expect.stringMatching(/retired\.date must be a YYYY-MM-DD date/),
      expect.stringMatching(/retired\.source must be the https URL/),
      expect.stringMatching(/retired\.replacement must be what to use instead, or null/),
      expect.stringMatching(/retired\.product must name what OpenAI shut down/),
    ]);
    expect(() => listOperations(tinySpec({ retired: { date: '2026-09-24' } }))).toThrow(/retired\.source/);
  });

  test('a retired operation leaves the action surface, and is served deprecated with the sentence', () => {
    const spec = tinySpec({ kind: 'relay', action: { consequential: false }, retired });
    expect(actionMark(spec.paths['/v1/things'].post)).toBeNull();
    expect(listOperations(spec)[0].relay).toMatchObject({ action: null, retired: { date: '2026-09-24' } });
    const served = buildFullSchema(spec, { serverUrl: 'https://relay.example' }).paths['/v1/things'].post;
    expect(served).toMatchObject({ deprecated: true, description: expect.stringMatching(/^POST \/v1\/things is retired: .* \(410 Gone\)$/) });
    expect(served).not.toHaveProperty('x-relay');
  });

  test('in the route table: the Videos API, every operation, with the cited source', () => {
    const videos = operations.filter((o) => o.path.startsWith('/v1/videos') || o.path.startsWith('/v1/actions/videos'));
    expect(videos).toHaveLength(13);
    for (const o of videos) expect(o.retired).toMatchObject({ date: '2026-09-24', source: SOURCE, replacement: null });
    expect(operations.filter((o) => o.retired)).toHaveLength(13);
  });
});

describe('body kind sdp and declared response headers', () => {
  test('create-realtime-call: an SDP offer in, the Location header out', () => {
    const call = operations.find((o) => o.operationId === 'create-realtime-call')!;
    expect(call).toMatchObject({ body: 'sdp', answer: 'binary', responseHeaders: ['location'], requestContentTypes: ['multipart/form-data', 'application/sdp'] });
    expect(operations.filter((o) => o.responseHeaders.length > 0).map((o) => o.operationId)).toEqual(['create-realtime-call']);
  });

  test('body sdp needs an application/sdp request body', () => {
    expect(() => listOperations(tinySpec({ body: 'sdp' }))).toThrow(/x-relay\.body sdp needs an application\/sdp request body/);
  });

  test('declared headers: from 2xx responses only, through $refs, lowercased; hop-by-hop and set-cookie never', () => {
    const spec = {
      components: { responses: { Made: { description: 'made', headers: { 'X-Thing-Id': { schema: { type: 'string' } } } } } },
    };
    const op = {
      responses: {
        '201': { description: 'c', headers: { Location: {}, 'Set-Cookie': {}, 'Transfer-Encoding': {}, Connection: {} } },
        '202': { $ref: '#/components/responses/Made' },
        '400': { description: 'bad', headers: { 'X-Error-Detail': {} } },
      },
    };
    expect(declaredResponseHeaders(spec, op, [], 'op')).toEqual(['location', 'x-thing-id']);
    const problems: string[] = [];
    declaredResponseHeaders(spec, { responses: { '200': { headers: { 'Bad Header': {} } } } }, problems, 'op');
    expect(problems).toEqual(['op: response header "Bad Header" is not a header name']);
  });
});

describe('acknowledged differences', () => {
  test('well-formed marks parse; each kind needs the fields that pin its difference, and a reason', () => {
    const problems: string[] = [];
    const marks = acknowledgementsOf(
      [
        { kind: 'content-type', where: 'response', official: ['application/json'], reason: 'bytes, not JSON, on the wire' },
        { kind: 'enum', name: 'order', added: ['x'], removed: [], reason: 'not offered to callers yet' },
      ],
      'operation',
      'GET /v1/x',
      problems,
    );
    expect(problems).toEqual([]);
    expect(marks.map((m) => m.kind)).toEqual(['content-type', 'enum']);

    acknowledgementsOf([{ kind: 'content-type', where: 'sideways', reason: 'short' }, { kind: 'nope' }, { kind: 'enum', name: 'x', reason: 'long enough reason' }], 'operation', 'GET /v1/x', problems);
    expect(problems).toEqual([
      'GET /v1/x: x-relay.acknowledged[0].reason must say why the difference is kept',
      'GET /v1/x: x-relay.acknowledged[0].official is missing',
      'GET /v1/x: x-relay.acknowledged[0]: where must be request or response, official a list of media types',
      'GET /v1/x: x-relay.acknowledged[1].kind must be one of content-type, required, enum, removed, missing',
      'GET /v1/x: x-relay.acknowledged[2].added is missing',
      'GET /v1/x: x-relay.acknowledged[2].removed is missing',
      'GET /v1/x: x-relay.acknowledged[2]: added and removed must be lists',
    ]);
  });

  test('npm run generate refuses a malformed mark in the spec, naming it', () => {
    expect(() => listOperations(tinySpec({ acknowledged: [{ kind: 'required' }] }))).toThrow(/POST \/v1\/things: x-relay\.acknowledged\[0\]\.reason/);
    const doc = { ...tinySpec({}), 'x-relay': { acknowledged: [{ kind: 'removed', reason: 'a reason long enough' }] } };
    expect(() => listOperations(doc)).toThrow(/removed is acknowledged on its operation/);
  });

  test('the real spec: three acknowledged differences, each with its reason', () => {
    const marked = listOperations(loadSpec()).filter((o) => o.relay.acknowledged.length > 0);
    expect(marked.map((o) => `${o.operationId}: ${o.relay.acknowledged.map((a) => a.kind).join(', ')}`)).toEqual([
      'getResponse: content-type',
      'downloadFile: content-type',
      'create-realtime-session: required',
    ]);
  });
});
