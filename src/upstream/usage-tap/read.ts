import type { TokenDetail, TokenDetails, UsageInfo } from './types.ts';

/** Reading usage, model (and a Responses object's state) out of parsed answers and events. */

const MAX_MODEL_LENGTH = 256;
const MAX_TIER_LENGTH = 32;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One SSE event: Responses events carry the response under `response`, the others are flat. */
export function readEvent(event: unknown, info: UsageInfo, responseState = false): void {
  if (!isObject(event)) return;
  if (isObject(event.response) && typeof event.type === 'string' && event.type.startsWith('response.')) {
    readObject(event.response, info, responseState);
  } else {
    readObject(event, info, responseState);
  }
}

function readObject(obj: unknown, info: UsageInfo, responseState: boolean): void {
  if (!isObject(obj)) return;
  const model = modelName(obj.model);
  if (model !== undefined) info.model = model;
  if (responseState && obj.object === 'response') readResponseState(obj.id, obj.status, info);
  if (isObject(obj.usage)) {
    readUsage(obj.usage, info);
    const tier = serviceTier(obj.service_tier);
    if (tier !== undefined) info.serviceTier = tier;
  }
}

export function readUsage(u: Record<string, unknown>, info: UsageInfo): void {
  const input = tokens(u.input_tokens) ?? tokens(u.prompt_tokens);
  const output = tokens(u.output_tokens) ?? tokens(u.completion_tokens);
  const total = tokens(u.total_tokens) ?? (input !== undefined && output !== undefined ? input + output : undefined);
  if (input === undefined && output === undefined && total === undefined) return;
  info.inputTokens = input;
  info.outputTokens = output;
  info.totalTokens = total;
  for (const k of ['inputTokens', 'outputTokens', 'totalTokens'] as const) if (info[k] === undefined) delete info[k];
  const details = readDetails(u);
  if (details) info.details = details;
  else delete info.details;
}

/**
 * The parts OpenAI prices apart, from whichever shape the answer has: Responses and images
 * (`input_tokens_details`, `output_tokens_details`), Chat Completions (`prompt_tokens_details`,
 * `completion_tokens_details`), transcriptions and Realtime (`input_token_details`, `output_token_details`).
 */
function readDetails(u: Record<string, unknown>): TokenDetails | undefined {
  const input = firstObject(u.input_tokens_details, u.prompt_tokens_details, u.input_token_details);
  const output = firstObject(u.output_tokens_details, u.completion_tokens_details, u.output_token_details);
  if (!input && !output) return undefined; // embeddings: nothing to allocate
  let found: TokenDetails | undefined;
  const put = (name: TokenDetail, v: unknown) => {
    const n = tokens(v);
    if (n !== undefined && n > 0) (found ??= {})[name] = n;
  };
  if (input) {
    put('cachedInput', input.cached_tokens);
    put('cacheWrite', input.cache_write_tokens);
    put('audioInput', input.audio_tokens);
    put('imageInput', input.image_tokens);
    if (isObject(input.cached_tokens_details)) {
      put('cachedAudioInput', input.cached_tokens_details.audio_tokens);
      put('cachedImageInput', input.cached_tokens_details.image_tokens);
    }
  }
  if (output) {
    put('reasoning', output.reasoning_tokens);
    put('audioOutput', output.audio_tokens);
    put('imageOutput', output.image_tokens);
  }
  return found;
}

function firstObject(...candidates: unknown[]): Record<string, unknown> | undefined {
  for (const c of candidates) if (isObject(c)) return c;
  return undefined;
}

function tokens(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

export function modelName(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && v.length <= MAX_MODEL_LENGTH ? v : undefined;
}

export function serviceTier(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && v.length <= MAX_TIER_LENGTH ? v : undefined;
}

export function merge(into: UsageInfo, from: UsageInfo): void {
  if (from.model !== undefined) into.model = from.model;
  if (from.responseId !== undefined) into.responseId = from.responseId;
  if (from.responseStatus !== undefined) into.responseStatus = from.responseStatus;
  if (from.serviceTier !== undefined) into.serviceTier = from.serviceTier;
  if (from.inputTokens !== undefined || from.outputTokens !== undefined || from.totalTokens !== undefined) {
    delete into.inputTokens;
    delete into.outputTokens;
    delete into.totalTokens;
    delete into.details;
    if (from.inputTokens !== undefined) into.inputTokens = from.inputTokens;
    if (from.outputTokens !== undefined) into.outputTokens = from.outputTokens;
    if (from.totalTokens !== undefined) into.totalTokens = from.totalTokens;
    if (from.details !== undefined) into.details = from.details;
  }
}

export function nonEmpty(info: UsageInfo): UsageInfo | undefined {
  return info.model !== undefined ||
    info.responseStatus !== undefined || info.inputTokens !== undefined || info.outputTokens !== undefined || info.totalTokens !== undefined
    ? info
    : undefined;
}

/** A Responses object's id and status, when both look like what OpenAI sends. */
export function readResponseState(id: unknown, status: unknown, info: UsageInfo): void {
  if (typeof id !== 'string' || id === '' || id.length > MAX_MODEL_LENGTH) return;
  if (typeof status !== 'string' || status === '' || status.length > 32) return;
  info.responseId = id;
  info.responseStatus = status;
}
