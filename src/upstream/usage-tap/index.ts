import { jsonTap } from './json-tap.ts';
import { sseTap } from './sse-tap.ts';

import type { UsageTap } from './types.ts';

export type { TokenDetail, TokenDetails, UsageInfo, UsageTap } from './types.ts';
export { withRequestModel } from './request-model.ts';

/**
 * Reads the model and token usage out of an OpenAI answer as it passes by, without slowing it.
 *
 * The forwarding core calls `write(chunk)` with each chunk it has already written to the caller, then
 * `end()`. Both are synchronous, cheap and never throw; the chunks are never changed.
 *
 * - `application/json`: the body is kept up to `maxJsonBytes` (default 32 KB), past that only its first
 *   and last 16 KB. The top-level `model` and `usage` are picked out of that text without parsing the
 *   whole document (OpenAI puts `usage` at or near the end, and `model` near one end; parsing a large
 *   embeddings answer whole would cost far more than the request). Enough for a 2 MB embeddings list or a
 *   base64 image (usage last), and for a Responses object with the largest metadata after its usage.
 * - `text/event-stream`: lines are split as bytes arrive; only the current partial line is held
 *   (capped at 1 MB, past which only its first and last 4 KB are), and only `data:` lines that can
 *   carry what is missing are parsed: one with a non-null `"usage"` object (Responses'
 *   `response.completed` / `.incomplete` / `.failed`, the Chat Completions usage chunk of
 *   `stream_options.include_usage`, audio and image `*.done` / `*.completed` events), and the first
 *   one with a `"model"`.
 *
 * Usage is read in any of OpenAI's shapes: Responses and images (`input_tokens`, `output_tokens`,
 * `total_tokens`), Chat Completions (`prompt_tokens`, `completion_tokens`, `total_tokens`), Embeddings
 * (`prompt_tokens`, `total_tokens`), with the details that change its price (cached, cache-write, audio,
 * image and reasoning tokens, from the same object) and, for answers that generated output, the
 * `service_tier` beside it.
 */

export interface UsageTapOptions {
  /**
   * Also read a Responses object's `id` and `status` (top level of a JSON answer, or an event's `response`):
   * what tells a background response still running from one that finished.
   */
  responseState?: boolean;
  /** Largest JSON answer held whole (past it, only its edges). Default 32 KB. */
  maxJsonBytes?: number;
  /** Longest SSE line kept whole. Default 1 MB. */
  maxLineBytes?: number;
  /** The answer's Content-Encoding: a compressed answer cannot be read, so no tap. */
  contentEncoding?: string;
}

const DEFAULT_MAX_JSON_BYTES = 32 * 1024;
const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

export function createUsageTap(contentType: string | undefined, opts: UsageTapOptions = {}): UsageTap | undefined {
  if (typeof contentType !== 'string') return undefined;
  const encoding = opts.contentEncoding?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') return undefined;
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') return jsonTap(limit(opts.maxJsonBytes, DEFAULT_MAX_JSON_BYTES), opts.responseState === true);
  if (mediaType === 'text/event-stream') return sseTap(limit(opts.maxLineBytes, DEFAULT_MAX_LINE_BYTES), opts.responseState === true);
  return undefined;
}

function limit(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : fallback;
}
