import { schemaIdent, str, zodOf, zodOfQuery } from './emit-zod.ts';
import { HEADER } from './header.ts';
import type { OperationInfo } from './spec.ts';
import type { Json } from './walk.ts';

/** generated/routes.ts: one @hono/zod-openapi route per operation, and the relay's route table. */

export const honoPath = (path: string) => path.replace(/\{([^}]+)\}/g, ':$1');

/**
 * Registration order for the router: at the first segment where two paths differ in kind, the literal
 * one comes first, so `/v1/videos/characters/{id}` is never captured by `/v1/videos/{video_id}/content`
 * and `/v1/responses/compact` never by `/v1/responses/{response_id}`.
 */
export function comparePaths(a: string, b: string): number {
  const sa = a.split('/');
  const sb = b.split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const pa = sa[i].startsWith('{');
    const pb = sb[i].startsWith('{');
    if (pa !== pb) return pa ? 1 : -1;
  }
  return sa.length - sb.length || a.localeCompare(b);
}

/** The route table's order: most specific paths first, then by method. */
export function routeOrder(ops: readonly OperationInfo[]): OperationInfo[] {
  return [...ops].sort((a, b) => comparePaths(a.path, b.path) || a.method.localeCompare(b.method));
}

function emitContent(content: Json | undefined): string {
  const entries = Object.entries<Json>(content ?? {}).map(([type, media]) => `${str(type)}: { schema: ${zodOf(media.schema, 1)} }`);
  return `{ ${entries.join(', ')} }`;
}

function emitRoute(o: OperationInfo): string {
  const { op } = o;
  const request: string[] = [];
  if (o.pathParams.length) {
    request.push(`params: z.object({ ${o.pathParams.map((p) => `${str(p)}: z.string()`).join(', ')} })`);
  }
  if (o.queryParams.length) {
    const fields = o.queryParams.map((p) => `${str(p.name)}: ${zodOfQuery(p.schema)}${p.required ? '' : '.optional()'}`);
    request.push(`query: z.looseObject({ ${fields.join(', ')} })`);
  }
  if (op.requestBody) {
    request.push(`body: { required: ${Boolean(op.requestBody.required)}, content: ${emitContent(op.requestBody.content)} }`);
  }
  const responses = Object.entries<Json>(op.responses ?? {}).map(([status, res]) => {
    const content = res.content ? `, content: ${emitContent(res.content)}` : '';
    return `${str(status)}: { description: ${str(res.description ?? status)}${content} }`;
  });
  const fields = [
    `method: ${str(o.method)}`,
    `path: ${str(o.path)}`,
    `operationId: ${str(o.operationId)}`,
    `tags: ${str(op.tags ?? [])}`,
    op.summary ? `summary: ${str(op.summary)}` : '',
    op.description ? `description: ${str(op.description)}` : '',
    request.length ? `request: { ${request.join(', ')} }` : '',
    `responses: { ${responses.join(', ')} }`,
  ].filter(Boolean);
  return `  ${str(o.operationId)}: createRoute({\n    ${fields.join(',\n    ')},\n  }),`;
}

export function emitRoutes(spec: Json, ops: OperationInfo[]): string {
  const schemaNames = Object.keys(spec.components?.schemas ?? {}).map(schemaIdent);
  const table = routeOrder(ops).map((o) =>
    [
      `  {`,
      `    operationId: ${str(o.operationId)},`,
      `    method: ${str(o.method)},`,
      `    path: ${str(o.path)},`,
      `    honoPath: ${str(honoPath(o.path))},`,
      `    pathParams: ${str(o.pathParams)},`,
      `    tag: ${str(o.tag)},`,
      `    kind: ${str(o.relay.kind)},`,
      `    body: ${str(o.relay.body)},`,
      `    answer: ${str(o.relay.answer)},`,
      `    timeout: ${str(o.relay.timeout)},`,
      `    requestContentTypes: ${str(o.requestContentTypes)},`,
      `    responseHeaders: ${str(o.responseHeaders)},`,
      `    action: ${str(o.relay.action)},`,
      `    retired: ${str(o.relay.retired)},`,
      `    usage: ${str(o.usage)},`,
      `    route: routes[${str(o.operationId)}],`,
      `  },`,
    ].join('\n'),
  );
  const actionIds = ops.filter((o) => o.relay.action).map((o) => str(o.operationId));
  return `${HEADER}import { createRoute, z } from '@hono/zod-openapi';
import { ${schemaNames.join(', ')} } from './schemas.ts';

/** One @hono/zod-openapi route per operation of schemas/openapi.yaml. */
export const routes = {
${ops.map(emitRoute).join('\n')}
};

/**
 * How a request body travels: not at all, as JSON, as a multipart upload stream, or as a WebRTC SDP offer
 * (\`application/sdp\`, or a small multipart form with it: held like JSON, never parsed).
 */
export type BodyFlow = 'none' | 'json' | 'multipart' | 'sdp';
/** How the answer travels: JSON, SSE when the request asks for \`stream: true\`, or a byte stream. */
export type AnswerFlow = 'json' | 'sse-if-stream' | 'binary';
/** Which upstream deadline applies: metadata, text generation, or media generation and big transfers. */
export type TimeoutClass = 'short' | 'standard' | 'long';
/** The operations of the GPT Action surface (served action schema and MCP tools). */
export type ActionOperationId = ${actionIds.length ? actionIds.join(' | ') : 'never'};

export interface RelayOperation {
  readonly operationId: keyof typeof routes;
  readonly method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** The OpenAPI path, also the upstream path: \`/v1/files/{file_id}\`. */
  readonly path: string;
  /** The same path in Hono's router syntax: \`/v1/files/:file_id\`. */
  readonly honoPath: string;
  readonly pathParams: readonly string[];
  readonly tag: string;
  /** passthrough: forwarded to OpenAI by the core; relay: the relay's own operation, handled by its module. */
  readonly kind: 'passthrough' | 'relay';
  readonly body: BodyFlow;
  readonly answer: AnswerFlow;
  readonly timeout: TimeoutClass;
  /** Media types the request body may have, from the spec's requestBody. */
  readonly requestContentTypes: readonly string[];
  /** Response headers the operation declares (lowercased): they reach the caller besides the fixed allowlist. */
  readonly responseHeaders: readonly string[];
  /** Set when the operation belongs to the GPT Action surface (generated/action-schema.json, generated/mcp-tools.ts). */
  readonly action: { readonly consequential: boolean } | null;
  /**
   * OpenAI shut the operation down (x-relay.retired): the relay answers 410 with \`message\` and never
   * calls upstream; it is not part of the action surface.
   */
  readonly retired: { readonly date: string; readonly source: string; readonly replacement: string | null; readonly message: string } | null;
  /**
   * Derived from the spec's shapes (scripts/generate/usage-shape.ts). streamOption: the request takes
   * \`stream_options.include_usage\`, which the relay sets on streams so they are counted. responseObject: the
   * answer is a Responses object, whose usage a background response reports only with a later answer.
   */
  readonly usage: { readonly streamOption: boolean; readonly responseObject: boolean };
  readonly route: (typeof routes)[keyof typeof routes];
}

/** The relay's route table (the x-relay values of every operation), most specific paths first. */
export const operations: readonly RelayOperation[] = [
${table.join('\n')}
];
`;
}
