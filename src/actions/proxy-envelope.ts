import { ProxyRequestSchema } from '../../generated/schemas.ts';
import { RelayError } from '../core/errors.ts';
import { resolveProxyTarget, type ProxyTarget } from '../core/proxy-target.ts';
import { fitActionAnswer, MAX_ACTION_ANSWER_CHARS } from './budget.ts';

/**
 * The proxy envelope `{method, path, query?, body?}` (relayProxy), one set of rules for both its doors:
 * POST /v1/proxy (a byte stream through the forwarding core) and the MCP tool (a JSON call through the
 * relay's client). Both parse it here, resolve it against the same route table, and shorten an over-long
 * answer with the same fitter, so the same upstream answer gives the same items, `has_more` and `last_id`.
 */

export interface ProxyCall extends ProxyTarget {
  /** The JSON body to send (POST only), or undefined for none. */
  body: Record<string, unknown> | undefined;
}

/** How a door words a refusal of the envelope itself (the HTTP door and MCP tool arguments say it differently). */
export type EnvelopeRefusal = (detail: string, param?: string) => RelayError;

export const httpEnvelopeRefusal: EnvelopeRefusal = (detail, param) =>
  new RelayError(400, `Invalid proxy envelope${param ? ` at ${param}` : ''}: ${detail}.`, { code: 'invalid_proxy_envelope', param });

/**
 * Parses and checks an envelope: its shape (the generated zod schema), one body (`body`, `json` or
 * `payload`) and one query (`query` or `params`), a body only on a POST, and (when `stream` is refused,
 * as a tool that answers once must) no `stream: true`. Throws the RelayError to answer.
 */
export function parseProxyEnvelope(json: unknown, refuse: EnvelopeRefusal, opts: { allowStream: boolean }): ProxyCall {
  const parsed = ProxyRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path.map(String).join('.') || undefined;
    throw refuse(issue.message, param);
  }
  const envelope = parsed.data;
  const bodies = [envelope.body, envelope.json, envelope.payload].filter((b) => b !== undefined);
  if (bodies.length > 1) throw refuse('give the body once: body, json or payload', 'body');
  if (envelope.query && envelope.params) throw refuse('give the query once: query or params', 'query');
  const query = (envelope.query ?? envelope.params) as Record<string, unknown> | undefined;
  const target = resolveProxyTarget(envelope.method, envelope.path, query);
  const body = bodies[0] as Record<string, unknown> | undefined;
  if (body !== undefined && target.operation.method !== 'post') {
    throw refuse(`${target.operation.method.toUpperCase()} ${target.operation.path} takes no body`, 'body');
  }
  const streamed = (v: unknown) => v === true || v === 'true';
  if (!opts.allowStream && (streamed(body?.stream) || streamed(query?.stream))) {
    throw new RelayError(400, 'An MCP tool answers once: stream must be false (or left out). To stream, call the OpenAI API through the relay directly.', {
      code: 'stream_not_supported',
      param: body?.stream !== undefined ? 'body.stream' : 'query.stream',
    });
  }
  return { ...target, body };
}

/**
 * The proxy's answer within a GPT Action's 100,000 characters: unchanged when its JSON fits, else
 * shortened (`truncated: true`), and for an OpenAI list (`data`, `has_more`, `last_id`) with the cursor
 * fields following the items kept, so `after=<last_id>` pages on.
 */
export function fitProxyAnswer(value: unknown): { value: unknown; truncated: boolean } {
  if (JSON.stringify(value).length <= MAX_ACTION_ANSWER_CHARS) return { value, truncated: false };
  const itemsBefore = Array.isArray((value as { data?: unknown })?.data) ? (value as { data: unknown[] }).data.length : undefined;
  const fitted = fitActionAnswer(value);
  const out = fitted.value as Record<string, unknown> | null;
  if (!fitted.truncated || !out || typeof out !== 'object' || Array.isArray(out)) return fitted;
  out.truncated = true;
  const data = out.data;
  if (Array.isArray(data) && itemsBefore !== undefined && data.length < itemsBefore) {
    out.has_more = true;
    const lastId = (data[data.length - 1] as { id?: unknown } | undefined)?.id;
    if (typeof lastId === 'string') out.last_id = lastId;
  }
  return fitted;
}

/** The fitter the forwarding core applies to POST /v1/proxy answers. */
export const PROXY_ANSWER_FIT = { maxChars: MAX_ACTION_ANSWER_CHARS, fit: fitProxyAnswer };
