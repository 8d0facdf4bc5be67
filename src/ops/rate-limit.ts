import { RelayError } from '../core/errors.ts';

/**
 * Per-key (per-label) limits: requests per minute, tokens per UTC day and dollars per UTC day and month, in
 * fixed windows.
 *
 * - Requests/min: the minute is the wall-clock minute (`floor(now / 60 000)`); each allowed request counts
 *   one. A refused request is not counted, so a caller that keeps retrying is let in again as soon as the
 *   next minute starts.
 * - Tokens/day and dollars/day: the day is the UTC day; dollars/month: the UTC calendar month. What a request
 *   spends is only known when it finishes, so `take` refuses once the window's total has reached the limit
 *   and `addUsage` adds each finished request's tokens and cost; the requests running when a budget is
 *   reached can overshoot it by what they themselves spend.
 * - Budgets are checked first (tokens, then dollars per day, then per month) and a request refused for one
 *   does not use up a request of the minute.
 * - `seed` starts the windows from what the ledger says was already spent (a restart forgets nothing).
 *
 * Two implementations: `createMemoryRateLimiter` (one process) and `createRedisRateLimiter`
 * (rate-limit-redis.ts: every replica shares the counters).
 */

/** A missing field is unlimited. Costs are in micro-dollars. */
export interface LimitPolicy {
  requestsPerMinute?: number;
  tokensPerDay?: number;
  costPerDay?: number;
  costPerMonth?: number;
}

export type LimitName = 'requests_per_minute' | 'tokens_per_day' | 'cost_per_day' | 'cost_per_month';

/** What a finished request spent, counted against the budgets. */
export interface Spend {
  tokens?: number;
  costMicros?: number;
}

/** What a label had already spent when the relay started (from the ledger). */
export interface SpentSoFar {
  label: string;
  /** Today (UTC). */
  dayTokens: number;
  dayCostMicros: number;
  /** This UTC calendar month, today included. */
  monthCostMicros: number;
}

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
  /** A dollar budget refused: what its window has spent (micro-dollars) and when it resets (epoch ms). */
  spentMicros?: number;
  resetAt?: number;
  /**
   * Set (with allowed: false, retryAfterSeconds: 1) when the limit store could not be reached and the
   * limiter is configured to fail closed: answer 503, not 429 — the caller did nothing wrong.
   */
  unavailable?: boolean;
}

export interface RateLimiter {
  /** One request by `label` is about to start: counts it against requests/min and checks the budgets already spent. */
  take(label: string, policy: LimitPolicy, now?: number): Promise<LimitDecision>;
  /** What a finished request spent (from its usage), counted against the day's and month's budgets. Never rejects. */
  addUsage(label: string, spend: Spend, now?: number): Promise<void>;
  /**
   * At start-up: what each label had spent today and this month, by the ledger. Counters the store already
   * holds (another replica's, in Redis) are kept: they are at least as recent. Never rejects.
   */
  seed(spent: readonly SpentSoFar[], now?: number): Promise<void>;
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

/** The UTC calendar month: its number (year × 12 + month), when it started and when it ends. */
export function monthOf(now: number): { index: number; start: number; end: number; msLeft: number } {
  const d = new Date(now);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth();
  const end = Date.UTC(year, month + 1, 1);
  return { index: year * 12 + month, start: Date.UTC(year, month, 1), end, msLeft: end - now };
}

export const secondsLeft = (msLeft: number): number => Math.max(1, Math.ceil(msLeft / 1000));

const isLimited = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value);

/** Tokens (or micro-dollars) worth counting: a finite positive number, rounded up; anything else counts nothing. */
export const countableTokens = (tokens: number | undefined): number => (tokens !== undefined && Number.isFinite(tokens) && tokens > 0 ? Math.ceil(tokens) : 0);

/**
 * The first budget `spent` reaches (tokens, dollars per day, per month), as a refusal; undefined when none.
 * `spent` is what the windows of `now` hold.
 */
export function budgetRefusal(policy: LimitPolicy, spent: { tokens: number; dayCost: number; monthCost: number }, now: number): LimitDecision | undefined {
  if (isLimited(policy.tokensPerDay) && spent.tokens >= policy.tokensPerDay) {
    return {
      allowed: false,
      limit: 'tokens_per_day',
      limitValue: policy.tokensPerDay,
      retryAfterSeconds: secondsLeft(windowOf(now, DAY_MS).msLeft),
      remainingTokens: 0,
    };
  }
  if (isLimited(policy.costPerDay) && spent.dayCost >= policy.costPerDay) {
    const { msLeft } = windowOf(now, DAY_MS);
    return { allowed: false, limit: 'cost_per_day', limitValue: policy.costPerDay, spentMicros: spent.dayCost, resetAt: now + msLeft, retryAfterSeconds: secondsLeft(msLeft) };
  }
  if (isLimited(policy.costPerMonth) && spent.monthCost >= policy.costPerMonth) {
    const month = monthOf(now);
    return { allowed: false, limit: 'cost_per_month', limitValue: policy.costPerMonth, spentMicros: spent.monthCost, resetAt: month.end, retryAfterSeconds: secondsLeft(month.msLeft) };
  }
  return undefined;
}

interface Counters {
  minute: number;
  requests: number;
  day: number;
  tokens: number;
  dayCost: number;
  month: number;
  monthCost: number;
}

export interface MemoryRateLimiterOptions {
  /** Labels tracked at most; beyond it the least recently used label's counters are dropped. Default 100 000. */
  maxLabels?: number;
}

/**
 * One process's counters. Memory stays bounded: one small record per label holding only the current
 * minute, day and month (an older window is overwritten, not kept), records with nothing left to count
 * are swept at most once a minute, and at most `maxLabels` records exist (least recently used go first).
 */
export function createMemoryRateLimiter(opts: MemoryRateLimiterOptions = {}): RateLimiter {
  const maxLabels = opts.maxLabels ?? 100_000;
  const counters = new Map<string, Counters>();
  const pending = createPendingSet();
  let lastSweepMinute = -Infinity;

  const sweep = (minute: number, day: number, month: number) => {
    if (minute === lastSweepMinute) return;
    lastSweepMinute = minute;
    for (const [label, c] of counters) {
      if (c.minute < minute && c.day < day && (c.month < month || c.monthCost === 0)) counters.delete(label);
    }
  };

  const get = (label: string, now: number): Counters => {
    const minute = windowOf(now, MINUTE_MS).index;
    const day = windowOf(now, DAY_MS).index;
    const month = monthOf(now).index;
    sweep(minute, day, month);
    let c = counters.get(label);
    if (c) {
      counters.delete(label); // re-insert: Map order is then least recently used first
    } else {
      c = { minute, requests: 0, day, tokens: 0, dayCost: 0, month, monthCost: 0 };
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
      c.dayCost = 0;
    }
    if (c.month !== month) {
      c.month = month;
      c.monthCost = 0;
    }
    return c;
  };

  return {
    async take(label, policy, now = Date.now()) {
      const c = get(label, now);
      const refused = budgetRefusal(policy, c, now);
      if (refused) return refused;
      const decision: LimitDecision = { allowed: true };
      if (isLimited(policy.tokensPerDay)) decision.remainingTokens = policy.tokensPerDay - c.tokens;
      if (isLimited(policy.requestsPerMinute)) {
        if (c.requests >= policy.requestsPerMinute) {
          return {
            allowed: false,
            limit: 'requests_per_minute',
            limitValue: policy.requestsPerMinute,
            retryAfterSeconds: secondsLeft(windowOf(now, MINUTE_MS).msLeft),
            remaining: 0,
            remainingTokens: decision.remainingTokens,
          };
        }
        c.requests++;
        decision.remaining = policy.requestsPerMinute - c.requests;
      }
      return decision;
    },
    async addUsage(label, spend, now = Date.now()) {
      const tokens = countableTokens(spend.tokens);
      const cost = countableTokens(spend.costMicros);
      if (tokens === 0 && cost === 0) return;
      const c = get(label, now);
      c.tokens += tokens;
      c.dayCost += cost;
      c.monthCost += cost;
    },
    async seed(spent, now = Date.now()) {
      for (const s of spent) {
        const c = get(s.label, now);
        c.tokens = Math.max(c.tokens, countableTokens(s.dayTokens));
        c.dayCost = Math.max(c.dayCost, countableTokens(s.dayCostMicros));
        c.monthCost = Math.max(c.monthCost, countableTokens(s.monthCostMicros));
      }
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
  if (seconds >= 3 * 86_400) return `${Math.ceil(seconds / 86_400)} days`;
  let hours = Math.floor(seconds / 3600);
  let minutes = Math.ceil((seconds % 3600) / 60);
  if (minutes === 60) {
    hours++;
    minutes = 0;
  }
  return `${hours} h ${minutes} min`;
}

/** Micro-dollars as `$5.00`, or with as many decimals as a budget like `$0.125` needs. */
export function formatUsd(micros: number): string {
  const fixed = (micros / 1e6).toFixed(6);
  return `$${fixed.replace(/(\.\d\d\d*?)0+$/, '$1')}`;
}

/**
 * The error for a refused decision, in OpenAI's shape with a Retry-After header:
 * - a dollar budget reached → 429, type rate_limit_error, code budget_exceeded, saying when it resets;
 * - a rate limit reached → 429, type rate_limit_error, code rate_limit_exceeded, naming the limit;
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
  if (decision.limit === 'cost_per_day' || decision.limit === 'cost_per_month') {
    const daily = decision.limit === 'cost_per_day';
    const resetAt = new Date(decision.resetAt ?? Date.now() + retryAfter * 1000);
    const when = daily
      ? `at 00:00 UTC, in ${describeSeconds(retryAfter)}`
      : `on ${resetAt.toISOString().slice(0, 10)} at 00:00 UTC, in ${describeSeconds(retryAfter)}`;
    const spent = decision.spentMicros !== undefined ? `${formatUsd(decision.spentMicros)} of ` : '';
    const budget = decision.limitValue !== undefined ? `its ${formatUsd(decision.limitValue)} budget` : 'its budget';
    return new RelayError(
      429,
      `Budget reached: this relay key has spent ${spent}${budget} for ${daily ? 'today (UTC)' : 'this month (UTC)'}. The budget resets ${when}; ask the relay's operator to raise it (RATE_LIMITS) if you need more before then.`,
      { type: 'rate_limit_error', code: 'budget_exceeded', headers },
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
