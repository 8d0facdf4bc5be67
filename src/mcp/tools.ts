import { HTTP_METHODS, isJsonMediaType, isObj, isObjectSchema, OPERATION_ID_PATTERN, resolvePointer } from '../actions/action-schema.ts';

/**
 * The MCP tools, generated from schemas/openapi.yaml at start-up: every operation marked `x-relay.action`
 * (the GPT Action surface) becomes one tool of the same name. Its description, input schema and
 * annotations all come from the spec, so adding, removing or re-marking an action changes the MCP
 * surface and the GPT Action schema together, with no list written by hand.
 *
 * Pure: `buildTools`/`buildToolList` read the contract and return new objects (they never mutate it).
 */

type Json = Record<string, any>;

/** The wire shape of one entry of `tools/list`. */
export interface McpTool {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: 'object'; properties: Record<string, Json>; required?: string[]; additionalProperties?: boolean; $defs?: Record<string, Json> };
  annotations: {
    title: string;
    readOnlyHint: boolean;
    destructiveHint: boolean;
    idempotentHint: boolean;
    openWorldHint: boolean;
  };
}

/** Where a tool's arguments go when it is called: path parameters, query parameters, or the JSON body. */
export interface ToolLayout {
  operationId: string;
  method: string;
  path: string;
  pathParams: string[];
  queryParams: string[];
  /** `properties`: the body's properties are top-level arguments; `wrapped`: the body is the `body` argument. */
  body: 'none' | 'properties' | 'wrapped';
  bodyRequired: boolean;
}

export interface ToolEntry {
  tool: McpTool;
  layout: ToolLayout;
}

/** The part of the generated route table the tool list is checked against. */
export interface RouteTableEntry {
  readonly operationId: string;
  readonly method: string;
  readonly path: string;
}

/** MCP tool names: 1 to 128 of letters, digits, `_`, `-`, `.` (the spec's operationIds are already narrower). */
const TOOL_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

export class McpToolError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`schemas/openapi.yaml cannot make the MCP tool list:\n  - ${problems.join('\n  - ')}`);
    this.name = 'McpToolError';
    this.problems = problems;
  }
}

/** The tools as `tools/list` serves them. */
export function buildToolList(contract: object, operations: readonly RouteTableEntry[]): McpTool[] {
  return buildTools(contract, operations).map((entry) => entry.tool);
}

/**
 * One entry per action operation of `contract`, in document order. `operations` is the route table the
 * server dispatches on: every tool must name one of its operations (same method and path), so a stale
 * generated table fails here, at start-up, instead of on a call.
 */
export function buildTools(contract: object, operations: readonly RouteTableEntry[]): ToolEntry[] {
  const doc = contract as Json;
  const problems: string[] = [];
  const entries: ToolEntry[] = [];
  const routeTable = new Map(operations.map((op) => [op.operationId, op]));

  for (const [path, item] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    if (!isObj(item)) continue;
    for (const [method, op] of Object.entries(item)) {
      if (!(HTTP_METHODS as readonly string[]).includes(method) || !isObj(op)) continue;
      const where = `${method.toUpperCase()} ${path}`;
      const mark = actionMark(op);
      if (mark === null) continue;
      if (typeof mark === 'string') {
        problems.push(`${where}: ${mark}`);
        continue;
      }
      const name = op.operationId;
      if (typeof name !== 'string' || !OPERATION_ID_PATTERN.test(name) || !TOOL_NAME_PATTERN.test(name)) {
        problems.push(`${where}: operationId ${JSON.stringify(name)} cannot be a tool name (${OPERATION_ID_PATTERN})`);
        continue;
      }
      const route = routeTable.get(name);
      if (!route) {
        problems.push(`${where}: the route table has no operation ${name} (run npm run generate)`);
      } else if (route.method !== method || route.path !== path) {
        problems.push(`${where}: the route table has ${name} at ${route.method.toUpperCase()} ${route.path} (run npm run generate)`);
      }
      const built = buildEntry(doc, path, method, item, op, mark.consequential, problems, where);
      if (built) entries.push(built);
    }
  }
  const names = entries.map((e) => e.tool.name);
  for (const [i, name] of names.entries()) if (names.indexOf(name) !== i) problems.push(`two action operations are called ${name}`);
  if (problems.length) throw new McpToolError(problems);
  return entries;
}

// ---------------------------------------------------------------- one tool

/** `{consequential}` for an action operation, null for any other, a string when the mark is malformed. */
function actionMark(op: Json): { consequential: boolean } | null | string {
  const relay = op['x-relay'];
  if (!isObj(relay) || relay.action === undefined || relay.action === null) return null;
  if (!isObj(relay.action) || typeof relay.action.consequential !== 'boolean') return 'x-relay.action must be {consequential: true|false}';
  return { consequential: relay.action.consequential };
}

function buildEntry(doc: Json, path: string, method: string, item: Json, op: Json, consequential: boolean, problems: string[], where: string): ToolEntry | undefined {
  const summary = typeof op.summary === 'string' ? op.summary.trim() : '';
  const description = typeof op.description === 'string' && op.description.trim() ? op.description.trim() : summary;
  const schemas = new SchemaResolver(doc, problems, where);
  const properties: Record<string, Json> = {};
  const required: string[] = [];
  const layout: ToolLayout = { operationId: op.operationId, method, path, pathParams: [], queryParams: [], body: 'none', bodyRequired: false };
  const claim = (name: string, from: string) => {
    if (Object.hasOwn(properties, name)) {
      problems.push(`${where}: argument ${name} (${from}) is also a parameter of another kind; MCP arguments are one flat object`);
      return false;
    }
    return true;
  };

  // Path-item parameters first, the operation's own override them (same name and location).
  const params = new Map<string, Json>();
  for (const list of [item.parameters, op.parameters]) {
    for (const raw of Array.isArray(list) ? list : []) {
      const param = schemas.deref(raw);
      if (!param || typeof param.name !== 'string') continue;
      params.set(`${param.in}:${param.name}`, param);
    }
  }
  for (const param of params.values()) {
    if (param.in !== 'path' && param.in !== 'query') continue; // headers and cookies: MCP clients send none
    if (!claim(param.name, `${param.in} parameter`)) continue;
    const schema = schemas.resolve(param.schema ?? { type: 'string' });
    const description = typeof param.description === 'string' ? param.description : undefined;
    properties[param.name] = description ? { ...schema, description } : schema;
    if (param.in === 'path') {
      layout.pathParams.push(param.name);
      required.push(param.name);
    } else {
      layout.queryParams.push(param.name);
      if (param.required === true) required.push(param.name);
    }
  }

  let closed = layout.body === 'none';
  const requestBody = op.requestBody === undefined ? undefined : schemas.deref(op.requestBody);
  if (requestBody) {
    const content = isObj(requestBody.content) ? requestBody.content : {};
    const mediaType = Object.keys(content).find(isJsonMediaType);
    if (!mediaType) {
      problems.push(`${where}: an action operation takes a JSON body (has ${Object.keys(content).join(', ') || 'none'})`);
      return undefined;
    }
    const bodyRequired = requestBody.required === true;
    const body = schemas.resolve(content[mediaType]?.schema ?? { type: 'object', properties: {} });
    layout.bodyRequired = bodyRequired;
    const plainObject = isObj(body) && isObjectSchema(body) && isObj(body.properties) && !['allOf', 'anyOf', 'oneOf', '$ref'].some((k) => k in body);
    if (plainObject) {
      layout.body = 'properties';
      for (const [name, schema] of Object.entries(body.properties as Json)) if (claim(name, 'body property')) properties[name] = schema;
      if (bodyRequired && Array.isArray(body.required)) required.push(...body.required.filter((r: unknown) => typeof r === 'string'));
      closed = body.additionalProperties === false;
    } else {
      layout.body = 'wrapped';
      if (claim('body', 'the request body')) properties.body = body;
      if (bodyRequired) required.push('body');
      closed = true;
    }
  }

  const inputSchema: McpTool['inputSchema'] = { type: 'object', properties };
  if (required.length) inputSchema.required = [...new Set(required)];
  // Only when every accepted argument is listed: the relay refuses any other.
  if (closed) inputSchema.additionalProperties = false;
  const defs = schemas.definitions();
  if (defs) inputSchema.$defs = defs;

  const readOnly = method === 'get';
  return {
    tool: {
      name: op.operationId,
      title: summary,
      description,
      inputSchema,
      annotations: {
        title: summary,
        readOnlyHint: readOnly,
        destructiveHint: !readOnly && consequential,
        idempotentHint: readOnly,
        openWorldHint: true,
      },
    },
    layout,
  };
}

// ---------------------------------------------------------------- $ref resolution

/** Keys whose values are data, copied as they are. */
const DATA_KEYS = new Set(['example', 'examples', 'default', 'const', 'enum']);
/** Keys whose values map user-chosen names to schemas (a property may be called `x-relay` or `$ref`). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);

/**
 * Inlines every local `$ref` of a schema (so a tool's input schema stands alone), drops `x-relay`, and
 * turns a recursive reference into `#/$defs/<name>` so cycles stay finite.
 */
class SchemaResolver {
  private readonly doc: Json;
  private readonly problems: string[];
  private readonly where: string;
  private readonly stack: string[] = [];
  private readonly recursive = new Map<string, string>();
  private readonly defs: Record<string, Json> = {};

  constructor(doc: Json, problems: string[], where: string) {
    this.doc = doc;
    this.problems = problems;
    this.where = where;
  }

  /** A parameter or request body, through any chain of `$ref`s. */
  deref(node: unknown): Json | undefined {
    let current = node;
    for (let hops = 0; isObj(current) && typeof current.$ref === 'string'; hops++) {
      const target = resolvePointer(this.doc, current.$ref);
      if (hops > 10 || target === undefined) {
        this.problems.push(`${this.where}: $ref ${current.$ref} does not resolve`);
        return undefined;
      }
      current = target;
    }
    return isObj(current) ? current : undefined;
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
      if (key === 'x-relay') continue;
      if (DATA_KEYS.has(key)) out[key] = structuredClone(value);
      else if (SCHEMA_MAPS.has(key) && isObj(value)) out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, this.walk(sub)]));
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
