import { hkdfSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseRedirectRules } from './auth/oauth/redirect-uris.ts';
import { parseLimitOverrides, parseRelayKeys } from './ops/keys.ts';
import { checkAcrossSettings } from './config/cross-checks.ts';
import { envFields } from './config/env-fields.ts';
import { commaList, MB } from './config/parsers.ts';
import type { RelayConfig } from './config/types.ts';

export { ACTION_MODEL_DEFAULTS } from './config/env-fields.ts';
export { RESERVED_LABELS } from './config/cross-checks.ts';
export type * from './config/types.ts';

/**
 * The relay's whole configuration, read once from the environment at start-up.
 * Every check fails with a sentence a person can act on; nothing is re-read later.
 * The settings are in config/env-fields.ts, the checks across them in config/cross-checks.ts.
 */

const envSchema = envFields.superRefine(checkAcrossSettings);

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
