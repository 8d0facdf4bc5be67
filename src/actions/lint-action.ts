import {
  collectRefs,
  escapePointer,
  GPT_ACTION_LIMITS,
  HTTP_METHODS,
  isJsonMediaType,
  isNullSchema,
  isObj,
  isObjectSchema,
  OPENAI_FILE_ID_REF_FIELDS,
  OPERATION_ID_PATTERN,
  resolvePointer,
} from './action-schema.ts';

/**
 * Checks a served GPT Action schema against every rule of /work/shared/reference/gpt-actions.md.
 * Each violation names its rule and the RFC 6901 pointer of the offending node.
 */

export interface LintViolation {
  pointer: string;
  rule: string;
  message: string;
}

type Json = Record<string, any>;

/** Every rule, by id. */
export const LINT_RULES = {
  'openapi-version': 'openapi is 3.1.0 or 3.1.1 (the importer accepts nothing else)',
  'servers-count': 'exactly one server, and none per path or operation',
  'server-https': 'the server URL is an absolute https URL',
  'server-port': 'the server uses port 443 (or none)',
  'max-operations': `at most ${GPT_ACTION_LIMITS.maxOperations} operations`,
  'operation-id': `every operation has an operationId matching ${OPERATION_ID_PATTERN}`,
  'operation-id-unique': 'operationIds are unique',
  'summary-length': `operation summary at most ${GPT_ACTION_LIMITS.maxOperationText} characters`,
  'description-length': `operation description at most ${GPT_ACTION_LIMITS.maxOperationText} characters`,
  'parameter-description-length': `parameter description at most ${GPT_ACTION_LIMITS.maxParameterDescription} characters`,
  'property-description-length': `property description at most ${GPT_ACTION_LIMITS.maxParameterDescription} characters`,
  'no-header-parameters': 'no header parameters (ChatGPT ignores them)',
  'no-cookie-parameters': 'no cookie parameters (ChatGPT keeps no cookies)',
  'no-ref-parameters': 'parameters written inline, not by $ref (the operation is dropped)',
  'no-head-method': 'no HEAD operations',
  'no-circular-ref': 'no circular $ref',
  'ref-resolves': 'every $ref is local and resolves',
  'components-schemas-present': 'components.schemas is present',
  'object-properties': 'every object schema has properties (properties: {} when free-form)',
  'no-nullable-union': 'no 3.1 nullable unions (anyOf/oneOf with {type: null}, type: [x, "null"])',
  'single-security-scheme': 'exactly one security scheme',
  'security-scheme-type': 'the scheme is one ChatGPT offers: HTTP bearer/basic, an API key header, or OAuth2',
  'consequential-flag': 'x-openai-isConsequential present and boolean on every operation',
  'json-request-body': 'request bodies are JSON (no multipart or other media types)',
  'json-response': 'answers are JSON (no binary or other media types)',
  'no-sse-response': 'no event-stream answers',
  'openai-file-id-refs': `openaiFileIdRefs is an array (at most ${GPT_ACTION_LIMITS.maxFiles}) of {${OPENAI_FILE_ID_REF_FIELDS.join(', ')}} in a POST JSON body`,
  'openai-file-response': `openaiFileResponse is an array (at most ${GPT_ACTION_LIMITS.maxFiles}) of {name, mime_type, content} or URLs, in an answer`,
  'max-characters': `no string may be longer than ${GPT_ACTION_LIMITS.maxCharacters} characters (maxLength), the limit of a request or answer`,
  'wait-within-45s': `a wait/timeout _seconds field has a maximum of at most ${GPT_ACTION_LIMITS.maxWaitSeconds} (the round trip is ${GPT_ACTION_LIMITS.roundTripSeconds} s)`,
  'no-x-relay': 'no x-relay metadata in a served document',
} as const;

export type LintRule = keyof typeof LINT_RULES;

const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SCHEMA_ONE = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else', 'contentSchema'];
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const WAIT_FIELD = /(^|_)(wait|timeout)_seconds$/;

export function lintActionSchema(doc: unknown): LintViolation[] {
  const out: LintViolation[] = [];
  const add = (at: string, rule: LintRule, message: string) => out.push({ pointer: at, rule, message });
  if (!isObj(doc)) {
    add('', 'openapi-version', 'the document is not a JSON/YAML object');
    return out;
  }

  // ------------------------------------------------------------ document
  if (!GPT_ACTION_LIMITS.openapiVersions.includes(doc.openapi)) {
    add('/openapi', 'openapi-version', `openapi must be "3.1.0" or "3.1.1" (got ${JSON.stringify(doc.openapi)})`);
  }
  lintServers(doc, add);

  const schemas = doc.components?.schemas;
  if (!isObj(schemas)) {
    add(isObj(doc.components) ? '/components/schemas' : '/components', 'components-schemas-present', 'components.schemas is missing (the builder needs it, even empty)');
  }
  const schemes = doc.components?.securitySchemes;
  const schemeNames = isObj(schemes) ? Object.keys(schemes) : [];
  if (schemeNames.length !== 1) {
    add(
      isObj(schemes) ? '/components/securitySchemes' : isObj(doc.components) ? '/components/securitySchemes' : '/components',
      'single-security-scheme',
      `exactly one security scheme is supported (found ${schemeNames.length})`,
    );
  }
  for (const name of schemeNames) {
    const scheme = deref(doc, schemes[name]);
    const ok =
      isObj(scheme) &&
      ((scheme.type === 'http' && ['bearer', 'basic'].includes(String(scheme.scheme).toLowerCase())) ||
        (scheme.type === 'apiKey' && scheme.in === 'header') ||
        scheme.type === 'oauth2');
    if (!ok) {
      add(`/components/securitySchemes/${escapePointer(name)}`, 'security-scheme-type', 'ChatGPT sends only an HTTP bearer/basic key, one custom header, or an OAuth2 token');
    }
  }

  // ------------------------------------------------------------ operations
  const ids = new Map<string, string>();
  let operations = 0;
  for (const [path, rawItem] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    const itemAt = `/paths/${escapePointer(path)}`;
    const item = deref(doc, rawItem);
    if (!isObj(item)) continue;
    if (item.servers !== undefined) add(`${itemAt}/servers`, 'servers-count', 'servers per path are not supported: use the one top-level server');
    lintParameters(item.parameters, `${itemAt}/parameters`, add);
    for (const method of Object.keys(item)) {
      if (!(HTTP_METHODS as readonly string[]).includes(method)) continue;
      const op = item[method];
      const opAt = `${itemAt}/${method}`;
      if (!isObj(op)) continue;
      operations++;
      if (method === 'head') add(opAt, 'no-head-method', 'HEAD operations break the import');
      if (op.operationId === undefined) {
        add(opAt, 'operation-id', 'operationId is missing: the operation would be skipped');
      } else if (typeof op.operationId !== 'string' || !OPERATION_ID_PATTERN.test(op.operationId)) {
        add(`${opAt}/operationId`, 'operation-id', `operationId ${JSON.stringify(op.operationId)} must match ${OPERATION_ID_PATTERN}`);
      } else if (ids.has(op.operationId)) {
        add(`${opAt}/operationId`, 'operation-id-unique', `operationId ${op.operationId} is also used at ${ids.get(op.operationId)}`);
      } else ids.set(op.operationId, opAt);
      for (const [key, rule] of [['summary', 'summary-length'], ['description', 'description-length']] as const) {
        if (typeof op[key] === 'string' && op[key].length > GPT_ACTION_LIMITS.maxOperationText) {
          add(`${opAt}/${key}`, rule, `${key} has ${op[key].length} characters; at most ${GPT_ACTION_LIMITS.maxOperationText}`);
        }
      }
      if (typeof op['x-openai-isConsequential'] !== 'boolean') {
        add(
          op['x-openai-isConsequential'] === undefined ? opAt : `${opAt}/x-openai-isConsequential`,
          'consequential-flag',
          'x-openai-isConsequential must be true or false, on purpose (absent means true for every method but GET)',
        );
      }
      if (op.servers !== undefined) add(`${opAt}/servers`, 'servers-count', 'servers per operation are not supported: use the one top-level server');
      lintParameters(op.parameters, `${opAt}/parameters`, add);

      if (op.requestBody !== undefined) {
        const body = deref(doc, op.requestBody);
        const bodyAt = isObj(op.requestBody) && typeof op.requestBody.$ref === 'string' ? refPointer(op.requestBody.$ref) : `${opAt}/requestBody`;
        for (const [mediaType, media] of Object.entries(isObj(body?.content) ? body.content : {})) {
          const mediaAt = `${bodyAt}/content/${escapePointer(mediaType)}`;
          if (!isJsonMediaType(mediaType)) {
            add(
              mediaAt,
              'json-request-body',
              mediaType.toLowerCase().startsWith('multipart/')
                ? `a ${mediaType} body cannot be sent by an action: take files as openaiFileIdRefs in a JSON body`
                : `a ${mediaType} body cannot be sent by an action: actions send JSON`,
            );
          } else if (isObj(media) && topLevelProperties(doc, media.schema).has('openaiFileIdRefs') && method !== 'post') {
            add(`${mediaAt}/schema`, 'openai-file-id-refs', `openaiFileIdRefs is only filled in the JSON body of a POST operation (this is ${method.toUpperCase()})`);
          }
        }
      }
      for (const [status, rawResponse] of Object.entries(isObj(op.responses) ? op.responses : {})) {
        const response = deref(doc, rawResponse);
        const responseAt = isObj(rawResponse) && typeof rawResponse.$ref === 'string' ? refPointer(rawResponse.$ref) : `${opAt}/responses/${escapePointer(status)}`;
        for (const [mediaType, media] of Object.entries(isObj(response?.content) ? response.content : {})) {
          const mediaAt = `${responseAt}/content/${escapePointer(mediaType)}`;
          const base = mediaType.split(';')[0].trim().toLowerCase();
          if (base === 'text/event-stream') add(mediaAt, 'no-sse-response', 'an action cannot read a stream of server-sent events: answer JSON');
          else if (!isJsonMediaType(mediaType)) add(mediaAt, 'json-response', `a ${mediaType} answer is not usable by the model: answer JSON (files as links or openaiFileResponse)`);
          else if (isObj(media) && containsProperty(doc, media.schema, 'openaiFileIdRefs')) {
            add(`${mediaAt}/schema`, 'openai-file-id-refs', 'openaiFileIdRefs belongs in a POST request body, never in an answer');
          }
        }
      }
    }
  }
  if (operations > GPT_ACTION_LIMITS.maxOperations) {
    add('/paths', 'max-operations', `${operations} operations; a GPT Action schema may have at most ${GPT_ACTION_LIMITS.maxOperations}`);
  }

  // ------------------------------------------------------------ schemas, refs, metadata
  forEachSchemaRoot(doc, (schema, at) => walkSchema(schema, at, (node, nodeAt, name) => lintSchemaNode(doc, node, nodeAt, name, add)));
  lintRefs(doc, add);
  findRelayMetadata(doc, '', '', add);
  return out;
}

// ---------------------------------------------------------------- pieces

type Add = (at: string, rule: LintRule, message: string) => void;

function refPointer(ref: string): string {
  return ref.startsWith('#') ? ref.slice(1) : ref;
}

function deref(doc: Json, node: unknown): Json | undefined {
  let current = node;
  for (let hops = 0; isObj(current) && typeof current.$ref === 'string' && hops < 20; hops++) {
    current = resolvePointer(doc, current.$ref);
  }
  return isObj(current) && typeof current.$ref !== 'string' ? current : undefined;
}

function lintServers(doc: Json, add: Add): void {
  const servers = doc.servers;
  if (!Array.isArray(servers) || servers.length !== 1) {
    add('/servers', 'servers-count', `exactly one server is required (found ${Array.isArray(servers) ? servers.length : 'none'})`);
  }
  if (!Array.isArray(servers) || servers.length === 0) return;
  const raw = servers[0]?.url;
  let url: URL | undefined;
  try {
    url = new URL(String(raw));
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'https:' || typeof raw !== 'string' || /[{}]/.test(raw)) {
    add('/servers/0/url', 'server-https', `the server must be an absolute https URL (got ${JSON.stringify(raw)})`);
  }
  if (url && url.port !== '' && !(url.protocol === 'https:' && url.port === '443')) {
    add('/servers/0/url', 'server-port', `the server must use port 443 (got ${url.port})`);
  }
}

function lintParameters(params: unknown, at: string, add: Add): void {
  if (!Array.isArray(params)) return;
  params.forEach((param, i) => {
    const paramAt = `${at}/${i}`;
    if (isObj(param) && typeof param.$ref === 'string') {
      add(paramAt, 'no-ref-parameters', `parameter given by $ref (${param.$ref}): the builder drops the operation; write it inline`);
      return;
    }
    if (!isObj(param)) return;
    if (param.in === 'header') add(`${paramAt}/in`, 'no-header-parameters', `header parameter ${JSON.stringify(param.name)} is ignored by ChatGPT`);
    if (param.in === 'cookie') add(`${paramAt}/in`, 'no-cookie-parameters', `cookie parameter ${JSON.stringify(param.name)}: ChatGPT keeps no cookies`);
    if (typeof param.description === 'string' && param.description.length > GPT_ACTION_LIMITS.maxParameterDescription) {
      add(
        `${paramAt}/description`,
        'parameter-description-length',
        `description has ${param.description.length} characters; at most ${GPT_ACTION_LIMITS.maxParameterDescription}`,
      );
    }
  });
}

/** Calls `visit` with every schema root of the document: component schemas, parameter and media-type schemas. */
function forEachSchemaRoot(doc: Json, visit: (schema: unknown, at: string) => void): void {
  const components = isObj(doc.components) ? doc.components : {};
  for (const [name, schema] of Object.entries(isObj(components.schemas) ? components.schemas : {})) {
    visit(schema, `/components/schemas/${escapePointer(name)}`);
  }
  const params = (list: unknown, at: string) => {
    if (!Array.isArray(list)) return;
    list.forEach((p, i) => {
      if (isObj(p) && p.schema !== undefined) visit(p.schema, `${at}/${i}/schema`);
      if (isObj(p)) content(p.content, `${at}/${i}/content`);
    });
  };
  const content = (map: unknown, at: string) => {
    for (const [mediaType, media] of Object.entries(isObj(map) ? map : {})) {
      if (isObj(media) && media.schema !== undefined) visit(media.schema, `${at}/${escapePointer(mediaType)}/schema`);
    }
  };
  const responses = (map: unknown, at: string) => {
    for (const [status, response] of Object.entries(isObj(map) ? map : {})) {
      if (!isObj(response)) continue;
      content(response.content, `${at}/${escapePointer(status)}/content`);
      for (const [name, header] of Object.entries(isObj(response.headers) ? response.headers : {})) {
        if (isObj(header) && header.schema !== undefined) visit(header.schema, `${at}/${escapePointer(status)}/headers/${escapePointer(name)}/schema`);
      }
    }
  };
  for (const [path, item] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    if (!isObj(item)) continue;
    const itemAt = `/paths/${escapePointer(path)}`;
    params(item.parameters, `${itemAt}/parameters`);
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      params(op.parameters, `${itemAt}/${method}/parameters`);
      if (isObj(op.requestBody)) content(op.requestBody.content, `${itemAt}/${method}/requestBody/content`);
      responses(op.responses, `${itemAt}/${method}/responses`);
    }
  }
  for (const [name, p] of Object.entries(isObj(components.parameters) ? components.parameters : {})) {
    if (isObj(p) && p.schema !== undefined) visit(p.schema, `/components/parameters/${escapePointer(name)}/schema`);
  }
  for (const [name, body] of Object.entries(isObj(components.requestBodies) ? components.requestBodies : {})) {
    if (isObj(body)) content(body.content, `/components/requestBodies/${escapePointer(name)}/content`);
  }
  responses(components.responses, '/components/responses');
}

/** Visits every schema node under `schema` (not following $ref) with its pointer and, for properties, its name. */
function walkSchema(schema: unknown, at: string, visit: (node: Json, at: string, propertyName?: string) => void, propertyName?: string): void {
  if (!isObj(schema)) return;
  visit(schema, at, propertyName);
  for (const key of SCHEMA_MAPS) {
    if (!isObj(schema[key])) continue;
    for (const [name, sub] of Object.entries(schema[key])) {
      walkSchema(sub, `${at}/${key}/${escapePointer(name)}`, visit, key === 'properties' ? name : undefined);
    }
  }
  for (const key of SCHEMA_ONE) {
    if (isObj(schema[key])) walkSchema(schema[key], `${at}/${key}`, visit);
  }
  for (const key of [...SCHEMA_LISTS, 'items']) {
    if (Array.isArray(schema[key])) schema[key].forEach((sub: unknown, i: number) => walkSchema(sub, `${at}/${key}/${i}`, visit));
  }
}

function lintSchemaNode(doc: Json, node: Json, at: string, propertyName: string | undefined, add: Add): void {
  if (isObjectSchema(node) && !isObj(node.properties)) {
    add(at, 'object-properties', 'object schema missing properties: add properties: {} (with additionalProperties when free-form)');
  }
  for (const key of ['anyOf', 'oneOf']) {
    if (!Array.isArray(node[key])) continue;
    node[key].forEach((branch: unknown, i: number) => {
      if (isNullSchema(branch)) add(`${at}/${key}/${i}`, 'no-nullable-union', `${key} with a null branch can fail the action with misleading errors: leave the field optional instead`);
    });
  }
  if (Array.isArray(node.type) && node.type.includes('null') && node.type.length > 1) {
    add(`${at}/type`, 'no-nullable-union', `type ${JSON.stringify(node.type)} is a nullable union: leave the field optional instead`);
  }
  if (typeof node.maxLength === 'number' && node.maxLength > GPT_ACTION_LIMITS.maxCharacters) {
    add(`${at}/maxLength`, 'max-characters', `maxLength ${node.maxLength} exceeds the ${GPT_ACTION_LIMITS.maxCharacters}-character limit of an action request or answer`);
  }
  if (propertyName !== undefined) {
    if (typeof node.description === 'string' && node.description.length > GPT_ACTION_LIMITS.maxParameterDescription) {
      add(`${at}/description`, 'property-description-length', `description has ${node.description.length} characters; at most ${GPT_ACTION_LIMITS.maxParameterDescription}`);
    }
    if (WAIT_FIELD.test(propertyName)) {
      const target = deref(doc, node) ?? node;
      if (['integer', 'number'].includes(target.type) && !(typeof target.maximum === 'number' && target.maximum <= GPT_ACTION_LIMITS.maxWaitSeconds)) {
        add(
          at,
          'wait-within-45s',
          `${propertyName} needs a maximum of at most ${GPT_ACTION_LIMITS.maxWaitSeconds}: ChatGPT gives up after ${GPT_ACTION_LIMITS.roundTripSeconds} s (got ${JSON.stringify(target.maximum)})`,
        );
      }
    }
    if (propertyName === 'openaiFileIdRefs') lintFileIdRefs(doc, node, at, add);
    if (propertyName === 'openaiFileResponse') lintFileResponse(doc, node, at, add);
  }
}

function lintFileIdRefs(doc: Json, node: Json, at: string, add: Add): void {
  const array = deref(doc, node);
  if (!array || array.type !== 'array') {
    add(at, 'openai-file-id-refs', 'openaiFileIdRefs must be an array (ChatGPT fills it with the files the user gave)');
    return;
  }
  if (typeof array.maxItems === 'number' && array.maxItems > GPT_ACTION_LIMITS.maxFiles) {
    add(`${at}/maxItems`, 'openai-file-id-refs', `ChatGPT sends at most ${GPT_ACTION_LIMITS.maxFiles} files (maxItems ${array.maxItems})`);
  }
  const items = deref(doc, array.items);
  const props = isObj(items?.properties) ? items.properties : undefined;
  const missing = OPENAI_FILE_ID_REF_FIELDS.filter((f) => !props || !Object.hasOwn(props, f));
  if (!items || !isObjectSchema(items) || missing.length) {
    add(
      `${at}/items`,
      'openai-file-id-refs',
      `openaiFileIdRefs items must be objects with ${OPENAI_FILE_ID_REF_FIELDS.join(', ')}${missing.length ? ` (missing ${missing.join(', ')})` : ''}`,
    );
  }
}

function lintFileResponse(doc: Json, node: Json, at: string, add: Add): void {
  const array = deref(doc, node);
  if (!array || array.type !== 'array') {
    add(at, 'openai-file-response', 'openaiFileResponse must be an array of files');
    return;
  }
  if (typeof array.maxItems === 'number' && array.maxItems > GPT_ACTION_LIMITS.maxFiles) {
    add(`${at}/maxItems`, 'openai-file-response', `ChatGPT takes at most ${GPT_ACTION_LIMITS.maxFiles} files (maxItems ${array.maxItems})`);
  }
  const items = deref(doc, array.items);
  if (!items) return;
  if (items.type === 'string') return; // URLs ChatGPT fetches
  const props = isObj(items.properties) ? items.properties : {};
  const missing = ['name', 'mime_type', 'content'].filter((f) => !Object.hasOwn(props, f));
  if (!isObjectSchema(items) || missing.length) {
    add(`${at}/items`, 'openai-file-response', `openaiFileResponse items must be {name, mime_type, content: <base64>} or URL strings (missing ${missing.join(', ')})`);
  }
}

/** Property names at the top level of a body schema (through $ref and allOf). */
function topLevelProperties(doc: Json, schema: unknown, depth = 0): Set<string> {
  const names = new Set<string>();
  const node = deref(doc, schema);
  if (!node || depth > 10) return names;
  for (const name of Object.keys(isObj(node.properties) ? node.properties : {})) names.add(name);
  for (const sub of Array.isArray(node.allOf) ? node.allOf : []) for (const name of topLevelProperties(doc, sub, depth + 1)) names.add(name);
  return names;
}

/** Whether a property called `name` appears anywhere under `schema` (following $ref, each target once). */
function containsProperty(doc: Json, schema: unknown, name: string, seen = new Set<unknown>()): boolean {
  const node = deref(doc, schema);
  if (!node || seen.has(node)) return false;
  seen.add(node);
  let found = false;
  walkSchema(node, '', (sub, _at, propertyName) => {
    if (found) return;
    if (propertyName === name) found = true;
    else if (sub !== node && typeof sub.$ref === 'string' && containsProperty(doc, sub, name, seen)) found = true;
  });
  return found;
}

function lintRefs(doc: Json, add: Add): void {
  const refs = collectRefs(doc, '');
  // Graph of ref targets: a target's own refs are its edges.
  const edges = new Map<string, { ref: string; at: string }[]>();
  for (const { ref, at } of refs) {
    if (!ref.startsWith('#')) {
      add(at, 'ref-resolves', `external $ref ${ref} is not followed: keep every schema in this document`);
    } else if (resolvePointer(doc, ref) === undefined) {
      add(at, 'ref-resolves', `$ref ${ref} does not resolve`);
    }
  }
  const targetOf = (ref: string) => (ref.startsWith('#') && resolvePointer(doc, ref) !== undefined ? refPointer(ref) : undefined);
  const edgesOf = (target: string) => {
    let list = edges.get(target);
    if (!list) {
      list = collectRefs(resolvePointer(doc, `#${target}`), target).filter(({ ref }) => targetOf(ref) !== undefined);
      edges.set(target, list);
    }
    return list;
  };
  const state = new Map<string, 'visiting' | 'done'>();
  const reported = new Set<string>();
  const visit = (target: string, trail: string[]) => {
    state.set(target, 'visiting');
    for (const { ref, at } of edgesOf(target)) {
      const next = targetOf(ref) as string;
      const seen = state.get(next);
      if (seen === 'visiting') {
        const path = [...trail, target];
        const cycle = [...path.slice(path.indexOf(next)), next];
        const key = [...new Set(cycle)].sort().join('|');
        if (!reported.has(key)) {
          reported.add(key);
          add(at, 'no-circular-ref', `circular $ref: ${cycle.map((t) => t.split('/').pop()).join(' → ')}`);
        }
      } else if (seen === undefined) visit(next, [...trail, target]);
    }
    state.set(target, 'done');
  };
  for (const { ref } of refs) {
    const target = targetOf(ref);
    if (target !== undefined && !state.has(target)) visit(target, []);
  }
}

function findRelayMetadata(node: unknown, at: string, parentKey: string, add: Add): void {
  if (Array.isArray(node)) node.forEach((item, i) => findRelayMetadata(item, `${at}/${i}`, '', add));
  else if (isObj(node)) {
    const nameMap = parentKey === 'properties' || parentKey === 'patternProperties';
    for (const [key, value] of Object.entries(node)) {
      if (key === 'x-relay' && !nameMap) add(`${at}/x-relay`, 'no-x-relay', 'x-relay is the relay\'s private metadata and must not be served');
      else findRelayMetadata(value, `${at}/${escapePointer(key)}`, nameMap ? '' : key, add);
    }
  }
}
