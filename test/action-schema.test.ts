import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { operations } from '../generated/routes.ts';
import { webSocketRoutes } from '../generated/websockets.ts';
import { ACTION_INFO_DESCRIPTION, ActionSchemaError, actionOperations, buildActionSchema, type OpenApiDocument } from '../scripts/generate/action-schema.ts';
import { buildFullSchema, documentJson, documentYaml, emitDocuments } from '../scripts/generate/emit-documents.ts';
import { buildTools } from '../scripts/generate/mcp-tools.ts';
import { HTTP_METHODS, loadSpec } from '../scripts/generate/spec.ts';
import { GPT_ACTION_LIMITS } from '../scripts/lint-action/limits.ts';
import { lintActionSchema } from '../scripts/lint-action/lint.ts';
import { LINT_RULES, type LintRule } from '../scripts/lint-action/rules.ts';
import type { RelayEnv } from '../src/core/env.ts';
import { loadConfig } from '../src/config.ts';
import { actionServerUrl } from '../src/http/server-url.ts';
import { createDocumentCache, loadGeneratedDocuments } from '../src/routes/document-cache.ts';
import { DOCUMENT_PATHS, registerDocumentRoutes } from '../src/routes/documents.ts';

/**
 * The served documents: the GPT Action schema the generator builds from schemas/openapi.yaml (by the
 * x-relay.action mark), its lint (one rule per GPT Action requirement), the full schema, the server URL,
 * and the public routes that serve them. Fixtures: test/fixtures/action-lint/.
 */

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/action-lint/${name}`, import.meta.url));
const SCRIPT = fileURLToPath(new URL('../scripts/lint-action/main.ts', import.meta.url));
const SERVER = 'https://relay.example.com';

const contract = loadSpec();
const served = buildActionSchema(contract, { serverUrl: SERVER });
const clone = <T>(value: T): T => structuredClone(value);

function opsOf(doc: OpenApiDocument): { path: string; method: string; op: Record<string, any> }[] {
  const out: { path: string; method: string; op: Record<string, any> }[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths ?? {})) {
    for (const method of HTTP_METHODS) if (item[method]) out.push({ path, method, op: item[method] });
  }
  return out;
}

function run(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject).on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// ------------------------------------------------------------------ the real served schema

describe('the action schema served from schemas/openapi.yaml', () => {
  test('passes every lint rule', () => {
    expect(lintActionSchema(served)).toEqual([]);
  });

  test('holds exactly the x-relay.action operations of the generated route table, at most 30, POST /v1/proxy included', () => {
    const expected = operations.filter((o) => o.action).map((o) => `${o.method} ${o.path} ${o.operationId}`).sort();
    const actual = opsOf(served).map(({ path, method, op }) => `${method} ${path} ${op.operationId}`).sort();
    expect(actual).toEqual(expected);
    expect(actual.length).toBeGreaterThan(0);
    expect(actual.length).toBeLessThanOrEqual(GPT_ACTION_LIMITS.maxOperations);
    expect(actual).toContain('post /v1/proxy relayProxy');
  });

  test('every operation says x-openai-isConsequential, equal to its mark', () => {
    const marks = new Map(operations.filter((o) => o.action).map((o) => [o.operationId, o.action!.consequential]));
    for (const { op } of opsOf(served)) {
      expect(typeof op['x-openai-isConsequential']).toBe('boolean');
      expect(op['x-openai-isConsequential'], op.operationId).toBe(marks.get(op.operationId));
      expect(op.summary.length).toBeGreaterThan(0);
      expect(op.description.length).toBeLessThanOrEqual(300);
    }
  });

  test('carries no x-relay metadata, one server, one bearer scheme, and only reachable schemas', () => {
    const text = JSON.stringify(served);
    expect(text).not.toContain('x-relay');
    expect(served.openapi).toBe('3.1.0');
    expect(served.servers).toEqual([{ url: SERVER }]);
    expect(served.security).toEqual([{ RelayKey: [] }]);
    expect(Object.keys(served.components.securitySchemes)).toEqual(['RelayKey']);
    expect(served.components.securitySchemes.RelayKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(served.info.description).toBe(ACTION_INFO_DESCRIPTION);
    expect(ACTION_INFO_DESCRIPTION.length).toBeLessThanOrEqual(300);
    const schemas = Object.keys(served.components.schemas);
    expect(schemas).toContain('ProxyRequest');
    expect(schemas).not.toContain('CreateResponseRequest');
    for (const name of schemas) expect(text).toContain(`"#/components/schemas/${name}"`);
    // actions speak JSON: the proxy's SSE alternative is not advertised
    expect(Object.keys(served.paths['/v1/proxy'].post.responses['200'].content)).toEqual(['application/json']);
  });

  test('the builders never mutate the spec (a deeply frozen spec builds the same documents)', () => {
    const frozen = deepFreeze(loadSpec());
    expect(buildActionSchema(frozen, { serverUrl: SERVER })).toEqual(served);
    expect(buildFullSchema(frozen, { serverUrl: SERVER })).toEqual(buildFullSchema(contract, { serverUrl: SERVER }));
    expect(buildTools(frozen)).toEqual(buildTools(contract));
    expect(frozen.paths['/v1/proxy'].post['x-relay'].action).toEqual({ consequential: true });
  });

  test('npm run lint:action (the script) exits 0 with an OK line', async () => {
    const { code, stdout } = await run();
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^OK: .*\\(${opsOf(served).length} operations\\)\\n$`));
  });
});

describe('the full schema', () => {
  const full = buildFullSchema(contract, { serverUrl: SERVER });

  test('has every operation, the one server, and no x-relay key', () => {
    for (const o of operations) expect(full.paths[o.path]?.[o.method]?.operationId, `${o.method} ${o.path}`).toBe(o.operationId);
    expect(opsOf(full)).toHaveLength(operations.length + webSocketRoutes.length);
    expect(full.servers).toEqual([{ url: SERVER }]);
    expect(JSON.stringify(full)).not.toMatch(/"x-relay"\s*:/);
    expect(Object.keys(full.components.schemas)).toEqual(Object.keys(contract.components.schemas));
  });
});

// ------------------------------------------------------------------ building from a fixture contract

describe('buildActionSchema on test/fixtures/action-lint/contract.yaml', () => {
  const small = loadSpec(fixture('contract.yaml'));
  const doc = buildActionSchema(small, { serverUrl: SERVER });
  const getThing = doc.paths['/v1/things/{thing_id}'].get;

  test('chooses operations by the mark and lints clean', () => {
    expect(opsOf(doc).map(({ op }) => op.operationId)).toEqual(['getThing', 'createThing']);
    expect(doc.paths['/v1/things/{thing_id}'].delete).toBeUndefined();
    expect(lintActionSchema(doc)).toEqual([]);
    expect(doc.info).toEqual({ title: 'Fixture Relay', description: ACTION_INFO_DESCRIPTION, version: '2.3.4' });
  });

  test('moves path-level parameters into the operation, inline, without header parameters', () => {
    expect(doc.paths['/v1/things/{thing_id}'].parameters).toBeUndefined();
    expect(getThing.parameters).toEqual([
      { name: 'thing_id', in: 'path', required: true, schema: { type: 'string' }, description: 'The thing id.' },
      { name: 'verbose', in: 'query', schema: { type: 'boolean' }, description: 'Say more.' },
    ]);
    expect(doc.components.parameters).toBeUndefined();
  });

  test('fixes schemas: no nullable unions, properties on objects, trimmed descriptions, no x-relay', () => {
    const thing = doc.components.schemas.Thing;
    expect(thing['x-relay']).toBeUndefined();
    expect(thing.properties['x-relay']).toEqual({ type: 'string', description: 'A property that happens to be called x-relay.' });
    expect(thing.properties.label).toEqual({ type: 'string', description: 'A label or nothing.' });
    expect(thing.properties.size).toEqual({ type: 'integer', description: 'Size, if known.' });
    expect(thing.properties.meta).toEqual({ type: 'object', additionalProperties: true, description: 'Free-form metadata.', properties: {} });
    const notes = doc.components.schemas.ThingRequest.properties.notes.description;
    expect(small.components.schemas.ThingRequest.properties.notes.description.length).toBeGreaterThan(700);
    expect(notes.length).toBeLessThanOrEqual(700);
    expect(notes.endsWith('…')).toBe(true);
  });

  test('keeps only reachable schemas (the unreachable cycle is ignored) and only JSON answers', () => {
    expect(Object.keys(doc.components.schemas).sort()).toEqual(['Error', 'FileRef', 'Owner', 'Thing', 'ThingRequest']);
    expect(Object.keys(doc.paths['/v1/things'].post.responses['200'].content)).toEqual(['application/json']);
  });

  test('changing a mark changes the served operation set and its consequential flags', () => {
    const variant = clone(small);
    delete variant.paths['/v1/things'].post['x-relay'].action;
    variant.paths['/v1/things/{thing_id}'].delete['x-relay'].action = { consequential: true };
    variant.paths['/v1/things/{thing_id}'].get['x-relay'].action = { consequential: true };
    variant.paths['/v1/things/{thing_id}'].delete.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Owner' };
    const changed = buildActionSchema(variant, { serverUrl: SERVER });
    expect(opsOf(changed).map(({ op }) => [op.operationId, op['x-openai-isConsequential']])).toEqual([
      ['getThing', true],
      ['deleteThing', true],
    ]);
    expect(actionOperations(variant).map((o) => o.operationId)).toEqual(['getThing', 'deleteThing']);
    expect(Object.keys(changed.components.schemas)).not.toContain('ThingRequest');
    expect(lintActionSchema(changed)).toEqual([]);
  });

  const failing: [string, (c: Record<string, any>) => void, RegExp][] = [
    ['an over-long operation description', (c) => (c.paths['/v1/things'].post.description = 'x'.repeat(301)), /description has 301 characters/],
    ['an over-long summary', (c) => (c.paths['/v1/things'].post.summary = 'x'.repeat(301)), /summary has 301 characters/],
    ['a reachable circular $ref', (c) => (c.components.schemas.Owner.properties.pet = { $ref: '#/components/schemas/Thing' }), /circular \$ref: Thing → Owner → Thing/],
    ['a dangling $ref', (c) => (c.components.schemas.Owner.properties.pet = { $ref: '#/components/schemas/Nope' }), /does not resolve/],
    [
      'a multipart-only action body',
      (c) => (c.paths['/v1/things'].post.requestBody.content = { 'multipart/form-data': { schema: { type: 'object', properties: {} } } }),
      /request body must be JSON \(found multipart\/form-data\)/,
    ],
    [
      'an SSE-only action answer',
      (c) => delete c.paths['/v1/things'].post.responses['200'].content['application/json'],
      /response 200 is text\/event-stream only/,
    ],
    ['a mark without consequential', (c) => (c.paths['/v1/things'].post['x-relay'].action = {}), /x-relay.action must be \{consequential/],
    ['a bad operationId', (c) => (c.paths['/v1/things'].post.operationId = 'create thing'), /operationId "create thing" must match/],
    ['a duplicate operationId', (c) => (c.paths['/v1/things'].post.operationId = 'getThing'), /operationId getThing is used twice/],
    [
      'more than 30 marked operations',
      (c) => {
        for (let i = 0; i < 30; i++) c.paths[`/v1/extra/${i}`] = { get: { ...clone(c.paths['/v1/things/{thing_id}'].get), operationId: `extra${i}`, parameters: [] } };
      },
      /32 operations are marked x-relay.action; a GPT Action schema allows 30/,
    ],
  ];
  test.each(failing)('throws at build time on %s', (_name, mutate, message) => {
    const variant = clone(small);
    mutate(variant);
    let error: unknown;
    try {
      buildActionSchema(variant, { serverUrl: SERVER });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ActionSchemaError);
    expect((error as ActionSchemaError).problems.join('\n')).toMatch(message);
  });
});

// ------------------------------------------------------------------ one bad document per lint rule

/** A minimal action schema that passes every rule; each case below breaks exactly one. */
function goodDoc(): Record<string, any> {
  return {
    openapi: '3.1.0',
    info: { title: 'T', version: '1' },
    servers: [{ url: 'https://relay.example.com' }],
    security: [{ RelayKey: [] }],
    paths: {
      '/v1/things/{id}': {
        get: {
          operationId: 'getThing',
          summary: 'Get a thing',
          description: 'Gets a thing.',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'The id.' }],
          responses: { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } },
          'x-openai-isConsequential': false,
        },
      },
      '/v1/things': {
        post: {
          operationId: 'createThing',
          summary: 'Create a thing',
          description: 'Creates a thing.',
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ThingRequest' } } } },
          responses: { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } },
          'x-openai-isConsequential': true,
        },
      },
    },
    components: {
      schemas: {
        Thing: {
          type: 'object',
          properties: {
            id: { type: 'string', description: 'The id.' },
            openaiFileResponse: {
              type: 'array',
              maxItems: 10,
              items: { type: 'object', properties: { name: { type: 'string' }, mime_type: { type: 'string' }, content: { type: 'string' } } },
            },
          },
        },
        ThingRequest: {
          type: 'object',
          properties: {
            text: { type: 'string', maxLength: 90_000 },
            wait_seconds: { type: 'integer', minimum: 0, maximum: 40 },
            openaiFileIdRefs: { type: 'array', maxItems: 10, items: { $ref: '#/components/schemas/FileRef' } },
          },
        },
        FileRef: {
          type: 'object',
          properties: { name: { type: 'string' }, id: { type: 'string' }, mime_type: { type: 'string' }, download_link: { type: 'string' } },
        },
      },
      securitySchemes: { RelayKey: { type: 'http', scheme: 'bearer' } },
    },
  };
}

const GET = '/paths/~1v1~1things~1{id}/get';
const POST = '/paths/~1v1~1things/post';
const long = (n: number) => 'x'.repeat(n);

const cases: { rule: LintRule; name: string; pointer: string; mutate: (d: Record<string, any>) => void }[] = [
  { rule: 'openapi-version', name: '3.0.3', pointer: '/openapi', mutate: (d) => (d.openapi = '3.0.3') },
  { rule: 'servers-count', name: 'two servers', pointer: '/servers', mutate: (d) => d.servers.push({ url: 'https://other.example.com' }) },
  { rule: 'servers-count', name: 'no servers', pointer: '/servers', mutate: (d) => delete d.servers },
  { rule: 'servers-count', name: 'operation servers', pointer: `${GET}/servers`, mutate: (d) => (d.paths['/v1/things/{id}'].get.servers = [{ url: 'https://x.example.com' }]) },
  { rule: 'server-https', name: 'http server (seed fault 8)', pointer: '/servers/0/url', mutate: (d) => (d.servers[0].url = 'http://relay.example.com') },
  { rule: 'server-https', name: 'relative server', pointer: '/servers/0/url', mutate: (d) => (d.servers[0].url = '/v1') },
  { rule: 'server-port', name: 'port 8443', pointer: '/servers/0/url', mutate: (d) => (d.servers[0].url = 'https://relay.example.com:8443') },
  {
    rule: 'max-operations',
    name: '32 operations',
    pointer: '/paths',
    mutate: (d) => {
      for (let i = 0; i < 30; i++) d.paths[`/v1/extra/${i}`] = { get: { ...clone(d.paths['/v1/things/{id}'].get), operationId: `extra${i}`, parameters: [] } };
    },
  },
  { rule: 'operation-id', name: 'missing operationId', pointer: GET, mutate: (d) => delete d.paths['/v1/things/{id}'].get.operationId },
  { rule: 'operation-id', name: 'operationId with a space', pointer: `${GET}/operationId`, mutate: (d) => (d.paths['/v1/things/{id}'].get.operationId = 'get thing') },
  { rule: 'operation-id', name: '65-character operationId', pointer: `${GET}/operationId`, mutate: (d) => (d.paths['/v1/things/{id}'].get.operationId = long(65)) },
  { rule: 'operation-id-unique', name: 'duplicate operationId', pointer: `${POST}/operationId`, mutate: (d) => (d.paths['/v1/things'].post.operationId = 'getThing') },
  { rule: 'summary-length', name: '301-character summary', pointer: `${GET}/summary`, mutate: (d) => (d.paths['/v1/things/{id}'].get.summary = long(301)) },
  { rule: 'description-length', name: '301-character description', pointer: `${POST}/description`, mutate: (d) => (d.paths['/v1/things'].post.description = long(301)) },
  {
    rule: 'parameter-description-length',
    name: '701-character parameter description',
    pointer: `${GET}/parameters/0/description`,
    mutate: (d) => (d.paths['/v1/things/{id}'].get.parameters[0].description = long(701)),
  },
  {
    rule: 'property-description-length',
    name: '701-character property description',
    pointer: '/components/schemas/Thing/properties/id/description',
    mutate: (d) => (d.components.schemas.Thing.properties.id.description = long(701)),
  },
  {
    rule: 'no-header-parameters',
    name: 'a header parameter',
    pointer: `${GET}/parameters/1/in`,
    mutate: (d) => d.paths['/v1/things/{id}'].get.parameters.push({ name: 'X-Trace', in: 'header', schema: { type: 'string' } }),
  },
  {
    rule: 'no-header-parameters',
    name: 'a path-level header parameter',
    pointer: '/paths/~1v1~1things~1{id}/parameters/0/in',
    mutate: (d) => (d.paths['/v1/things/{id}'].parameters = [{ name: 'X-Trace', in: 'header', schema: { type: 'string' } }]),
  },
  {
    rule: 'no-cookie-parameters',
    name: 'a cookie parameter',
    pointer: `${GET}/parameters/1/in`,
    mutate: (d) => d.paths['/v1/things/{id}'].get.parameters.push({ name: 'session', in: 'cookie', schema: { type: 'string' } }),
  },
  {
    rule: 'no-ref-parameters',
    name: 'a $ref parameter',
    pointer: `${GET}/parameters/0`,
    mutate: (d) => {
      d.components.parameters = { Id: d.paths['/v1/things/{id}'].get.parameters[0] };
      d.paths['/v1/things/{id}'].get.parameters[0] = { $ref: '#/components/parameters/Id' };
    },
  },
  {
    rule: 'no-head-method',
    name: 'a HEAD operation',
    pointer: '/paths/~1v1~1things~1{id}/head',
    mutate: (d) => (d.paths['/v1/things/{id}'].head = { ...clone(d.paths['/v1/things/{id}'].get), operationId: 'headThing' }),
  },
  {
    rule: 'no-circular-ref',
    name: 'a schema that contains itself',
    pointer: '/components/schemas/Thing/properties/child/$ref',
    mutate: (d) => (d.components.schemas.Thing.properties.child = { $ref: '#/components/schemas/Thing' }),
  },
  {
    rule: 'no-circular-ref',
    name: 'a two-schema cycle',
    pointer: '/components/schemas/FileRef/properties/thing/$ref',
    mutate: (d) => (d.components.schemas.FileRef.properties.thing = { $ref: '#/components/schemas/ThingRequest' }),
  },
  {
    rule: 'ref-resolves',
    name: 'a dangling $ref',
    pointer: `${GET}/responses/200/content/application~1json/schema/$ref`,
    mutate: (d) => (d.paths['/v1/things/{id}'].get.responses['200'].content['application/json'].schema.$ref = '#/components/schemas/Nope'),
  },
  {
    rule: 'ref-resolves',
    name: 'an external $ref',
    pointer: '/components/schemas/Thing/properties/id/$ref',
    mutate: (d) => (d.components.schemas.Thing.properties.id = { $ref: 'https://example.com/schemas.json#/Id' }),
  },
  {
    rule: 'components-schemas-present',
    name: 'no components.schemas',
    pointer: '/components/schemas',
    mutate: (d) => {
      delete d.components.schemas;
      d.paths = { '/v1/ping': { get: { operationId: 'ping', summary: 'Ping', responses: { '200': { description: 'OK' } }, 'x-openai-isConsequential': false } } };
    },
  },
  {
    rule: 'object-properties',
    name: 'a free-form object without properties',
    pointer: '/components/schemas/Thing/properties/meta',
    mutate: (d) => (d.components.schemas.Thing.properties.meta = { type: 'object', additionalProperties: true }),
  },
  {
    rule: 'object-properties',
    name: 'an inline object answer without properties',
    pointer: `${POST}/responses/200/content/application~1json/schema`,
    mutate: (d) => (d.paths['/v1/things'].post.responses['200'].content['application/json'].schema = { type: 'object' }),
  },
  {
    rule: 'no-nullable-union',
    name: 'anyOf with {type: null}',
    pointer: '/components/schemas/Thing/properties/id/anyOf/1',
    mutate: (d) => (d.components.schemas.Thing.properties.id = { anyOf: [{ type: 'string' }, { type: 'null' }] }),
  },
  {
    rule: 'no-nullable-union',
    name: 'oneOf with {type: null}',
    pointer: '/components/schemas/Thing/properties/id/oneOf/0',
    mutate: (d) => (d.components.schemas.Thing.properties.id = { oneOf: [{ type: 'null' }, { type: 'string' }] }),
  },
  {
    rule: 'no-nullable-union',
    name: 'type [string, null]',
    pointer: '/components/schemas/Thing/properties/id/type',
    mutate: (d) => (d.components.schemas.Thing.properties.id = { type: ['string', 'null'] }),
  },
  {
    rule: 'single-security-scheme',
    name: 'two security schemes',
    pointer: '/components/securitySchemes',
    mutate: (d) => (d.components.securitySchemes.Other = { type: 'http', scheme: 'basic' }),
  },
  { rule: 'single-security-scheme', name: 'no security scheme', pointer: '/components/securitySchemes', mutate: (d) => delete d.components.securitySchemes },
  {
    rule: 'security-scheme-type',
    name: 'an API key in the query',
    pointer: '/components/securitySchemes/RelayKey',
    mutate: (d) => (d.components.securitySchemes.RelayKey = { type: 'apiKey', in: 'query', name: 'key' }),
  },
  { rule: 'consequential-flag', name: 'missing flag', pointer: POST, mutate: (d) => delete d.paths['/v1/things'].post['x-openai-isConsequential'] },
  {
    rule: 'consequential-flag',
    name: 'a string flag',
    pointer: `${POST}/x-openai-isConsequential`,
    mutate: (d) => (d.paths['/v1/things'].post['x-openai-isConsequential'] = 'true'),
  },
  {
    rule: 'json-request-body',
    name: 'a multipart body',
    pointer: `${POST}/requestBody/content/multipart~1form-data`,
    mutate: (d) => (d.paths['/v1/things'].post.requestBody.content['multipart/form-data'] = { schema: { type: 'object', properties: {} } }),
  },
  {
    rule: 'json-response',
    name: 'a binary answer',
    pointer: `${GET}/responses/200/content/application~1octet-stream`,
    mutate: (d) => (d.paths['/v1/things/{id}'].get.responses['200'].content = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } }),
  },
  {
    rule: 'no-sse-response',
    name: 'an SSE-only answer',
    pointer: `${POST}/responses/200/content/text~1event-stream`,
    mutate: (d) => (d.paths['/v1/things'].post.responses['200'].content = { 'text/event-stream': { schema: { type: 'string' } } }),
  },
  {
    rule: 'openai-file-id-refs',
    name: 'openaiFileIdRefs that is not an array',
    pointer: '/components/schemas/ThingRequest/properties/openaiFileIdRefs',
    mutate: (d) => (d.components.schemas.ThingRequest.properties.openaiFileIdRefs = { type: 'string' }),
  },
  {
    rule: 'openai-file-id-refs',
    name: 'openaiFileIdRefs items without download_link',
    pointer: '/components/schemas/ThingRequest/properties/openaiFileIdRefs/items',
    mutate: (d) => delete d.components.schemas.FileRef.properties.download_link,
  },
  {
    rule: 'openai-file-id-refs',
    name: 'openaiFileIdRefs with more than 10 files',
    pointer: '/components/schemas/ThingRequest/properties/openaiFileIdRefs/maxItems',
    mutate: (d) => (d.components.schemas.ThingRequest.properties.openaiFileIdRefs.maxItems = 11),
  },
  {
    rule: 'openai-file-id-refs',
    name: 'openaiFileIdRefs in a PUT body',
    pointer: '/paths/~1v1~1things/put/requestBody/content/application~1json/schema',
    mutate: (d) => (d.paths['/v1/things'].put = { ...clone(d.paths['/v1/things'].post), operationId: 'replaceThing' }),
  },
  {
    rule: 'openai-file-id-refs',
    name: 'openaiFileIdRefs in an answer',
    pointer: `${GET}/responses/200/content/application~1json/schema`,
    mutate: (d) => (d.components.schemas.Thing.properties.files = { $ref: '#/components/schemas/ThingRequest' }),
  },
  {
    rule: 'openai-file-response',
    name: 'openaiFileResponse with more than 10 files',
    pointer: '/components/schemas/Thing/properties/openaiFileResponse/maxItems',
    mutate: (d) => (d.components.schemas.Thing.properties.openaiFileResponse.maxItems = 11),
  },
  {
    rule: 'openai-file-response',
    name: 'openaiFileResponse items without content',
    pointer: '/components/schemas/Thing/properties/openaiFileResponse/items',
    mutate: (d) => delete d.components.schemas.Thing.properties.openaiFileResponse.items.properties.content,
  },
  {
    rule: 'max-characters',
    name: 'a string allowed beyond 100,000 characters',
    pointer: '/components/schemas/ThingRequest/properties/text/maxLength',
    mutate: (d) => (d.components.schemas.ThingRequest.properties.text.maxLength = 100_001),
  },
  {
    rule: 'wait-within-45s',
    name: 'wait_seconds up to 60',
    pointer: '/components/schemas/ThingRequest/properties/wait_seconds',
    mutate: (d) => (d.components.schemas.ThingRequest.properties.wait_seconds.maximum = 60),
  },
  {
    rule: 'wait-within-45s',
    name: 'timeout_seconds without a maximum',
    pointer: '/components/schemas/ThingRequest/properties/timeout_seconds',
    mutate: (d) => (d.components.schemas.ThingRequest.properties.timeout_seconds = { type: 'integer' }),
  },
  {
    rule: 'no-x-relay',
    name: 'x-relay left on an operation',
    pointer: `${GET}/x-relay`,
    mutate: (d) => (d.paths['/v1/things/{id}'].get['x-relay'] = { kind: 'relay', action: { consequential: false } }),
  },
];

describe('lintActionSchema', () => {
  test('the base document of the cases passes', () => {
    expect(lintActionSchema(goodDoc())).toEqual([]);
  });

  test('every rule has at least one failing case', () => {
    expect(new Set(cases.map((c) => c.rule))).toEqual(new Set(Object.keys(LINT_RULES)));
  });

  test.each(cases)('$rule: $name', ({ rule, pointer, mutate }) => {
    const doc = goodDoc();
    mutate(doc);
    const violations = lintActionSchema(doc);
    expect(violations).toContainEqual(expect.objectContaining({ rule, pointer }));
    for (const v of violations) expect(v.message.length).toBeGreaterThan(10);
  });

  test('a property called x-relay is not metadata', () => {
    const doc = goodDoc();
    doc.components.schemas.Thing.properties['x-relay'] = { type: 'string' };
    expect(lintActionSchema(doc)).toEqual([]);
  });

  test('not an object', () => {
    expect(lintActionSchema('openapi: 3.1.0')).toEqual([expect.objectContaining({ rule: 'openapi-version', pointer: '' })]);
  });

  test('the script prints `<pointer>  <rule>: <message>` per violation and exits 1 (--file)', async () => {
    const { code, stdout } = await run('--file', fixture('bad-action.yaml'));
    expect(code).toBe(1);
    const lines = stdout.trim().split('\n');
    expect(lines).toContain(
      '/servers/0/url  server-https: the server must be an absolute https URL (got "http://relay.example.com")',
    );
    expect(lines.some((l) => l.startsWith('/paths/~1v1~1nodes/get  consequential-flag: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('/components/schemas/Node/properties/children/items/$ref  no-circular-ref: '))).toBe(true);
    expect(lines.at(-1)).toMatch(/^3 violations/);
  });

  test('the script builds another contract (--spec), and reports one that cannot be built with exit 1', async () => {
    const ok = await run('--spec', fixture('contract.yaml'));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\(2 operations\)/);
    const broken = clone(loadSpec(fixture('contract.yaml')));
    broken.paths['/v1/things'].post.description = long(301);
    const dir = mkdtempSync(join(tmpdir(), 'lint-action-'));
    try {
      writeFileSync(join(dir, 'broken.yaml'), stringify(broken));
      const bad = await run('--spec', join(dir, 'broken.yaml'));
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/^\(build\)  build: POST \/v1\/things: description has 301 characters/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ server URL

describe('actionServerUrl', () => {
  const pub = new URL('https://relay.example.com/base/');

  test.each([
    ['PUBLIC_BASE_URL wins over every header', pub, { host: 'evil.example.net', 'x-forwarded-host': 'evil.example.net' }, 'https://relay.example.com/base'],
    ['PUBLIC_BASE_URL without a path', new URL('https://relay.example.com'), { host: 'x.example.net' }, 'https://relay.example.com'],
    ['X-Forwarded-Proto http on a public host still gives https (seed fault 8)', undefined, { host: 'relay.example.com', 'x-forwarded-proto': 'http' }, 'https://relay.example.com'],
    ['a public Host with no proxy headers gives https', undefined, { host: 'relay.example.com' }, 'https://relay.example.com'],
    ['X-Forwarded-Host wins over Host', undefined, { host: '10.0.0.5:8000', 'x-forwarded-host': 'relay.example.com', 'x-forwarded-proto': 'https' }, 'https://relay.example.com'],
    ['comma lists: the first value', undefined, { host: 'internal:8000', 'x-forwarded-host': 'Relay.Example.com, proxy.internal', 'x-forwarded-proto': 'http, https' }, 'https://relay.example.com'],
    ['port 443 is dropped, others kept', undefined, { host: 'relay.example.com:443' }, 'https://relay.example.com'],
    ['a non-default public port is kept', undefined, { host: 'relay.example.com:8443' }, 'https://relay.example.com:8443'],
    ['loopback gives http', undefined, { host: '127.0.0.1:8000' }, 'http://127.0.0.1:8000'],
    ['localhost gives http', undefined, { host: 'localhost:8000', 'x-forwarded-proto': 'http' }, 'http://localhost:8000'],
    ['[::1] gives http', undefined, { host: '[::1]:8000' }, 'http://[::1]:8000'],
    ['loopback behind a TLS proxy keeps https', undefined, { host: 'localhost:8000', 'x-forwarded-proto': 'https' }, 'https://localhost:8000'],
    ['a bad Host header falls back', undefined, { host: 'evil.com/"><script>' }, 'http://localhost'],
    ['a Host with a path falls back', undefined, { host: 'relay.example.com/x?y' }, 'http://localhost'],
    ['a Host with credentials falls back', undefined, { host: 'user@relay.example.com' }, 'http://localhost'],
    ['a Host with CR/LF falls back', undefined, { host: 'relay.example.com\r\nx: y' }, 'http://localhost'],
    ['a port out of range falls back', undefined, { host: 'relay.example.com:99999' }, 'http://localhost'],
    ['a bad X-Forwarded-Host falls back to Host', undefined, { host: 'relay.example.com', 'x-forwarded-host': 'a b' }, 'https://relay.example.com'],
    ['no headers at all falls back', undefined, {}, 'http://localhost'],
  ] as const)('%s', (_name, base, headers, expected) => {
    expect(actionServerUrl(base, headers)).toBe(expected);
  });

  test('the fallback is configurable', () => {
    expect(actionServerUrl(undefined, { host: '%%%' }, 'http://localhost:8000')).toBe('http://localhost:8000');
  });
});

describe('createDocumentCache', () => {
  const docOf = (rendered: { json: string }) => JSON.parse(rendered.json) as OpenApiDocument;

  test('renders once per server URL and swaps only the server', () => {
    const cache = createDocumentCache(undefined, 2);
    const a = cache.action('https://a.example.com');
    expect(cache.action('https://a.example.com')).toBe(a);
    expect(docOf(a).servers).toEqual([{ url: 'https://a.example.com' }]);
    expect(parse(a.yaml)).toEqual(JSON.parse(a.json));
    expect(a.yaml).not.toMatch(/^\s*[^#\n]*[&*]a\d+\b/m);
    const { servers: _s1, ...restA } = docOf(a);
    const { servers: _s2, ...restServed } = served;
    expect(restA).toEqual(restServed);
    cache.action('https://b.example.com');
    cache.action('https://c.example.com');
    expect(cache.action('https://a.example.com')).not.toBe(a); // evicted: at most 2 kept
    expect(docOf(cache.full('https://a.example.com')).servers).toEqual([{ url: 'https://a.example.com' }]);
  });

  test('the text swaps in any server URL faithfully (IPv6, paths, YAML-special characters)', () => {
    const cache = createDocumentCache();
    for (const url of ['http://[::1]:8000', 'https://relay.example.com/a%20b/c#x: y', 'https://relay.example.com/- [x]']) {
      for (const rendered of [cache.action(url), cache.full(url)]) {
        const doc = docOf(rendered);
        expect(doc.servers).toEqual([{ url }]);
        expect(parse(rendered.yaml)).toEqual(doc);
      }
    }
  });

  // The served text is exactly what serializing the builders' documents gives, byte for byte: generating
  // them ahead of time changed nothing a GPT or an SDK generator reads.
  test.each(['https://relay.example.com', 'http://127.0.0.1:8000', 'http://[::1]:8000', 'https://relay.example.com/a%20b/c#x: y'])(
    'served JSON and YAML at %s equal the builders\' documents serialized',
    (url) => {
      const cache = createDocumentCache();
      const action = buildActionSchema(contract, { serverUrl: url });
      const full = buildFullSchema(contract, { serverUrl: url });
      expect(cache.action(url).json).toBe(documentJson(action));
      expect(cache.action(url).yaml).toBe(documentYaml(action));
      expect(cache.full(url).json).toBe(documentJson(full));
      expect(cache.full(url).yaml).toBe(documentYaml(full));
    },
  );

  test('a document whose placeholder is missing is still served right (serialized from the parsed text)', () => {
    const texts = loadGeneratedDocuments();
    const odd = { action: texts.action.replace('https://served-server-url.invalid', 'https://elsewhere.invalid'), full: texts.full };
    const rendered = createDocumentCache(odd).action(SERVER);
    expect(docOf(rendered).servers).toEqual([{ url: SERVER }]);
    expect(parse(rendered.yaml).servers).toEqual([{ url: SERVER }]);
  });

  test('a spec that cannot make an action schema fails at generate time, not at start-up', () => {
    const bad = clone(contract);
    bad.paths['/v1/proxy'].post.description = long(301);
    expect(() => emitDocuments(bad)).toThrow(ActionSchemaError);
  });

  test('a spec that has the placeholder as a value itself cannot be generated (the relay could not fill in its URL)', () => {
    const mentioned = clone(contract);
    mentioned.info.description = 'See https://served-server-url.invalid';
    expect(() => emitDocuments(mentioned)).not.toThrow(); // only a whole JSON string or a YAML `url:` value could collide
    const bad = clone(contract);
    bad.info['x-logo'] = { url: 'https://served-server-url.invalid' };
    expect(() => emitDocuments(bad)).toThrow(/mentions https:\/\/served-server-url\.invalid/);
  });
});

// ------------------------------------------------------------------ routes

describe('document routes', () => {
  const CUSTOM = 'We keep <b>nothing</b> & "never" look.\nSecond line.\n\nSecond paragraph <script>alert(1)</script>';
  let server: ServerType;
  let base: string;
  let port: number;

  beforeAll(async () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-test-documents-0123456789', RELAY_AUTH: 'off', PRIVACY_POLICY_TEXT: CUSTOM });
    const app = new OpenAPIHono<RelayEnv>();
    app.use(async (c, next) => {
      c.set('requestId', 'req_test_documents');
      await next();
    });
    registerDocumentRoutes(app, config);
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
        port = info.port;
        base = `http://127.0.0.1:${info.port}`;
        resolve();
      });
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** GET with any Host header (fetch cannot set Host). */
  function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject).end();
    });
  }

  test('GET /openapi.yaml: the action schema as YAML, servers[0] derived from the request', async () => {
    const res = await fetch(`${base}/openapi.yaml`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/yaml; charset=utf-8');
    expect(res.headers.get('x-request-id')).toBe('req_test_documents');
    const doc = parse(await res.text());
    expect(doc.servers).toEqual([{ url: base }]);
    expect(opsOf(doc)).toHaveLength(opsOf(served).length);
  });

  test('behind a TLS proxy that says X-Forwarded-Proto: http the served server is still https', async () => {
    const res = await get('/openapi.yaml', { host: '10.1.2.3:8000', 'x-forwarded-host': 'relay.example.com', 'x-forwarded-proto': 'http' });
    const doc = parse(res.body);
    expect(doc.servers).toEqual([{ url: 'https://relay.example.com' }]);
    expect(lintActionSchema(doc)).toEqual([]);
  });

  test('a hostile Host header never reaches the document', async () => {
    const res = await get('/openapi.json', { host: 'evil.example"}],"x":"' });
    expect([200, 400]).toContain(res.status);
    if (res.status === 200) expect(JSON.parse(res.body).servers[0].url).toMatch(/^http:\/\/localhost/);
  });

  test('GET /openapi.json: the same document as JSON, lint clean for a public host', async () => {
    const res = await get('/openapi.json', { host: 'relay.example.com' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['x-request-id']).toBe('req_test_documents');
    const doc = JSON.parse(res.body);
    expect(doc).toEqual(buildActionSchema(contract, { serverUrl: 'https://relay.example.com' }));
    expect(lintActionSchema(doc)).toEqual([]);
    expect(res.body).not.toContain('x-relay');
  });

  test('GET /openapi.full.yaml and /openapi.full.json: every operation', async () => {
    const readers: [string, (text: string) => OpenApiDocument][] = [
      ['/openapi.full.yaml', (text) => parse(text)],
      ['/openapi.full.json', (text) => JSON.parse(text)],
    ];
    for (const [path, read] of readers) {
      const res = await fetch(base + path);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe('req_test_documents');
      expect(res.headers.get('content-type')).toBe(path.endsWith('yaml') ? 'application/yaml; charset=utf-8' : 'application/json; charset=utf-8');
      const doc = read(await res.text());
      expect(opsOf(doc)).toHaveLength(operations.length + webSocketRoutes.length);
      expect(doc.servers).toEqual([{ url: base }]);
      expect(JSON.stringify(doc)).not.toMatch(/"x-relay"\s*:/);
    }
  });

  test('GET /.well-known/ai-plugin.json', async () => {
    const res = await get('/.well-known/ai-plugin.json', { host: 'relay.example.com' });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('req_test_documents');
    const manifest = JSON.parse(res.body);
    expect(manifest).toMatchObject({
      schema_version: 'v1',
      name_for_human: expect.any(String),
      name_for_model: expect.stringMatching(/^[a-zA-Z0-9_]{1,50}$/),
      description_for_human: expect.any(String),
      description_for_model: expect.any(String),
      auth: { type: 'service_http', authorization_type: 'bearer' },
      api: { type: 'openapi', url: 'https://relay.example.com/openapi.yaml' },
      legal_info_url: 'https://relay.example.com/privacy',
      logo_url: 'https://relay.example.com/logo.svg',
      contact_email: expect.stringMatching(/^[^@\s]+@[^@\s]+\.[a-z]+$/),
    });
    expect(manifest.name_for_human.length).toBeLessThanOrEqual(20);
    expect(manifest.description_for_human.length).toBeLessThanOrEqual(100);
    const logo = await get('/logo.svg');
    expect(logo.status).toBe(200);
    expect(logo.headers['content-type']).toMatch(/^image\/svg\+xml/);
  });

  test('GET /privacy: HTML with the configured text, escaped', async () => {
    const res = await fetch(`${base}/privacy`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('x-request-id')).toBe('req_test_documents');
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('We keep &lt;b&gt;nothing&lt;/b&gt; &amp; &quot;never&quot; look.<br>\nSecond line.');
    expect(html).toContain('<p>Second paragraph &lt;script&gt;alert(1)&lt;/script&gt;</p>');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<b>');
  });

  test('GET /privacy without configured text: what the relay stores', async () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-test-documents-0123456789', RELAY_AUTH: 'off' });
    const app = new OpenAPIHono<RelayEnv>();
    registerDocumentRoutes(app, config);
    const html = await (await app.request('/privacy')).text();
    expect(html).toContain('at most 1 hour');
    expect(html).toMatch(/request logs/);
    expect(html).toMatch(/without the content/);
  });

  test('GET /docs: the API reference from the relay\'s own origin, pointed at openapi.full.json', async () => {
    const res = await fetch(`${base}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('x-request-id')).toBe('req_test_documents');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain('<script src="docs/swagger-ui-bundle.js"></script>');
    expect(html).not.toMatch(/https?:\/\//);
    expect(await (await fetch(`${base}/docs/init.js`)).text()).toContain("url: 'openapi.full.json'");
  });

  test('the script lints a running relay (--url): on loopback only the http server is refused', async () => {
    const { code, stdout } = await run('--url', base);
    expect(code).toBe(1);
    expect(stdout.trim().split('\n')).toEqual([
      `/servers/0/url  server-https: the server must be an absolute https URL (got "${base}")`,
      '/servers/0/url  server-port: the server must use port 443 (got ' + port + ')',
      `2 violations of the GPT Action rules in ${base}/openapi.json`,
    ]);
  });

  test('DOCUMENT_PATHS lists every registered path', async () => {
    for (const path of DOCUMENT_PATHS) expect((await fetch(base + path)).status, path).toBe(200);
  });
});

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
