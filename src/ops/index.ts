import type { RelayConfig } from '../config.ts';
import type { Logger } from '../core/logger.ts';
import { costOf, microsOf } from './cost.ts';
import { type LabelPolicy, policyFor } from './keys.ts';
import { createLedger, openLedgerStore, type Ledger, type UsageQuery, type UsageTotal } from './ledger.ts';
import { createMetrics, type RelayMetrics } from './metrics.ts';
import { loadPriceBook, type PriceBook } from './prices.ts';
import { createMemoryRateLimiter, DAY_MS, type LimitDecision, monthOf, type RateLimiter, windowOf } from './rate-limit.ts';
import type { UsageInfo } from '../upstream/usage-tap/index.ts';

/**
 * Operations around every request: who (the key label), what it cost (usage, priced by the price table),
 * how it went (status, timing) — one record per request, fanned out to the log line, the metrics, the usage
 * ledger and the per-key budgets. Limits are checked before a request starts.
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
  /** Whether answers should be tapped for usage (the ledger or a budget needs it). */
  wantsUsage: boolean;
  /** The price table in force. */
  prices: PriceBook;
  /**
   * Prices one upstream call's usage at its own model's price (sets `costPicoUsd`; once): the upstream
   * policy calls it per call, so a request of several calls to several models sums their costs.
   */
  priceUsage(usage: UsageInfo): void;
  /** False when no RATE_LIMITS are configured: the request path then skips `admit` entirely. */
  limitsActive: boolean;
  /** Checks the key label's limits for one more request. */
  admit(keyLabel: string): Promise<LimitDecision>;
  /** One finished request: log line, metrics, ledger row, tokens and cost against the budgets. */
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

const hasBudget = (p: LabelPolicy) => p.tokensPerDay !== undefined || p.costPerDay !== undefined || p.costPerMonth !== undefined;
const isLimited = (p: LabelPolicy) => p.requestsPerMinute !== undefined || hasBudget(p);

export async function createOps(config: RelayConfig, logger: Logger): Promise<Ops> {
  const metrics = createMetrics();
  const { ops } = config;
  const prices = loadPriceBook(ops.pricesFile);
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
  const policies = [...ops.limits.values()];
  const hasTokenBudget = policies.some((p) => p.tokensPerDay !== undefined);
  const hasCostBudget = policies.some((p) => p.costPerDay !== undefined || p.costPerMonth !== undefined);
  const hasAnyLimit = ops.limits.size > 0;
  const logInfo = logger.isLevelEnabled('info');
  if (hasTokenBudget || hasCostBudget) await seedBudgets(ledger, limiter, logger, policies.some((p) => p.costPerMonth !== undefined));

  // Each missing price is named once (bounded: the names come from OpenAI's answers).
  const warned = new Set<string>();
  const priceUsage = (usage: UsageInfo): void => {
    if (usage.costPicoUsd !== undefined) return;
    const cost = costOf(usage, prices);
    if (cost === undefined) return;
    if (typeof cost === 'number') {
      usage.costPicoUsd = cost;
      return;
    }
    usage.costPicoUsd = null;
    metrics.unpricedUsage(cost.model);
    if (warned.size < 1000 && !warned.has(cost.missing)) {
      warned.add(cost.missing);
      logger.warn(
        { model: cost.model, prices: prices.origin },
        `The price table has no ${cost.missing}: such requests are recorded without a cost and do not count against dollar budgets until a price is added (PRICES_FILE).`,
      );
    }
  };

  const record = (r: RequestRecord): void => {
    if (r.usage instanceof Promise) {
      r.usage.then(
        (usage) => record({ ...r, usage }),
        () => record({ ...r, usage: undefined }),
      );
      return;
    }
    const { usage } = r;
    if (usage !== undefined) priceUsage(usage);
    const pico = usage?.costPicoUsd;
    const costMicros = typeof pico === 'number' ? microsOf(pico) : undefined;
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
          usd: costMicros !== undefined ? costMicros / 1e6 : undefined,
          note: r.note,
        },
        'request',
      );
    }
    metrics.requestFinished({ operation: r.operation, status: r.status, keyLabel: r.keyLabel }, r.ms / 1000, r.upstreamMs !== undefined ? r.upstreamMs / 1000 : undefined);
    if (r.status >= 500 && r.note) metrics.upstreamError(r.operation, r.note);
    // Unauthenticated requests and admin reads (scrapes, usage queries) are not usage.
    if (r.keyLabel === 'anonymous' || r.keyLabel === 'admin') return;
    if (usage?.model !== undefined) metrics.usageRecorded(r.keyLabel, prices.lookup(usage.model)?.name ?? usage.model, usage, costMicros);
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
      costMicros,
    });
    if ((hasTokenBudget && usage?.totalTokens) || (hasCostBudget && costMicros)) {
      void limiter.addUsage(r.keyLabel, { tokens: usage?.totalTokens, costMicros });
    }
  };

  return {
    metrics,
    wantsUsage: Boolean(ledger) || hasTokenBudget || hasCostBudget,
    limitsActive: hasAnyLimit,
    prices,
    priceUsage,
    async admit(keyLabel) {
      if (!hasAnyLimit) return { allowed: true };
      const policy = policyFor(ops.limits, keyLabel);
      if (!isLimited(policy)) return { allowed: true };
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

/**
 * Budgets survive a restart: the day's tokens and cost and the month's cost start from what the ledger
 * holds (the month's rows are read only when a monthly budget can need them). Without a ledger
 * (USAGE_LEDGER=off) they start from zero, and the operator is told so.
 */
async function seedBudgets(ledger: Ledger | undefined, limiter: RateLimiter, logger: Logger, monthly: boolean, now = Date.now()): Promise<void> {
  if (!ledger) {
    logger.warn('RATE_LIMITS has token or dollar budgets but USAGE_LEDGER=off: what was spent before this start is not counted against them.');
    return;
  }
  const dayStart = new Date(windowOf(now, DAY_MS).index * DAY_MS);
  const spent = await ledger.spendSince(monthly ? new Date(monthOf(now).start) : dayStart, dayStart);
  await limiter.seed(
    spent.map((s) => ({ label: s.keyLabel, dayTokens: s.dayTokens, dayCostMicros: s.dayCostMicros, monthCostMicros: s.monthCostMicros })),
    now,
  );
}
