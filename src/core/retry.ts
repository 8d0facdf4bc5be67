/**
 * Retry timing for the forwarding core: full-jitter exponential backoff, with the upstream's own
 * Retry-After honoured up to a cap. Which requests may be retried is the core's decision (only those
 * that can be replayed unchanged, and only before any answer byte reached the caller).
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
