/**
 * Walking an OpenAPI document: JSON pointers, `$ref` resolution and the keys whose values are data or
 * user-chosen names (never structure). Shared by every emitter of the generator and by the action lint.
 */

export type Json = Record<string, any>;

export function isObj(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 6901 token escaping. */
export function escapePointer(token: string | number): string {
  return String(token).replaceAll('~', '~0').replaceAll('/', '~1');
}

export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((t) => `/${escapePointer(t)}`).join('');
}

/** The node a local `#/...` reference names, or undefined when it names nothing. */
export function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  const body = ref.slice(1);
  if (body === '') return doc;
  if (!body.startsWith('/')) return undefined;
  let node: unknown = doc;
  for (const raw of body.slice(1).split('/')) {
    let token: string;
    try {
      token = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    } catch {
      return undefined;
    }
    if (Array.isArray(node)) node = /^\d+$/.test(token) ? node[Number(token)] : undefined;
    else if (isObj(node)) node = Object.hasOwn(node, token) ? node[token] : undefined;
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/**
 * Follows a chain of local `$ref`s (components.parameters/requestBodies/responses) to the object it names;
 * a reference that does not resolve is reported once in `problems`.
 */
export function deref(doc: Json, node: unknown, problems: string[], where: string): Json | undefined {
  let current = node;
  for (let hops = 0; isObj(current) && typeof current.$ref === 'string'; hops++) {
    const target = resolvePointer(doc, current.$ref);
    if (hops > 10 || target === undefined) {
      problems.push(`${where}: $ref ${current.$ref} does not resolve`);
      return undefined;
    }
    current = target;
  }
  return isObj(current) ? current : undefined;
}

export function isJsonMediaType(mediaType: string): boolean {
  const base = mediaType.split(';')[0].trim().toLowerCase();
  return base === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(base);
}

/** Shortens text to at most `max` characters, at a word boundary when one is near, ending with "…". */
export function trimText(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  if (space > max - 80) cut = cut.slice(0, space);
  return `${cut.trimEnd()}…`;
}

export function isObjectSchema(schema: Json): boolean {
  return schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object'));
}

export function isNullSchema(schema: unknown): boolean {
  if (!isObj(schema)) return false;
  if (schema.type === 'null') return true;
  if (Array.isArray(schema.type) && schema.type.length > 0 && schema.type.every((t: unknown) => t === 'null')) return true;
  return Object.hasOwn(schema, 'const') && schema.const === null;
}

/** Keys whose values are data (never OpenAPI structure): not walked for `$ref` or `x-relay`. */
export const DATA_KEYS = new Set(['example', 'examples', 'default', 'const', 'enum']);
/** Keys whose values are maps from user-chosen names (a property may be called `x-relay` or `$ref`). */
export const NAME_MAPS = new Set([
  'properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'schemas', 'responses', 'parameters',
  'headers', 'securitySchemes', 'requestBodies', 'links', 'callbacks', 'pathItems', 'paths', 'content', 'encoding',
  'mapping', 'variables', 'webhooks',
]);
/** Schema keywords by shape: a map of named subschemas, one subschema, a list of subschemas. */
export const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'] as const;
export const SCHEMA_ONE = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else', 'contentSchema'] as const;
export const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;

/** A copy without any `key` entry (structure only; data values and user-chosen names are left alone). */
export function stripKey<T>(node: T, key: string, parentKey = ''): T {
  if (Array.isArray(node)) return node.map((item) => stripKey(item, key)) as T;
  if (!isObj(node)) return node;
  const out: Json = {};
  const isNameMap = NAME_MAPS.has(parentKey);
  for (const [name, value] of Object.entries(node)) {
    if (name === key && !isNameMap) continue;
    out[name] = DATA_KEYS.has(name) && !isNameMap ? structuredClone(value) : stripKey(value, key, isNameMap ? '' : name);
  }
  return out as T;
}

/** Every `$ref` string under `node` (data values excluded), with the JSON pointer of the `$ref` key. */
export function collectRefs(node: unknown, at: string, into: { ref: string; at: string }[] = [], parentKey = ''): { ref: string; at: string }[] {
  if (Array.isArray(node)) node.forEach((item, i) => collectRefs(item, `${at}/${i}`, into));
  else if (isObj(node)) {
    const isNameMap = NAME_MAPS.has(parentKey);
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && !isNameMap) into.push({ ref: value, at: `${at}/$ref` });
      else if (!DATA_KEYS.has(key) || isNameMap) collectRefs(value, `${at}/${escapePointer(key)}`, into, isNameMap ? '' : key);
    }
  }
  return into;
}

/** Keys of a schema that hold subschemas keyed by user-chosen names (for inlining). */
const INLINE_SCHEMA_MAPS = new Set<string>(SCHEMA_MAPS);

/**
 * Inlines every local `$ref` of a schema (so it stands alone, as an MCP input schema must), drops the
 * `dropKey` metadata, and turns a recursive reference into `#/$defs/<name>` so cycles stay finite.
 */
export class SchemaInliner {
  private readonly doc: Json;
  private readonly problems: string[];
  private readonly where: string;
  private readonly dropKey: string;
  private readonly stack: string[] = [];
  private readonly recursive = new Map<string, string>();
  private readonly defs: Record<string, Json> = {};

  constructor(doc: Json, problems: string[], where: string, dropKey: string) {
    this.doc = doc;
    this.problems = problems;
    this.where = where;
    this.dropKey = dropKey;
  }

  /** A parameter or request body, through any chain of `$ref`s. */
  deref(node: unknown): Json | undefined {
    return deref(this.doc, node, this.problems, this.where);
  }

  resolve(schema: unknown): Json {
    const out = this.walk(schema);
    return isObj(out) ? out : {};
  }

  /** The `$defs` recursive references point to, or undefined when there were none. */
  definitions(): Record<string, Json> | undefined {
    // Resolving one definition may reveal another recursive reference: go until none is left.
    for (let done = 0; done < this.recursive.size; done++) {
      const [ref, name] = [...this.recursive.entries()][done];
      this.stack.push(ref);
      this.defs[name] = this.resolve(resolvePointer(this.doc, ref));
      this.stack.pop();
    }
    return this.recursive.size ? this.defs : undefined;
  }

  private walk(node: unknown): unknown {
    if (Array.isArray(node)) return node.map((item) => this.walk(item));
    if (!isObj(node)) return node;
    if (typeof node.$ref === 'string') return this.follow(node);
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === this.dropKey) continue;
      if (DATA_KEYS.has(key)) out[key] = structuredClone(value);
      else if (INLINE_SCHEMA_MAPS.has(key) && isObj(value)) out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, this.walk(sub)]));
      else out[key] = this.walk(value);
    }
    return out;
  }

  private follow(node: Json): unknown {
    const ref: string = node.$ref;
    const { $ref: _ref, ...siblings } = node;
    const local = this.walk(siblings) as Json;
    if (this.stack.includes(ref)) {
      let name = this.recursive.get(ref);
      if (!name) {
        name = ref.split('/').pop() || 'schema';
        while (Object.hasOwn(this.defs, name) || [...this.recursive.values()].includes(name)) name = `${name}_`;
        this.recursive.set(ref, name);
        this.defs[name] = {};
      }
      return { ...local, $ref: `#/$defs/${name}` };
    }
    const target = resolvePointer(this.doc, ref);
    if (target === undefined) {
      this.problems.push(`${this.where}: $ref ${ref} does not resolve`);
      return local;
    }
    this.stack.push(ref);
    const resolved = this.walk(target);
    this.stack.pop();
    // The referring schema's own words (a description next to the $ref) win over the target's.
    return isObj(resolved) ? { ...resolved, ...local } : resolved;
  }
}
