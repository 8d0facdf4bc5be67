import { comparePaths } from './emit-routes.ts';
import { str } from './emit-zod.ts';
import { HEADER } from './header.ts';
import { HTTP_METHODS, RELAY_KEY } from './spec.ts';
import { isObj, type Json } from './walk.ts';

/**
 * The WebSocket endpoints of schemas/openapi.yaml → generated/websockets.ts.
 *
 * OpenAPI has no WebSocket operations, so an endpoint is written as what its handshake is on the wire: a GET
 * whose success answer is `101 Switching Protocols`, marked `x-relay: {kind: websocket, timeout: <class>}`.
 * The served documents show it as such a GET (the mark is stripped like every `x-relay`); the HTTP route
 * table leaves it out (spec.ts skips the mark), and the relay's upgrade door reads this module's table:
 * the path (also the upstream path), its parameters, the operation name its records carry, the deadline
 * for OpenAI to accept the upgrade, and the query parameter that names the model, when there is one.
 */

const MARK_KEYS = new Set(['kind', 'timeout']);
const TIMEOUTS = ['short', 'standard', 'long'];

export interface WebSocketInfo {
  operationId: string;
  path: string;
  pathParams: string[];
  tag: string;
  timeout: string;
  /** The declared query parameter named `model`, if any: the model of the endpoint's records when no event names one. */
  modelQuery: string | null;
}

/** Every WebSocket endpoint of the spec, most specific paths first, each checked. Throws listing every problem. */
export function listWebSockets(spec: Json): WebSocketInfo[] {
  const problems: string[] = [];
  const out: WebSocketInfo[] = [];
  const users = new Map<string, string[]>();
  const endpoints: { path: string; item: Json; method: string; op: Json }[] = [];
  for (const [path, item] of Object.entries<Json>(isObj(spec.paths) ? spec.paths : {})) {
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      if (typeof op.operationId === 'string') users.set(op.operationId, [...(users.get(op.operationId) ?? []), `${method.toUpperCase()} ${path}`]);
      if (isObj(op[RELAY_KEY]) && op[RELAY_KEY].kind === 'websocket') endpoints.push({ path, item, method, op });
    }
  }
  for (const { path, item, method, op } of endpoints) {
    const sharing = users.get(op.operationId) ?? [];
    if (sharing.length > 1) problems.push(`${method.toUpperCase()} ${path}: operationId ${op.operationId} is used ${sharing.length} times (${sharing.join(', ')})`);
    const info = checkEndpoint(path, method, item, op, problems);
    if (info) out.push(info);
  }
  const shapes = new Map<string, string>();
  for (const w of out) {
    const shape = w.path.replace(/\{[^}]+\}/g, '{}');
    const taken = shapes.get(shape);
    if (taken) problems.push(`GET ${w.path} answers exactly the upgrades of ${taken}: one of them could never be reached`);
    shapes.set(shape, w.operationId);
  }
  if (problems.length) throw new Error(`schemas/openapi.yaml is not valid for the relay (WebSocket endpoints):\n  - ${problems.join('\n  - ')}`);
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

function checkEndpoint(path: string, method: string, item: Json, op: Json, problems: string[]): WebSocketInfo | undefined {
  const where = `${method.toUpperCase()} ${path}`;
  const before = problems.length;
  const mark: Json = op[RELAY_KEY];
  if (method !== 'get') problems.push(`${where}: x-relay.kind websocket marks the upgrade request, which is a GET`);
  for (const key of Object.keys(mark)) {
    if (!MARK_KEYS.has(key)) problems.push(`${where}: x-relay.${key} means nothing on a WebSocket endpoint (it takes kind and timeout)`);
  }
  if (!TIMEOUTS.includes(mark.timeout)) {
    problems.push(`${where}: x-relay.timeout must be one of ${TIMEOUTS.join(', ')}: how long OpenAI may take to accept the upgrade (got ${JSON.stringify(mark.timeout)})`);
  }
  if (typeof op.operationId !== 'string' || op.operationId === '') problems.push(`${where}: operationId is missing`);
  if (op.requestBody !== undefined) problems.push(`${where}: an upgrade request has no body (remove requestBody)`);
  if (!isObj(op.responses) || !isObj(op.responses['101'])) problems.push(`${where}: a WebSocket endpoint answers 101 Switching Protocols: declare that response`);
  if (!path.startsWith('/v1/')) problems.push(`${where}: OpenAI's WebSocket paths start with /v1/`);
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '' || (s.includes('{') && !/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(s)))) {
    problems.push(`${where}: every segment must be a literal or one whole {parameter}`);
  }
  const params: Json[] = [...(Array.isArray(item.parameters) ? item.parameters : []), ...(Array.isArray(op.parameters) ? op.parameters : [])];
  if (params.some((p) => !isObj(p) || p.$ref !== undefined)) problems.push(`${where}: parameters must be written inline, not by $ref`);
  const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  for (const name of pathParams) {
    if (!params.some((p) => p.in === 'path' && p.name === name)) problems.push(`${where}: path parameter {${name}} is not declared`);
  }
  for (const p of params) {
    if (p.in === 'path' && !pathParams.includes(p.name)) problems.push(`${where}: parameter ${p.name} is declared in: path but the path has no {${p.name}}`);
    if (p.in === 'header' || p.in === 'cookie') problems.push(`${where}: ${p.in} parameters are not forwarded on an upgrade (only the query is)`);
  }
  if (problems.length > before) return undefined;
  return {
    operationId: op.operationId,
    path,
    pathParams,
    tag: Array.isArray(op.tags) && typeof op.tags[0] === 'string' ? op.tags[0] : 'default',
    timeout: mark.timeout,
    modelQuery: params.some((p) => p.in === 'query' && p.name === 'model') ? 'model' : null,
  };
}

/** The path as an anchored pattern: literal segments as they are, each `{parameter}` one segment captured. */
function pathPattern(path: string): string {
  const body = path
    .split('/')
    .map((s) => (s.startsWith('{') ? '([^/]+)' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('\\/');
  return `/^${body}$/`;
}

export function emitWebSockets(spec: Json): string {
  const routes = listWebSockets(spec);
  const ids = routes.map((w) => str(w.operationId));
  const table = routes.map((w) =>
    [
      `  {`,
      `    operationId: ${str(w.operationId)},`,
      `    path: ${str(w.path)},`,
      `    pathParams: ${str(w.pathParams)},`,
      `    tag: ${str(w.tag)},`,
      `    timeout: ${str(w.timeout)},`,
      `    modelQuery: ${str(w.modelQuery)},`,
      `    pattern: ${pathPattern(w.path)},`,
      `  },`,
    ].join('\n'),
  );
  return `${HEADER}import type { TimeoutClass } from './routes.ts';

/** The operation names of the WebSocket endpoints (what their request records carry). */
export type WebSocketOperationId = ${ids.length ? ids.join(' | ') : 'never'};

/** A WebSocket endpoint of schemas/openapi.yaml: a GET answered with 101 Switching Protocols. */
export interface WebSocketRoute {
  readonly operationId: WebSocketOperationId;
  /** The OpenAPI path, also the upstream path: \`/v1/live/sessions/{session_id}/fork\`. */
  readonly path: string;
  readonly pathParams: readonly string[];
  readonly tag: string;
  /** How long OpenAI may take to accept the upgrade (the relay's deadline classes). */
  readonly timeout: TimeoutClass;
  /** The query parameter that names the model, if the endpoint has one. */
  readonly modelQuery: string | null;
  /** The path, anchored; one capture per path parameter, in order. */
  readonly pattern: RegExp;
}

/** Every WebSocket endpoint, most specific paths first. */
export const webSocketRoutes: readonly WebSocketRoute[] = [
${table.join('\n')}
];

export interface WebSocketMatch {
  readonly route: WebSocketRoute;
  /** Path parameters by name, as they appear in the path (not percent-decoded). */
  readonly params: Readonly<Record<string, string>>;
}

/** The WebSocket endpoint a request path names, or undefined. */
export function matchWebSocket(path: string): WebSocketMatch | undefined {
  for (const route of webSocketRoutes) {
    const found = route.pattern.exec(path);
    if (!found) continue;
    const params: Record<string, string> = {};
    route.pathParams.forEach((name, i) => (params[name] = found[i + 1]!));
    return { route, params };
  }
  return undefined;
}
`;
}
