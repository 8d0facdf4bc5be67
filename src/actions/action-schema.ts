import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

/**
 * The documents the relay serves, built from schemas/openapi.yaml (the single source of truth):
 *
 * - the GPT Action schema: only the operations marked `x-relay.action`, shaped to every rule of
 *   /work/shared/reference/gpt-actions.md (see GPT_ACTION_LIMITS and src/actions/lint-action.ts);
 * - the full schema: every operation, for people and SDK generators.
 *
 * Pure functions apart from `loadContract`. `x-relay` metadata never leaves this module.
 */

export type OpenApiDocument = Record<string, any>;
type Json = Record<string, any>;

/** Every number of gpt-actions.md that a schema can carry. */
export const GPT_ACTION_LIMITS = Object.freeze({
  openapiVersions: ['3.1.0', '3.1.1'] as readonly string[],
  maxOperations: 30,
  /** Endpoint summary and description. */
  maxOperationText: 300,
  /** Parameter (and property) descriptions. */
  maxParameterDescription: 700,
  /** Files in (openaiFileIdRefs) and out (openaiFileResponse). */
  maxFiles: 10,
  maxFileBytes: 10 * 1024 * 1024,
  /** Request and response each under this many characters. */
  maxCharacters: 100_000,
  /** The whole round trip; a "wait" operation must give up before it. */
  roundTripSeconds: 45,
  maxWaitSeconds: 44,
});

export const OPERATION_ID_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
export const OPENAI_FILE_ID_REF_FIELDS = ['name', 'id', 'mime_type', 'download_link'] as const;

/** The model reads this (info.description) to decide when to use the action. */
export const ACTION_INFO_DESCRIPTION =
  "OpenAI through this team's relay: ask a model, generate or edit images, upload, list and search files, make videos. " +
  'Slow jobs return an id and poll_after_seconds: call the matching wait operation. Generated files come back as short-lived https links.';

/**
 * schemas/openapi.yaml as `npm run generate` compiled it to JSON (generated/contract.json, proven fresh by
 * the generated-is-fresh check): the same document, parsed at start-up in milliseconds instead of the
 * few hundred a YAML parse of the whole spec takes.
 */
const DEFAULT_CONTRACT_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../generated/contract.json');
const SCHEMA_REF_PREFIX = '#/components/schemas/';

/** Thrown at build time when the contract cannot make a valid action schema. Lists every problem at once. */
export class ActionSchemaError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`schemas/openapi.yaml cannot make a valid GPT Action schema:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ActionSchemaError';
    this.problems = problems;
  }
}

// ---------------------------------------------------------------- loading

const loaded = new Map<string, OpenApiDocument>();

/**
 * Parses the contract (once per path; later calls return the same, deeply frozen object).
 * Builders never mutate it; clone it (structuredClone) to make a variant.
 */
export function loadContract(path: string = DEFAULT_CONTRACT_PATH): OpenApiDocument {
  const key = resolve(path);
  let contract = loaded.get(key);
  if (!contract) {
    const text = readFileSync(key, 'utf8');
    const parsed: unknown = key.endsWith('.json') ? JSON.parse(text) : parse(text);
    if (!isObj(parsed) || !isObj(parsed.paths)) throw new Error(`${path} is not an OpenAPI document (no paths).`);
    contract = deepFreeze(parsed);
    loaded.set(key, contract);
  }
  return contract;
}

// ---------------------------------------------------------------- small helpers

export function isObj(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** RFC 6901 token escaping. */
export function escapePointer(token: string | number): string {
  return String(token).replaceAll('~', '~0').replaceAll('/', '~1');
}

export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((t) => `/${escapePointer(t)}`).join('');
}

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

/** Keys whose values are data (never OpenAPI structure): not walked for `$ref` or `x-relay`. */
const DATA_KEYS = new Set(['example', 'examples', 'default', 'const', 'enum']);
/** Keys whose values are maps from user-chosen names (a property may be called `x-relay`). */
const NAME_MAPS = new Set([
  'properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'schemas', 'responses', 'parameters',
  'headers', 'securitySchemes', 'requestBodies', 'links', 'callbacks', 'pathItems', 'paths', 'content', 'encoding',
  'mapping', 'variables', 'webhooks',
]);

/** A copy without any `x-relay` key (structure only; data values and user-chosen names are left alone). */
export function stripRelayMetadata<T>(node: T, parentKey = ''): T {
  if (Array.isArray(node)) return node.map((item) => stripRelayMetadata(item)) as T;
  if (!isObj(node)) return node;
  const out: Json = {};
  const isNameMap = NAME_MAPS.has(parentKey);
  for (const [key, value] of Object.entries(node)) {
    if (key === 'x-relay' && !isNameMap) continue;
    out[key] = DATA_KEYS.has(key) && !isNameMap ? structuredClone(value) : stripRelayMetadata(value, isNameMap ? '' : key);
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

// ---------------------------------------------------------------- schema sanitizing

const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'] as const;
const SCHEMA_ONE = ['items', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else', 'contentSchema'] as const;
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;

export function isObjectSchema(schema: Json): boolean {
  return schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object'));
}

export function isNullSchema(schema: unknown): boolean {
  if (!isObj(schema)) return false;
  if (schema.type === 'null') return true;
  if (Array.isArray(schema.type) && schema.type.length > 0 && schema.type.every((t: unknown) => t === 'null')) return true;
  return Object.hasOwn(schema, 'const') && schema.const === null;
}

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
    if (key === 'x-relay' || key === 'nullable') continue;
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

// ---------------------------------------------------------------- the action schema

export interface BuildOptions {
  /** The one `servers[0].url` (see actionServerUrl). */
  serverUrl: string;
}

interface ActionMark {
  consequential: boolean;
}

/** `{consequential}` when the operation is a GPT Action operation, null when not, a string when the mark is malformed. */
function actionMark(op: Json): ActionMark | null | string {
  const relay = op['x-relay'];
  if (!isObj(relay) || relay.action === undefined || relay.action === null) return null;
  if (!isObj(relay.action) || typeof relay.action.consequential !== 'boolean') {
    return 'x-relay.action must be {consequential: true|false}, said on purpose';
  }
  return { consequential: relay.action.consequential };
}

/** Follows a local `$ref` (components.parameters/requestBodies/responses) to the object it names. */
function deref(contract: Json, node: unknown, problems: string[], where: string): Json | undefined {
  let current = node;
  for (let hops = 0; isObj(current) && typeof current.$ref === 'string'; hops++) {
    const target = resolvePointer(contract, current.$ref);
    if (hops > 10 || target === undefined) {
      problems.push(`${where}: $ref ${current.$ref} does not resolve`);
      return undefined;
    }
    current = target;
  }
  return isObj(current) ? current : undefined;
}

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

function buildOperation(contract: Json, path: string, method: string, item: Json, op: Json, mark: ActionMark, problems: string[]): Json {
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

  // Path-level parameters move into the operation (the operation's own win); written inline, no headers or cookies.
  const params = new Map<string, Json>();
  for (const [list, at] of [[item.parameters, 'path item'], [op.parameters, 'operation']] as const) {
    for (const raw of Array.isArray(list) ? list : []) {
      const param = deref(contract, raw, problems, `${where} (${at} parameter)`);
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

  const built: Json = { operationId, summary, description };
  if (parameters.length) built.parameters = parameters;

  if (op.requestBody !== undefined) {
    const body = deref(contract, op.requestBody, problems, `${where} requestBody`);
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

  const responses: Json = {};
  for (const [status, raw] of Object.entries(isObj(op.responses) ? op.responses : {})) {
    const response = deref(contract, raw, problems, `${where} response ${status}`);
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
  built.responses = responses;
  built['x-openai-isConsequential'] = mark.consequential;
  if (op.deprecated === true) built.deprecated = true;
  return built;
}

/** Names of component schemas reachable from `roots`, in a depth-first order; throws nothing, reports problems. */
function reachableSchemas(contract: Json, roots: Json, problems: string[]): Set<string> {
  const schemas: Json = isObj(contract.components?.schemas) ? contract.components.schemas : {};
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
 * The document a GPT imports: the operations marked `x-relay.action` (at most 30), one https server,
 * one bearer scheme, component schemas reachable from those operations only. Throws ActionSchemaError
 * when the contract breaks a GPT Action rule the builder cannot fix (over-long operation text, a
 * non-JSON action body or answer, a circular or dangling `$ref`, too many operations).
 */
export function buildActionSchema(contract: object, options: BuildOptions): OpenApiDocument {
  const spec = contract as Json;
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

/** The whole contract (every operation) with `servers` set to the one URL and no `x-relay` metadata. */
export function buildFullSchema(contract: object, options: BuildOptions): OpenApiDocument {
  const stripped = stripRelayMetadata(contract as Json);
  const out: Json = {};
  for (const [key, value] of Object.entries(stripped)) {
    if (key === 'servers') continue;
    out[key] = value;
    if (key === 'info') out.servers = [{ url: options.serverUrl }];
  }
  out.servers ??= [{ url: options.serverUrl }];
  return out;
}

/** The action operations of a contract, chosen by the mark: `{operationId, method, path, consequential}`. */
export function actionOperations(contract: object): { operationId: string; method: string; path: string; consequential: boolean }[] {
  const out: { operationId: string; method: string; path: string; consequential: boolean }[] = [];
  for (const [path, item] of Object.entries(isObj((contract as Json).paths) ? (contract as Json).paths : {})) {
    if (!isObj(item)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method];
      const mark = isObj(op) ? actionMark(op) : null;
      if (mark && typeof mark === 'object') out.push({ operationId: op.operationId, method, path, consequential: mark.consequential });
    }
  }
  return out;
}

// ---------------------------------------------------------------- server URL

export interface ForwardingHeaders {
  host?: string;
  'x-forwarded-proto'?: string;
  'x-forwarded-host'?: string;
}

const HOST_PATTERN =
  /^(?:(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?))*|\[[0-9a-f:.]{2,45}\])(?::(\d{1,5}))?$/;

/** `hostname[:port]` lower-cased, or undefined when the value is anything else (no injection into documents). */
export function parseHostHeader(value: string | undefined): { hostname: string; port?: number } | undefined {
  if (typeof value !== 'string') return undefined;
  const first = value.split(',')[0].trim().toLowerCase();
  if (first.length === 0 || first.length > 255) return undefined;
  const match = HOST_PATTERN.exec(first);
  if (!match) return undefined;
  const port = match[1] === undefined ? undefined : Number(match[1]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  const hostname = port === undefined ? first : first.slice(0, first.length - match[1].length - 1);
  if (hostname.startsWith('[') && !isIpv6Literal(hostname.slice(1, -1))) return undefined;
  return { hostname, port };
}

function isIpv6Literal(text: string): boolean {
  try {
    return new URL(`http://[${text}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    host === '[::1]' ||
    host === '[0:0:0:0:0:0:0:1]'
  );
}

/**
 * The action schema's server URL. PUBLIC_BASE_URL when set (without trailing slash); else the first
 * X-Forwarded-Host (or Host) value, strictly validated. The scheme is https for every host but loopback:
 * ChatGPT only calls https servers, and a TLS-terminating proxy often says `X-Forwarded-Proto: http`
 * (seed fault 8). Loopback hosts get http unless X-Forwarded-Proto says https.
 * Anything unparseable gives `fallback` (a loopback URL) rather than attacker-chosen text.
 */
export function actionServerUrl(publicBaseUrl: URL | undefined, headers: ForwardingHeaders, fallback = 'http://localhost'): string {
  if (publicBaseUrl) return `${publicBaseUrl.origin}${publicBaseUrl.pathname.replace(/\/+$/, '')}`;
  const host = parseHostHeader(headers['x-forwarded-host']) ?? parseHostHeader(headers.host);
  if (!host) return fallback;
  const proto = (headers['x-forwarded-proto'] ?? '').split(',')[0].trim().toLowerCase();
  const scheme = isLoopbackHost(host.hostname) && proto !== 'https' ? 'http' : 'https';
  const defaultPort = scheme === 'https' ? 443 : 80;
  const port = host.port === undefined || host.port === defaultPort ? '' : `:${host.port}`;
  return `${scheme}://${host.hostname}${port}`;
}

// ---------------------------------------------------------------- cache

export interface RenderedDocument {
  readonly doc: OpenApiDocument;
  /** Serialized lazily, once. */
  readonly json: string;
  readonly yaml: string;
}

export interface DocumentCache {
  action(serverUrl: string): RenderedDocument;
  full(serverUrl: string): RenderedDocument;
}

const PLACEHOLDER_URL = 'https://served-server-url.invalid';

/** Serializes a document: no anchors/aliases in YAML (importers choke on them), no folded lines. */
function toJson(doc: OpenApiDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
function toYaml(doc: OpenApiDocument): string {
  return stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** `text` with its single `from` replaced, or undefined when `from` is not there exactly once. */
function replaceOnce(text: string, from: string, to: string): string | undefined {
  const at = text.indexOf(from);
  if (at === -1 || text.indexOf(from, at + 1) !== -1) return undefined;
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/**
 * Renders the base document once (with a placeholder server) and, per server URL, only swaps the
 * placeholder in the text: serializing the full contract to YAML takes long enough that rotating Host
 * headers must not be able to trigger it on every request.
 */
function renderer(base: OpenApiDocument): (serverUrl: string) => RenderedDocument {
  const template = withServer(base, PLACEHOLDER_URL);
  let json: string | undefined;
  let yaml: string | undefined;
  return (serverUrl) => {
    const doc = withServer(base, serverUrl);
    let jsonText: string | undefined;
    let yamlText: string | undefined;
    return {
      doc,
      get json() {
        json ??= toJson(template);
        return (jsonText ??= replaceOnce(json, JSON.stringify(PLACEHOLDER_URL), JSON.stringify(serverUrl)) ?? toJson(doc));
      },
      get yaml() {
        yaml ??= toYaml(template);
        return (yamlText ??= replaceOnce(yaml, `url: ${PLACEHOLDER_URL}\n`, `url: ${stringify(serverUrl).trimEnd()}\n`) ?? toYaml(doc));
      },
    };
  };
}

function withServer(doc: OpenApiDocument, serverUrl: string): OpenApiDocument {
  const out: Json = {};
  for (const [key, value] of Object.entries(doc)) out[key] = key === 'servers' ? [{ url: serverUrl }] : value;
  return out;
}

/**
 * Builds both documents once (so a bad contract fails at start-up, not on the first request) and keeps
 * the rendered copies of the last `maxEntries` server URLs.
 */
export function createDocumentCache(contract: object, maxEntries = 16): DocumentCache {
  const placeholder = 'https://relay.invalid';
  const actionBase = deepFreeze(buildActionSchema(contract, { serverUrl: placeholder }));
  const fullBase = deepFreeze(buildFullSchema(contract, { serverUrl: placeholder }));
  const memo = (base: OpenApiDocument) => {
    const render = renderer(base);
    const entries = new Map<string, RenderedDocument>();
    return (serverUrl: string): RenderedDocument => {
      let hit = entries.get(serverUrl);
      if (!hit) {
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
        hit = render(serverUrl);
        entries.set(serverUrl, hit);
      }
      return hit;
    };
  };
  return { action: memo(actionBase), full: memo(fullBase) };
}
