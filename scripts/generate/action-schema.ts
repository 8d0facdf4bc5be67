import { GPT_ACTION_LIMITS, OPERATION_ID_PATTERN } from '../lint-action/limits.ts';
import { actionMark, HTTP_METHODS, RELAY_KEY, type ActionMark } from './spec.ts';
import {
  collectRefs,
  deref,
  isJsonMediaType,
  isNullSchema,
  isObj,
  isObjectSchema,
  pointer,
  SCHEMA_LISTS,
  SCHEMA_MAPS,
  SCHEMA_ONE,
  trimText,
  type Json,
} from './walk.ts';

/**
 * The GPT Action schema: only the operations marked `x-relay.action`, shaped to every GPT Action rule
 * (scripts/lint-action checks the result). Pure: reads the spec, returns a new document.
 */

export type OpenApiDocument = Record<string, any>;

/** The model reads this (info.description) to decide when to use the action; MCP clients get it as instructions. */
export const ACTION_INFO_DESCRIPTION =
  "OpenAI through this team's relay: ask a model (with web or file search, in stored conversations), generate or edit images, upload, list and search files. " +
  'Slow jobs return an id and poll_after_seconds: call the matching wait operation. Generated files come back as short-lived https links.';

const SCHEMA_REF_PREFIX = '#/components/schemas/';

/** Thrown when the spec cannot make a valid action schema. Lists every problem at once. */
export class ActionSchemaError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`schemas/openapi.yaml cannot make a valid GPT Action schema:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ActionSchemaError';
    this.problems = problems;
  }
}

// ---------------------------------------------------------------- schema sanitizing

/**
 * A schema the GPT builder accepts: no `x-relay`, no 3.1 nullable unions (the null branch is dropped;
 * a single remaining branch is merged into its parent), `properties` on every object schema, and
 * descriptions of at most 700 characters.
 */
export function sanitizeSchema(schema: unknown): unknown {
  if (typeof schema === 'boolean') return schema;
  if (!isObj(schema)) return schema;
  let node: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === RELAY_KEY || key === 'nullable') continue;
    if ((SCHEMA_MAPS as readonly string[]).includes(key) && isObj(value)) {
      node[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, sanitizeSchema(sub)]));
    } else if ((SCHEMA_ONE as readonly string[]).includes(key) && (isObj(value) || typeof value === 'boolean')) {
      node[key] = sanitizeSchema(value);
    } else if (key === 'items' && Array.isArray(value)) {
      node[key] = value.map((sub) => sanitizeSchema(sub));
    } else if ((SCHEMA_LISTS as readonly string[]).includes(key) && Array.isArray(value)) {
      node[key] = value.map((sub) => sanitizeSchema(sub));
    } else if (key === 'description' && typeof value === 'string') {
      node[key] = trimText(value, GPT_ACTION_LIMITS.maxParameterDescription);
    } else {
      node[key] = structuredClone(value);
    }
  }
  if (Array.isArray(node.type) && node.type.includes('null')) {
    const rest = node.type.filter((t: unknown) => t !== 'null');
    if (rest.length === 1) node.type = rest[0];
    else if (rest.length > 1) node.type = rest;
    else delete node.type;
    if (Array.isArray(node.enum)) node.enum = node.enum.filter((v: unknown) => v !== null);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (!Array.isArray(node[key]) || !node[key].some(isNullSchema)) continue;
    const rest = node[key].filter((branch: unknown) => !isNullSchema(branch));
    const { [key]: _dropped, ...parent } = node;
    if (rest.length === 1 && isObj(rest[0])) {
      // `anyOf: [X, null]` means X (optional fields stay optional); the parent's own words win.
      node = { ...rest[0], ...parent };
    } else if (rest.length === 0) {
      node = parent;
    } else {
      node = { ...parent, [key]: rest };
    }
    if (Array.isArray(node.enum)) node.enum = node.enum.filter((v: unknown) => v !== null);
  }
  if (isObjectSchema(node) && !isObj(node.properties)) node.properties = {};
  return node;
}

// ---------------------------------------------------------------- operations

function jsonContent(content: unknown): { kept: Json; dropped: string[] } {
  const kept: Json = {};
  const dropped: string[] = [];
  for (const [mediaType, media] of Object.entries(isObj(content) ? content : {})) {
    if (isJsonMediaType(mediaType)) {
      kept[mediaType] = isObj(media) && media.schema !== undefined ? { schema: sanitizeSchema(media.schema) } : {};
    } else dropped.push(mediaType);
  }
  return { kept, dropped };
}

function buildParameters(spec: Json, item: Json, op: Json, problems: string[], where: string): Json[] {
  // Path-level parameters move into the operation (the operation's own win); written inline, no headers or cookies.
  const params = new Map<string, Json>();
  for (const [list, at] of [[item.parameters, 'path item'], [op.parameters, 'operation']] as const) {
    for (const raw of Array.isArray(list) ? list : []) {
      const param = deref(spec, raw, problems, `${where} (${at} parameter)`);
      if (!param) continue;
      params.set(`${param.in}:${param.name}`, param);
    }
  }
  const parameters: Json[] = [];
  for (const param of params.values()) {
    if (param.in === 'header' || param.in === 'cookie') continue;
    const out: Json = {};
    for (const [key, value] of Object.entries(param)) {
      if (key.startsWith('x-') || key === 'content' || key === 'examples') continue;
      if (key === 'schema') out.schema = sanitizeSchema(value);
      else if (key === 'description' && typeof value === 'string') out.description = trimText(value, GPT_ACTION_LIMITS.maxParameterDescription);
      else out[key] = structuredClone(value);
    }
    if (param.in === 'path') out.required = true;
    if (out.schema === undefined) out.schema = { type: 'string' };
    parameters.push(out);
  }
  return parameters;
}

function buildResponses(spec: Json, op: Json, problems: string[], where: string): Json {
  const responses: Json = {};
  for (const [status, raw] of Object.entries(isObj(op.responses) ? op.responses : {})) {
    const response = deref(spec, raw, problems, `${where} response ${status}`);
    if (!response) continue;
    const out: Json = { description: typeof response.description === 'string' ? response.description : 'Answer.' };
    if (response.content !== undefined) {
      const { kept, dropped } = jsonContent(response.content);
      if (Object.keys(kept).length === 0 && dropped.length > 0) {
        problems.push(`${where}: response ${status} is ${dropped.join(', ')} only; an action answers JSON`);
      }
      if (Object.keys(kept).length) out.content = kept;
    }
    responses[status] = out;
  }
  if (Object.keys(responses).length === 0) problems.push(`${where}: an action operation needs responses`);
  return responses;
}

function buildOperation(spec: Json, path: string, method: string, item: Json, op: Json, mark: ActionMark, problems: string[]): Json {
  const where = `${method.toUpperCase()} ${path}`;
  const operationId = op.operationId;
  if (typeof operationId !== 'string' || !OPERATION_ID_PATTERN.test(operationId)) {
    problems.push(`${where}: operationId ${JSON.stringify(operationId)} must match ${OPERATION_ID_PATTERN}`);
  }
  const summary = typeof op.summary === 'string' ? op.summary.trim() : '';
  const description = typeof op.description === 'string' && op.description.trim() ? op.description.trim() : summary;
  if (!summary) problems.push(`${where}: an action operation needs a summary`);
  if (summary.length > GPT_ACTION_LIMITS.maxOperationText) {
    problems.push(`${where}: summary has ${summary.length} characters; GPT Actions allow ${GPT_ACTION_LIMITS.maxOperationText}`);
  }
  if (description.length > GPT_ACTION_LIMITS.maxOperationText) {
    problems.push(`${where}: description has ${description.length} characters; GPT Actions allow ${GPT_ACTION_LIMITS.maxOperationText}`);
  }

  const built: Json = { operationId, summary, description };
  const parameters = buildParameters(spec, item, op, problems, where);
  if (parameters.length) built.parameters = parameters;

  if (op.requestBody !== undefined) {
    const body = deref(spec, op.requestBody, problems, `${where} requestBody`);
    if (body) {
      const { kept, dropped } = jsonContent(body.content);
      if (Object.keys(kept).length === 0) {
        problems.push(`${where}: an action request body must be JSON (found ${dropped.join(', ') || 'no content'})`);
      }
      built.requestBody = {
        ...(typeof body.description === 'string' ? { description: trimText(body.description, GPT_ACTION_LIMITS.maxParameterDescription) } : {}),
        ...(body.required === true ? { required: true } : {}),
        content: kept,
      };
    }
  }
  built.responses = buildResponses(spec, op, problems, where);
  built['x-openai-isConsequential'] = mark.consequential;
  if (op.deprecated === true) built.deprecated = true;
  return built;
}

/** Names of component schemas reachable from `roots`, in a depth-first order; reports problems. */
function reachableSchemas(spec: Json, roots: Json, problems: string[]): Set<string> {
  const schemas: Json = isObj(spec.components?.schemas) ? spec.components.schemas : {};
  const reached = new Set<string>();
  const state = new Map<string, 'visiting' | 'done'>();
  const nameOf = (ref: string, at: string): string | undefined => {
    if (!ref.startsWith(SCHEMA_REF_PREFIX) || ref.slice(SCHEMA_REF_PREFIX.length).includes('/')) {
      problems.push(`${at}: $ref ${ref} must name a components.schemas entry`);
      return undefined;
    }
    const name = ref.slice(SCHEMA_REF_PREFIX.length).replaceAll('~1', '/').replaceAll('~0', '~');
    if (!Object.hasOwn(schemas, name)) {
      problems.push(`${at}: $ref ${ref} does not resolve`);
      return undefined;
    }
    return name;
  };
  const visit = (name: string, trail: string[]) => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      problems.push(`circular $ref: ${[...trail.slice(trail.indexOf(name)), name].join(' → ')} (GPT Actions refuse cycles)`);
      return;
    }
    state.set(name, 'visiting');
    reached.add(name);
    for (const { ref, at } of collectRefs(schemas[name], pointer('components', 'schemas', name))) {
      const next = nameOf(ref, at);
      if (next) visit(next, [...trail, name]);
    }
    state.set(name, 'done');
  };
  for (const { ref, at } of collectRefs(roots, '/paths')) {
    const name = nameOf(ref, at);
    if (name) visit(name, []);
  }
  return reached;
}

/**
 * The document a GPT imports: the operations marked `x-relay.action` (at most 30), one server, one bearer
 * scheme, component schemas reachable from those operations only. Throws ActionSchemaError when the spec
 * breaks a GPT Action rule the builder cannot fix (over-long operation text, a non-JSON action body or
 * answer, a circular or dangling `$ref`, too many operations).
 */
export function buildActionSchema(spec: Json, options: { serverUrl: string }): OpenApiDocument {
  const problems: string[] = [];
  const paths: Json = {};
  const operationIds = new Set<string>();
  let count = 0;
  for (const [path, item] of Object.entries(isObj(spec.paths) ? spec.paths : {})) {
    if (!isObj(item)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      const mark = actionMark(op);
      if (mark === null) continue;
      const where = `${method.toUpperCase()} ${path}`;
      if (typeof mark === 'string') {
        problems.push(`${where}: ${mark}`);
        continue;
      }
      if (method === 'head') problems.push(`${where}: GPT Actions do not support HEAD operations`);
      if (operationIds.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} is used twice`);
      operationIds.add(op.operationId);
      (paths[path] ??= {})[method] = buildOperation(spec, path, method, item, op, mark, problems);
      count++;
    }
  }
  if (count === 0) problems.push('no operation is marked x-relay.action');
  if (count > GPT_ACTION_LIMITS.maxOperations) {
    problems.push(`${count} operations are marked x-relay.action; a GPT Action schema allows ${GPT_ACTION_LIMITS.maxOperations}`);
  }
  const reached = reachableSchemas(spec, paths, problems);
  if (problems.length) throw new ActionSchemaError(problems);

  const schemas: Json = {};
  for (const [name, schema] of Object.entries(isObj(spec.components?.schemas) ? spec.components.schemas : {})) {
    if (reached.has(name)) schemas[name] = sanitizeSchema(schema);
  }
  const contractScheme = spec.components?.securitySchemes?.RelayKey;
  const info = isObj(spec.info) ? spec.info : {};
  return {
    openapi: '3.1.0',
    info: {
      title: typeof info.title === 'string' ? info.title : 'OpenAI Relay',
      description: ACTION_INFO_DESCRIPTION,
      version: typeof info.version === 'string' ? info.version : '1.0.0',
    },
    servers: [{ url: options.serverUrl }],
    security: [{ RelayKey: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        RelayKey: {
          type: 'http',
          scheme: 'bearer',
          ...(typeof contractScheme?.description === 'string' ? { description: contractScheme.description } : {}),
        },
      },
    },
  };
}

/** The action operations of a spec, chosen by the mark: `{operationId, method, path, consequential}`. */
export function actionOperations(spec: Json): { operationId: string; method: string; path: string; consequential: boolean }[] {
  const out: { operationId: string; method: string; path: string; consequential: boolean }[] = [];
  for (const [path, item] of Object.entries(isObj(spec.paths) ? spec.paths : {})) {
    if (!isObj(item)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method];
      const mark = isObj(op) ? actionMark(op) : null;
      if (mark && typeof mark === 'object') out.push({ operationId: op.operationId, method, path, consequential: mark.consequential });
    }
  }
  return out;
}
