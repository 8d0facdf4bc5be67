import { z } from 'zod';
import { DEFAULT_REDIRECT_HOSTS } from '../auth/oauth/redirect-uris.ts';
import { blankAsUnset, intInRange, MB, positiveInt, urlWithScheme } from './parsers.ts';

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

/**
 * Every setting the relay reads, with its default and the sentence it fails with. Checks that span
 * several settings are in cross-checks.ts.
 */
export const envFields = z.object({
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
});
