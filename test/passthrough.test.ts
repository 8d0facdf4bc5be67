import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { operations, type RelayOperation } from '../generated/routes.ts';
import { isProxyable } from '../src/core/proxy-target.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * Spec-driven pass-through: one request per pass-through operation of generated/routes.ts (so a new
 * operation in schemas/openapi.yaml is covered without touching this file). Operations of kind `relay`
 * (the relay's own, e.g. POST /v1/proxy) have no upstream twin at the same path and are tested elsewhere. For each we check that OpenAI (MSW)
 * receives exactly what the caller sent (method, path, query, body bytes, content-type), with the
 * server key instead of the relay key and none of the caller's private headers, and that the caller
 * gets OpenAI's status and body back unchanged, with the response headers the operation declares (and no
 * other header outside the allowlist). A retired operation answers 410 and reaches no upstream at all.
 */

const { server, upstream } = useMockOpenAI();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(() => relay.shutdown());

const SAMPLE_IDS = ['abc_123', 'def_456', 'ghi_789', 'jkl_012'];

/** The operation's path with each `{param}` replaced by a distinct sample id (so swapped params show). */
function samplePath(op: RelayOperation): string {
  let path = op.path;
  op.pathParams.forEach((name, i) => {
    path = path.replace(`{${name}}`, SAMPLE_IDS[i]);
  });
  return path;
}

/** Repeated key, ordering and percent-encoding must all survive untouched. */
const QUERY = '?limit=2&include=a&include=b&after=obj_%C3%A9%20x';

/** Odd spacing, unknown fields, non-ASCII text, a trailing newline: only a byte-exact relay keeps all of it. */
const JSON_BODY = '{"model":"x",  "unknown_field_2099": {"nested": [1,2]},\n\t"text" : "h\\u00e9llo é 😀", "n": 1.50 }\n';

const BOUNDARY = '----RelayPassthroughBoundary7MA4YWxkTrZu0gW';
const MULTIPART_CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
/** Every byte value, plus a CRLF and something boundary-like inside the file data. */
const FILE_BYTES = new Uint8Array([...Array.from({ length: 256 }, (_, i) => i), 13, 10, 45, 45, 0, 255, 13, 10]);
const MULTIPART_BODY = Buffer.concat([
  Buffer.from(
    `--${BOUNDARY}\r\n` +
      'Content-Disposition: form-data; name="purpose"\r\n\r\n' +
      'user_data\r\n' +
      `--${BOUNDARY}\r\n` +
      'Content-Disposition: form-data; name="file"; filename="sample.bin"\r\n' +
      'Content-Type: application/octet-stream\r\n\r\n',
  ),
  Buffer.from(FILE_BYTES),
  Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
]);

/** Bytes a binary operation answers with. */
const BINARY_ANSWER = new Uint8Array([0x00, 0xff, 0x49, 0x44, 0x33, 0x0d, 0x0a, 0x80, 0x7f, 0x1a, 0x00, 0xfe]);

type RouteResponses = Record<string, { content?: Record<string, unknown> } | undefined>;
const responsesOf = (op: RelayOperation) => (op.route as unknown as { responses: RouteResponses }).responses;
/** The operation's success status (201 for a created realtime call). */
const successStatus = (op: RelayOperation) => Number(Object.keys(responsesOf(op)).find((s) => /^2\d\d$/.test(s)) ?? 200);

/** The media type the spec gives a binary answer (e.g. application/zip), falling back to octet-stream. */
function binaryContentType(op: RelayOperation): string {
  const types = Object.keys(responsesOf(op)[String(successStatus(op))]?.content ?? {}).filter((t) => t !== 'application/json' && t !== 'text/event-stream');
  return types[0] ?? 'application/octet-stream';
}

/** A WebRTC offer, as a browser's RTCPeerConnection writes it (CRLF line ends). */
const SDP_OFFER = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';
/** A header no allowlist names: it must never reach the caller. */
const UNLISTED_HEADER = 'x-upstream-internal-route';

function requestBody(op: RelayOperation): { body?: BodyInit; contentType?: string; expected: Uint8Array } {
  switch (op.body) {
    case 'json':
      return { body: JSON_BODY, contentType: 'application/json', expected: new TextEncoder().encode(JSON_BODY) };
    case 'multipart':
      return { body: new Uint8Array(MULTIPART_BODY), contentType: MULTIPART_CONTENT_TYPE, expected: new Uint8Array(MULTIPART_BODY) };
    case 'sdp':
      return { body: SDP_OFFER, contentType: 'application/sdp', expected: new TextEncoder().encode(SDP_OFFER) };
    case 'none':
      return { expected: new Uint8Array() };
  }
}

interface Captured {
  method: string;
  url: URL;
  headers: Headers;
  body: Uint8Array;
}

const passthroughOps = operations.filter((op) => op.kind === 'passthrough' && !op.retired);
const retiredOps = operations.filter((op) => op.retired);
const relayOwnOps = operations.filter((op) => op.kind === 'relay' && !op.retired);
const tested = new Set<string>();

describe('every pass-through operation of the spec passes through unchanged', () => {
  test.each(passthroughOps)('$operationId: $method $path', async (op) => {
    const captured: Captured[] = [];
    const binaryType = binaryContentType(op);
    server.use(
      http.all(`${OPENAI_BASE}/*`, async ({ request }) => {
        captured.push({
          method: request.method,
          url: new URL(request.url),
          headers: new Headers(request.headers),
          body: new Uint8Array(await request.arrayBuffer()),
        });
        const headers: Record<string, string> = { 'x-request-id': `req_up_${op.operationId}`, [UNLISTED_HEADER]: 'pod-7' };
        for (const name of op.responseHeaders) headers[name] = `declared-${name}-${op.operationId}`;
        if (op.answer === 'binary') {
          return new HttpResponse(BINARY_ANSWER, { status: successStatus(op), headers: { ...headers, 'content-type': binaryType } });
        }
        return HttpResponse.json({ ok: true, op: op.operationId }, { status: successStatus(op), headers });
      }),
    );

    const path = samplePath(op);
    const { body, contentType, expected } = requestBody(op);
    const headers: Record<string, string> = {
      authorization: `Bearer ${RELAY_KEY}`,
      'x-relay-key': RELAY_KEY_2,
      cookie: 'a=b',
      'x-forwarded-for': '1.2.3.4',
    };
    if (contentType) headers['content-type'] = contentType;

    const res = await relay.call(path + QUERY, { method: op.method.toUpperCase(), headers, body });

    // What OpenAI saw.
    expect(captured, 'requests that reached the mocked OpenAI').toHaveLength(1);
    expect(upstream).toHaveLength(1);
    const seen = captured[0];
    expect(seen.method).toBe(op.method.toUpperCase());
    expect(seen.url.origin).toBe(OPENAI_BASE);
    expect(seen.url.pathname).toBe(path);
    expect(seen.url.search).toBe(QUERY);
    expect(upstream[0].url.href).toBe(`${OPENAI_BASE}${path}${QUERY}`);

    expect(Buffer.from(seen.body).equals(Buffer.from(expected)), 'upstream body is byte-identical').toBe(true);
    if (op.body === 'json') {
      expect(new TextDecoder().decode(seen.body)).toBe(JSON_BODY);
      expect(seen.headers.get('content-type')).toBe('application/json');
    } else if (op.body === 'multipart') {
      expect(seen.headers.get('content-type')).toBe(MULTIPART_CONTENT_TYPE);
    } else if (op.body === 'sdp') {
      expect(seen.headers.get('content-type')).toBe('application/sdp');
    } else {
      expect(seen.body.byteLength).toBe(0);
    }
    const length = seen.headers.get('content-length');
    if (length !== null) expect(Number(length)).toBe(expected.byteLength);

    expect(seen.headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    expect(seen.headers.get('x-relay-key')).toBeNull();
    expect(seen.headers.get('cookie')).toBeNull();
    expect(seen.headers.get('x-forwarded-for')).toBeNull();
    for (const [name, value] of seen.headers) {
      expect(value, `upstream header ${name}`).not.toContain(RELAY_KEY);
      expect(value, `upstream header ${name}`).not.toContain(RELAY_KEY_2);
    }

    // What the caller got back.
    expect(res.status).toBe(successStatus(op));
    expect(res.headers.get('x-request-id')).toBe(`req_up_${op.operationId}`);
    for (const name of op.responseHeaders) expect(res.headers.get(name), `declared header ${name}`).toBe(`declared-${name}-${op.operationId}`);
    expect(res.headers.get(UNLISTED_HEADER), 'a header no allowlist names').toBeNull();
    if (op.answer === 'binary') {
      expect(res.headers.get('content-type')).toBe(binaryType);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(BINARY_ANSWER);
    } else {
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ ok: true, op: op.operationId });
    }

    tested.add(op.operationId);
  });
});

describe('a retired operation answers 410 with its retirement sentence and never reaches OpenAI', () => {
  test.each(retiredOps)('$operationId: $method $path', async (op) => {
    const { body, contentType } = op.body === 'none' ? {} : op.kind === 'relay' ? { body: '{}', contentType: 'application/json' } : requestBody(op);
    const res = await relay.call(samplePath(op), { method: op.method.toUpperCase(), headers: contentType ? { 'content-type': contentType } : {}, body });
    expect(res.status).toBe(410);
    const { error } = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(error).toMatchObject({ message: op.retired!.message, type: 'invalid_request_error', code: 'operation_retired' });
    expect(error.message).toContain(op.retired!.date);
    expect(error.message).toContain(op.retired!.source);
    expect(upstream, 'requests that reached OpenAI').toEqual([]);
    tested.add(op.operationId);
  });

  test.each(retiredOps.filter((op) => op.kind === 'passthrough'))('through POST /v1/proxy too: $operationId', async (op) => {
    const res = await relay.call('/v1/proxy', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: op.method, path: samplePath(op) }) });
    expect(res.status).toBe(410);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(op.retired!.message);
    expect(upstream).toEqual([]);
  });

  test('without a relay key, a retired operation is a 401 like any other', async () => {
    const op = retiredOps[0];
    const res = await relay.call(samplePath(op), { method: op.method.toUpperCase(), headers: { authorization: 'Bearer wrong-key-0123456789abcdef' } });
    expect(res.status).toBe(401);
    expect(upstream).toEqual([]);
  });
});

describe('every JSON pass-through operation also forwards through POST /v1/proxy', () => {
  const proxied = passthroughOps.filter(isProxyable);
  const ENVELOPE_BODY = { model: 'x', text: 'héllo é 😀', nested: { list: [1, 2] } };

  test.each(proxied)('$operationId: $method $path', async (op) => {
    const captured: Captured[] = [];
    server.use(
      http.all(`${OPENAI_BASE}/*`, async ({ request }) => {
        captured.push({ method: request.method, url: new URL(request.url), headers: new Headers(request.headers), body: new Uint8Array(await request.arrayBuffer()) });
        return HttpResponse.json({ ok: true, op: op.operationId }, { headers: { 'x-request-id': `req_up_${op.operationId}` } });
      }),
    );
    const post = op.method === 'post';
    const envelope = { method: op.method.toUpperCase(), path: samplePath(op), query: { limit: 2, include: ['a', 'b'] }, ...(post ? { body: ENVELOPE_BODY } : {}) };
    const res = await relay.call('/v1/proxy', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, op: op.operationId });
    expect(captured).toHaveLength(1);
    const seen = captured[0];
    expect(`${seen.method} ${seen.url.pathname}${seen.url.search}`).toBe(`${op.method.toUpperCase()} ${samplePath(op)}?limit=2&include=a&include=b`);
    expect(seen.headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    if (post) {
      expect(new TextDecoder().decode(seen.body)).toBe(JSON.stringify(ENVELOPE_BODY));
      expect(seen.headers.get('content-type')).toBe('application/json');
    } else {
      expect(seen.body.byteLength).toBe(0);
    }
  });

  test('the new families are among them', () => {
    const paths = new Set(proxied.map((op) => op.path));
    for (const path of ['/v1/chatkit/sessions', '/v1/skills/{skill_id}', '/v1/audio/voice_consents/{consent_id}', '/v1/realtime/calls/{call_id}/accept', '/v1/realtime/translations/client_secrets']) {
      expect(paths, path).toContain(path);
    }
  });
});

test('every pass-through operation of the spec was tested, and the spec is complete', () => {
  expect(new Set(operations.map((op) => op.operationId)).size, 'operationIds are unique').toBe(operations.length);
  expect(tested.size).toBe(passthroughOps.length + retiredOps.length);
  expect(tested.size + relayOwnOps.length, 'every operation is pass-through, retired or the relay\'s own').toBe(operations.length);
  expect(passthroughOps.length).toBeGreaterThanOrEqual(100);
  expect(retiredOps.length).toBeGreaterThan(0);
  expect(passthroughOps.some((op) => op.body === 'sdp' && op.responseHeaders.includes('location')), 'the SDP offer with its Location answer').toBe(true);
});
