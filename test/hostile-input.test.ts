import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { http as mswHttp, HttpResponse } from 'msw';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { operations } from '../generated/routes.ts';
import { OPENAI_BASE, useMockOpenAI, type SeenRequest } from './helpers/mock-openai.ts';
import { RELAY_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';
import { rawRequest as httpRequestAsWritten } from './helpers/raw-http.ts';

/**
 * Hostile input, table-driven: every case must end in a 4xx and not one upstream request. Then two
 * property-based sweeps (random proxy envelopes, random raw request paths): never a 5xx, and whatever does
 * reach "OpenAI" is exactly one of the passthrough operations of the route table.
 */
const { server, upstream } = useMockOpenAI();

const LIMITS = {
  MAX_JSON_BODY_BYTES: 1000,
  MAX_PROXY_ENVELOPE_BYTES: 4096,
  MAX_URL_BYTES: 2048,
  MAX_HEADER_BYTES: 8192,
  MAX_UPLOAD_BYTES: 100_000,
};
let relay: TestRelay;
let port: number;
beforeAll(async () => {
  relay = await startTestRelay(Object.fromEntries(Object.entries(LIMITS).map(([k, v]) => [k, String(v)])));
  port = Number(new URL(relay.url).port);
});
afterAll(() => relay.shutdown());

/** Anything that reaches "OpenAI" reads the whole body (as OpenAI would) and is answered 200 JSON. */
beforeEach(() => {
  server.use(
    mswHttp.all(`${OPENAI_BASE}/*`, async ({ request }) => {
      try {
        await request.arrayBuffer();
      } catch {
        // the relay cut the body off: nothing to answer to, but the request was still seen
      }
      return HttpResponse.json({ reached: 'upstream' });
    }),
  );
});

const AUTH = `Bearer ${RELAY_KEY}`;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders | Record<string, string>;
  body: string;
}

/** A request on a direct route, path byte for byte, with the relay key. */
function direct(method: string, path: string, opts: { headers?: OutgoingHttpHeaders; body?: string | Buffer; chunks?: string[] } = {}): Promise<Answer> {
  return httpRequestAsWritten(relay.url, { method, path, headers: { authorization: AUTH, ...opts.headers }, body: opts.body, chunks: opts.chunks });
}

/** Raw bytes on a socket, for what node:http refuses to send: control characters, unicode, CONNECT, unknown methods. */
function socket(data: string | Buffer, timeoutMs = 5000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer (connection still open) after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const head = raw.split('\r\n\r\n', 1)[0];
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: Buffer.from(raw.slice(head.length + 4), 'latin1').toString('utf8') });
    });
    sock.write(data);
  });
}

/** A raw request (with the relay key and Connection: close) whose request line is written byte for byte. */
function rawRequest(method: string, target: string, extraHeaders = '', body = ''): Promise<Answer> {
  const head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${AUTH}\r\nConnection: close\r\n${extraHeaders}`;
  const framing = body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '';
  return socket(Buffer.concat([Buffer.from(head + framing + '\r\n', 'utf8'), Buffer.from(body, 'utf8')]));
}

function viaProxy(envelope: unknown, headers: OutgoingHttpHeaders = {}): Promise<Answer> {
  return direct('POST', '/v1/proxy', {
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof envelope === 'string' ? envelope : JSON.stringify(envelope),
  });
}

interface Case {
  name: string;
  send: () => Promise<Answer>;
  /** The exact status when the case has one; otherwise any 4xx. */
  status?: number;
  /** HEAD answers carry no body, so no error body to check. */
  noBody?: boolean;
}

const cases: Case[] = [];
const add = (name: string, send: () => Promise<Answer>, status?: number, noBody = false) => cases.push({ name, send, status, noBody });

// ── Traversal and smuggling on the proxy path ────────────────────────────────────────────────────
const proxyPaths: Array<[string, string, string?]> = [
  ['plain ..', '/v1/files/../organization/users'],
  ['.. climbing out of /v1', '/v1/models/../../v1/organization/users'],
  ['..  at the end', '/v1/models/..'],
  ['%2e%2e', '/v1/files/%2e%2e/organization/users'],
  ['%2E%2E%2F', '/v1/files/%2E%2E%2Forganization%2Fusers'],
  ['.%2e', '/v1/files/.%2e/organization/users'],
  ['%2e.', '/v1/files/%2e./organization/users'],
  ['double-encoded %252e%252e', '/v1/files/%252e%252e/organization/users'],
  ['double-encoded %252e%252e%252f', '/v1/files/%252e%252e%252forganization%252fusers'],
  ['..%5c', '/v1/files/..%5corganization%5cusers'],
  ['%5c inside an id', '/v1/files/file-1%5c..%5c..%5corganization'],
  ['backslashes', '/v1/files\\..\\organization\\users'],
  ['overlong UTF-8 %c0%ae%c0%ae', '/v1/files/%c0%ae%c0%ae/organization/users'],
  ['overlong UTF-8 slash %c0%af', '/v1/files/..%c0%afusers'],
  ['fullwidth ．．／', '/v1/files/．．／organization/users'],
  ['fullwidth, percent-encoded', '/v1/files/%EF%BC%8E%EF%BC%8E%EF%BC%8Forganization'],
  ['one dot leader \\u2024', '/v1/files/\u2024\u2024/organization/users'],
  ['%00', '/v1/models/gpt-5%00'],
  ['raw NUL', '/v1/models/gpt-5\u0000'],
  ['raw CR/LF', '/v1/models\r\nX-Injected: 1'],
  ['%0d%0a', '/v1/models/%0d%0aHost:evil.example'],
  ['raw tab', '/v1/models/\tgpt-5'],
  ['%09', '/v1/models/%09'],
  ['space', '/v1/models/gpt 5'],
  ['. segment', '/v1/files/file-1/./content'],
  ['empty segment', '/v1//models'],
  ['trailing slash', '/v1/models/'],
  ['empty path', ''],
  ['? in the path', '/v1/models?x=1'],
  ['# in the path', '/v1/models#x'],
  ['absolute https URL', 'https://evil.example/v1/models'],
  ['cloud metadata URL', 'http://169.254.169.254/latest/meta-data/'],
  ['scheme-relative //', '//evil.example/x'],
  ['UNC backslashes', '\\\\evil.example\\x'],
  ['upper-case scheme', 'HTTPS://api.openai.com/v1/organization/users'],
  ['path over 2048 characters', `/v1/files/${'a'.repeat(2100)}`],
];
for (const [name, path] of proxyPaths) add(`proxy path: ${name}`, () => viaProxy({ method: 'GET', path }), 400);

// ── Admin, organization and unserved OpenAI paths ────────────────────────────────────────────────
const adminPaths: Array<[string, string]> = [
  ['GET', '/v1/organization/users'],
  ['GET', '/v1/organization/admin_api_keys'],
  ['POST', '/v1/organization/admin_api_keys'],
  ['GET', '/v1/organization/projects/proj_1/api_keys'],
  ['GET', '/v1/organization/audit_logs'],
  ['GET', '/v1/projects'],
  ['POST', '/v1/fine_tuning/jobs'],
  ['GET', '/v1/assistants'],
  ['POST', '/v1/assistants'],
  ['GET', 'organization/users'],
];
for (const [method, path] of adminPaths) {
  add(`proxy admin path: ${method} ${path}`, () => viaProxy({ method, path }), 403);
  if (path.startsWith('/')) add(`direct admin path: ${method} ${path}`, () => direct(method, path, method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}), 404);
}

// ── Recursion ────────────────────────────────────────────────────────────────────────────────────
add('proxy recursion: POST /v1/proxy', () => viaProxy({ method: 'POST', path: '/v1/proxy', body: { method: 'GET', path: '/v1/organization/users' } }), 400);
add('proxy recursion: POST proxy (no prefix)', () => viaProxy({ method: 'POST', path: 'proxy', body: { method: 'GET', path: '/v1/models' } }), 400);
add('proxy recursion: GET /v1/proxy', () => viaProxy({ method: 'GET', path: '/v1/proxy' }));
// The relay's own (kind: relay) operations are not reachable through the proxy either.
for (const op of operations.filter((o) => o.kind === 'relay' && o.path !== '/v1/proxy').slice(0, 3)) {
  add(`proxy to relay operation: ${op.method.toUpperCase()} ${op.path}`, () => viaProxy({ method: op.method.toUpperCase(), path: op.path.replace(/\{[^}]+\}/g, 'id_1') }));
}

// ── Wrong JSON types in the envelope ─────────────────────────────────────────────────────────────
const badEnvelopes: Array<[string, unknown]> = [
  ['method: 1', { method: 1, path: '/v1/models' }],
  ['method: null', { method: null, path: '/v1/models' }],
  ['method: PUT', { method: 'PUT', path: '/v1/models' }],
  ['method: TRACE', { method: 'TRACE', path: '/v1/models' }],
  ['method: "GET " (padded)', { method: 'GET ', path: '/v1/models' }],
  ['method missing', { path: '/v1/models' }],
  ['path: []', { method: 'GET', path: [] }],
  ['path: ["/v1/models"]', { method: 'GET', path: ['/v1/models'] }],
  ['path: 1', { method: 'GET', path: 1 }],
  ['path: {}', { method: 'GET', path: {} }],
  ['path missing', { method: 'GET' }],
  ['query: "x"', { method: 'GET', path: '/v1/files', query: 'x' }],
  ['query: "limit=1"', { method: 'GET', path: '/v1/files', query: 'limit=1&x=../../' }],
  ['query: [1, 2]', { method: 'GET', path: '/v1/files', query: [1, 2] }],
  ['query value an object', { method: 'GET', path: '/v1/files', query: { after: { $gt: 1 } } }],
  ['query value an array of objects', { method: 'GET', path: '/v1/files', query: { include: [{ a: 1 }] } }],
  ['query value nested arrays', { method: 'GET', path: '/v1/files', query: { include: [['a']] } }],
  ['params: "x"', { method: 'GET', path: '/v1/files', params: 'x' }],
  ['body: []', { method: 'POST', path: '/v1/embeddings', body: [] }],
  ['body: "x"', { method: 'POST', path: '/v1/embeddings', body: 'x' }],
  ['body: 1', { method: 'POST', path: '/v1/embeddings', body: 1 }],
  ['json: [1]', { method: 'POST', path: '/v1/embeddings', json: [1] }],
  ['payload: true', { method: 'POST', path: '/v1/embeddings', payload: true }],
  ['unknown key headers', { method: 'GET', path: '/v1/models', headers: { authorization: 'Bearer x' } }],
  ['envelope []', '[]'],
  ['envelope a string', '"GET /v1/models"'],
  ['envelope null', 'null'],
  ['envelope 42', '42'],
  ['envelope truncated JSON', '{"method":"GET","path":"/v1/mod'],
];
for (const [name, envelope] of badEnvelopes) add(`envelope: ${name}`, () => viaProxy(envelope), 400);
add('envelope: text/plain', () => direct('POST', '/v1/proxy', { headers: { 'content-type': 'text/plain' }, body: '{"method":"GET","path":"/v1/models"}' }), 415);
add('envelope: over MAX_PROXY_ENVELOPE_BYTES', () => viaProxy({ method: 'POST', path: '/v1/embeddings', body: { input: 'x'.repeat(LIMITS.MAX_PROXY_ENVELOPE_BYTES) } }), 413);

// ── Traversal on direct routes' path parameters ──────────────────────────────────────────────────
const directPaths: Array<[string, string, string]> = [
  ['GET', '/v1/files/../organization/users', 'plain ..'],
  ['GET', '/v1/files/../../v1/organization/users', '.. climbing out of /v1'],
  ['GET', '/v1/files/%2e%2e', '%2e%2e as the file id'],
  ['GET', '/v1/files/%2e%2e/content', '%2e%2e before /content'],
  ['GET', '/v1/files/%2E%2E%2Forganization%2Fusers', '%2E%2E%2F'],
  ['GET', '/v1/files/.%2e', '.%2e'],
  ['GET', '/v1/files/%252e%252e%252forganization', 'double-encoded'],
  ['GET', '/v1/files/..%5corganization', '..%5c'],
  ['GET', '/v1/files/a%5cb', '%5c'],
  ['GET', '/v1/files/a\\..\\b', 'raw backslashes'],
  ['GET', '/v1/files/%c0%ae%c0%ae', 'overlong UTF-8'],
  ['GET', '/v1/files/%EF%BC%8E%EF%BC%8E%EF%BC%8Forganization', 'fullwidth, percent-encoded'],
  ['GET', '/v1/files/%E2%80%A4%E2%80%A4', 'one dot leaders, percent-encoded'],
  ['GET', '/v1/files/file-1%00', '%00'],
  ['GET', '/v1/files/%0d%0aX-Injected:%201', '%0d%0a'],
  ['GET', '/v1/files/%09', '%09'],
  ['GET', '/v1/models/gpt-5%3F', 'encoded ?'],
  ['GET', '/v1/models/gpt-5%23x', 'encoded #'],
  ['GET', '/v1/models/.', '. as the model'],
  ['GET', '/v1/vector_stores/vs_1/files/%2e%2e%2f%2e%2e%2forganization', 'second parameter, %2e%2e%2f'],
  ['DELETE', '/v1/models/..%2f..%2forganization%2fusers', 'DELETE with ..%2f'],
  ['POST', '/v1/responses/%2e%2e/cancel', 'POST cancel with %2e%2e'],
  ['GET', `/v1/files/${'a'.repeat(300)}`, 'id over 256 characters'],
  ['GET', '//evil.example/x', 'scheme-relative //'],
  ['GET', '//v1/models', 'leading //'],
];
for (const [method, path, name] of directPaths) add(`direct path: ${name} (${method})`, () => direct(method, path), 400);

// What node:http will not even send: raw unicode, control characters and whitespace in the request line.
const rawTargets: Array<[string, string]> = [
  ['/v1/files/．．／organization/users', 'raw fullwidth ．．／'],
  ['/v1/files/\u2024\u2024/organization', 'raw \\u2024'],
  ['/v1/files/a\u0000b', 'raw NUL'],
  ['/v1/files/a\tb', 'raw tab'],
  ['/v1/files/a\rb', 'raw CR'],
  ['/v1/files/a\nX-Injected: 1', 'raw LF'],
  ['/v1/files/a b', 'raw space'],
  ['http://evil.example/v1/models', 'absolute-form target'],
  ['http://169.254.169.254/latest/meta-data/', 'absolute-form metadata URL'],
  ['*', 'asterisk-form target'],
  ['api.openai.com:443', 'authority-form target on GET'],
];
for (const [target, name] of rawTargets) add(`direct path: ${name}`, () => rawRequest('GET', target));

// ── Non-JSON bodies on direct JSON routes ────────────────────────────────────────────────────────
const wrongTypes: Array<[string, string | undefined, string]> = [
  ['/v1/responses', 'text/plain', '{"model":"gpt-5","input":"hi"}'],
  ['/v1/chat/completions', 'application/x-www-form-urlencoded', 'model=gpt-5'],
  ['/v1/embeddings', 'multipart/form-data; boundary=x', '--x--\r\n'],
  ['/v1/vector_stores/vs_1/search', 'text/html', '<p>hi</p>'],
  ['/v1/responses', 'application/jsonx', '{}'],
  ['/v1/responses', undefined, '{"model":"gpt-5"}'],
  ['/v1/files', 'application/json', '{"purpose":"assistants"}'],
];
for (const [path, type, body] of wrongTypes) {
  add(`direct body: ${type ?? 'no content-type'} to POST ${path}`, () => direct('POST', path, { headers: type ? { 'content-type': type } : {}, body }), 415);
}

// ── Huge bodies ──────────────────────────────────────────────────────────────────────────────────
const hugeJson = JSON.stringify({ model: 'gpt-5', input: 'y'.repeat(LIMITS.MAX_JSON_BODY_BYTES * 5) });
add('huge JSON body with Content-Length', () => direct('POST', '/v1/responses', { headers: { 'content-type': 'application/json' }, body: hugeJson }), 413);
add(
  'huge JSON body, chunked (no Content-Length)',
  () =>
    direct('POST', '/v1/responses', {
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      chunks: hugeJson.match(/.{1,400}/gs)!,
    }),
  413,
);
add(
  'Content-Length of 1 GB, body never sent',
  () => socket(`POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n{`),
  413,
);

// ── Methods ──────────────────────────────────────────────────────────────────────────────────────
add('CONNECT api.openai.com:443', () => socket('CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n'), 405);
add('CONNECT 169.254.169.254:80', () => socket(`CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254\r\nAuthorization: ${AUTH}\r\n\r\n`), 405);
add('TRACE /v1/models', () => rawRequest('TRACE', '/v1/models'));
add('unknown method FOO', () => rawRequest('FOO', '/v1/models'));
add('lower-case method get', () => rawRequest('get', '/v1/models'));
add('PUT /v1/models', () => rawRequest('PUT', '/v1/models', '', '{}'), 405);
add('PATCH /v1/files/file-1', () => rawRequest('PATCH', '/v1/files/file-1', '', '{}'), 405);
add('PROPFIND /v1/models', () => rawRequest('PROPFIND', '/v1/models'));
// HEAD is no method of the spec: it must not turn into a (full, possibly huge) GET upstream.
add('HEAD /v1/models', () => rawRequest('HEAD', '/v1/models'), undefined, true);
add('HEAD /v1/files/file-1/content', () => rawRequest('HEAD', '/v1/files/file-1/content'), undefined, true);

// ── Sizes and framing ────────────────────────────────────────────────────────────────────────────
add('one header over MAX_HEADER_BYTES', () => rawRequest('GET', '/v1/models', `X-Big: ${'a'.repeat(LIMITS.MAX_HEADER_BYTES + 100)}\r\n`), 431);
add(
  'many headers over MAX_HEADER_BYTES together',
  () => rawRequest('GET', '/v1/models', Array.from({ length: 200 }, (_, i) => `X-H${i}: ${'b'.repeat(60)}\r\n`).join('')),
  431,
);
add('query longer than MAX_URL_BYTES', () => direct('GET', `/v1/models?x=${'a'.repeat(LIMITS.MAX_URL_BYTES + 10)}`), 414);
add('path longer than MAX_URL_BYTES', () => direct('GET', `/v1/files/${'a'.repeat(LIMITS.MAX_URL_BYTES + 10)}`), 414);
add(
  'Content-Length and Transfer-Encoding together (smuggling)',
  () => rawRequest('POST', '/v1/embeddings', 'Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n', ''),
  400,
);
add('two different Content-Lengths', () => rawRequest('POST', '/v1/embeddings', 'Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n'), 400);
add('HTTP/1.1 without a Host header', () => socket(`GET /v1/models HTTP/1.1\r\nAuthorization: ${AUTH}\r\nConnection: close\r\n\r\n`), 400);
add('control character in a header name', () => rawRequest('GET', '/v1/models', 'X-Ba\u0001d: y\r\n'), 400);

// ── Nesting depth: every JSON the relay parses is bounded (128 levels) ─────────────────────────────
const nestedArrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObjects = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
add('envelope: body nested 1,500 deep', () => viaProxy(`{"method":"POST","path":"/v1/embeddings","body":{"input":${nestedArrays(1500)}}}`), 400);
add('envelope: query nested 600 deep', () => viaProxy(`{"method":"GET","path":"/v1/models","query":${nestedObjects(600)}}`), 400);
add('envelope: the whole envelope 2,000 arrays deep', () => viaProxy(nestedArrays(2000)), 400);
add(
  'MCP message nested 1,500 deep',
  () => direct('POST', '/mcp', { headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"relayProxy","arguments":{"method":"POST","path":"/v1/embeddings","body":${nestedArrays(1500)}}}}` }),
  400,
);
add('action body nested 1,500 deep', () => direct('POST', '/v1/actions/responses', { headers: { 'content-type': 'application/json' }, body: `{"input":"hi","text":${nestedArrays(1500)}}` }), 400);
add(
  'streamed chat completion nested 400 deep (the relay rewrites it to ask for usage)',
  () => direct('POST', '/v1/chat/completions', { headers: { 'content-type': 'application/json' }, body: `{"model":"gpt-5","stream":true,"messages":${nestedArrays(400)}}` }),
  400,
);

// ── Expect: 100-continue: a request refused by its headers is refused before its body is invited ────
const expecting = (path: string, headers: string) =>
  socket(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Expect: 100-continue\r\nConnection: close\r\n\r\n`);
add('Expect: 100-continue, JSON body over MAX_JSON_BODY_BYTES', () => expecting('/v1/embeddings', `Authorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n`), 413);
add('Expect: 100-continue, upload over the upload cap', () => expecting('/v1/files', `Authorization: ${AUTH}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n`), 413);
add('Expect: 100-continue, envelope over MAX_PROXY_ENVELOPE_BYTES', () => expecting('/v1/proxy', `Authorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n`), 413);
add('Expect: 100-continue, action body over its cap', () => expecting('/v1/actions/responses', `Authorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n`), 413);
add('Expect: 100-continue without a relay key', () => expecting('/v1/embeddings', 'Content-Type: application/json\r\nContent-Length: 20\r\n'), 401);

// ── DNS rebinding: the relay listens on loopback, so Host and Origin are checked ──────────────────
const withHost = (method: string, target: string, host: string, extra = '', body = '') => {
  const framing = body ? `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '';
  return socket(`${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${AUTH}\r\nConnection: close\r\n${extra}${framing}\r\n${body}`);
};
const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } });
add('rebinding: foreign Host on a pass-through call', () => withHost('GET', '/v1/models', 'evil.example'), 403);
add('rebinding: foreign Host with a port on the proxy', () => withHost('POST', '/v1/proxy', 'evil.example:8000', '', '{"method":"GET","path":"/v1/models"}'), 403);
add('rebinding: foreign Host and Origin on /mcp (the MCP conformance probe)', () => withHost('POST', '/mcp', 'evil.example.com', 'Origin: http://evil.example.com\r\n', INITIALIZE), 403);
add('rebinding: loopback Host, foreign Origin', () => withHost('GET', '/v1/models', '127.0.0.1', 'Origin: https://evil.example\r\n'), 403);
add('rebinding: Origin null', () => withHost('POST', '/mcp', 'localhost', 'Origin: null\r\n', INITIALIZE), 403);
add('rebinding: foreign Host on an action', () => withHost('GET', '/v1/actions/files', 'attacker.test'), 403);
add('rebinding: a name that ends like localhost', () => withHost('GET', '/v1/models', 'localhost.evil.example'), 403);
// (No Sec-WebSocket-Key: the refusal must come from the Host check, and nothing could be dialed upstream.)
add(
  'rebinding: foreign Host on a WebSocket upgrade',
  () => socket(`GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: evil.example\r\nAuthorization: ${AUTH}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`),
  403,
);

// ── Discovery probes under /.well-known: an unknown one is a 404, with or without a key ───────────
const probe = (path: string, authorization?: string) =>
  socket(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}Connection: close\r\n\r\n`);
add('well-known: oauth-protected-resource without a key', () => probe('/.well-known/oauth-protected-resource'), 404);
add('well-known: oauth-authorization-server with a wrong key', () => probe('/.well-known/oauth-authorization-server', 'Bearer not-a-relay-key-000000'), 404);
add('well-known: oauth-protected-resource/mcp (path-suffixed)', () => probe('/.well-known/oauth-protected-resource/mcp'), 404);
add('well-known: openid-configuration', () => probe('/.well-known/openid-configuration', AUTH), 404);

// ── The upload cap bounds the files, with a small allowance for the form around them ────────────────
const FRAMING_ALLOWANCE = 256 * 1024;
add(
  'upload over MAX_UPLOAD_BYTES plus the framing allowance',
  () => expecting('/v1/files', `Authorization: ${AUTH}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${LIMITS.MAX_UPLOAD_BYTES + FRAMING_ALLOWANCE + 1}\r\n`),
  413,
);

describe('hostile input: 4xx and zero upstream requests', () => {
  test(`the table has at least 90 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(90);
    expect(new Set(cases.map((c) => c.name)).size, 'case names are unique').toBe(cases.length);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const answer = await c.send();
    if (c.status !== undefined) expect(answer.status, answer.body).toBe(c.status);
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(400);
    expect(answer.status, answer.body).toBeLessThan(500);
    expect(upstream.map((r) => `${r.method} ${r.url.href}`), 'requests that reached upstream').toEqual([]);
    // Every refusal is OpenAI-shaped, whether the app, the forwarding core or the HTTP parser answered it.
    if (c.noBody) return;
    const parsed = JSON.parse(answer.body) as { error?: { message?: unknown; type?: unknown } };
    expect(typeof parsed.error?.message).toBe('string');
    expect(typeof parsed.error?.type).toBe('string');
  });
});

// ── Property-based sweeps ────────────────────────────────────────────────────────────────────────

const PARAM = '[A-Za-z0-9_\\-.:@+=~]+';
const allowed = operations
  .filter((op) => op.kind === 'passthrough')
  .map((op) => ({ method: op.method.toUpperCase(), pattern: new RegExp(`^${op.path.replace(/\{[^}]+\}/g, PARAM)}$`) }));

/**
 * Whether an upstream request is exactly one of the passthrough operations. Every path segment may hold
 * only the id characters, raw or percent-encoded (no encoded `/`, `\\`, `%`, control or unicode
 * characters), and no segment may be a dot segment; the decoded path must then match an operation's template.
 */
const SEGMENT = /^(?:[A-Za-z0-9_\-.:@+=~]|%(?:3A|40|2B|3D|7E))*$/i;
function isAllowedUpstream(r: SeenRequest): boolean {
  if (r.url.protocol !== 'https:' || r.url.host !== 'api.openai.com') return false;
  const decoded: string[] = [];
  for (const segment of r.url.pathname.split('/')) {
    if (!SEGMENT.test(segment)) return false;
    const text = decodeURIComponent(segment);
    if (text === '.' || text === '..') return false;
    decoded.push(text);
  }
  const path = decoded.join('/');
  return allowed.some((op) => op.method === r.method && op.pattern.test(path));
}

const concretePaths = operations.map((op) => op.path.replace(/\{[^}]+\}/g, 'id_1'));
const pieces = fc.constantFrom(
  'v1', 'models', 'files', 'content', 'responses', 'input_items', 'cancel', 'input_tokens', 'vector_stores', 'search', 'file_batches',
  'chat', 'completions', 'messages', 'embeddings', 'uploads', 'parts', 'complete', 'containers', 'conversations', 'items', 'videos',
  'batches', 'images', 'generations', 'audio', 'speech', 'realtime', 'client_secrets', 'organization', 'users', 'admin_api_keys',
  'projects', 'fine_tuning', 'jobs', 'assistants', 'proxy', 'vs_1', 'file-abc', 'resp_123', 'gpt-4o', 'ft:gpt-4o:org:abc', 'a@b',
  'x+y=z~', '..', '.', '%2e%2e', '%2E%2E%2F', '.%2e', '%252e%252e', '..%5c', '%5c', '\\', '%c0%ae%c0%ae', '．．／', '\u2024\u2024',
  '%00', '\u0000', '%0d%0a', '\r\n', '\t', '%09', ' ', '', '?x=1', '#f', 'https:', '//', 'evil.example', '169.254.169.254', '%2f',
  '%3f', '%23', '%3A', '%40', '~', '@', '%', '%zz', '%u002e', 'é', '%C3%A9',
);
const segment = fc.oneof(
  { weight: 6, arbitrary: pieces },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
);
const randomPath = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('', '/', '/v1/', 'v1/', '//', 'https://evil.example/', '\\', '/v1/v1/'), fc.array(segment, { maxLength: 6 })).map(([prefix, segs]) => prefix + segs.join('/')) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...concretePaths), fc.array(segment, { maxLength: 2 })).map(([path, segs]) => [path, ...segs].join('/')) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...concretePaths), segment).map(([path, seg]) => path.replace('id_1', seg)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);
const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'get', 'post', 'delete') },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', '', 'Get', 'GET\r\n') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const scalar = fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const queryValue = fc.oneof(scalar, fc.array(fc.oneof(scalar, fc.object({ maxDepth: 1 })), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
const query = fc.dictionary(fc.oneof(fc.constantFrom('limit', 'after', 'order', 'include', 'stream', '../x', ''), fc.string({ maxLength: 6 })), queryValue, { maxKeys: 4 });
const body = fc.oneof(
  fc.record({ model: fc.string({ maxLength: 10 }), input: fc.string({ maxLength: 20 }), stream: fc.boolean() }, { requiredKeys: [] }),
  fc.object({ maxDepth: 2 }),
  fc.jsonValue({ maxDepth: 2 }),
);
/** Envelopes close to valid ones: a real operation, its method, an id from the hostile pieces, scalar queries. */
const scalarQuery = fc.dictionary(fc.constantFrom('limit', 'after', 'order', 'include', 'stream', '../x', 'a b'), fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })), { maxKeys: 3 });
const nearlyValid = fc
  .tuple(fc.constantFrom(...operations), fc.oneof({ weight: 3, arbitrary: fc.constant('id_1') }, { weight: 2, arbitrary: segment }), fc.option(scalarQuery), fc.option(body))
  .map(([op, id, q, b]) => {
    const env: Record<string, unknown> = { method: op.method.toUpperCase(), path: op.path.replace(/\{[^}]+\}/g, id) };
    if (q !== null) env.query = q;
    if (b !== null && op.method === 'post') env.body = b;
    return env;
  });
const envelope = fc.oneof(
  { weight: 5, arbitrary: nearlyValid },
  { weight: 5, arbitrary: fc.record({ method, path: randomPath, query, params: query, body, json: body, payload: body }, { requiredKeys: ['method', 'path'] }) },
  { weight: 1, arbitrary: fc.record({ method: fc.anything(), path: fc.anything(), query: fc.anything(), body: fc.anything(), extra: fc.anything() }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

describe('properties', () => {
  test('random proxy envelopes: never a 5xx; upstream only ever sees passthrough operations', async () => {
    let reached = 0;
    await fc.assert(
      fc.asyncProperty(envelope, async (env) => {
        const before = upstream.length;
        const answer = await viaProxy(env);
        expect(answer.status, answer.body).toBeLessThan(500);
        const seen = upstream.slice(before);
        reached += seen.length;
        for (const r of seen) expect(isAllowedUpstream(r), `${r.method} ${r.url.href}`).toBe(true);
        expect(seen.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 200 },
    );
    // The generators reach real operations too, so the check on upstream paths is not vacuous.
    expect(reached).toBeGreaterThan(0);
  });

  test('random raw request paths sent directly: never a 5xx; upstream only ever sees passthrough operations', async () => {
    let reached = 0;
    const directMethod = fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS');
    await fc.assert(
      fc.asyncProperty(directMethod, randomPath, async (m, path) => {
        const before = upstream.length;
        const target = path.startsWith('/') || path.startsWith('http') ? path : `/${path}`;
        const answer = await rawRequest(m, target, '', m === 'POST' ? '{}' : '');
        expect(answer.status, `${m} ${JSON.stringify(target)} → ${answer.body}`).toBeGreaterThanOrEqual(200);
        expect(answer.status, `${m} ${JSON.stringify(target)} → ${answer.body}`).toBeLessThan(500);
        const seen = upstream.slice(before);
        reached += seen.length;
        for (const r of seen) expect(isAllowedUpstream(r), `${m} ${JSON.stringify(target)} → upstream ${r.method} ${r.url.href}`).toBe(true);
        // A pass-through route makes one upstream call; an action may make a few (e.g. metadata, then content).
        expect(seen.length).toBeLessThanOrEqual(target.startsWith('/v1/actions/') ? 3 : 1);
      }),
      { numRuns: 200 },
    );
    expect(reached).toBeGreaterThan(0);
  });
});

// ── What the guards above must still let through ─────────────────────────────────────────────────

describe('served as they should be', () => {
  test('a file of exactly MAX_UPLOAD_BYTES, with its form fields, is forwarded (the cap bounds the file, not the framing)', async () => {
    const boundary = 'relay-test-boundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="data.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n`),
      Buffer.alloc(LIMITS.MAX_UPLOAD_BYTES, 0x61),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const answer = await direct('POST', '/v1/files', { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
    expect(answer.status, answer.body).toBe(200);
    expect(upstream.map((r) => `${r.method} ${r.url.pathname}`)).toEqual(['POST /v1/files']);
  });

  test('Expect: 100-continue on a request within its limits: 100 Continue, then the body, then the answer', async () => {
    const body = '{"model":"text-embedding-3-small","input":"hi"}';
    const sock = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const done = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.on('error', () => {});
    sock.on('data', (d: Buffer) => {
      const before = received;
      received += d.toString('latin1');
      if (!before.includes('100 Continue') && received.includes('100 Continue')) sock.write(body);
    });
    sock.write(`POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    await done;
    expect(received).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(upstream).toHaveLength(1);
  });

  test('loopback Host and Origin (the MCP conformance suite\'s valid probe), an IP-literal Host, a CORS origin: all served', async () => {
    const host = `127.0.0.1:${port}`;
    const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } });
    const mcp = await direct('POST', '/mcp', { headers: { host, origin: `http://${host}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: initialize });
    expect(mcp.status, mcp.body).toBe(200);
    const localhost = await direct('GET', '/v1/models', { headers: { host: `localhost:${port}`, origin: `http://localhost:${port}` } });
    expect(localhost.status).toBe(200);
    const ipLiteral = await direct('GET', '/v1/models', { headers: { host: '10.1.2.3:8000' } });
    expect(ipLiteral.status).toBe(200);
    const ipv6 = await direct('GET', '/v1/models', { headers: { host: `[::1]:${port}` } });
    expect(ipv6.status).toBe(200);
    const chatgpt = await direct('GET', '/v1/models', { headers: { origin: 'https://chatgpt.com' } });
    expect(chatgpt.status).toBe(200);
    expect(chatgpt.headers['access-control-allow-origin']).toBe('https://chatgpt.com');
  });

  test('liveness and the plugin manifest answer whatever the Host; a wrong key on /mcp still says "incorrect relay key"', async () => {
    const health = await httpRequestAsWritten(relay.url, { path: '/health', headers: { host: 'relay.internal' } });
    expect(health.status).toBe(200);
    const manifest = await httpRequestAsWritten(relay.url, { path: '/.well-known/ai-plugin.json' });
    expect(manifest.status).toBe(200);
    const wrongKey = await httpRequestAsWritten(relay.url, {
      method: 'POST',
      path: '/mcp',
      headers: { authorization: 'Bearer not-a-relay-key-000000', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    });
    expect(wrongKey.status).toBe(401);
    expect(JSON.parse(wrongKey.body).error.code).toBe('invalid_relay_key');
  });
});

// ── The relay's own parsers, fuzzed: envelope, action and MCP bodies never give a 5xx ─────────────

describe('parser properties (default caps, nesting up to 20,000 deep)', () => {
  let open: TestRelay;
  beforeAll(async () => {
    open = await startTestRelay();
  });
  afterAll(() => open.shutdown());

  const post = (path: string, body: string) =>
    httpRequestAsWritten(open.url, {
      method: 'POST',
      path,
      headers: { authorization: AUTH, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    });

  /** JSON text: ordinary values, and values nested from a little to far past any stack (built as text: JSON.stringify would overflow). */
  const nested = fc
    .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"k":'), fc.jsonValue({ maxDepth: 1 }))
    .map(([depth, open, leaf]) => open.repeat(depth) + JSON.stringify(leaf) + (open === '[' ? ']' : '}').repeat(depth));
  const jsonText = fc.oneof({ weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) }, { weight: 2, arbitrary: nested });
  const objectText = fc.dictionary(fc.string({ maxLength: 12 }), jsonText, { maxKeys: 4 }).map((o) => `{${Object.entries(o).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`);
  const mangled = fc.oneof(objectText, jsonText, fc.string({ maxLength: 40 }), objectText.map((t) => t.slice(0, Math.max(1, t.length - 3))));

  test('random action bodies: never a 5xx', async () => {
    const actions = operations.filter((op) => op.kind === 'relay' && op.action && op.method === 'post' && op.operationId !== 'relayProxy');
    const fields = fc.constantFrom('input', 'model', 'instructions', 'prompt', 'name', 'query', 'wait_seconds', 'openaiFileIdRefs', 'file_ids', 'size', 'seconds', 'text', 'tools');
    const nearlyValid = fc.dictionary(fields, jsonText, { maxKeys: 4 }).map((o) => `{${Object.entries(o).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`);
    // What is fuzzed is the relay's reading of the request: OpenAI refuses whatever gets through, at once
    // (an action that got a success would wait on it, polling, for up to its deadline).
    server.use(mswHttp.all(`${OPENAI_BASE}/*`, () => HttpResponse.json({ error: { message: 'no', type: 'invalid_request_error', param: null, code: null } }, { status: 400 })));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...actions), fc.oneof(nearlyValid, mangled), async (op, body) => {
        const answer = await post(op.path.replace(/\{[^}]+\}/g, 'id_1'), body);
        expect(answer.status, `${op.operationId} ${body.slice(0, 200)} → ${answer.body.slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });

  test('random MCP messages: never a 5xx, never an internal error or a failed tool', async () => {
    const toolNames = fc.constantFrom(...operations.filter((op) => op.action).map((op) => op.operationId), 'noSuchTool');
    const id = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null));
    const call = fc.tuple(id, toolNames, fc.oneof(objectText, jsonText)).map(([i, name, args]) => `{"jsonrpc":"2.0","id":${JSON.stringify(i)},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${args}}}`);
    const other = fc
      .tuple(id, fc.constantFrom('initialize', 'tools/list', 'ping', 'resources/list', 'prompts/list', 'notifications/initialized', 'nope', ''), fc.oneof(objectText, jsonText))
      .map(([i, method, params]) => `{"jsonrpc":"2.0","id":${JSON.stringify(i)},"method":${JSON.stringify(method)},"params":${params}}`);
    const batch = fc.array(fc.oneof(call, other), { maxLength: 3 }).map((items) => `[${items.join(',')}]`);
    await fc.assert(
      fc.asyncProperty(fc.oneof(call, other, batch, mangled), async (message) => {
        const answer = await post('/mcp', message);
        const what = `${message.slice(0, 200)} → ${answer.body.slice(0, 300)}`;
        expect(answer.status, what).toBeLessThan(500);
        expect(answer.body, what).not.toMatch(/"code":-32603|"type":"server_error"/);
      }),
      { numRuns: 150 },
    );
  });

  test('random envelopes as text (nested up to 20,000 deep, cut short, wrong shapes): never a 5xx', async () => {
    const envelopeText = fc
      .tuple(fc.constantFrom('GET', 'POST', 'DELETE'), fc.constantFrom('/v1/models', '/v1/embeddings', '/v1/responses', '/v1/files/file-1'), fc.option(objectText), fc.option(jsonText))
      .map(([method, path, query, body]) => `{"method":"${method}","path":"${path}"${query === null ? '' : `,"query":${query}`}${body === null ? '' : `,"body":${body}`}}`);
    await fc.assert(
      fc.asyncProperty(fc.oneof(envelopeText, mangled), async (envelope) => {
        const answer = await post('/v1/proxy', envelope);
        expect(answer.status, `${envelope.slice(0, 200)} → ${answer.body.slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });
});
