import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { TokenDetail, UsageInfo } from '../upstream/usage-tap/index.ts';
import { createHistogram, type HistogramSeries } from './histogram.ts';

/**
 * Prometheus metrics for one relay, on its own Registry (never prom-client's global one), so several relays
 * in one process — as in tests — do not collide.
 *
 *   relay_requests_total{operation,status,key}            counter
 *   relay_request_duration_seconds{operation,status}      histogram, 1 ms … 600 s
 *   relay_upstream_duration_seconds{operation}            histogram, 1 ms … 600 s (time to upstream answer headers, or as the caller measures it)
 *   relay_upstream_errors_total{operation,kind}           counter
 *   relay_in_flight_requests{operation}                   gauge
 *   relay_open_streams                                    gauge (SSE streams being relayed)
 *   relay_ledger_queue_depth                              gauge, read from a callback at scrape time
 *   relay_stream_gc_total                                 counter (young-generation collections for streamed bodies, core/stream-memory.ts)
 *   relay_open_connections                                gauge, read at scrape time (caller connections, core/connection-guard.ts)
 *   relay_connections_shed_total{reason}                  counter (evicted to make room at MAX_CONNECTIONS, or refused there)
 *   relay_upstream_queued_requests                        gauge, read at scrape time (forwarded requests waiting for an upstream connection)
 *   relay_tokens_total{key,model,kind}                    counter: input, cached_input, output, reasoning, ... tokens (see TOKEN_KINDS)
 *   relay_cost_usd_total{key,model}                       counter: USD at the price table's prices
 *   relay_unpriced_usage_total{model}                     counter: calls that spent tokens on a model (or tier) without a price
 *   + prom-client's default process metrics (CPU, memory, event loop lag, GC, handles)
 *
 * Label cardinality stays bounded: `operation` is the route table's operation id (pass that, never a raw
 * path), `status` the numeric HTTP status, `key` the relay key's label (not the key), `model` the price
 * table's name for it (a dated snapshot counts under its model), `kind` a short fixed word (e.g. timeout,
 * connect, reset, aborted; or a token kind). As a backstop each label accepts at most `maxLabelValues`
 * distinct values (default 200); later new values are recorded as `other`.
 */

export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface MetricsOptions {
  /** Include prom-client's default process metrics (default true). */
  defaultMetrics?: boolean;
  maxLabelValues?: number;
}

export interface RequestLabels {
  operation: string;
  status: number;
  /** The relay key's label; use e.g. `none` when relay auth is off. */
  keyLabel: string;
}

export interface RelayMetrics {
  registry: Registry;
  /** A request for `operation` started (in-flight +1); call the returned function once when it ends (extra calls do nothing). */
  requestStarted(operation: string): () => void;
  /** A request ended: counts it and observes its duration (and the upstream's, when it reached upstream). */
  requestFinished(labels: RequestLabels, seconds: number, upstreamSeconds?: number): void;
  upstreamError(operation: string, kind: string): void;
  /** An SSE stream opened (open streams +1); call the returned function once when it closes. */
  streamOpened(): () => void;
  /** The forwarding core collected the young generation after streaming STREAM_GC_MIB. */
  streamCollected(): void;
  /** Where the ledger's queue depth is read from at each scrape. */
  setLedgerQueueDepth(fn: () => number): void;
  /** Where the number of open caller connections is read from at each scrape. */
  setOpenConnections(fn: () => number): void;
  /** A connection was closed to make room at MAX_CONNECTIONS (`evicted`), or refused there. */
  connectionShed(reason: 'evicted' | 'refused'): void;
  /** Where the number of forwarded requests waiting for an upstream connection is read from at each scrape. */
  setUpstreamQueued(fn: () => number): void;
  /** A request's usage: its tokens by kind and its cost (micro-dollars; undefined when unknown), under `model`. */
  usageRecorded(keyLabel: string, model: string, usage: UsageInfo, costMicros: number | undefined): void;
  /** A call spent tokens on a model (or service tier) the price table has no price for. */
  unpricedUsage(model: string): void;
  /** The Prometheus text exposition, for a GET /metrics handler. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Caps the distinct values of one label. */
function boundedValues(max: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}

const once = (fn: () => void): (() => void) => {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
};

/**
 * Token kinds counted per key and model. `cached_input` is part of `input` and `reasoning` part of
 * `output` (as OpenAI reports them); audio and image kinds are likewise parts, counted when present.
 */
export const TOKEN_KINDS = ['input', 'cached_input', 'output', 'reasoning', 'audio_input', 'audio_output', 'image_input', 'image_output', 'cache_write'] as const;
type TokenKind = (typeof TOKEN_KINDS)[number];
const DETAIL_KINDS: [TokenDetail, TokenKind][] = [
  ['cachedInput', 'cached_input'],
  ['reasoning', 'reasoning'],
  ['audioInput', 'audio_input'],
  ['audioOutput', 'audio_output'],
  ['imageInput', 'image_input'],
  ['imageOutput', 'image_output'],
  ['cacheWrite', 'cache_write'],
];

const statusLabel = (status: number): string => (Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : '0');
const seconds = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value) && value >= 0;

export function createMetrics(opts: MetricsOptions = {}): RelayMetrics {
  const registry = new Registry();
  const max = opts.maxLabelValues ?? 200;
  const op = boundedValues(max);
  const key = boundedValues(max);
  const kind = boundedValues(max);
  const modelName = boundedValues(max);

  // The request path only adds to plain numbers (children, inFlightByOperation below); these two are
  // filled from them when scraped. prom-client hashes its label object on every inc/dec/set.
  const requests = new Counter({
    name: 'relay_requests_total',
    help: 'Requests answered by the relay, by operation, HTTP status and relay key label.',
    labelNames: ['operation', 'status', 'key'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const child of children.values()) this.inc(child.labels, child.total);
    },
  });
  const duration = createHistogram(registry, {
    name: 'relay_request_duration_seconds',
    help: 'Time from receiving a request to finishing its answer (for streams: until the stream ends).',
    buckets: DURATION_BUCKETS,
  });
  const upstreamDuration = createHistogram(registry, {
    name: 'relay_upstream_duration_seconds',
    help: 'Time spent waiting on OpenAI for a request.',
    buckets: DURATION_BUCKETS,
  });
  const upstreamErrors = new Counter({
    name: 'relay_upstream_errors_total',
    help: 'Upstream failures (no usable answer from OpenAI), by operation and kind.',
    labelNames: ['operation', 'kind'] as const,
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'relay_in_flight_requests',
    help: 'Requests being handled right now.',
    labelNames: ['operation'] as const,
    registers: [registry],
    collect() {
      for (const [operation, count] of inFlightByOperation) this.set({ operation }, count);
    },
  });
  const openStreams = new Gauge({
    name: 'relay_open_streams',
    help: 'Server-sent event streams being relayed right now.',
    registers: [registry],
  });
  const streamCollections = new Counter({
    name: 'relay_stream_gc_total',
    help: 'Young-generation collections run to free the buffers of streamed bodies (every STREAM_GC_MIB forwarded).',
    registers: [registry],
  });
  let ledgerDepth: (() => number) | undefined;
  new Gauge({
    name: 'relay_ledger_queue_depth',
    help: 'Usage records waiting to be written to the ledger.',
    registers: [registry],
    collect() {
      if (!ledgerDepth) return;
      try {
        const depth = ledgerDepth();
        if (Number.isFinite(depth)) this.set(depth);
      } catch {
        // A failing callback must not break the whole scrape; the gauge keeps its last value.
      }
    },
  });
  const sources: { openConnections?: () => number; upstreamQueued?: () => number } = {};
  const gaugeFrom = (name: string, help: string, source: keyof typeof sources) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const read = sources[source];
        if (read) this.set(read());
      },
    });
  gaugeFrom('relay_open_connections', 'Caller connections open right now (at most MAX_CONNECTIONS).', 'openConnections');
  gaugeFrom('relay_upstream_queued_requests', 'Forwarded requests waiting for a connection to OpenAI (all UPSTREAM_MAX_SOCKETS busy).', 'upstreamQueued');
  const shedConnections = new Counter({
    name: 'relay_connections_shed_total',
    help: 'Connections closed at MAX_CONNECTIONS: evicted (no request in progress, oldest first) to make room, or refused (all busy).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  // Usage is added to plain numbers per (key, model) on the request path, and copied out when scraped.
  const spend = new Map<string, { key: string; model: string; tokens: Record<TokenKind, number>; micros: number }>();
  new Counter({
    name: 'relay_tokens_total',
    help: 'Tokens spent through the relay, by relay key label, model and kind (cached_input is part of input, reasoning part of output).',
    labelNames: ['key', 'model', 'kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of spend.values()) {
        for (const k of TOKEN_KINDS) if (s.tokens[k] > 0) this.inc({ key: s.key, model: s.model, kind: k }, s.tokens[k]);
      }
    },
  });
  new Counter({
    name: 'relay_cost_usd_total',
    help: 'What requests cost at the price table\'s prices, in US dollars, by relay key label and model (requests without a price are left out).',
    labelNames: ['key', 'model'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of spend.values()) if (s.micros > 0) this.inc({ key: s.key, model: s.model }, s.micros / 1e6);
    },
  });
  const unpriced = new Counter({
    name: 'relay_unpriced_usage_total',
    help: 'Calls that spent tokens on a model (or service tier) the price table has no price for: they have no cost. Add the price with PRICES_FILE.',
    labelNames: ['model'] as const,
    registers: [registry],
  });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  // Label children looked up once per label combination: on the request path, an observation is then
  // a plain method call instead of hashing a label object every time.
  const children = new Map<string, { labels: { operation: string; status: string; key: string }; total: number; duration: HistogramSeries; upstream: HistogramSeries }>();
  const childrenFor = (operation: string, status: string, keyLabel: string) => {
    const id = `${operation}\u0000${status}\u0000${keyLabel}`;
    let child = children.get(id);
    if (!child) {
      child = {
        labels: { operation, status, key: keyLabel },
        total: 0,
        duration: duration.series({ operation, status }),
        upstream: upstreamDuration.series({ operation }),
      };
      children.set(id, child);
    }
    return child;
  };
  const inFlightByOperation = new Map<string, number>();

  return {
    registry,
    requestStarted(operation) {
      const name = op(operation);
      inFlightByOperation.set(name, (inFlightByOperation.get(name) ?? 0) + 1);
      return once(() => inFlightByOperation.set(name, inFlightByOperation.get(name)! - 1));
    },
    requestFinished(labels, elapsed, upstreamSeconds) {
      const child = childrenFor(op(labels.operation), statusLabel(labels.status), key(labels.keyLabel));
      child.total++;
      if (seconds(elapsed)) child.duration.observe(elapsed);
      if (seconds(upstreamSeconds)) child.upstream.observe(upstreamSeconds);
    },
    upstreamError(operation, errorKind) {
      upstreamErrors.inc({ operation: op(operation), kind: kind(errorKind) });
    },
    streamOpened() {
      openStreams.inc();
      return once(() => openStreams.dec());
    },
    streamCollected() {
      streamCollections.inc();
    },
    setLedgerQueueDepth(fn) {
      ledgerDepth = fn;
    },
    setOpenConnections(fn) {
      sources.openConnections = fn;
    },
    connectionShed(reason) {
      shedConnections.inc({ reason });
    },
    setUpstreamQueued(fn) {
      sources.upstreamQueued = fn;
    },
    usageRecorded(keyLabel, model, usage, costMicros) {
      const k = key(keyLabel);
      const m = modelName(model);
      const id = `${k}\u0000${m}`;
      let s = spend.get(id);
      if (!s) {
        s = { key: k, model: m, tokens: Object.fromEntries(TOKEN_KINDS.map((t) => [t, 0])) as Record<TokenKind, number>, micros: 0 };
        spend.set(id, s);
      }
      s.tokens.input += usage.inputTokens ?? 0;
      s.tokens.output += usage.outputTokens ?? 0;
      const d = usage.details;
      if (d) for (const [detail, kindName] of DETAIL_KINDS) s.tokens[kindName] += d[detail] ?? 0;
      if (costMicros !== undefined) s.micros += costMicros;
    },
    unpricedUsage(model) {
      unpriced.inc({ model: modelName(model) });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
