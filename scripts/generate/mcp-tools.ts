import { OPERATION_ID_PATTERN } from '../lint-action/limits.ts';
import { HEADER } from './header.ts';
import { actionMark, HTTP_METHODS, RELAY_KEY } from './spec.ts';
import { isJsonMediaType, isObj, isObjectSchema, SchemaInliner, type Json } from './walk.ts';

/**
 * generated/mcp-tools.ts: every operation marked `x-relay.action` (the GPT Action surface) becomes one MCP
 * tool of the same name. Its description, input schema and annotations all come from the spec, so adding,
 * removing or re-marking an action changes the MCP surface and the GPT Action schema together. Each tool
 * comes with its layout: where its flat arguments go (path, query, body) when it is called.
 */

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

/** One entry per action operation of `spec`, in document order. Throws McpToolError listing every problem. */
export function buildTools(spec: Json): ToolEntry[] {
  const problems: string[] = [];
  const entries: ToolEntry[] = [];
  for (const [path, item] of Object.entries(isObj(spec.paths) ? spec.paths : {})) {
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
      const built = buildEntry(spec, path, method, item, op, mark.consequential, problems, where);
      if (built) entries.push(built);
    }
  }
  const names = entries.map((e) => e.tool.name);
  for (const [i, name] of names.entries()) if (names.indexOf(name) !== i) problems.push(`two action operations are called ${name}`);
  if (problems.length) throw new McpToolError(problems);
  return entries;
}

function buildEntry(spec: Json, path: string, method: string, item: Json, op: Json, consequential: boolean, problems: string[], where: string): ToolEntry | undefined {
  const summary = typeof op.summary === 'string' ? op.summary.trim() : '';
  const description = typeof op.description === 'string' && op.description.trim() ? op.description.trim() : summary;
  const schemas = new SchemaInliner(spec, problems, where, RELAY_KEY);
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
    const paramDescription = typeof param.description === 'string' ? param.description : undefined;
    properties[param.name] = paramDescription ? { ...schema, description: paramDescription } : schema;
    if (param.in === 'path') {
      layout.pathParams.push(param.name);
      required.push(param.name);
    } else {
      layout.queryParams.push(param.name);
      if (param.required === true) required.push(param.name);
    }
  }

  let closed = true;
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

export function emitMcpTools(entries: ToolEntry[]): string {
  return `${HEADER}
type Json = Record<string, unknown>;

/** The wire shape of one entry of MCP \`tools/list\`. */
export interface McpTool {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: { readonly type: 'object'; readonly properties: Record<string, Json>; readonly required?: readonly string[]; readonly additionalProperties?: boolean; readonly $defs?: Record<string, Json> };
  readonly annotations: {
    readonly title: string;
    readonly readOnlyHint: boolean;
    readonly destructiveHint: boolean;
    readonly idempotentHint: boolean;
    readonly openWorldHint: boolean;
  };
}

/** Where a tool's flat arguments go when it is called: path parameters, query parameters, or the JSON body. */
export interface ToolLayout {
  readonly operationId: string;
  readonly method: string;
  readonly path: string;
  readonly pathParams: readonly string[];
  readonly queryParams: readonly string[];
  /** \`properties\`: the body's properties are top-level arguments; \`wrapped\`: the body is the \`body\` argument. */
  readonly body: 'none' | 'properties' | 'wrapped';
  readonly bodyRequired: boolean;
}

export interface McpToolEntry {
  readonly tool: McpTool;
  readonly layout: ToolLayout;
}

/** One tool per operation marked x-relay.action, in spec order. */
export const mcpTools: readonly McpToolEntry[] = ${JSON.stringify(entries, null, 2)};
`;
}
