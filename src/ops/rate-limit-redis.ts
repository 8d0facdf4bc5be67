import { Redis } from 'ioredis';
import {
  budgetRefusal,
  countableTokens,
  createPendingSet,
  DAY_MS,
  type LimitDecision,
  type LimitPolicy,
  MINUTE_MS,
  monthOf,
  PENDING_TTL_MS,
  type RateLimiter,
  secondsLeft,
  windowOf,
} from './rate-limit.ts';

/**
 * The rate limiter with its counters in Redis, so every replica of the relay shares them.
 *
 * Same fixed windows as the memory limiter (rate-limit.ts). Keys:
 *   `<prefix>:rpm:<label>:<minute number>`  requests in that minute; lives until the minute ends (+5 s)
 *   `<prefix>:tpd:<label>:<UTC day number>` tokens used that day; lives until the day ends (+1 h)
 *   `<prefix>:cpd:<label>:<UTC day number>` micro-dollars spent that day; likewise
 *   `<prefix>:cpm:<label>:<year×12+month>`  micro-dollars spent that UTC month; lives until it ends (+1 day)
 * `take` is one Lua script (GET the budgets' counters, INCR + PEXPIRE the minute) — one round trip, atomic,
 * so concurrent requests on any number of replicas never let more than the limit through. A refused
 * request still increments the minute counter (it expires with the minute), which changes nothing: a
 * request is allowed exactly when its increment lands at or below the limit.
 * `addUsage` is INCRBY + EXPIRE in a second script; `seed` sets counters only where none exist (SET NX), so
 * a replica starting next to running ones never lowers what they have counted.
 *
 * Windows come from each replica's clock (`now`): keep replicas NTP-synced; skew only blurs the edges of a minute.
 *
 * When Redis cannot be reached (down, refused, slow beyond `commandTimeoutMs`):
 *   - `failOpen: true` (the default): the request is allowed — `{ allowed: true, unavailable: true }` — and
 *     the error goes to `onError`. Limits are briefly not enforced; traffic keeps flowing.
 *   - `failOpen: false`: the request is refused — `{ allowed: false, retryAfterSeconds: 1, unavailable: true }`;
 *     `rateLimitError` turns that into 503 `rate_limits_unavailable` (not 429: the caller did nothing wrong).
 * Either way the answer comes fast: no offline queue, one retry per command, a short connect timeout.
 * Only the first connection (made by the first `take`, or by `ready()`) is waited for, at most
 * `connectTimeoutMs`; after that, while Redis is not connected, requests fail at once and ioredis reconnects
 * in the background (at most 1 s apart). A command unanswered for `commandTimeoutMs` fails and drops the
 * connection (a hung Redis), so the requests after it fail fast too until a reconnect succeeds.
 * `onError` hears of the first failure after a healthy period at once, then at most once per
 * `errorReportIntervalMs` while Redis stays unreachable (an outage under load would otherwise flood logs).
 * `addUsage` never rejects; spending that could not be recorded is lost (reported through `onError`).
 */

export interface RedisRateLimiterOptions {
  /** Key prefix; default `relay:rl`. Give each relay deployment sharing one Redis its own. */
  prefix?: string;
  /** Allow requests when Redis is unreachable (default true); false refuses them (503). */
  failOpen?: boolean;
  onError?: (err: Error) => void;
  /** TCP connect timeout; default 1000 ms. */
  connectTimeoutMs?: number;
  /** A command not answered within this fails (Redis hung or partitioned); default 500 ms. */
  commandTimeoutMs?: number;
  /** Minimum time between two `onError` reports during one outage; default 30 000 ms. */
  errorReportIntervalMs?: number;
}

export interface RedisRateLimiter extends RateLimiter {
  /** Connects now (normally the first `take` does): await it at start-up to log a bad REDIS_URL early. Rejects if unreachable. */
  ready(): Promise<void>;
}

const TAKE_SCRIPT = `
-- KEYS[1] this minute's requests, KEYS[2] today's tokens, KEYS[3] today's cost, KEYS[4] this month's cost
-- ARGV[1] requests/min limit, ARGV[2] ms the minute counter lives, ARGV[3] tokens/day, ARGV[4] cost/day,
-- ARGV[5] cost/month (limits: -1 = unlimited; a budget's counter is read only when it has a limit)
-- returns {allowed 0|1, refused by 0 none|1 rpm|2 a budget, requests this minute, tokens, day cost, month cost}
local spent = {0, 0, 0}
for i = 2, 4 do
  local limit = tonumber(ARGV[i + 1])
  if limit >= 0 then
    spent[i - 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
    if spent[i - 1] >= limit then return {0, 2, 0, spent[1], spent[2], spent[3]} end
  end
end
local rpm = tonumber(ARGV[1])
local count = 0
if rpm >= 0 then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  if count > rpm then return {0, 1, count, spent[1], spent[2], spent[3]} end
end
return {1, 0, count, spent[1], spent[2], spent[3]}
`;

const ADD_SCRIPT = `
-- KEYS[1] today's tokens, KEYS[2] today's cost, KEYS[3] this month's cost
-- ARGV[1] tokens, ARGV[2] micro-dollars, ARGV[3] seconds the day's counters live, ARGV[4] the month's
if tonumber(ARGV[1]) > 0 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('INCRBY', KEYS[3], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
return 1
`;

interface ScriptedRedis extends Redis {
  relayRateTake(rpmKey: string, tpdKey: string, cpdKey: string, cpmKey: string, rpm: number, rpmTtlMs: number, tpd: number, cpd: number, cpm: number): Promise<number[]>;
  relayRateAdd(tpdKey: string, cpdKey: string, cpmKey: string, tokens: number, micros: number, dayTtlSeconds: number, monthTtlSeconds: number): Promise<number>;
}

const limitArg = (value: number | undefined): number =>
  value !== undefined && Number.isFinite(value) ? Math.max(0, Math.floor(value)) : -1;

export function createRedisRateLimiter(url: string, opts: RedisRateLimiterOptions = {}): RedisRateLimiter {
  const prefix = opts.prefix ?? 'relay:rl';
  const failOpen = opts.failOpen ?? true;
  const connectTimeout = opts.connectTimeoutMs ?? 1000;
  const reportInterval = opts.errorReportIntervalMs ?? 30_000;

  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout,
    commandTimeout: opts.commandTimeoutMs ?? 500,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Reconnect in the background, never more than a second apart, so limits come back soon after Redis does.
    retryStrategy: (times) => Math.min(times * 100, 1000),
  }) as ScriptedRedis;
  client.defineCommand('relayRateTake', { numberOfKeys: 4, lua: TAKE_SCRIPT });
  client.defineCommand('relayRateAdd', { numberOfKeys: 3, lua: ADD_SCRIPT });
  /** The budget counters of `label` for the day and month of `now`, and how long each should live (s). */
  const budgetKeys = (label: string, now: number) => {
    const d = windowOf(now, DAY_MS);
    const m = monthOf(now);
    return {
      tpd: `${prefix}:tpd:${label}:${d.index}`,
      cpd: `${prefix}:cpd:${label}:${d.index}`,
      cpm: `${prefix}:cpm:${label}:${m.index}`,
      dayTtl: Math.ceil(d.msLeft / 1000) + 3600,
      monthTtl: Math.ceil(m.msLeft / 1000) + 86_400,
    };
  };

  const local = createPendingSet();
  let healthy = true;
  let lastReport = 0;
  const report = (err: unknown) => {
    const now = Date.now();
    if (healthy || now - lastReport >= reportInterval) {
      lastReport = now;
      opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
    healthy = false;
  };
  // Without a listener ioredis prints every connection error to the console itself.
  client.on('error', report);

  let closed = false;
  let firstConnect: Promise<void> | undefined;
  let firstConnectPending = false;

  /** The very first connection, bounded by connectTimeout even when Redis accepts TCP but never answers. */
  const connectFirst = (): Promise<void> => {
    firstConnectPending = true;
    const attempt = client.connect();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`Redis did not become ready within ${connectTimeout} ms.`));
        // Drop the stuck connection; ioredis keeps retrying in the background (retryStrategy).
        if (!closed && client.status !== 'ready') client.disconnect(true);
      }, connectTimeout);
      attempt.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    }).finally(() => {
      firstConnectPending = false;
    });
  };

  /**
   * Resolves when connected. Only the first connection is waited for (requests arriving while it is being made
   * share it); afterwards a Redis that is not connected fails at once while ioredis reconnects in the background.
   */
  const connected = (): Promise<void> => {
    if (closed) return Promise.reject(new Error('The Redis rate limiter is closed.'));
    if (client.status === 'ready') return Promise.resolve();
    if (!firstConnect && client.status === 'wait') firstConnect = connectFirst();
    if (firstConnect && firstConnectPending) return firstConnect;
    return Promise.reject(new Error(`Redis is unreachable (connection ${client.status}).`));
  };

  /** A command that timed out means a hung connection: drop it so later requests fail fast until a reconnect succeeds. */
  const failed = (err: unknown) => {
    if (!closed && err instanceof Error && /timed out/i.test(err.message) && client.status === 'ready') client.disconnect(true);
    report(err);
  };

  const unavailable = (err: unknown): LimitDecision => {
    failed(err);
    return failOpen ? { allowed: true, unavailable: true } : { allowed: false, retryAfterSeconds: 1, unavailable: true };
  };

  return {
    ready: connected,

    async take(label: string, policy: LimitPolicy, now = Date.now()): Promise<LimitDecision> {
      const rpm = limitArg(policy.requestsPerMinute);
      const tpd = limitArg(policy.tokensPerDay);
      const cpd = limitArg(policy.costPerDay);
      const cpm = limitArg(policy.costPerMonth);
      if (rpm < 0 && tpd < 0 && cpd < 0 && cpm < 0) return { allowed: true }; // unlimited: no round trip
      const m = windowOf(now, MINUTE_MS);
      const keys = budgetKeys(label, now);
      let reply: number[];
      try {
        await connected();
        reply = await client.relayRateTake(`${prefix}:rpm:${label}:${m.index}`, keys.tpd, keys.cpd, keys.cpm, rpm, m.msLeft + 5_000, tpd, cpd, cpm);
      } catch (err) {
        return unavailable(err);
      }
      healthy = true;
      const [allowed, refusedBy, count, tokens, dayCost, monthCost] = reply.map(Number);
      if (refusedBy === 2) {
        const refused = budgetRefusal(policy, { tokens, dayCost, monthCost }, now);
        if (refused) return refused;
      }
      const remainingTokens = tpd >= 0 ? Math.max(0, tpd - tokens) : undefined;
      if (refusedBy === 1) {
        return {
          allowed: false,
          limit: 'requests_per_minute',
          limitValue: rpm,
          retryAfterSeconds: secondsLeft(m.msLeft),
          remaining: 0,
          remainingTokens,
        };
      }
      const decision: LimitDecision = { allowed: allowed === 1 };
      if (rpm >= 0) decision.remaining = Math.max(0, rpm - count);
      if (remainingTokens !== undefined) decision.remainingTokens = remainingTokens;
      return decision;
    },

    async addUsage(label, spend, now = Date.now()): Promise<void> {
      const tokens = countableTokens(spend.tokens);
      const micros = countableTokens(spend.costMicros);
      if (tokens === 0 && micros === 0) return;
      const keys = budgetKeys(label, now);
      try {
        await connected();
        await client.relayRateAdd(keys.tpd, keys.cpd, keys.cpm, tokens, micros, keys.dayTtl, keys.monthTtl);
        healthy = true;
      } catch (err) {
        failed(err);
      }
    },

    async seed(spent, now = Date.now()): Promise<void> {
      if (spent.length === 0) return;
      try {
        await connected();
        const batch = client.multi();
        for (const s of spent) {
          const keys = budgetKeys(s.label, now);
          const values: [string, number, number][] = [
            [keys.tpd, countableTokens(s.dayTokens), keys.dayTtl],
            [keys.cpd, countableTokens(s.dayCostMicros), keys.dayTtl],
            [keys.cpm, countableTokens(s.monthCostMicros), keys.monthTtl],
          ];
          for (const [key, value, ttl] of values) if (value > 0) batch.set(key, value, 'EX', ttl, 'NX');
        }
        await batch.exec();
        healthy = true;
      } catch (err) {
        failed(err);
      }
    },

    holdPending(id: string): void {
      local.hold(id);
      void connected()
        .then(() => client.set(`${prefix}:bg:${id}`, '1', 'PX', PENDING_TTL_MS))
        .catch(failed);
    },

    async claimPending(id: string): Promise<boolean> {
      if (local.claim(id)) {
        void connected()
          .then(() => client.del(`${prefix}:bg:${id}`))
          .catch(failed);
        return true;
      }
      try {
        await connected();
        return (await client.del(`${prefix}:bg:${id}`)) === 1;
      } catch (err) {
        failed(err);
        return false;
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      local.clear();
      closed = true;
      if (client.status === 'ready') {
        try {
          await client.quit();
          return;
        } catch {
          // fall through: drop the connection
        }
      }
      client.disconnect();
    },
  };
}
