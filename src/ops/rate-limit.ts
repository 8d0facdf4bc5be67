import { RelayError } from '../core/errors.ts';

/**
 * Per-key (per-label) limits: requests per minute and tokens per UTC day, in fixed windows.
 *
 * - Requests/min: the minute is the wall-clock minute (`floor(now / 60 000)`); each allowed request counts
 *   one. A refused request is not counted, so a caller that keeps retrying is let in again as soon as the
 *   next minute starts.
 * - Tokens/day: the day is the UTC day. Tokens are only known when a request finishes, so `take` refuses
 *   once the day's total has reached the limit and `addTokens` adds each finished request's usage; the last
 *   requests of a day can overshoot the limit by what they themselves use.
 * - Tokens/day is checked first and a request refused for it does not use up a request of the minute.
 *
 * Two implementations: `createMemoryRateLimiter` (one process) and `createRedisRateLimiter`
 * (rate-limit-redis.ts: every replica shares the counters).
 */

/** A missing field is unlimited. */
export interface LimitPolicy {
  requestsPerMinute?: number;
  tokensPerDay?: number;
}

export type LimitName = 'requests_per_minute' | 'tokens_per_day';

export interface LimitDecision {
  allowed: boolean;
  /** Set when refused: seconds until the window that refused resets (at least 1). */
  retryAfterSeconds?: number;
  /** Which limit refused the request. */
  limit?: LimitName;
  /** The configured value of the limit that refused (for the message). */
  limitValue?: number;
  /** Requests left in the current minute after this one (only when requestsPerMinute is set). */
  remaining?: number;
  /** Tokens left today before this request (only when tokensPerDay is set). */
  remainingTokens?: number;
  /**
   * Set (with allowed: false, retryAfterSeconds: 1) when the limit store could not be reached and the
   * limiter is configured to fail closed: answer 503, not 429 — the caller did nothing wrong.
   */
  unavailable?: boolean;
}

export interface RateLimiter {
  /** One request by `label` is about to start: counts it against requests/min and checks tokens/day already spent. */
  take(label: string, policy: LimitPolicy, now?: number): Promise<LimitDecision>;
  /** Tokens a finished request used (from its usage), counted against tokens/day. Never rejects. */
  addTokens(label: string, tokens: number, now?: number): Promise<void>;
  /**
   * A background response the relay saw start (its usage comes later, with whichever poll sees it finish):
   * remembered for `PENDING_TTL_MS`, shared by every replica when the store is.
   */
  holdPending(responseId: string): void;
  /** True once for a held id, false for any other: the caller that gets true counts that response's usage. */
  claimPending(responseId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** How long a background response is waited for; OpenAI's longest-running responses finish well within it. */
export const PENDING_TTL_MS = 86_400_000;

/**
 * Held background responses of one process: bounded (the oldest go first past `max`), each forgotten after
 * PENDING_TTL_MS. The Redis limiter keeps one too, so a response finished on the replica that saw it start
 * is claimed without a round trip.
 */
export function createPendingSet(max = 100_000) {
  const held = new Map<string, number>();
  return {
    hold(id: string, now = Date.now()) {
      held.delete(id);
      while (held.size >= max) held.delete(held.keys().next().value as string);
      held.set(id, now + PENDING_TTL_MS);
    },
    claim(id: string, now = Date.now()): boolean {
      const until = held.get(id);
      if (until === undefined) return false;
      held.delete(id);
      return until > now;
    },
    clear() {
      held.clear();
    },
  };
}

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** Window number and milliseconds until it ends. Days are UTC days because epoch ms have no leap seconds. */
export function windowOf(now: number, size: number): { index: number; msLeft: number } {
  const index = Math.floor(now / size);
  return { index, msLeft: (index + 1) * size - now };
}

export const secondsLeft = (msLeft: number): number => Math.max(1, Math.ceil(msLeft / 1000));

const isLimited = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value);

/** Tokens worth counting: a finite positive number, rounded up; anything else counts nothing. */
export const countableTokens = (tokens: number): number => (Number.isFinite(tokens) && tokens > 0 ? Math.ceil(tokens) : 0);

interface Counters {
  minute: number;
  requests: number;
  day: number;
  tokens: number;
}

export interface MemoryRateLimiterOptions {
  /** Labels tracked at most; beyond it the least recently used label's counters are dropped. Default 100 000. */
  maxLabels?: number;
}

/**
 * One process's counters. Memory stays bounded: one small record per label holding only the current
 * minute and day (an older window is overwritten, not kept), records whose windows have both passed are
 * swept at most once a minute, and at most `maxLabels` records exist (least recently used go first).
 */
export function createMemoryRateLimiter(opts: MemoryRateLimiterOptions = {}): RateLimiter {
  const maxLabels = opts.maxLabels ?? 100_000;
  const counters = new Map<string, Counters>();
  const pending = createPendingSet();
  let lastSweepMinute = -Infinity;

  const sweep = (minute: number, day: number) => {
    if (minute === lastSweepMinute) return;
    lastSweepMinute = minute;
    for (const [label, c] of counters) {
      if (c.minute < minute && c.day < day) counters.delete(label);
    }
  };

  const get = (label: string, minute: number, day: number): Counters => {
    let c = counters.get(label);
    if (c) {
      counters.delete(label); // re-insert: Map order is then least recently used first
    } else {
      c = { minute, requests: 0, day, tokens: 0 };
      while (counters.size >= maxLabels) counters.delete(counters.keys().next().value as string);
    }
    counters.set(label, c);
    if (c.minute !== minute) {
      c.minute = minute;
      c.requests = 0;
    }
    if (c.day !== day) {
      c.day = day;
      c.tokens = 0;
    }
    return c;
  };

  return {
    async take(label, policy, now = Date.now()) {
      const m = windowOf(now, MINUTE_MS);
      const d = windowOf(now, DAY_MS);
      sweep(m.index, d.index);
      const c = get(label, m.index, d.index);
      const decision: LimitDecision = { allowed: true };
      if (isLimited(policy.tokensPerDay)) {
        if (c.tokens >= policy.tokensPerDay) {
          return {
            allowed: false,
            limit: 'tokens_per_day',
            limitValue: policy.tokensPerDay,
            retryAfterSeconds: secondsLeft(d.msLeft),
            remainingTokens: 0,
          };
        }
        decision.remainingTokens = policy.tokensPerDay - c.tokens;
      }
      if (isLimited(policy.requestsPerMinute)) {
        if (c.requests >= policy.requestsPerMinute) {
          return {
            allowed: false,
            limit: 'requests_per_minute',
            limitValue: policy.requestsPerMinute,
            retryAfterSeconds: secondsLeft(m.msLeft),
            remaining: 0,
            remainingTokens: decision.remainingTokens,
          };
        }
        c.requests++;
        decision.remaining = policy.requestsPerMinute - c.requests;
      }
      return decision;
    },
    async addTokens(label, tokens, now = Date.now()) {
      const n = countableTokens(tokens);
      if (n === 0) return;
      const c = get(label, windowOf(now, MINUTE_MS).index, windowOf(now, DAY_MS).index);
      c.tokens += n;
    },
    holdPending(id) {
      pending.hold(id);
    },
    async claimPending(id) {
      return pending.claim(id);
    },
    async close() {
      counters.clear();
      pending.clear();
    },
  };
}

function describeSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  if (seconds < 7200) return `${Math.ceil(seconds / 60)} minutes`;
  let hours = Math.floor(seconds / 3600);
  let minutes = Math.ceil((seconds % 3600) / 60);
  if (minutes === 60) {
    hours++;
    minutes = 0;
  }
  return `${hours} h ${minutes} min`;
}

/**
 * The error for a refused decision, in OpenAI's shape with a Retry-After header:
 * - a limit reached → 429, type rate_limit_error, code rate_limit_exceeded, naming the limit;
 * - limits unavailable (Redis down, failing closed) → 503, type server_error, code rate_limits_unavailable.
 */
export function rateLimitError(decision: LimitDecision): RelayError {
  const retryAfter = Math.max(1, Math.ceil(decision.retryAfterSeconds ?? 1));
  const headers = { 'retry-after': String(retryAfter) };
  if (decision.unavailable) {
    return new RelayError(
      503,
      `The relay cannot check this key's rate limits right now (its limit store is unreachable), so it is not taking requests; retry in ${describeSeconds(retryAfter)}.`,
      { type: 'server_error', code: 'rate_limits_unavailable', headers },
    );
  }
  const what =
    decision.limit === 'tokens_per_day'
      ? `${decision.limitValue !== undefined ? `its limit of ${decision.limitValue} tokens` : 'its token limit'} per day (UTC)`
      : `${decision.limitValue !== undefined ? `its limit of ${decision.limitValue} requests` : 'its request limit'} per minute`;
  return new RelayError(429, `Rate limit reached: this relay key has used ${what}. Retry in ${describeSeconds(retryAfter)}.`, {
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    headers,
  });
}
