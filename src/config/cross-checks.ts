import type { z } from 'zod';
import { parseRedirectRules, RedirectRulesError } from '../auth/oauth/redirect-uris.ts';
import { exampleKeyProblems } from '../ops/example-keys.ts';
import { KeyConfigError, MIN_RELAY_KEY_LENGTH, parseLimitOverrides, parseRelayKeys, type NamedRelayKey } from '../ops/keys.ts';
import { loadPriceBook, PriceTableError } from '../ops/prices.ts';
import type { envFields } from './env-fields.ts';
import { commaList } from './parsers.ts';

/** Labels the relay uses in its own records: admin requests, and requests with no valid key. */
export const RESERVED_LABELS: ReadonlySet<string> = new Set(['admin', 'anonymous']);

/**
 * The checks that span several settings (keys against each other, S3 settings together) or parse a
 * setting's whole grammar (RELAY_KEY, RATE_LIMITS, OAUTH_REDIRECT_HOSTS, PRICES_FILE): every problem is
 * reported at once, each with a sentence naming the setting.
 */
export function checkAcrossSettings(env: z.output<typeof envFields>, ctx: z.RefinementCtx): void {
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
}
