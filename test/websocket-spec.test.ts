import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { matchOperation } from '../generated/matcher.ts';
import { matchWebSocket, webSocketRoutes } from '../generated/websockets.ts';
import { loadSpec } from '../scripts/generate/spec.ts';
import { listWebSockets } from '../scripts/generate/websockets.ts';
import { loadConfig } from '../src/config.ts';

/**
 * The WebSocket endpoints as the spec declares them (GETs answered 101, marked `x-relay.kind: websocket`):
 * the generator checks every mark, writes the table the upgrade door reads, and the served full document
 * shows them; the HTTP route table does not route them.
 */

type Json = Record<string, any>;
const spec = loadSpec();
const full = JSON.parse(readFileSync(new URL('../generated/openapi.full.json', import.meta.url), 'utf8')) as Json;

/** The spec's WebSocket GETs, read here independently of the generator. */
const declared = Object.entries<Json>(spec.paths).flatMap(([path, item]) => (item.get?.['x-relay']?.kind === 'websocket' ? [{ path, op: item.get as Json }] : []));

describe('the WebSocket table', () => {
  test('every WebSocket endpoint the SDK dials is declared, once, with its operation name and deadline class', () => {
    expect(declared.map((d) => d.path).sort()).toEqual(
      ['/v1/live/sessions', '/v1/live/sessions/{session_id}/attach', '/v1/live/sessions/{session_id}/fork', '/v1/realtime', '/v1/realtime/translations', '/v1/responses'].sort(),
    );
    expect(webSocketRoutes).toHaveLength(declared.length);
    for (const { path, op } of declared) {
      const route = webSocketRoutes.find((r) => r.path === path)!;
      expect(route.operationId).toBe(op.operationId);
      expect(route.timeout).toBe(op['x-relay'].timeout);
      expect(route.modelQuery).toBe((op.parameters ?? []).some((p: Json) => p.in === 'query' && p.name === 'model') ? 'model' : null);
    }
  });

  test('the matcher: each path and its parameters; nothing else, no prefix, no extra segment', () => {
    expect(matchWebSocket('/v1/realtime')?.route.operationId).toBe('connectRealtime');
    expect(matchWebSocket('/v1/realtime/translations')?.route.operationId).toBe('connectRealtimeTranslation');
    expect(matchWebSocket('/v1/live/sessions/sess_1/fork')).toMatchObject({ route: { operationId: 'connectLiveSessionFork' }, params: { session_id: 'sess_1' } });
    expect(matchWebSocket('/v1/live/sessions/sess_2/attach')?.params).toEqual({ session_id: 'sess_2' });
    for (const path of ['/v1/realtime/', '/v1/realtimex', '/v1/live/sessions/a/b/fork', '/v1/live/sessions//fork', '/realtime', '/v1/realtime/sessions']) {
      expect(matchWebSocket(path), path).toBeUndefined();
    }
  });

  test('the HTTP route table leaves them out; the full document shows them as GETs answered 101, without x-relay', () => {
    for (const { path, op } of declared) {
      expect(matchOperation('GET', path.replace(/\{[^}]+\}/g, 'x'))).toBeUndefined();
      const served = full.paths[path].get;
      expect(served.operationId).toBe(op.operationId);
      expect(Object.keys(served.responses)).toContain('101');
      expect(served['x-relay']).toBeUndefined();
    }
    // POST /v1/responses, on the same path as Responses WebSocket mode, is still routed.
    expect(matchOperation('POST', '/v1/responses')?.operation.operationId).toBe('createResponse');
  });
});

describe('the generator refuses a malformed WebSocket mark', () => {
  const withEndpoint = (path: string, item: Json) => {
    const copy = structuredClone(spec);
    copy.paths[path] = item;
    return copy;
  };
  const get = (extra: Json = {}, mark: Json = { kind: 'websocket', timeout: 'short' }) => ({
    get: { operationId: 'connectThing', responses: { '101': { description: 'Switching Protocols' } }, 'x-relay': mark, ...extra },
  });

  test.each([
    ['on a POST', { post: get().get }, /is a GET/],
    ['without timeout', get({}, { kind: 'websocket' }), /x-relay\.timeout must be one of short, standard, long/],
    ['with an unknown key', get({}, { kind: 'websocket', timeout: 'short', body: 'json' }), /x-relay\.body means nothing on a WebSocket endpoint/],
    ['without a 101 answer', get({ responses: { '200': { description: 'OK' } } }), /answers 101 Switching Protocols/],
    ['with a request body', get({ requestBody: { content: { 'application/json': { schema: {} } } } }), /has no body/],
    ['with a header parameter', get({ parameters: [{ name: 'x-thing', in: 'header', schema: { type: 'string' } }] }), /header parameters are not forwarded/],
    ['with an operationId taken', get({ operationId: 'createResponse' }), /operationId createResponse is used 2 times/],
  ])('%s', (_name, item, message) => {
    expect(() => listWebSockets(withEndpoint('/v1/things', item))).toThrow(message);
  });

  test('an undeclared path parameter, and two endpoints that answer the same upgrades', () => {
    expect(() => listWebSockets(withEndpoint('/v1/things/{thing_id}', get()))).toThrow(/path parameter \{thing_id\} is not declared/);
    const twice = withEndpoint('/v1/live/sessions/{id}/fork', {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      ...get({ operationId: 'connectAgain' }),
    });
    expect(() => listWebSockets(twice)).toThrow(/answers exactly the upgrades of/);
  });

  test('every problem is listed at once', () => {
    const bad = withEndpoint('/things', get({ operationId: '' }, { kind: 'websocket', timeout: 'forever' }));
    const message = (() => {
      try {
        listWebSockets(bad);
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/timeout must be one of/);
    expect(message).toMatch(/operationId is missing/);
    expect(message).toMatch(/start with \/v1\//);
  });
});

describe('configuration', () => {
  const base = { OPENAI_API_KEY: 'sk-test-0123456789', RELAY_KEY: 'relay-key-0123456789abcdef' };
  test('WS_MAX_MESSAGE_BYTES and WS_IDLE_TIMEOUT_MS: defaults, values, and a sentence for a bad one', () => {
    expect(loadConfig(base).webSockets).toEqual({ maxMessageBytes: 16 * 1024 * 1024, idleTimeoutMs: 300_000 });
    expect(loadConfig({ ...base, WS_MAX_MESSAGE_BYTES: '65536', WS_IDLE_TIMEOUT_MS: '1000' }).webSockets).toEqual({ maxMessageBytes: 65536, idleTimeoutMs: 1000 });
    expect(() => loadConfig({ ...base, WS_MAX_MESSAGE_BYTES: '0' })).toThrow(/WS_MAX_MESSAGE_BYTES must be a whole number above 0/);
    expect(() => loadConfig({ ...base, WS_IDLE_TIMEOUT_MS: '5s' })).toThrow(/WS_IDLE_TIMEOUT_MS must be a whole number above 0/);
  });
});
