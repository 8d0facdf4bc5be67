import { HEADER } from './header.ts';
import type { OperationInfo } from './spec.ts';

/**
 * generated/matcher.ts: the one operation matcher (method + path → operation and path parameters), used by
 * the pass-through door, the proxy, the 404/405 answers and request records.
 *
 * Literal paths (no parameter) are one Map lookup per method. Paths with parameters are a segment tree,
 * walked literal child first with backtracking, which is the route table's precedence: at the first
 * segment where two matching paths differ in kind, the literal one wins, so `/v1/responses/compact` is
 * never captured by `/v1/responses/{response_id}`.
 */

interface NodeData {
  literal?: Record<string, NodeData>;
  param?: NodeData;
  /** METHOD → operationId of the operation whose path ends here. */
  ops?: Record<string, string>;
}

function segmentsOf(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`${path}: a path must start with /`);
  return path.slice(1).split('/');
}

/** The literal table and the parameter tree of `ops`; throws when two operations would answer the same request. */
export function compileMatcher(ops: readonly OperationInfo[]): { literal: Record<string, Record<string, string>>; tree: NodeData } {
  const literal: Record<string, Record<string, string>> = {};
  const tree: NodeData = {};
  const problems: string[] = [];
  for (const o of ops) {
    const method = o.method.toUpperCase();
    const segments = segmentsOf(o.path);
    if (segments.some((s) => s === '' || s === '__proto__' || (s.includes('{') && !/^\{[^{}]+\}$/.test(s)))) {
      problems.push(`${method} ${o.path}: every segment must be a literal or one whole {parameter}`);
      continue;
    }
    if (o.pathParams.length === 0) {
      const byPath = (literal[method] ??= {});
      if (byPath[o.path]) problems.push(`${method} ${o.path} is declared twice`);
      byPath[o.path] = o.operationId;
      continue;
    }
    let node = tree;
    for (const segment of segments) {
      node = segment.startsWith('{') ? (node.param ??= {}) : ((node.literal ??= {})[segment] ??= {});
    }
    const taken = node.ops?.[method];
    if (taken) problems.push(`${method} ${o.path} matches exactly the requests of ${taken}: one of them could never be reached`);
    (node.ops ??= {})[method] = o.operationId;
  }
  if (problems.length) throw new Error(`schemas/openapi.yaml cannot make one operation matcher:\n  - ${problems.join('\n  - ')}`);
  return { literal, tree };
}

export function emitMatcher(ops: readonly OperationInfo[]): string {
  const { literal, tree } = compileMatcher(ops);
  return `${HEADER}import { operations, type RelayOperation } from './routes.ts';

/**
 * The one operation matcher: method + path → the operation and its path parameters. Literal paths are one
 * Map lookup; paths with parameters walk a segment tree, literal child first, so the most specific
 * operation wins (\`/v1/responses/compact\` is never taken for \`/v1/responses/{response_id}\`).
 */

export interface OperationMatch {
  readonly operation: RelayOperation;
  /** Path parameters by name, exactly as they appear in the path (not percent-decoded). */
  readonly params: Readonly<Record<string, string>>;
}

interface NodeData {
  literal?: Record<string, NodeData>;
  param?: NodeData;
  ops?: Record<string, string>;
}

interface Node {
  readonly literal: ReadonlyMap<string, Node>;
  readonly param: Node | undefined;
  readonly ops: ReadonlyMap<string, RelayOperation>;
}

/** METHOD → path → operationId, for the paths without parameters. */
const LITERAL_DATA: Record<string, Record<string, string>> = ${JSON.stringify(literal, null, 2)};

/** The paths with parameters as a segment tree (\`param\` is the child for a {parameter} segment). */
const TREE_DATA: NodeData = ${JSON.stringify(tree, null, 2)};

const byId = new Map<string, RelayOperation>(operations.map((o) => [o.operationId, o]));
const operation = (id: string) => byId.get(id)!;

const LITERAL = new Map<string, ReadonlyMap<string, RelayOperation>>(
  Object.entries(LITERAL_DATA).map(([method, paths]) => [method, new Map(Object.entries(paths).map(([path, id]) => [path, operation(id)]))]),
);

function compile(data: NodeData): Node {
  return {
    literal: new Map(Object.entries(data.literal ?? {}).map(([segment, child]) => [segment, compile(child)])),
    param: data.param && compile(data.param),
    ops: new Map(Object.entries(data.ops ?? {}).map(([method, id]) => [method, operation(id)])),
  };
}

const TREE = compile(TREE_DATA);
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

/** The operation for the segments of \`path\` from \`start\` on; parameter values are pushed onto \`values\`. */
function walk(node: Node, path: string, start: number, method: string, values: string[]): RelayOperation | undefined {
  const end = path.indexOf('/', start);
  const segment = end === -1 ? path.slice(start) : path.slice(start, end);
  const child = node.literal.get(segment);
  if (child) {
    const found = end === -1 ? child.ops.get(method) : walk(child, path, end + 1, method, values);
    if (found) return found;
  }
  if (node.param && segment !== '') {
    values.push(segment);
    const found = end === -1 ? node.param.ops.get(method) : walk(node.param, path, end + 1, method, values);
    if (found) return found;
    values.pop();
  }
  return undefined;
}

/** The operation \`METHOD path\` names (method upper-case, path without query), or undefined. */
export function matchOperation(method: string, path: string): OperationMatch | undefined {
  const exact = LITERAL.get(method)?.get(path);
  if (exact) return { operation: exact, params: NO_PARAMS };
  if (path.charCodeAt(0) !== 47 /* / */) return undefined;
  const values: string[] = [];
  const found = walk(TREE, path, 1, method, values);
  if (!found) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < values.length; i++) params[found.pathParams[i]] = values[i];
  return { operation: found, params };
}

/** Every operation whose path matches, whatever its method. */
function collect(node: Node, path: string, start: number, into: Set<RelayOperation>): void {
  const end = path.indexOf('/', start);
  const segment = end === -1 ? path.slice(start) : path.slice(start, end);
  const next = [node.literal.get(segment), segment === '' ? undefined : node.param];
  for (const child of next) {
    if (!child) continue;
    if (end === -1) for (const op of child.ops.values()) into.add(op);
    else collect(child, path, end + 1, into);
  }
}

/** The methods (upper-case, in route-table order) the spec allows on \`path\`, for an honest 405. */
export function methodsForPath(path: string): string[] {
  const found = new Set<RelayOperation>();
  for (const paths of LITERAL.values()) {
    const op = paths.get(path);
    if (op) found.add(op);
  }
  if (path.charCodeAt(0) === 47) collect(TREE, path, 1, found);
  return [...new Set(operations.filter((o) => found.has(o)).map((o) => o.method.toUpperCase()))];
}
`;
}
