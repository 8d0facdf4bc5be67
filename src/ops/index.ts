import type { RelayConfig } from '../config.ts';
import type { Logger } from '../core/logger.ts';
import { policyFor } from './keys.ts';
import { createLedger, openLedgerStore, type Ledger, type UsageQuery, type UsageTotal } from './ledger.ts';
import { createMetrics, type RelayMetrics } from './metrics.ts';
import { createMemoryRateLimiter, type LimitDecision, type RateLimiter } from './rate-limit.ts';
import type { UsageInfo } from '../upstream/usage-tap/index.ts';

/**
 * Operations around every request: who (the key label), what it cost (usage), how it went (status,
 * timing) — one record per request, fanned out to the log line, the metrics, the usage ledger and the
 * per-key token budget. Limits are checked before a request starts.
 */

export interface RequestRecord {
  requestId: string;
  /** operationId, or the route path for the relay's own answers, or `unmatched`. */
  operation: string;
  /** Relay key label; `anonymous` when no key matched, `-` when relay auth is off. */
  keyLabel: string;
  status: number;
  /** Epoch ms the request arrived. */
  startedAt: number;
  ms: number;
  upstreamMs?: number;
  upstreamRequestId?: string;
  /** What the request spent; a promise when counting it waits on the limit store (a background response's poll). */
  usage?: UsageInfo | Promise<UsageInfo | undefined>;
  attempts?: number;
  note?: string;
}

export interface Ops {
  metrics: RelayMetrics;
  /** Whether answers should be tapped for usage (the ledger or a token budget needs it). */
  wantsUsage: boolean;
  /** False when no RATE_LIMITS are configured: the request path then skips `admit` entirely. */
  limitsActive: boolean;
  /** Checks the key label's limits for one more request. */
  admit(keyLabel: string): Promise<LimitDecision>;
  /** One finished request: log line, metrics, ledger row, tokens against the daily budget. */
  record(r: RequestRecord): void;
  /** A background response started: its usage is counted when a later answer shows it finished (see claim). */
  holdPendingResponse(responseId: string): void;
  /** True once for a held response id (on any replica sharing the limit store): count its usage then. */
  claimPendingResponse(responseId: string): Promise<boolean>;
  usageTotals(q: UsageQuery): Promise<UsageTotal[]>;
  /** Writes the queued usage rows now (shutdown); never rejects (a failed write is logged and retried). */
  flush(): Promise<void>;
  /** Flushes the ledger and closes the stores (graceful shutdown). */
  close(): Promise<void>;
}

export async function createOps(config: RelayConfig, logger: Logger): Promise<Ops> {
  const metrics = createMetrics();
  const { ops } = config;
  let ledger: Ledger | undefined;
  if (ops.ledger) {
    const store = await openLedgerStore({ databaseUrl: ops.databaseUrl, sqlitePath: ops.usageDbPath });
    ledger = createLedger(store, {
      onError: (err, dropped) =>
        logger.error({ err: { message: (err as Error)?.message }, dropped }, dropped ? 'usage ledger dropped rows' : 'usage ledger write failed'),
    });
    metrics.setLedgerQueueDepth(() => ledger!.queueDepth);
  }
  // ioredis is loaded only when Redis is configured.
  let limiter: RateLimiter = createMemoryRateLimiter();
  if (ops.redisUrl) {
    const redis = (await import('./rate-limit-redis.ts')).createRedisRateLimiter(ops.redisUrl, {
      failOpen: ops.rateLimitFailOpen,
      onError: (err) => logger.error({ err: { message: (err as Error)?.message } }, 'rate limit store unreachable'),
    });
    limiter = redis;
    // Said at start-up, not at the first limited request: the relay still starts (Redis may come later).
    await redis.ready().catch((err: unknown) =>
      logger.warn(
        { err: { message: (err as Error)?.message } },
        `REDIS_URL is unreachable at start-up: until it answers, rate limits ${ops.rateLimitFailOpen ? 'are not enforced (RATE_LIMIT_FAIL_MODE=open)' : 'refuse requests with 503 (RATE_LIMIT_FAIL_MODE=closed)'}; reconnecting in the background.`,
      ),
    );
  }
  const hasTokenBudget = [...ops.limits.values()].some((p) => p.tokensPerDay !== undefined);
  const hasAnyLimit = ops.limits.size > 0;
  const logInfo = logger.isLevelEnabled('info');

  const record = (r: RequestRecord): void => {
    if (r.usage instanceof Promise) {
      r.usage.then(
        (usage) => record({ ...r, usage }),
        () => record({ ...r, usage: undefined }),
      );
      return;
    }
    const { usage } = r;
    // At LOG_LEVEL=warn and above the request line is not even built.
    if (logInfo) {
      logger.info(
        {
          reqId: r.requestId,
          key: r.keyLabel,
          op: r.operation,
          status: r.status,
          ms: r.ms,
          upstreamMs: r.upstreamMs,
          upstreamId: r.upstreamRequestId,
          attempts: r.attempts && r.attempts > 1 ? r.attempts : undefined,
          tokens: usage?.totalTokens,
          note: r.note,
        },
        'request',
      );
    }
    metrics.requestFinished({ operation: r.operation, status: r.status, keyLabel: r.keyLabel }, r.ms / 1000, r.upstreamMs !== undefined ? r.upstreamMs / 1000 : undefined);
    if (r.status >= 500 && r.note) metrics.upstreamError(r.operation, r.note);
    // Unauthenticated requests and admin reads (scrapes, usage queries) are not usage.
    if (r.keyLabel === 'anonymous' || r.keyLabel === 'admin') return;
    ledger?.record({
      time: new Date(r.startedAt),
      keyLabel: r.keyLabel,
      operation: r.operation,
      status: r.status,
      latencyMs: r.ms,
      upstreamMs: r.upstreamMs,
      upstreamRequestId: r.upstreamRequestId,
      model: usage?.model,
      inputTokens: usage?.inputTokens,
      outputTokens: usage?.outputTokens,
      totalTokens: usage?.totalTokens,
    });
    if (hasTokenBudget && usage?.totalTokens) void limiter.addTokens(r.keyLabel, usage.totalTokens);
  };

  return {
    metrics,
    wantsUsage: Boolean(ledger) || hasTokenBudget,
    limitsActive: hasAnyLimit,
    async admit(keyLabel) {
      if (!hasAnyLimit) return { allowed: true };
      const policy = policyFor(ops.limits, keyLabel);
      if (policy.requestsPerMinute === undefined && policy.tokensPerDay === undefined) return { allowed: true };
      return limiter.take(keyLabel, policy);
    },
    record,
    holdPendingResponse(id) {
      limiter.holdPending(id);
    },
    claimPendingResponse(id) {
      return limiter.claimPending(id);
    },
    async usageTotals(q) {
      if (!ledger) return [];
      return ledger.totals(q);
    },
    async flush() {
      await ledger?.flush().catch(() => {});
    },
    async close() {
      await ledger?.close();
      await limiter.close();
    },
  };
}
