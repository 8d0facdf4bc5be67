import { Server, type Tool } from '@modelcontextprotocol/server';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import { ErrorCode, McpError, type CallToolResult, type ContentBlock } from '@modelcontextprotocol/sdk/types.js';
import { ACTION_INFO_DESCRIPTION } from '../../generated/documents.ts';
import { mcpTools, type McpTool, type McpToolEntry, type ToolLayout } from '../../generated/mcp-tools.ts';
import { operations as generatedOperations, type RelayOperation } from '../../generated/routes.ts';
import { actionSignal, fitActionAnswer } from '../actions/budget.ts';
import type { ActionCall, ActionDeps } from '../actions/context.ts';
import { actionRunners, type ActionRunner } from '../actions/index.ts';
import { RelayError } from '../core/errors.ts';
import { isObj } from '../core/json.ts';
import { checkPathParam } from '../core/path-params.ts';
import { fitProxyAnswer, parseProxyEnvelope } from '../actions/proxy-envelope.ts';
import { transportFailure } from '../upstream/client.ts';

/**
 * The MCP door to the action operations: each tool call runs the SAME handler as the matching HTTP
 * action route (src/routes/actions.ts), with the same validation (the generated zod schemas), the same
 * path-parameter allowlist, deadline, base URL for links and answer budget. One implementation, two doors.
 */

type Json = Record<string, any>;
type ZodLike = { safeParse(value: unknown): { success: true; data: any } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } };

const PROXY_TOOL = 'relayProxy';

export interface McpTools {
  /** What `tools/list` answers. */
  list: McpTool[];
  byName: Map<string, { tool: McpTool; layout: ToolLayout; operation: RelayOperation; handler?: ActionRunner }>;
}

/**
 * The generated tool list (generated/mcp-tools.ts) joined to the route table and the handlers, by
 * operationId: both come from the same run of `npm run generate`, so there is nothing to cross-check.
 */
export function createMcpTools(
  entries: readonly McpToolEntry[] = mcpTools,
  operations: readonly RelayOperation[] = generatedOperations,
  handlers: Readonly<Record<string, ActionRunner | undefined>> = actionRunners,
): McpTools {
  const byId = new Map(operations.map((op) => [op.operationId as string, op]));
  const byName: McpTools['byName'] = new Map();
  for (const { tool, layout } of entries) {
    const operation = byId.get(layout.operationId);
    if (!operation) throw new Error(`generated/mcp-tools.ts names ${layout.operationId}, which generated/routes.ts lacks: run npm run generate`);
    byName.set(tool.name, { tool, layout, operation, handler: handlers[tool.name] });
  }
  return { list: entries.map((e) => e.tool), byName };
}

/** What a tool call knows about the HTTP request that carried it. */
export interface McpCallContext {
  /** Public base URL of the relay (links to stored files), as the HTTP action door works it out. */
  baseUrl: string;
  /** Aborts when the HTTP caller goes away. */
  signal?: AbortSignal;
}

const validator = new AjvJsonSchemaValidator();

/** The tool list is the same for every caller until the relay restarts: clients may cache it (2026-07-28). */
const TOOL_LIST_TTL_MS = 5 * 60_000;

/**
 * A fresh low-level MCP server for one HTTP request (stateless Streamable HTTP), from the official SDK's
 * v2 (@modelcontextprotocol/server), which speaks both the 2025 protocol versions (initialize) and
 * 2026-07-28 (per-request envelope, server/discover): the same handlers serve both.
 */
export function createMcpServer(tools: McpTools, deps: ActionDeps, context: McpCallContext, info: { name: string; version: string; title?: string }): Server {
  const server = new Server(info, {
    capabilities: { tools: { listChanged: false } },
    instructions: ACTION_INFO_DESCRIPTION,
    jsonSchemaValidator: validator,
    cacheHints: { 'tools/list': { ttlMs: TOOL_LIST_TTL_MS, cacheScope: 'private' } },
  });
  // The generated tools are JSON Schema objects typed loosely (`Record<string, Json>`); the SDK's Tool type is stricter JSON.
  server.setRequestHandler('tools/list', async () => ({ tools: tools.list as unknown as Tool[] }));
  server.setRequestHandler('tools/call', async (request, ctx) => {
    const signal = context.signal ? AbortSignal.any([ctx.mcpReq.signal, context.signal]) : ctx.mcpReq.signal;
    return callTool(tools, deps, { ...context, signal }, request.params.name, request.params.arguments);
  });
  return server;
}

/**
 * Runs one tool. Unknown tools are a protocol error (the caller asked for something that is not there);
 * everything else — bad arguments, refusals, OpenAI's errors — is a tool result with `isError: true`,
 * so the model reads the reason and can correct itself.
 */
export async function callTool(tools: McpTools, deps: ActionDeps, context: McpCallContext, name: string, args: unknown): Promise<CallToolResult> {
  const entry = tools.byName.get(name);
  if (!entry) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}. Call tools/list for the tools this relay serves.`);
  const { config } = deps;
  const started = Date.now();
  const call = (parts: Pick<ActionCall, 'params' | 'query' | 'body'>): ActionCall => ({
    ...parts,
    signal: actionSignal(config.actions.deadlineMs, context.signal),
    deadlineAt: started + config.actions.deadlineMs,
    baseUrl: context.baseUrl,
  });
  try {
    if (args !== undefined && !isObj(args)) throw invalid('the arguments must be a JSON object');
    const given = (args ?? {}) as Json;
    // The proxy tool's answer is fitted by the envelope's own rules (as POST /v1/proxy's is); the others by the action budget.
    const fitted = name === PROXY_TOOL ? await callProxy(given, deps, call({ params: {}, query: {}, body: given })) : fitActionAnswer(await entry.handler!(call(splitArguments(entry, given)), deps));
    return toolResult(fitted.truncated ? { ...(fitted.value as object), truncated: true } : fitted.value);
  } catch (err) {
    return errorResult(transportFailure(err));
  }
}

// ---------------------------------------------------------------- arguments

const invalid = (message: string, param?: string) => new RelayError(400, `Invalid arguments: ${message}.`, { code: 'invalid_arguments', param });

function check(schema: ZodLike | undefined, value: unknown, prefix = ''): any {
  if (!schema) return value;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  throw invalid(param ? `${param}: ${issue.message}` : issue.message, param || undefined);
}

/**
 * The flat MCP arguments → the path parameters, query and body the HTTP door would have, each validated
 * by the operation's own generated zod schema.
 */
function splitArguments(entry: NonNullable<ReturnType<McpTools['byName']['get']>>, args: Json): Pick<ActionCall, 'params' | 'query' | 'body'> {
  const { layout, operation } = entry;
  const request = (operation.route as { request?: Json }).request ?? {};
  const rawParams: Json = {};
  const rawQuery: Json = {};
  let rawBody: unknown;
  for (const [key, value] of Object.entries(args)) {
    if (layout.pathParams.includes(key)) rawParams[key] = value;
    else if (layout.queryParams.includes(key)) rawQuery[key] = value;
    else if (layout.body === 'properties') ((rawBody ??= {}) as Json)[key] = value;
    else if (layout.body === 'wrapped' && key === 'body') rawBody = value;
    else throw invalid(`${entry.tool.name} takes no argument ${key}`, key);
  }
  const params: Record<string, string> = {};
  for (const name of layout.pathParams) if (rawParams[name] === undefined) throw invalid(`${name} is required`, name);
  for (const [name, value] of Object.entries<string>(check(request.params, rawParams) ?? {})) params[name] = checkPathParam(name, value);
  const query = check(request.query, rawQuery) ?? {};
  let body: unknown;
  if (operation.body === 'json') {
    const schema = request.body?.content?.['application/json']?.schema as ZodLike | undefined;
    body = check(schema, rawBody ?? {}, layout.body === 'wrapped' ? 'body' : '') ?? {};
  }
  return { params, query, body };
}

// ---------------------------------------------------------------- the proxy tool

/**
 * relayProxy over MCP: the envelope, allowlist, refusals and answer fitting of POST /v1/proxy
 * (actions/proxy-envelope.ts), as a JSON call through the relay's client instead of a raw byte stream: a
 * tool answers once, so streaming is refused.
 */
async function callProxy(args: Json, deps: ActionDeps, call: ActionCall): Promise<{ value: unknown; truncated: boolean }> {
  const target = parseProxyEnvelope(args, (detail, param) => invalid(param ? `${param}: ${detail}` : detail, param), { allowStream: false });
  const result = await deps.openai.api.request(target.operation.method as 'get', `${target.upstreamPath}${target.search}` as never, {
    ...(target.body !== undefined ? { body: target.body } : {}),
    signal: call.signal,
  } as never);
  const { data, response } = result as { data?: unknown; error?: unknown; response: Response };
  if (!response.ok) return deps.openai.unwrap(result as never);
  if (data === undefined || data === null) return { value: { status: response.status }, truncated: false };
  return fitProxyAnswer(isObj(data) ? data : { data });
}

// ---------------------------------------------------------------- results

const BASE64_NOTE = '[base64 omitted here: the file is attached to this result as a content item]';

/**
 * The answer as JSON text and as `structuredContent`, plus one content item per file: links to the relay's
 * blob store (`url`, `images[].url`, link entries of `openaiFileResponse`) as `resource_link`s, inline
 * files (`openaiFileResponse[].content`) as an `image` or an embedded `resource`.
 */
export function toolResult(answer: unknown): CallToolResult {
  const structured: Json = isObj(answer) ? answer : { result: answer };
  const files: ContentBlock[] = [];
  const linked = new Set<string>();
  const link = (uri: unknown, name: string, mimeType?: unknown) => {
    if (typeof uri !== 'string' || !/^https?:\/\//i.test(uri) || linked.has(uri)) return;
    linked.add(uri);
    files.push({ type: 'resource_link', uri, name, ...(typeof mimeType === 'string' ? { mimeType } : {}) });
  };

  let text = structured;
  if (Array.isArray(structured.openaiFileResponse)) {
    const shown: unknown[] = [];
    for (const [i, file] of structured.openaiFileResponse.entries()) {
      if (typeof file === 'string') {
        link(file, nameOf(structured, i), structured.mime_type);
        shown.push(file);
      } else if (isObj(file) && typeof file.content === 'string') {
        const mimeType = typeof file.mime_type === 'string' ? file.mime_type : 'application/octet-stream';
        const name = typeof file.name === 'string' ? file.name : nameOf(structured, i);
        files.push(
          mimeType.startsWith('image/')
            ? { type: 'image', data: file.content, mimeType }
            : { type: 'resource', resource: { uri: `relay-file:///${encodeURIComponent(name)}`, mimeType, blob: file.content } },
        );
        shown.push({ ...file, content: BASE64_NOTE });
      } else shown.push(file);
    }
    text = { ...structured, openaiFileResponse: shown };
  }
  if (Array.isArray(structured.images)) {
    for (const [i, image] of structured.images.entries()) {
      if (!isObj(image)) continue;
      const ext = typeof image.mime_type === 'string' ? `.${image.mime_type.split('/')[1]}` : '';
      link(image.url, `image-${i + 1}${ext}`, image.mime_type);
    }
  }
  link(structured.url, nameOf(structured, 0), structured.mime_type);
  return { content: [{ type: 'text', text: JSON.stringify(text) }, ...files], structuredContent: structured };
}

function nameOf(answer: Json, index: number): string {
  for (const key of ['name', 'filename', 'id']) if (typeof answer[key] === 'string' && answer[key]) return answer[key];
  return `file-${index + 1}`;
}

/** A refusal or upstream error as the model should read it: OpenAI's message, with its status and code alongside. */
export function errorResult(err: unknown): CallToolResult {
  const relayError =
    err instanceof RelayError ? err : new RelayError(500, 'The relay failed to handle this tool call.', { code: 'relay_error' });
  const { error } = relayError.toJSON();
  const retryAfter = Number(relayError.headers['retry-after']);
  return {
    isError: true,
    content: [{ type: 'text', text: relayError.message }],
    // The HTTP status and Retry-After an HTTP caller would have had, for clients that act on them.
    structuredContent: { error: { ...error, status: relayError.status, ...(Number.isFinite(retryAfter) ? { retry_after_seconds: retryAfter } : {}) } },
  };
}
