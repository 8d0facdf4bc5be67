import type { TokenDetail, UsageInfo } from './usage-tap/index.ts';

/**
 * What the upstream calls of one relay request added up to: an action or an MCP tool call may make several
 * (create, poll, upload, attach), and its one request record carries their summed usage, upstream time and
 * attempts, under the action's operationId or the tool's name.
 */
export interface UsageAccount {
  /**
   * One upstream call finished: its usage (as the policy counted and priced it; a promise while the count
   * waits on the limit store), time to its answer and attempts.
   */
  add(usage: UsageInfo | undefined | Promise<UsageInfo | undefined>, upstreamMs: number | undefined, attempts: number, upstreamRequestId?: string): void;
  /** Resolves once every usage added as a promise has been counted: read `usage` after it. */
  settled(): Promise<void>;
  /**
   * The summed usage, or undefined when no call reported any. The first model named is the record's model.
   * Its cost is the sum of each call's cost at that call's own model's price; null when any call that
   * spent tokens had no price (a part of a cost is not the cost).
   */
  readonly usage: UsageInfo | undefined;
  readonly upstreamMs: number | undefined;
  readonly attempts: number;
  /** The last upstream request id seen (the one to quote to OpenAI about this request). */
  readonly upstreamRequestId: string | undefined;
}

export function createUsageAccount(): UsageAccount {
  let usage: UsageInfo | undefined;
  let upstreamMs: number | undefined;
  let attempts = 0;
  let upstreamRequestId: string | undefined;
  const pending: Promise<void>[] = [];
  const sum = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : a + b);
  const addUsage = (info: UsageInfo | undefined) => {
    if (!info || (info.totalTokens === undefined && info.inputTokens === undefined && info.outputTokens === undefined && info.model === undefined)) return;
    usage ??= {};
    usage.model ??= info.model;
    usage.inputTokens = sum(usage.inputTokens, info.inputTokens);
    usage.outputTokens = sum(usage.outputTokens, info.outputTokens);
    usage.totalTokens = sum(usage.totalTokens, info.totalTokens);
    if (info.details) {
      usage.details ??= {};
      for (const k in info.details) {
        const name = k as TokenDetail;
        usage.details[name] = (usage.details[name] ?? 0) + info.details[name]!;
      }
    }
    // null (a call without a price) stays null; undefined (nothing spent) adds nothing.
    if (info.costPicoUsd === null || usage.costPicoUsd === null) usage.costPicoUsd = null;
    else if (info.costPicoUsd !== undefined) usage.costPicoUsd = (usage.costPicoUsd ?? 0) + info.costPicoUsd;
  };
  return {
    add(info, ms, tries, requestId) {
      attempts += tries;
      if (ms !== undefined) upstreamMs = sum(upstreamMs, ms);
      if (requestId !== undefined) upstreamRequestId = requestId;
      if (info instanceof Promise) pending.push(info.then(addUsage, () => {}));
      else addUsage(info);
    },
    async settled() {
      while (pending.length) await pending.shift();
    },
    get usage() {
      return usage;
    },
    get upstreamMs() {
      return upstreamMs;
    },
    get attempts() {
      return attempts;
    },
    get upstreamRequestId() {
      return upstreamRequestId;
    },
  };
}
