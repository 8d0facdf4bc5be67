import { hkdfSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { RetryPolicy } from './upstream/retry.ts';
import { DEFAULT_REDIRECT_HOSTS, parseRedirectRules, RedirectRulesError, type RedirectRule } from './auth/oauth/redirect-uris.ts';
import { exampleKeyProblems } from './ops/example-keys.ts';
import { KeyConfigError, MIN_RELAY_KEY_LENGTH, parseLimitOverrides, parseRelayKeys, type LabelPolicy, type NamedRelayKey } from './ops/keys.ts';
import { loadPriceBook, PriceTableError } from './ops/prices.ts';


/**
 * The relay's whole configuration, read once from the environment at start-up.
 * Every check fails with a sentence a person can act on; nothing is re-read later.
 */

const MB = 1024 * 1024;

/**
 * The models the action operations use when a caller names none: the replacements OpenAI's deprecations
 * page (https://developers.openai.com/api/docs/deprecations) names for gpt-5-mini (shutting down on 2026-12-11)
 * and the GPT Image 1 family (gpt-image-1 shut down 2026-10-23, gpt-image-1.5 and -1-mini 2026-12-01).
 * src/ops/model-check.ts warns when a configured one is going; an action then suggests these.
 */
export const ACTION_MODEL_DEFAULTS = {
  ACTION_DEFAULT_MODEL: 'gpt-6.1-terra',
  ACTION_IMAGE_MODEL: 'gpt-image-2.6-sunburst',
} as const;

const commaList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

const positiveInt = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value <= 0) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number above 0 (got "${raw}").` });
        return z.NEVER;
      }
      return value;
    });

/** A whole number from `min` to `max` (`minLabel` names the lowest, e.g. "0 (off)"). */
const intInRange = (name: string, fallback: number, min: number, max: number, minLabel = String(min)) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from ${minLabel} to ${max} (got "${raw}").` });
        return z.NEVER;
      }
      return value;
    });

const urlWithScheme = (name: string, schemes: string[]) =>
  z.string().transform((raw, ctx) => {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      ctx.addIssue({ code: 'custom', message: `${name} must be an absolute URL such as https://example.com (got "${raw}").` });
      return z.NEVER;
    }
    if (!schemes.includes(url.protocol)) {
      ctx.addIssue({ code: 'custom', message: `${name} must start with ${schemes.map((s) => s + '//').join(' or ')} (got "${raw}").` });
      return z.NEVER;
    }
    return url;
  });

/** An optional setting for which an empty value (`BLOB_S3_BUCKET=` in a compose file) means "not set". */
const blankAsUnset = <T extends z.ZodType>(schema: T) => z.preprocess((raw) => (typeof raw === 'string' && raw.trim() === '' ? undefined : raw), schema.optional());

/** Labels the relay uses in its own records: admin requests, and requests with no valid key. */
export const RESERVED_LABELS: ReadonlySet<string> = new Set(['admin', 'anonymous']);

const envSchema = z
  .object({
    OPENAI_API_KEY: z
      .string({ error: 'OPENAI_API_KEY is not set: set it to the OpenAI API key the relay should use (in the environment or in a .env file).' })
      .trim()
      .min(1, 'OPENAI_API_KEY is empty: set it to the OpenAI API key the relay should use.'),
    OPENAI_BASE_URL: z.string().optional(),
    OPENAI_API_BASE: z.string().optional(),
    OPENAI_ORGANIZATION: z.string().trim().optional(),
    OPENAI_PROJECT: z.string().trim().optional(),
    RELAY_KEY: z.string().optional(),
    RELAY_AUTH: z
      .enum(['on', 'off'], { error: 'RELAY_AUTH must be "on" (the default) or "off".' })
      .default('on'),
    PORT: positiveInt('PORT', 8000).refine((port) => port <= 65535, 'PORT must be at most 65535.'),
    HOST: z.string().trim().default('0.0.0.0'),
    PUBLIC_BASE_URL: urlWithScheme('PUBLIC_BASE_URL', ['https:', 'http:']).optional(),
    CORS_ORIGINS: z.string().default('https://chatgpt.com,https://chat.openai.com'),
    UPSTREAM_TIMEOUT_SHORT_MS: positiveInt('UPSTREAM_TIMEOUT_SHORT_MS', 30_000),
    UPSTREAM_TIMEOUT_STANDARD_MS: positiveInt('UPSTREAM_TIMEOUT_STANDARD_MS', 600_000),
    UPSTREAM_TIMEOUT_LONG_MS: positiveInt('UPSTREAM_TIMEOUT_LONG_MS', 900_000),
    UPSTREAM_CONNECT_TIMEOUT_MS: positiveInt('UPSTREAM_CONNECT_TIMEOUT_MS', 10_000),
    MAX_JSON_BODY_BYTES: positiveInt('MAX_JSON_BODY_BYTES', 25 * MB),
    MAX_UPLOAD_BYTES: positiveInt('MAX_UPLOAD_BYTES', 512 * MB),
    SHUTDOWN_GRACE_MS: positiveInt('SHUTDOWN_GRACE_MS', 30_000),
    STREAM_GC_MIB: intInRange('STREAM_GC_MIB', 8, 0, 1024, '0 (off)'),
    UPSTREAM_RETRIES: intInRange('UPSTREAM_RETRIES', 2, 0, 10),
    UPSTREAM_RETRY_BASE_MS: positiveInt('UPSTREAM_RETRY_BASE_MS', 250),
    UPSTREAM_RETRY_MAX_DELAY_MS: positiveInt('UPSTREAM_RETRY_MAX_DELAY_MS', 5_000),
    UPSTREAM_RETRY_BUDGET_MS: positiveInt('UPSTREAM_RETRY_BUDGET_MS', 15_000),
    MAX_PROXY_ENVELOPE_BYTES: positiveInt('MAX_PROXY_ENVELOPE_BYTES', 1 * MB),
    MAX_URL_BYTES: positiveInt('MAX_URL_BYTES', 8 * 1024),
    MAX_HEADER_BYTES: positiveInt('MAX_HEADER_BYTES', 16 * 1024),
    MAX_IN_FLIGHT_PER_KEY: positiveInt('MAX_IN_FLIGHT_PER_KEY', 64),
    // Connections and slow peers (docs/security.md).
    MAX_CONNECTIONS: positiveInt('MAX_CONNECTIONS', 0),
    REQUEST_HEAD_TIMEOUT_MS: positiveInt('REQUEST_HEAD_TIMEOUT_MS', 10_000),
    REQUEST_BODY_TIMEOUT_MS: positiveInt('REQUEST_BODY_TIMEOUT_MS', 30_000),
    CLIENT_READ_TIMEOUT_MS: positiveInt('CLIENT_READ_TIMEOUT_MS', 120_000),
    UPSTREAM_MAX_SOCKETS: positiveInt('UPSTREAM_MAX_SOCKETS', 4096),
    UPSTREAM_QUEUE_MAX: intInRange('UPSTREAM_QUEUE_MAX', 256, 0, 1_000_000, '0 (no waiting)'),
    ALLOWED_HOSTS: z.string().optional(),
    WS_MAX_MESSAGE_BYTES: positiveInt('WS_MAX_MESSAGE_BYTES', 16 * MB),
    WS_IDLE_TIMEOUT_MS: positiveInt('WS_IDLE_TIMEOUT_MS', 300_000),
    ACTION_FILE_HOSTS: z.string().default('files.oaiusercontent.com,*.oaiusercontent.com'),
    ACTION_FILE_MAX_BYTES: positiveInt('ACTION_FILE_MAX_BYTES', 50 * MB),
    ACTION_FILE_TIMEOUT_MS: positiveInt('ACTION_FILE_TIMEOUT_MS', 20_000),
    ACTION_FILE_MAX_REDIRECTS: positiveInt('ACTION_FILE_MAX_REDIRECTS', 3),
    ACTION_DEADLINE_MS: positiveInt('ACTION_DEADLINE_MS', 40_000).refine(
      (ms) => ms <= 44_000,
      'ACTION_DEADLINE_MS must be at most 44000: ChatGPT gives an action 45 s in all.',
    ),
    ACTION_DEFAULT_MODEL: z.string().trim().min(1).default(ACTION_MODEL_DEFAULTS.ACTION_DEFAULT_MODEL),
    ACTION_IMAGE_MODEL: z.string().trim().min(1).default(ACTION_MODEL_DEFAULTS.ACTION_IMAGE_MODEL),
    MODEL_CHECK_HOURS: intInRange('MODEL_CHECK_HOURS', 24, 0, 24 * 7, '0 (off)'),
    BLOB_DIR: z.string().trim().default('data/blobs'),
    BLOB_TTL_MS: positiveInt('BLOB_TTL_MS', 60 * 60 * 1000),
    BLOB_QUOTA_BYTES: positiveInt('BLOB_QUOTA_BYTES', 2048 * MB),
    BLOB_S3_BUCKET: blankAsUnset(
      z.string().trim().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'BLOB_S3_BUCKET must be an S3 bucket name (3-63 lowercase letters, digits, "." and "-").'),
    ),
    BLOB_S3_ENDPOINT: blankAsUnset(urlWithScheme('BLOB_S3_ENDPOINT', ['https:', 'http:'])),
    BLOB_S3_REGION: blankAsUnset(z.string().trim()),
    BLOB_S3_PREFIX: z
      .string()
      .regex(/^((?!\.+\/)[A-Za-z0-9_.-]+\/)*$/, 'BLOB_S3_PREFIX must be empty or folder names ending in "/" (letters, digits, "_", "." and "-"; not "." or ".."), e.g. relay-blobs/.')
      .max(200, 'BLOB_S3_PREFIX must be at most 200 characters.')
      .default('relay-blobs/'),
    AWS_REGION: blankAsUnset(z.string().trim()),
    AWS_ACCESS_KEY_ID: blankAsUnset(z.string().trim()),
    AWS_SECRET_ACCESS_KEY: blankAsUnset(z.string()),
    AWS_SESSION_TOKEN: blankAsUnset(z.string()),
    BLOB_LINK_SECRET: z
      .string()
      .min(16, 'BLOB_LINK_SECRET must be at least 16 characters (e.g. `openssl rand -hex 32`), or left unset to derive one from OPENAI_API_KEY.')
      .optional(),
    PRIVACY_POLICY_TEXT: z.string().optional(),
    RELAY_ADMIN_KEY: z.string().optional(),
    RATE_LIMITS: z.string().optional(),
    PRICES_FILE: blankAsUnset(z.string().trim()),
    REDIS_URL: urlWithScheme('REDIS_URL', ['redis:', 'rediss:']).optional(),
    RATE_LIMIT_FAIL_MODE: z.enum(['open', 'closed'], { error: 'RATE_LIMIT_FAIL_MODE must be "open" (the default) or "closed".' }).default('open'),
    DATABASE_URL: urlWithScheme('DATABASE_URL', ['postgres:', 'postgresql:']).optional(),
    USAGE_DB_PATH: z.string().trim().default('data/usage.sqlite'),
    USAGE_LEDGER: z.enum(['on', 'off'], { error: 'USAGE_LEDGER must be "on" (the default) or "off".' }).default('on'),
    MCP_OAUTH: z.enum(['on', 'off'], { error: 'MCP_OAUTH must be "on" (the default) or "off".' }).default('on'),
    OAUTH_REDIRECT_HOSTS: z.string().default(DEFAULT_REDIRECT_HOSTS.join(',')),
    OAUTH_ACCESS_TOKEN_TTL_S: intInRange('OAUTH_ACCESS_TOKEN_TTL_S', 3600, 1, 86_400),
    OAUTH_REFRESH_TOKEN_TTL_S: intInRange('OAUTH_REFRESH_TOKEN_TTL_S', 30 * 86_400, 60, 365 * 86_400),
    METRICS_PORT: positiveInt('METRICS_PORT', 0).refine((port) => port <= 65535, 'METRICS_PORT must be at most 65535.'),
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        error: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent.',
      })
      .default('info'),
  })
  .superRefine((env, ctx) => {
    const keys = commaList(env.RELAY_KEY);
    // With an admin key, keys can be made through the admin API or page instead (docs/keys.md).
    if (env.RELAY_AUTH === 'on' && keys.length === 0 && !env.RELAY_ADMIN_KEY?.trim()) {
      ctx.addIssue({
        code: 'custom',
        path: ['RELAY_KEY'],
        message:
          'RELAY_KEY is not set, so anyone could spend your OpenAI key through this relay. Set RELAY_KEY to one or more secret keys (comma-separated, at least 16 characters each; e.g. `openssl rand -hex 32`), or set RELAY_ADMIN_KEY and create keys at /admin, or set RELAY_AUTH=off to run an open relay on purpose.',
      });
    }
    let named: NamedRelayKey[] = [];
    try {
      named = parseRelayKeys(env.RELAY_KEY ?? '');
    } catch (err) {
      if (!(err instanceof KeyConfigError)) throw err;
      for (const message of err.problems) ctx.addIssue({ code: 'custom', path: ['RELAY_KEY'], message });
    }
    for (const reserved of named.filter((k) => RESERVED_LABELS.has(k.label))) {
      ctx.addIssue({
        code: 'custom',
        path: ['RELAY_KEY'],
        message: `The label "${reserved.label}" is reserved for the relay's own records; give that RELAY_KEY entry another label.`,
      });
    }
    const openaiKey = env.OPENAI_API_KEY?.trim();
    for (const { variable, message } of exampleKeyProblems({ ...env, OPENAI_API_KEY: openaiKey }, named)) {
      ctx.addIssue({ code: 'custom', path: [variable], message });
    }
    if (named.some((k) => k.key === openaiKey)) {
      ctx.addIssue({
        code: 'custom',
        path: ['RELAY_KEY'],
        message: 'A RELAY_KEY entry equals OPENAI_API_KEY: relay keys are handed to callers, so they must differ from the OpenAI key.',
      });
    }
    const admin = env.RELAY_ADMIN_KEY?.trim();
    if (admin !== undefined && admin !== '') {
      if (admin.length < MIN_RELAY_KEY_LENGTH) {
        ctx.addIssue({ code: 'custom', path: ['RELAY_ADMIN_KEY'], message: `RELAY_ADMIN_KEY must be at least ${MIN_RELAY_KEY_LENGTH} characters (e.g. \`openssl rand -hex 32\`).` });
      }
      if (admin === openaiKey || named.some((k) => k.key === admin)) {
        ctx.addIssue({ code: 'custom', path: ['RELAY_ADMIN_KEY'], message: 'RELAY_ADMIN_KEY must differ from OPENAI_API_KEY and from every RELAY_KEY.' });
      }
    }
    if (!env.BLOB_S3_BUCKET) {
      for (const name of ['BLOB_S3_ENDPOINT', 'BLOB_S3_REGION'] as const) {
        if (env[name] !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: `${name} is set but BLOB_S3_BUCKET is not: set BLOB_S3_BUCKET to the bucket for file links, or remove ${name}.` });
      }
    } else if ((env.AWS_ACCESS_KEY_ID === undefined) !== (env.AWS_SECRET_ACCESS_KEY === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['AWS_ACCESS_KEY_ID'],
        message: 'Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the BLOB_S3_BUCKET, or neither (to use the instance or task role).',
      });
    }
    if (env.BLOB_S3_ENDPOINT && (env.BLOB_S3_ENDPOINT.username || env.BLOB_S3_ENDPOINT.password || env.BLOB_S3_ENDPOINT.search)) {
      ctx.addIssue({ code: 'custom', path: ['BLOB_S3_ENDPOINT'], message: 'BLOB_S3_ENDPOINT must not carry credentials or a query: give the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.' });
    }
    try {
      parseRedirectRules(commaList(env.OAUTH_REDIRECT_HOSTS));
    } catch (err) {
      if (!(err instanceof RedirectRulesError)) throw err;
      for (const message of err.problems) ctx.addIssue({ code: 'custom', path: ['OAUTH_REDIRECT_HOSTS'], message });
    }
    try {
      // With an admin key, RATE_LIMITS may name labels of keys not made yet (managed keys): a warning at start-up instead.
      parseLimitOverrides(env.RATE_LIMITS, env.RELAY_ADMIN_KEY?.trim() ? undefined : named.map((k) => k.label));
    } catch (err) {
      if (!(err instanceof KeyConfigError)) throw err;
      for (const message of err.problems) ctx.addIssue({ code: 'custom', path: ['RATE_LIMITS'], message });
    }
    if (env.PRICES_FILE !== undefined) {
      try {
        loadPriceBook(env.PRICES_FILE);
      } catch (err) {
        if (!(err instanceof PriceTableError)) throw err;
        ctx.addIssue({ code: 'custom', path: ['PRICES_FILE'], message: `${err.message} See docs/costs.md for the format.` });
      }
    }
  });

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

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`The relay cannot start:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `https://api.openai.com/v1`, `https://api.openai.com` and `https://host/prefix/v1/` all name the same upstream. */
export function normalizeUpstreamBase(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError([`OPENAI_BASE_URL must be an absolute URL such as https://api.openai.com/v1 (got "${raw}").`]);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError([`OPENAI_BASE_URL must start with https:// or http:// (got "${raw}").`]);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError(['OPENAI_BASE_URL must not carry a query, fragment or credentials.']);
  }
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return url;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => issue.message));
  }
  const e = parsed.data;
  const baseRaw = e.OPENAI_BASE_URL?.trim() || e.OPENAI_API_BASE?.trim() || 'https://api.openai.com/v1';
  return {
    openaiApiKey: e.OPENAI_API_KEY,
    upstreamBase: normalizeUpstreamBase(baseRaw),
    openaiOrganization: e.OPENAI_ORGANIZATION || undefined,
    openaiProject: e.OPENAI_PROJECT || undefined,
    relayKeys: e.RELAY_KEY ? parseRelayKeys(e.RELAY_KEY) : [],
    adminKey: e.RELAY_ADMIN_KEY?.trim() || undefined,
    ops: {
      limits: parseLimitOverrides(e.RATE_LIMITS),
      pricesFile: e.PRICES_FILE,
      redisUrl: e.REDIS_URL?.toString(),
      rateLimitFailOpen: e.RATE_LIMIT_FAIL_MODE === 'open',
      databaseUrl: e.DATABASE_URL?.toString(),
      usageDbPath: e.USAGE_DB_PATH,
      ledger: e.USAGE_LEDGER === 'on',
      metricsPort: e.METRICS_PORT || undefined,
    },
    relayAuth: e.RELAY_AUTH === 'on',
    port: e.PORT,
    host: e.HOST,
    publicBaseUrl: e.PUBLIC_BASE_URL ?? renderExternalUrl(env.RENDER_EXTERNAL_URL),
    corsOrigins: commaList(e.CORS_ORIGINS),
    timeouts: {
      short: e.UPSTREAM_TIMEOUT_SHORT_MS,
      standard: e.UPSTREAM_TIMEOUT_STANDARD_MS,
      long: e.UPSTREAM_TIMEOUT_LONG_MS,
    },
    connectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
    maxJsonBodyBytes: e.MAX_JSON_BODY_BYTES,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    streamGcBytes: e.STREAM_GC_MIB * MB,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    retry: {
      maxRetries: e.UPSTREAM_RETRIES,
      baseDelayMs: e.UPSTREAM_RETRY_BASE_MS,
      maxDelayMs: e.UPSTREAM_RETRY_MAX_DELAY_MS,
      budgetMs: e.UPSTREAM_RETRY_BUDGET_MS,
    },
    maxProxyEnvelopeBytes: e.MAX_PROXY_ENVELOPE_BYTES,
    maxUrlBytes: e.MAX_URL_BYTES,
    maxHeaderBytes: e.MAX_HEADER_BYTES,
    maxInFlightPerKey: e.MAX_IN_FLIGHT_PER_KEY,
    maxConnections: e.MAX_CONNECTIONS || undefined,
    requestHeadTimeoutMs: e.REQUEST_HEAD_TIMEOUT_MS,
    requestBodyTimeoutMs: e.REQUEST_BODY_TIMEOUT_MS,
    clientReadTimeoutMs: e.CLIENT_READ_TIMEOUT_MS,
    upstreamMaxSockets: e.UPSTREAM_MAX_SOCKETS,
    upstreamQueueMax: e.UPSTREAM_QUEUE_MAX,
    allowedHosts: commaList(e.ALLOWED_HOSTS).map((h) => h.toLowerCase()),
    webSockets: { maxMessageBytes: e.WS_MAX_MESSAGE_BYTES, idleTimeoutMs: e.WS_IDLE_TIMEOUT_MS },
    logLevel: e.LOG_LEVEL,
    actions: {
      fileHosts: commaList(e.ACTION_FILE_HOSTS).map((h) => h.toLowerCase()),
      fileMaxBytes: e.ACTION_FILE_MAX_BYTES,
      fileTimeoutMs: e.ACTION_FILE_TIMEOUT_MS,
      fileMaxRedirects: e.ACTION_FILE_MAX_REDIRECTS,
      deadlineMs: e.ACTION_DEADLINE_MS,
      defaultModel: e.ACTION_DEFAULT_MODEL,
      imageModel: e.ACTION_IMAGE_MODEL,
      modelCheckMs: e.MODEL_CHECK_HOURS * 60 * 60 * 1000,
      blobDir: e.BLOB_DIR,
      blobTtlMs: e.BLOB_TTL_MS,
      blobQuotaBytes: e.BLOB_QUOTA_BYTES,
      ...(e.BLOB_S3_BUCKET
        ? {
            blobS3: {
              bucket: e.BLOB_S3_BUCKET,
              endpoint: e.BLOB_S3_ENDPOINT?.toString().replace(/\/$/, ''),
              region: e.BLOB_S3_REGION ?? e.AWS_REGION ?? 'us-east-1',
              prefix: e.BLOB_S3_PREFIX,
              credentials:
                e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
                  ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY, ...(e.AWS_SESSION_TOKEN ? { sessionToken: e.AWS_SESSION_TOKEN } : {}) }
                  : undefined,
            },
          }
        : {}),
      blobLinkSecret: e.BLOB_LINK_SECRET
        ? Buffer.from(e.BLOB_LINK_SECRET, 'utf8')
        : Buffer.from(hkdfSync('sha256', e.OPENAI_API_KEY, 'openai-relay', 'blob-link-signing', 32)),
      privacyPolicyText: e.PRIVACY_POLICY_TEXT,
    },
    oauth: {
      enabled: e.MCP_OAUTH === 'on',
      redirectRules: parseRedirectRules(commaList(e.OAUTH_REDIRECT_HOSTS)),
      accessTokenTtlS: e.OAUTH_ACCESS_TOKEN_TTL_S,
      refreshTokenTtlS: e.OAUTH_REFRESH_TOKEN_TTL_S,
    },
  };
}

/** Render sets RENDER_EXTERNAL_URL (https://<service>.onrender.com): a sensible public URL when none is configured. */
function renderExternalUrl(raw: string | undefined): URL | undefined {
  if (!raw) return undefined;
  try {
    const url = new URL(raw);
    return url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Reads `.env` from the working directory when present; variables already set in the environment win. */
export function loadDotEnv(path = '.env'): boolean {
  if (!existsSync(path)) return false;
  process.loadEnvFile(path);
  return true;
}
