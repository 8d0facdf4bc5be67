import { Readable } from 'node:stream';
import { createUpstreamClient, type UpstreamClient } from '../../generated/upstream-client.ts';
import type { RelayConfig } from '../config.ts';
import { RelayError } from '../core/errors.ts';
import { upstreamIdentityHeaders } from '../core/headers.ts';
import { makeRedactor } from '../core/forward.ts';

/**
 * The relay's own calls to OpenAI (action operations), as opposed to pass-through: a typed openapi-fetch
 * client from the generated spec types, the server key added here, and upstream failures turned into
 * RelayErrors that keep OpenAI's status and message (never the key).
 */
export interface OpenAIClient {
  api: UpstreamClient;
  /** Turns an openapi-fetch result into its data, or throws the upstream error as a RelayError. */
  unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T;
  /** Streams a multipart body (built by `multipartBody`) to an upload operation and returns its JSON. */
  upload<T>(path: string, body: Readable, boundary: string, signal: AbortSignal): Promise<T>;
  /** Opens a binary download (file or video content) as a node stream. */
  download(path: string, signal: AbortSignal): Promise<{ stream: Readable; contentType: string; length?: number }>;
}

export function createOpenAIClient(config: RelayConfig): OpenAIClient {
  const base = new URL(config.upstreamBase);
  const baseUrl = `${base.origin}${base.pathname === '/' ? '' : base.pathname}`;
  const identity = upstreamIdentityHeaders(config);
  const redact = makeRedactor([config.openaiApiKey]);
  const api = createUpstreamClient({ baseUrl, headers: identity });

  const failure = async (response: Response, error?: unknown): Promise<never> => {
    let body = error;
    if (body === undefined) body = await response.json().catch(() => undefined);
    throw upstreamFailure(response, body, redact);
  };

  return {
    api,
    unwrap(result) {
      if (result.response.ok && result.data !== undefined) return result.data;
      throw upstreamFailure(result.response, result.error, redact);
    },
    async upload(path, body, boundary, signal) {
      const response = await guardFetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers: { ...identity, 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: Readable.toWeb(body) as ReadableStream,
        // Without these, undici tees the upload body in memory to replay it on a redirect.
        duplex: 'half',
        redirect: 'error',
        signal,
      } as RequestInit);
      if (!response.ok) return failure(response);
      return (await response.json()) as never;
    },
    async download(path, signal) {
      const response = await guardFetch(`${baseUrl}${path}`, { headers: identity, redirect: 'error', signal });
      if (!response.ok || !response.body) return failure(response);
      const length = Number(response.headers.get('content-length'));
      return {
        stream: Readable.fromWeb(response.body as never),
        contentType: response.headers.get('content-type') ?? 'application/octet-stream',
        length: Number.isFinite(length) && length > 0 ? length : undefined,
      };
    },
  };
}

/** fetch with transport failures mapped to the relay's own 502/504. */
async function guardFetch(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
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

function upstreamFailure(response: Response, body: unknown, redact: (s: string) => string): RelayError {
  const upstream = (body as { error?: { message?: string; type?: string; code?: string; param?: string } })?.error;
  const message = redact(upstream?.message ?? `OpenAI answered ${response.status}.`);
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
