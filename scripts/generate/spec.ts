import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { isObj, type Json } from './walk.ts';
import { acknowledgementsOf, declaredResponseHeaders, retirementOf, type Acknowledgement, type Retirement } from './marks.ts';
import { usageShape, type UsageShape } from './usage-shape.ts';

/**
 * schemas/openapi.yaml and its `x-relay` marks. This module is the one place that reads `x-relay`: every
 * emitter asks it for an operation's relay values or its GPT Action mark, and the relay itself reads
 * only what the emitters wrote into generated/.
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SPEC_PATH = join(ROOT, 'schemas/openapi.yaml');
/** The relay's metadata key on an operation; never served. */
export const RELAY_KEY = 'x-relay';
/** The methods the relay routes. */
export const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
/** Every method an OpenAPI path item may hold. */
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

const RELAY_VALUES = {
  body: ['none', 'json', 'multipart', 'sdp'],
  answer: ['json', 'sse-if-stream', 'binary'],
  timeout: ['short', 'standard', 'long'],
} as const;

export interface RelayValues {
  kind: 'passthrough' | 'relay';
  body: string;
  answer: string;
  timeout: string;
  action: ActionMark | null;
  /** OpenAI shut the operation down: answered 410 by the relay, never forwarded. */
  retired: Retirement | null;
  /** Differences from the official spec kept on purpose (read by `npm run spec:drift`). */
  acknowledged: Acknowledgement[];
}

export interface ActionMark {
  consequential: boolean;
}

export interface OperationInfo {
  operationId: string;
  method: string;
  path: string;
  tag: string;
  pathParams: string[];
  queryParams: Json[];
  relay: RelayValues;
  requestContentTypes: string[];
  /** Response headers the operation declares, lowercased: they pass the answer-header allowlist. */
  responseHeaders: string[];
  usage: UsageShape;
  op: Json;
}

export function loadSpec(specPath = SPEC_PATH): Json {
  const text = readFileSync(specPath, 'utf8');
  const parsed: unknown = specPath.endsWith('.json') ? JSON.parse(text) : parse(text);
  if (!isObj(parsed) || !isObj(parsed.paths)) throw new Error(`${specPath} is not an OpenAPI document (no paths).`);
  return parsed;
}

/**
 * An operation's GPT Action mark: `{consequential}` when it belongs to the action surface (the served GPT
 * Action schema and the MCP tools), null when not, a string when the mark is malformed.
 */
export function actionMark(op: Json): ActionMark | null | string {
  const relay = op[RELAY_KEY];
  if (!isObj(relay) || relay.action === undefined || relay.action === null) return null;
  // A retired operation leaves the action surface (the GPT Action schema and the MCP tools) with its mark.
  if (relay.retired !== undefined && relay.retired !== null) return null;
  if (!isObj(relay.action) || typeof relay.action.consequential !== 'boolean') {
    return `${RELAY_KEY}.action must be {consequential: true|false}, said on purpose`;
  }
  return { consequential: relay.action.consequential };
}

/** Every operation of the spec, in spec order, with its relay values checked. Throws listing every problem. */
export function listOperations(spec: Json): OperationInfo[] {
  const out: OperationInfo[] = [];
  const problems: string[] = [];
  for (const [path, item] of Object.entries<Json>(spec.paths ?? {})) {
    const sharedParams: Json[] = item.parameters ?? [];
    for (const method of METHODS) {
      const op = item[method];
      // WebSocket endpoints are not HTTP operations: websockets.ts reads and checks them.
      if (!op || op[RELAY_KEY]?.kind === 'websocket') continue;
      const where = `${method.toUpperCase()} ${path}`;
      const params = [...sharedParams, ...(op.parameters ?? [])];
      if (params.some((p) => p.$ref)) problems.push(`${where}: parameters must be written inline, not by $ref`);
      const relay = op[RELAY_KEY] ?? {};
      if (relay.kind !== undefined && !['passthrough', 'relay'].includes(relay.kind)) {
        problems.push(`${where}: x-relay.kind must be passthrough (the default) or relay (got ${JSON.stringify(relay.kind)})`);
      }
      for (const [key, allowed] of Object.entries(RELAY_VALUES)) {
        if (!(allowed as readonly string[]).includes(relay[key])) {
          problems.push(`${where}: x-relay.${key} must be one of ${allowed.join(', ')} (got ${JSON.stringify(relay[key])})`);
        }
      }
      if (!op.operationId) problems.push(`${where}: operationId is missing`);
      const action = actionMark(op);
      if (typeof action === 'string') problems.push(`${where}: ${action}`);
      const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const name of pathParams) {
        if (!params.some((p) => p.in === 'path' && p.name === name)) problems.push(`${where}: path parameter {${name}} is not declared`);
      }
      const requestContentTypes = Object.keys(op.requestBody?.content ?? {});
      if (relay.body === 'sdp' && !requestContentTypes.includes('application/sdp')) {
        problems.push(`${where}: x-relay.body sdp needs an application/sdp request body`);
      }
      const retired = retirementOf(relay, where, problems);
      const acknowledged = acknowledgementsOf(relay.acknowledged, 'operation', where, problems);
      out.push({
        operationId: op.operationId,
        method,
        path,
        tag: op.tags?.[0] ?? 'default',
        pathParams,
        queryParams: params.filter((p) => p.in === 'query'),
        relay: {
          kind: relay.kind ?? 'passthrough',
          body: relay.body,
          answer: relay.answer,
          timeout: relay.timeout,
          action: typeof action === 'object' ? action : null,
          retired,
          acknowledged,
        },
        requestContentTypes,
        responseHeaders: declaredResponseHeaders(spec, op, problems, where),
        usage: usageShape(spec, op),
        op,
      });
    }
  }
  documentAcknowledgements(spec, problems);
  const seen = new Set<string>();
  for (const o of out) {
    if (seen.has(o.operationId)) problems.push(`operationId ${o.operationId} is used twice`);
    seen.add(o.operationId);
  }
  if (problems.length) throw new Error(`schemas/openapi.yaml is not valid for the relay:\n  - ${problems.join('\n  - ')}`);
  return out;
}

/** Acknowledged differences kept at the document level (`x-relay.acknowledged` at the root: missing operations). */
export function documentAcknowledgements(spec: Json, problems: string[] = []): Acknowledgement[] {
  const relay = isObj(spec[RELAY_KEY]) ? spec[RELAY_KEY] : {};
  return acknowledgementsOf(relay.acknowledged, 'document', 'document', problems);
}
