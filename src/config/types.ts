import type { RedirectRule } from '../auth/oauth/redirect-uris.ts';
import type { LabelPolicy, NamedRelayKey } from '../ops/keys.ts';
import type { RetryPolicy } from '../upstream/retry.ts';

/** The relay's validated configuration, as loadConfig (src/config.ts) builds it from the environment. */

export type TimeoutClass = 'short' | 'standard' | 'long';

export interface RelayConfig {
  openaiApiKey: string;
  /** Upstream origin plus any path prefix, without the trailing `/v1` (our operation paths carry `/v1`). */
  upstreamBase: URL;
  openaiOrganization?: string;
  openaiProject?: string;
  /** Relay keys with their labels; the label (never the key) names the caller in logs, metrics and usage. */
  relayKeys: NamedRelayKey[];
  /** Guards /metrics and /v1/relay/usage; without it those stay closed. */
  adminKey?: string;
  ops: OpsConfig;
  relayAuth: boolean;
  port: number;
  host: string;
  publicBaseUrl?: URL;
  corsOrigins: string[];
  timeouts: Record<TimeoutClass, number>;
  connectTimeoutMs: number;
  maxJsonBodyBytes: number;
  maxUploadBytes: number;
  /** Collect the young generation after this many bytes streamed (0: never); see core/stream-memory.ts. */
  streamGcBytes: number;
  shutdownGraceMs: number;
  retry: RetryPolicy;
  maxProxyEnvelopeBytes: number;
  maxUrlBytes: number;
  maxHeaderBytes: number;
  maxInFlightPerKey: number;
  /** Open caller connections at most; undefined: derived from the process's open-file limit (core/connection-guard.ts). */
  maxConnections?: number;
  /** A connection that has not sent a complete request head within this is closed. */
  requestHeadTimeoutMs: number;
  /** A body the relay reads itself (proxy envelope, action, MCP message) must arrive within this (408). */
  requestBodyTimeoutMs: number;
  /** A caller that reads nothing of a forwarded answer for this long (OpenAI's answer waiting on it) is cut. */
  clientReadTimeoutMs: number;
  /** Connections the forwarding core opens to OpenAI at most, and how many requests may wait for one (503 past that). */
  upstreamMaxSockets: number;
  upstreamQueueMax: number;
  /** Host names the relay answers to besides PUBLIC_BASE_URL's, loopback names and IP literals (checked on loopback or with RELAY_AUTH=off). */
  allowedHosts: string[];
  webSockets: WebSocketConfig;
  logLevel: string;
  actions: ActionConfig;
  oauth: OAuthConfig;
}

/** OAuth 2.1 for /mcp (src/auth/oauth/); it runs only with a public https (or loopback) base URL. */
export interface OAuthConfig {
  /** MCP_OAUTH: off leaves /mcp on static relay keys only. */
  enabled: boolean;
  /** Where authorization codes may be sent over https (loopback http is always allowed). */
  redirectRules: RedirectRule[];
  accessTokenTtlS: number;
  refreshTokenTtlS: number;
}

export interface WebSocketConfig {
  /** Largest message either side may send through a relayed WebSocket (the socket closes with 1009 past it). */
  maxMessageBytes: number;
  /** A relayed WebSocket with no frame either way for this long is closed. */
  idleTimeoutMs: number;
}

export interface OpsConfig {
  /** Per-label limits from RATE_LIMITS (`*` for every label without its own). */
  limits: Map<string, LabelPolicy>;
  /** A price table of the operator's own (PRICES_FILE); else the built-in one (ops/prices.json). */
  pricesFile?: string;
  /** With REDIS_URL, limit counters live in Redis and every replica shares them. */
  redisUrl?: string;
  rateLimitFailOpen: boolean;
  /** With DATABASE_URL, the usage ledger lives in PostgreSQL; otherwise in the SQLite file. */
  databaseUrl?: string;
  usageDbPath: string;
  ledger: boolean;
  /** Serve /metrics on this separate port (no key needed there) instead of behind the admin key. */
  metricsPort?: number;
}

export interface ActionConfig {
  /** Hosts an openaiFileIdRefs download_link may point at; `*.example.com` matches subdomains. */
  fileHosts: string[];
  fileMaxBytes: number;
  fileTimeoutMs: number;
  fileMaxRedirects: number;
  /** Every action answers within this (ChatGPT allows 45 s per call). */
  deadlineMs: number;
  defaultModel: string;
  imageModel: string;
  /** How often the configured models are checked against GET /v1/models (0: never; src/ops/model-check.ts). */
  modelCheckMs: number;
  blobDir: string;
  blobTtlMs: number;
  blobQuotaBytes: number;
  /** With BLOB_S3_BUCKET, blobs live in that bucket (one store for every replica) instead of blobDir. */
  blobS3?: BlobS3Config;
  /** Signs blob links. Derived from OPENAI_API_KEY when not set, so replicas agree without extra config. */
  blobLinkSecret: Buffer;
  privacyPolicyText?: string;
}

export interface BlobS3Config {
  bucket: string;
  /** An S3-compatible server's URL (MinIO, Ceph, R2, …); unset for AWS S3. */
  endpoint?: string;
  region: string;
  prefix: string;
  /** From AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; unset: the AWS SDK's default chain (instance or task role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}
