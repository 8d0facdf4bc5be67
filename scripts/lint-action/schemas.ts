import { collectRefs, escapePointer, isNullSchema, isObj, isObjectSchema, resolvePointer, SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_ONE, type Json } from '../generate/walk.ts';
import { HTTP_METHODS, RELAY_KEY } from '../generate/spec.ts';
import { GPT_ACTION_LIMITS, OPENAI_FILE_ID_REF_FIELDS } from './limits.ts';
import { follow, refPointer, type Add } from './rules.ts';

/** The lint's checks of schemas, `$ref`s and leftover relay metadata, anywhere in a served document. */

const WAIT_FIELD = /(^|_)(wait|timeout)_seconds$/;

/** Calls `visit` with every schema root of the document: component schemas, parameter and media-type schemas. */
export function forEachSchemaRoot(doc: Json, visit: (schema: unknown, at: string) => void): void {
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
export function walkSchema(schema: unknown, at: string, visit: (node: Json, at: string, propertyName?: string) => void, propertyName?: string): void {
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

export function lintSchemaNode(doc: Json, node: Json, at: string, propertyName: string | undefined, add: Add): void {
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
      const target = follow(doc, node) ?? node;
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
  const array = follow(doc, node);
  if (!array || array.type !== 'array') {
    add(at, 'openai-file-id-refs', 'openaiFileIdRefs must be an array (ChatGPT fills it with the files the user gave)');
    return;
  }
  if (typeof array.maxItems === 'number' && array.maxItems > GPT_ACTION_LIMITS.maxFiles) {
    add(`${at}/maxItems`, 'openai-file-id-refs', `ChatGPT sends at most ${GPT_ACTION_LIMITS.maxFiles} files (maxItems ${array.maxItems})`);
  }
  const items = follow(doc, array.items);
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
  const array = follow(doc, node);
  if (!array || array.type !== 'array') {
    add(at, 'openai-file-response', 'openaiFileResponse must be an array of files');
    return;
  }
  if (typeof array.maxItems === 'number' && array.maxItems > GPT_ACTION_LIMITS.maxFiles) {
    add(`${at}/maxItems`, 'openai-file-response', `ChatGPT takes at most ${GPT_ACTION_LIMITS.maxFiles} files (maxItems ${array.maxItems})`);
  }
  const items = follow(doc, array.items);
  if (!items) return;
  if (items.type === 'string') return; // URLs ChatGPT fetches
  const props = isObj(items.properties) ? items.properties : {};
  const missing = ['name', 'mime_type', 'content'].filter((f) => !Object.hasOwn(props, f));
  if (!isObjectSchema(items) || missing.length) {
    add(`${at}/items`, 'openai-file-response', `openaiFileResponse items must be {name, mime_type, content: <base64>} or URL strings (missing ${missing.join(', ')})`);
  }
}

/** Property names at the top level of a body schema (through $ref and allOf). */
export function topLevelProperties(doc: Json, schema: unknown, depth = 0): Set<string> {
  const names = new Set<string>();
  const node = follow(doc, schema);
  if (!node || depth > 10) return names;
  for (const name of Object.keys(isObj(node.properties) ? node.properties : {})) names.add(name);
  for (const sub of Array.isArray(node.allOf) ? node.allOf : []) for (const name of topLevelProperties(doc, sub, depth + 1)) names.add(name);
  return names;
}

/** Whether a property called `name` appears anywhere under `schema` (following $ref, each target once). */
export function containsProperty(doc: Json, schema: unknown, name: string, seen = new Set<unknown>()): boolean {
  const node = follow(doc, schema);
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

export function lintRefs(doc: Json, add: Add): void {
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

export function findRelayMetadata(node: unknown, at: string, parentKey: string, add: Add): void {
  if (Array.isArray(node)) node.forEach((item, i) => findRelayMetadata(item, `${at}/${i}`, '', add));
  else if (isObj(node)) {
    const nameMap = parentKey === 'properties' || parentKey === 'patternProperties';
    for (const [key, value] of Object.entries(node)) {
      if (key === RELAY_KEY && !nameMap) add(`${at}/${RELAY_KEY}`, 'no-x-relay', `${RELAY_KEY} is the relay's private metadata and must not be served`);
      else findRelayMetadata(value, `${at}/${escapePointer(key)}`, nameMap ? '' : key, add);
    }
  }
}
