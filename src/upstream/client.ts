import { Readable } from 'node:stream';
import type { Middleware } from 'openapi-fetch';
import { createUpstreamClient, type UpstreamClient } from '../../generated/upstream-client.ts';
import { RelayError } from '../core/errors.ts';
import type { UpstreamPolicy } from './policy.ts';
import { isRetryableError, isRetryableStatus, retryAfterMs, retryDelayMs } from './retry.ts';
import { operationOf } from './operation-of.ts';
import type { UsageAccount } from './usage-account.ts';

/**
 * The relay's own calls to OpenAI (action operations and MCP tools), as opposed to pass-through: a typed
 * openapi-fetch client from the generated spec types, with the upstream policy as its middleware
 * (`client.use`): the server key, the operation's deadline, retries of what can be replayed, the key
 * redacted from error answers, the server key's refusal as a 502, and each answer's usage added to the
 * request's account. Uploads and downloads go through the same client, so through the same policy.
 */
export interface OpenAIClient {
  api: UpstreamClient;
  /** Turns an openapi-fetch result into its data, or throws the upstream error as a RelayError. */
  unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T;
  /**
   * Streams a multipart body (built by `multipartBody`) to an upload operation and returns its JSON. `model`:
   * the model the body names, for pricing an answer that reports usage without one (image edits).
   */
  upload<T>(path: string, body: Readable, boundary: string, signal: AbortSignal, model?: string): Promise<T>;
  /** Opens a binary download (file or video content) as a node stream. */
  download(path: string, signal: AbortSignal): Promise<{ stream: Readable; contentType: string; length?: number }>;
}

export interface OpenAIClients {
  /** A client whose calls are counted into `account` (one per relay request: an action or an MCP call). */
  forCall(account: UsageAccount): OpenAIClient;
}

/**
 * Between the client's own methods and its middleware only: the model a multipart body names (the middleware
 * reads a JSON body's `model` itself). Taken off before the request leaves.
 */
const MODEL_HINT = 'x-relay-usage-model';
/** Largest JSON request body whose `model` is read for pricing an answer that names none. */
const MAX_MODEL_BODY_BYTES = 64 * 1024;

/** Error answers are read whole to redact the key and take OpenAI's message; past this they are cut. */
const MAX_ERROR_BYTES = 1024 * 1024;

export function createOpenAIClients(policy: UpstreamPolicy): OpenAIClients {
  const base = policy.base;
  const basePath = base.pathname === '/' ? '' : base.pathname;
  const baseUrl = `${base.origin}${basePath}`;
  return {
    forCall(account) {
      const api = createUpstreamClient({ baseUrl });
      api.use(policyMiddleware(policy, account, basePath));
      const unwrap = <T>(result: { data?: T; error?: unknown; response: Response }): T => {
        if (result.response.ok && result.data !== undefined) return result.data;
        throw upstreamFailure(result.response, result.error);
      };
      return {
        api,
        unwrap,
        async upload(path, body, boundary, signal, model) {
          const result = await guard(
            api.request('post', path as never, {
              body: Readable.toWeb(body),
              bodySerializer: (b: unknown) => b,
              headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...(model ? { [MODEL_HINT]: model } : {}) },
              // Without these, undici tees the upload body in memory to replay it on a redirect.
              duplex: 'half',
              redirect: 'error',
              signal,
            } as never),
          );
          return unwrap(result as { data?: unknown; error?: unknown; response: Response }) as never;
        },
        async download(path, signal) {
          const result = (await guard(api.request('get', path as never, { parseAs: 'stream', redirect: 'error', signal } as never))) as {
            data?: ReadableStream;
            error?: unknown;
            response: Response;
          };
          const stream = unwrap(result);
          const length = Number(result.response.headers.get('content-length'));
          return {
            stream: Readable.fromWeb(stream as never),
            contentType: result.response.headers.get('content-type') ?? 'application/octet-stream',
            length: Number.isFinite(length) && length > 0 ? length : undefined,
          };
        },
      };
    },
  };
}

/** The upstream policy as openapi-fetch middleware, counting into one request's account. */
function policyMiddleware(policy: UpstreamPolicy, account: UsageAccount, basePath: string): Middleware {
  const started = new Map<string, { at: number; attempts: number; model?: string }>();
  const settle = (id: string, response: Response | undefined) => {
    const call = started.get(id);
    started.delete(id);
    const ms = call ? Math.round(performance.now() - call.at) : undefined;
    const upstreamId = response?.headers.get('x-request-id');
    account.add(undefined, ms, call?.attempts ?? 1, upstreamId ? policy.redact(upstreamId) : undefined);
  };
  return {
    async onRequest({ request, id }) {
      started.set(id, { at: performance.now(), attempts: 1, model: await requestModel(request) });
      request.headers.delete(MODEL_HINT);
      for (const [name, value] of Object.entries(policy.identityHeaders)) request.headers.set(name, value);
      const operation = operationOf(request.method, new URL(request.url).pathname.slice(basePath.length));
      if (!operation) return undefined;
      const signal = AbortSignal.any([request.signal, AbortSignal.timeout(policy.deadlineMs(operation))]);
      return new Request(request, { signal, duplex: 'half' } as RequestInit);
    },
    async onError({ request, error, options, id }) {
      const operation = operationOf(request.method, new URL(request.url).pathname.slice(basePath.length));
      const code = (error as { cause?: { code?: string } })?.cause?.code;
      if (isRetryableError(code) && replaySafe(request)) {
        const again = await retry(policy, request, options.fetch, started.get(id), undefined);
        if (again) return again;
      }
      policy.upstreamError(operation?.operationId ?? 'unknown', code ? 'connect' : 'aborted');
      settle(id, undefined);
      return error instanceof Error ? error : new Error(String(error));
    },
    async onResponse({ request, response, options, id }) {
      const operation = operationOf(request.method, new URL(request.url).pathname.slice(basePath.length));
      const sentModel = started.get(id)?.model;
      let answer = response;
      if (isRetryableStatus(answer.status) && replaySafe(request)) answer = (await retry(policy, request, options.fetch, started.get(id), answer)) ?? answer;
      settle(id, answer);
      if (answer.status === 401) {
        await answer.body?.cancel();
        throw policy.serverKeyRefused(operation?.operationId ?? 'unknown', policy.redact(answer.headers.get('x-request-id') ?? '-'));
      }
      if (!answer.ok) return redactedError(policy, answer);
      const tap = operation && answer.body ? policy.usageTap(operation, request.method, answer.status, answer.headers.get('content-type') ?? undefined, answer.headers.get('content-encoding') ?? undefined) : undefined;
      if (!tap || !operation) return answer === response ? undefined : answer;
      const counted = answer.body!.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            tap.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            controller.enqueue(chunk);
          },
          flush() {
            const usage = tap.end();
            // An answer that names no model (images) is priced by the model the request named.
            if (usage && usage.model === undefined && sentModel !== undefined) usage.model = sentModel;
            if (usage) account.add(policy.countUsage(operation, request.method, usage), undefined, 0);
          },
        }),
      );
      return new Response(counted, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
    },
  };
}

/** The model a request names: its hint header, or a small JSON body's top-level `model`. */
async function requestModel(request: Request): Promise<string | undefined> {
  const hinted = request.headers.get(MODEL_HINT);
  if (hinted) return hinted;
  if (request.body === null || !(request.headers.get('content-type') ?? '').startsWith('application/json')) return undefined;
  if (Number(request.headers.get('content-length') ?? 0) > MAX_MODEL_BODY_BYTES) return undefined;
  try {
    const text = await request.clone().text();
    if (text.length > MAX_MODEL_BODY_BYTES) return undefined;
    const model = (JSON.parse(text) as { model?: unknown }).model;
    return typeof model === 'string' && model.length <= 256 ? model : undefined;
  } catch {
    return undefined;
  }
}

/** GET and DELETE (and anything sent with an Idempotency-Key) without a body can be sent again unchanged. */
function replaySafe(request: Request): boolean {
  return request.body === null && (request.method === 'GET' || request.method === 'DELETE' || request.headers.has('idempotency-key'));
}

/**
 * Sends `request` again while the answer (or transport failure) is retryable, within the policy's attempt
 * count and budget; the last answer, or undefined when no further attempt was allowed or all failed.
 */
async function retry(
  policy: UpstreamPolicy,
  request: Request,
  fetch: typeof globalThis.fetch,
  call: { at: number; attempts: number } | undefined,
  first: Response | undefined,
): Promise<Response | undefined> {
  const rules = policy.retry;
  let last = first;
  for (let attempt = call?.attempts ?? 1; attempt <= rules.maxRetries; attempt++) {
    const delay = retryDelayMs(attempt, last ? retryAfterMs({ 'retry-after-ms': last.headers.get('retry-after-ms') ?? undefined, 'retry-after': last.headers.get('retry-after') ?? undefined }) : 0, rules);
    if (performance.now() - (call?.at ?? performance.now()) + delay > rules.budgetMs || request.signal.aborted) break;
    await last?.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (call) call.attempts++;
    try {
      last = await fetch(request.clone());
    } catch (err) {
      if (!isRetryableError((err as { cause?: { code?: string } })?.cause?.code)) throw err;
      last = undefined;
      continue;
    }
    if (!isRetryableStatus(last.status)) return last;
  }
  return last === first ? undefined : last;
}

/**
 * An error answer with the server key redacted from its body (fetch has decoded it); one over MAX_ERROR_BYTES
 * is too large to inspect and is replaced (a cut could leave the beginning of the key behind).
 */
async function redactedError(policy: UpstreamPolicy, response: Response): Promise<Response> {
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let cut = false;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_ERROR_BYTES) {
        await reader.cancel();
        cut = true;
        break;
      }
      chunks.push(value);
    }
  }
  const text = cut
    ? JSON.stringify({ error: { message: `OpenAI answered ${response.status} with an error body over ${MAX_ERROR_BYTES} bytes, too large to inspect for secrets, so it is cut.`, type: 'upstream_error', param: null, code: 'upstream_error_too_large' } })
    : policy.redact(Buffer.concat(chunks).toString('utf8'));
  const headers = new Headers();
  for (const name of ['content-type', 'retry-after', 'x-request-id']) {
    const value = response.headers.get(name);
    if (value !== null) headers.set(name, policy.redact(value));
  }
  return new Response(text, { status: response.status, statusText: response.statusText, headers });
}

/** openapi-fetch calls with transport failures mapped to the relay's own 502/504. */
async function guard<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw transportFailure(err);
  }
}

/** Aborts and network failures of the relay's own upstream calls as 504/502; anything else unchanged. */
export function transportFailure(err: unknown): unknown {
  if (err instanceof RelayError) return err;
  const name = (err as Error)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new RelayError(504, 'The work did not finish within the time an action allows (45 s); try a smaller request, or poll for the result.', {
      code: 'action_timeout',
    });
  }
  if (err instanceof TypeError && (err.message === 'fetch failed' || err.cause !== undefined)) {
    return new RelayError(502, 'Could not reach OpenAI.', { code: 'upstream_unreachable' });
  }
  return err;
}

/** OpenAI's error answer as a RelayError keeping its status, message (already redacted), code and param. */
function upstreamFailure(response: Response, body: unknown): RelayError {
  const upstream = (body as { error?: { message?: string; type?: string; code?: string; param?: string } })?.error;
  const message = upstream?.message ?? `OpenAI answered ${response.status}.`;
  const headers: Record<string, string> = {};
  const retryAfter = response.headers.get('retry-after');
  if (retryAfter) headers['retry-after'] = retryAfter;
  const requestId = response.headers.get('x-request-id');
  if (requestId) headers['x-upstream-request-id'] = requestId;
  return new RelayError(response.status >= 400 ? response.status : 502, message, {
    code: upstream?.code ?? 'upstream_error',
    param: upstream?.param ?? undefined,
    headers,
  });
}
