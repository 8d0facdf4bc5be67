import type { Agent, ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type http from 'node:http';
import type https from 'node:https';
import type { RelayOperation } from '../../../generated/routes.ts';
import type { RelayConfig } from '../../config.ts';
import { RelayError, sseErrorEvent, writeError } from '../../core/errors.ts';
import type { Ops } from '../../ops/index.ts';
import type { UpstreamPolicy } from '../policy.ts';
import type { StreamMemory } from '../stream-memory.ts';
import type { UsageSplice } from '../stream-usage/request.ts';
import { withRequestModel, type UsageInfo, type UsageTap } from '../usage-tap/index.ts';

/**
 * The upload cap (MAX_UPLOAD_BYTES) bounds the files of a multipart body; the body may be this much larger for
 * the form's other fields and its framing (boundaries, part headers; an image edit's prompt of 32,000
 * characters). Counted on the raw bytes, so no multipart parsing on the way through (docs/security.md).
 */
export const MULTIPART_FRAMING_BYTES = 256 * 1024;

/** What one forwarded request asks of the core. */
export interface ForwardRequest {
  operation: RelayOperation;
  /** Canonical upstream path (from `canonicalUpstreamPath`), starting with `/v1/`. */
  upstreamPath: string;
  /** The query string including `?`, or '' — passed through intact (repeated keys too). */
  search: string;
  requestId: string;
  /** The caller's relay key label, for the request record (never the key). */
  keyLabel: string;
  /** Headers the relay adds to the answer (CORS and the like). */
  extraHeaders?: Record<string, string>;
  /**
   * A JSON body the relay already holds (the proxy envelope's `body`), sent instead of the caller's
   * stream; `null` sends no body. Being replayable, such a request can be retried.
   */
  jsonBody?: Buffer | null;
  /** A tighter deadline than the operation's class (the proxy serves GPT Actions: 45 s per call). */
  deadlineMs?: number;
  /**
   * Shortens a JSON answer longer than `maxChars` characters (a GPT Action takes at most 100,000): only
   * such answers are held and refitted; shorter ones stream through untouched.
   */
  fitAnswer?: { maxChars: number; fit(value: unknown): { value: unknown; truncated: boolean } };
  /** Called once when the request is over, just before the returned promise resolves (no extra promise on the hot path). */
  onDone?: () => void;
}

/** What every exchange of one forwarder shares: the upstream, its connection pool and the policy. */
export interface ForwarderContext {
  config: RelayConfig;
  policy: UpstreamPolicy;
  ops: Ops;
  transport: typeof http | typeof https;
  agent: Agent;
  /** What node would have sent as Host: the URL's host, its port only when not the scheme's default. */
  hostHeader: string;
  /** OPENAI_BASE_URL's path (`/v1` included or not), prefixed to every upstream path. */
  basePath: string;
  streamMemory: StreamMemory;
  /** Exchanges holding (or waiting for) an upstream connection, against UPSTREAM_MAX_SOCKETS + UPSTREAM_QUEUE_MAX. */
  upstreamSlots: { held: number; readonly max: number; readonly queueMax: number };
}

/**
 * One forwarded request from start to record: the state the request body, attempt and answer modules
 * share, and the two ways it ends (`finish` once, `fail` answering whatever can still be answered).
 */
export class Exchange {
  readonly ctx: ForwarderContext;
  readonly incoming: IncomingMessage;
  readonly outgoing: ServerResponse;
  readonly req: ForwardRequest;
  readonly method: string;
  readonly started = performance.now();
  readonly startedAt = Date.now();
  readonly deadlineMs: number;
  readonly extra: Record<string, string>;
  /** The caller's body is read from the socket (not held by the relay already). */
  readonly streamBody: boolean;
  /** Body cap for this operation: uploads or JSON. */
  readonly cap: number;
  /** No body or a held one, and an idempotent method or a caller-supplied Idempotency-Key: safe to send again. */
  readonly replaySafe: boolean;
  private readonly endInFlight: () => void;
  private readonly resolve: () => void;

  /** A complete body in hand (the proxy's, or a small JSON body read before going upstream). */
  heldBody: Buffer | undefined;
  /** The caller's body still arriving: it streams upstream after `prefix`. */
  streaming: boolean;
  prefix: Buffer[] = [];
  prefixBytes = 0;
  /** Made on the first attempt, once it is known whether the body is held whole. */
  headers: string[] | undefined;
  attempt = 0;
  current: ClientRequest | undefined;
  upstreamRes: IncomingMessage | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  /**
   * Until the answer starts: the deadline from arrival; then restarted by each chunk (OpenAI's silence).
   * While the caller is behind (its socket full, OpenAI's answer paused for it) the silence is the
   * caller's, and the timer measures that instead, against CLIENT_READ_TIMEOUT_MS.
   */
  deadlineTimer: NodeJS.Timeout | undefined;
  /** OpenAI's x-request-id for the record, with the server key redacted. */
  upstreamRequestId: string | undefined;
  /** This exchange counts in `ctx.upstreamSlots` (from its first attempt until it ends). */
  holdsSlot = false;
  sse = false;
  upstreamMs: number | undefined;
  tap: UsageTap | undefined;
  endStream: (() => void) | undefined;
  /** The relay asked this stream for its usage on the caller's behalf: take it out of the answer. */
  withholdUsage = false;
  /** Asks a streamed (unheld) body for its usage as it passes. */
  usageSplice: UsageSplice | undefined;
  settled = false;

  constructor(ctx: ForwarderContext, incoming: IncomingMessage, outgoing: ServerResponse, req: ForwardRequest, resolve: () => void) {
    this.ctx = ctx;
    this.incoming = incoming;
    this.outgoing = outgoing;
    this.req = req;
    this.resolve = resolve;
    const { operation, jsonBody } = req;
    this.method = operation.method.toUpperCase();
    this.endInFlight = ctx.ops.metrics.requestStarted(operation.operationId);
    this.streamBody = jsonBody === undefined && (operation.body !== 'none' || this.method === 'POST');
    this.heldBody = jsonBody ?? undefined;
    this.streaming = this.streamBody;
    this.cap = operation.body === 'multipart' ? ctx.config.maxUploadBytes + MULTIPART_FRAMING_BYTES : ctx.config.maxJsonBodyBytes;
    this.deadlineMs = ctx.policy.deadlineMs(operation, req.deadlineMs);
    this.extra = req.extraHeaders ?? {};
    this.replaySafe = this.method === 'GET' || this.method === 'DELETE' || incoming.headers['idempotency-key'] !== undefined;
  }

  /** The caller's socket is full and OpenAI's answer paused for it: the timer now waits on the caller. */
  callerFellBehind(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(onCallerStalled, this.ctx.config.clientReadTimeoutMs, this);
  }

  /** The caller read what was waiting: the timer measures OpenAI's silence again. */
  callerCaughtUp(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(onDeadline, this.deadlineMs, this);
  }

  /** Ends the request once: timers, gauges, the request record (with the usage the policy counts), `onDone`. */
  finish(status: number, note?: string, usage?: UsageInfo): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.retryTimer);
    this.endInFlight();
    this.endStream?.();
    if (this.holdsSlot) this.ctx.upstreamSlots.held--;
    const { req } = this;
    this.ctx.ops.record({
      requestId: req.requestId,
      operation: req.operation.operationId,
      keyLabel: req.keyLabel,
      status,
      startedAt: this.startedAt,
      ms: Math.round(performance.now() - this.started),
      upstreamMs: this.upstreamMs,
      upstreamRequestId: this.upstreamRequestId,
      // An answer that names no model (images) is priced by the model its held request body named.
      usage: usage === undefined ? undefined : this.ctx.policy.countUsage(req.operation, this.method, withRequestModel(usage, this.heldBody)),
      attempts: this.attempt,
      note,
    });
    req.onDone?.();
    this.resolve();
  }

  /**
   * Fails the request, whichever side is still open: an error answer if nothing was sent yet, an SSE
   * `error` event on a started event stream, otherwise a cut connection (never a fake success).
   */
  fail(err: RelayError): void {
    if (this.settled) return;
    this.current?.destroy();
    this.upstreamRes?.destroy();
    const { outgoing } = this;
    // A body still arriving is not read to its end for nothing: the connection closes with the answer.
    const extra = this.incoming.complete ? this.extra : { ...this.extra, connection: 'close' };
    if (!outgoing.headersSent) writeError(outgoing, err, this.req.requestId, extra);
    else if (this.sse && !outgoing.writableEnded) outgoing.end(sseErrorEvent(err));
    else outgoing.destroy();
    this.finish(err.status, err.code ?? undefined);
  }
}

/** The deadline passed: whose silence it was decides the answer. */
export function onDeadline(x: Exchange): void {
  if (x.upstreamRes) {
    x.fail(new RelayError(504, `OpenAI stopped sending for ${x.deadlineMs} ms.`, { code: 'upstream_timeout' }));
  } else if (x.streamBody && !x.incoming.complete) {
    x.fail(new RelayError(408, `The request body was still arriving ${x.deadlineMs} ms after the request started; send it whole and promptly.`, { code: 'request_timeout' }));
  } else {
    x.fail(new RelayError(504, `No answer from OpenAI within ${x.deadlineMs} ms of the request.`, { code: 'upstream_timeout' }));
  }
}

/**
 * OpenAI's answer waited on a caller that read nothing for CLIENT_READ_TIMEOUT_MS: nothing more can reach
 * it (an error event would only queue behind the rest), so both connections close.
 */
function onCallerStalled(x: Exchange): void {
  x.upstreamRes?.destroy();
  x.outgoing.destroy();
  x.finish(408, 'client_stalled');
}
