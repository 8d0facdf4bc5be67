import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { RelayOperation } from '../../generated/routes.ts';
import type { RelayConfig } from '../config.ts';
import { RelayError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Ops } from '../ops/index.ts';
import { inboundResponseHeaders, upgradeRequestHeaders, upstreamIdentityHeaders } from './headers.ts';
import { createStreamRedactor, makeRedactor, type StreamRedactor } from './redact.ts';
import type { RetryPolicy } from './retry.ts';
import { createUsageTap, type UsageInfo, type UsageTap } from './usage-tap/index.ts';

/**
 * What every call the relay makes to OpenAI must do, whichever door it came through: the forwarding
 * core (pass-through, proxy) and the typed client of actions and MCP tools both ask this one object for
 * the server key, the redaction of that key from what comes back, deadlines, retries, usage counting and
 * the upstream metrics.
 */
export interface UpstreamPolicy {
  /** OPENAI_BASE_URL. */
  readonly base: URL;
  /** `Authorization: Bearer <server key>` and OpenAI-Organization / OpenAI-Project, never a caller's. */
  readonly identityHeaders: Readonly<Record<string, string>>;
  /** The same as a flat `[name, value, ...]` list (node writes such a list as it is). */
  readonly identity: readonly string[];
  readonly retry: RetryPolicy;
  /** Whether answers are read for usage at all (a ledger or a token budget needs it). */
  readonly wantsUsage: boolean;
  /** `text` with the server key replaced. */
  redact(text: string): string;
  /** Redacts the server key from a byte stream as it passes (an event stream's answer). */
  streamRedactor(): StreamRedactor;
  /**
   * Where a WebSocket upgrade for `upstreamPath` goes (wss: to OPENAI_BASE_URL's host, ws: when it is
   * http), with the caller's query as it came, and the headers it carries.
   */
  upgradeTarget(upstreamPath: string, search: string, incoming: IncomingHttpHeaders): { url: URL; headers: Record<string, string> };
  /**
   * The upstream answer headers a caller may see (the fixed allowlist, plus the response headers `operation`
   * declares in the spec), with the server key redacted from their values.
   */
  answerHeaders(upstream: IncomingHttpHeaders, operation?: RelayOperation): OutgoingHttpHeaders;
  /** The operation's deadline class, or a tighter deadline the caller's surface imposes (a GPT Action's 45 s). */
  deadlineMs(operation: RelayOperation, tighterMs?: number): number;
  /** A tap reading this answer's usage, or undefined when the answer cannot spend tokens (or is not counted). */
  usageTap(operation: RelayOperation, method: string, status: number, contentType: string | undefined, contentEncoding: string | undefined): UsageTap | undefined;
  /**
   * What a finished answer's usage counts for, priced. A background response spends its tokens after its
   * first answer: it is held, and its usage counts once, when a later answer (a poll, a cancel) shows it finished.
   */
  countUsage(operation: RelayOperation, method: string, usage: UsageInfo | undefined): UsageInfo | undefined | Promise<UsageInfo | undefined>;
  /**
   * OpenAI refused the relay's own key (401): the caller's relay key was fine, so the caller gets a 502 that
   * says whose key failed, and the operator an error line.
   */
  serverKeyRefused(operation: string, requestId: string): RelayError;
  /** An upstream failure of `kind` (timeout, connect, reset, ...) on `operation`, for relay_upstream_errors_total. */
  upstreamError(operation: string, kind: string): void;
}

const UNFINISHED = new Set(['queued', 'in_progress']);

export function createUpstreamPolicy(config: RelayConfig, ops: Ops, logger: Logger): UpstreamPolicy {
  const identityHeaders = Object.freeze(upstreamIdentityHeaders(config));
  const redact = makeRedactor([config.openaiApiKey]);
  const secret = config.openaiApiKey;

  const countedUsage = (operation: RelayOperation, method: string, usage: UsageInfo | undefined): UsageInfo | undefined | Promise<UsageInfo | undefined> => {
    if (!usage || !operation.usage.responseObject || usage.responseId === undefined) {
      return method === 'POST' ? usage : undefined;
    }
    const id = usage.responseId;
    if (UNFINISHED.has(usage.responseStatus ?? '')) {
      ops.holdPendingResponse(id);
      return undefined;
    }
    if (method === 'POST') {
      // Finished as it was created (counted now), or ended by a POST on a response (a cancel): that one
      // may have been held, and must not be counted again by a later poll.
      if (operation.pathParams.length > 0) void ops.claimPendingResponse(id);
      return usage;
    }
    // A poll that finds the response finished counts it, once, if the relay saw it start.
    return ops.claimPendingResponse(id).then((held) => (held ? usage : undefined));
  };

  return {
    base: config.upstreamBase,
    identityHeaders,
    identity: Object.freeze(Object.entries(identityHeaders).flat()),
    retry: config.retry,
    wantsUsage: ops.wantsUsage,
    redact,
    streamRedactor: () => createStreamRedactor(secret),
    upgradeTarget(upstreamPath, search, incoming) {
      const url = new URL(config.upstreamBase);
      url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
      url.pathname = (url.pathname === '/' ? '' : url.pathname) + upstreamPath;
      url.search = search;
      return { url, headers: upgradeRequestHeaders(incoming, identityHeaders) };
    },
    answerHeaders(upstream, operation) {
      const headers = inboundResponseHeaders(upstream, operation?.responseHeaders);
      for (const name in headers) {
        const value = headers[name];
        if (typeof value === 'string') {
          if (value.includes(secret)) headers[name] = redact(value);
        } else if (Array.isArray(value) && value.some((v) => v.includes(secret))) {
          headers[name] = value.map(redact);
        }
      }
      return headers;
    },
    deadlineMs(operation, tighterMs) {
      const deadline = config.timeouts[operation.timeout];
      return tighterMs !== undefined && tighterMs < deadline ? tighterMs : deadline;
    },
    usageTap(operation, method, status, contentType, contentEncoding) {
      if (!ops.wantsUsage || status >= 400) return undefined;
      const responseState = operation.usage.responseObject;
      // Only POSTs spend tokens; a GET is read only for the response it may find finished.
      if (method !== 'POST' && !responseState) return undefined;
      return createUsageTap(contentType, { contentEncoding, responseState });
    },
    countUsage(operation, method, usage) {
      // Priced here, per call: a request of several calls sums each at its own model's price.
      const counted = countedUsage(operation, method, usage);
      if (counted instanceof Promise) return counted.then((u) => (u && ops.priceUsage(u), u));
      if (counted) ops.priceUsage(counted);
      return counted;
    },
    serverKeyRefused(operation, requestId) {
      logger.error({ reqId: requestId, op: operation }, 'OpenAI refused the relay\'s server key (401): check OPENAI_API_KEY');
      return new RelayError(502, "OpenAI refused the relay's server key. Tell the relay's operator to check OPENAI_API_KEY; your relay key is fine.", {
        code: 'upstream_auth_failed',
      });
    },
    upstreamError(operation, kind) {
      ops.metrics.upstreamError(operation, kind);
    },
  };
}
