/**
 * Retries of calls to OpenAI, for the forwarding core and the client alike: which failures are worth
 * another attempt, and full-jitter exponential backoff with the upstream's own Retry-After honoured up to
 * a cap. Which requests may be retried is each caller's decision (only those that can be replayed
 * unchanged, and only before any answer byte reached the caller).
 */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff step; doubles each attempt. */
  baseDelayMs: number;
  /** Longest single wait, including a Retry-After the upstream asked for. */
  maxDelayMs: number;
  /** All attempts and waits together stay within this (and within the operation's deadline). */
  budgetMs: number;
}

export function retryDelayMs(attempt: number, retryAfterMs: number, policy: RetryPolicy, random = Math.random): number {
  const backoff = random() * policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(policy.maxDelayMs, Math.max(backoff, retryAfterMs));
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);
const RETRYABLE_CODES = new Set(['ECONNECT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** An answer worth another attempt: OpenAI (or a proxy before it) was momentarily unavailable. */
export const isRetryableStatus = (status: number): boolean => RETRYABLE_STATUS.has(status);

/** A transport failure worth another attempt: the request did not reach OpenAI, or the connection broke. */
export const isRetryableError = (code: string | undefined): boolean => code !== undefined && RETRYABLE_CODES.has(code);

/** `retry-after-ms` or `retry-after` (seconds or an HTTP date) of an upstream answer, in ms; 0 when absent. */
export function retryAfterMs(headers: { 'retry-after-ms'?: string | string[]; 'retry-after'?: string | string[] }): number {
  const ms = Number(headers['retry-after-ms']);
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = headers['retry-after'];
  if (typeof raw !== 'string' || raw === '') return 0;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now());
}
