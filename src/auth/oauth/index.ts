import type { RelayConfig } from '../../config.ts';
import type { Logger } from '../../core/logger.ts';
import { configKeySource, type KeySource } from '../key-source.ts';
import { attemptLimiter, type AttemptLimiter } from './attempt-limiter.ts';
import { createClients, type Clients } from './clients.ts';
import { consentCsrf, type ConsentCsrf } from './consent-csrf.ts';
import { oauthEndpoints, type OAuthEndpoints } from './metadata.ts';
import type { RedirectRule } from './redirect-uris.ts';
import { openGrantStore, type GrantStore } from './store.ts';
import { createTokens, type Tokens } from './tokens.ts';

/**
 * The relay's OAuth 2.1 authorization server for /mcp, assembled: endpoints (from PUBLIC_BASE_URL),
 * the grant store (in the ledger's database), clients (registered or metadata documents), grants and
 * tokens, and the consent form's guards. Undefined when OAuth is off (the log says why); /mcp then takes
 * static relay keys only, as before.
 */
export interface OAuth {
  endpoints: OAuthEndpoints;
  redirectRules: readonly RedirectRule[];
  keys: KeySource;
  clients: Clients;
  tokens: Tokens;
  csrf: ConsentCsrf;
  /** Wrong relay keys on the consent form: a few a minute per source, a few dozen in all. */
  keyGuesses: AttemptLimiter;
  accessTokenTtlS: number;
  now: () => number;
  close(): Promise<void>;
}

export interface OAuthOverrides {
  /** DNS for client metadata document hosts (tests). */
  resolveClientHost?: (hostname: string) => Promise<string[]>;
  /** The clock of codes, tokens and caches (tests). */
  now?: () => number;
  /** Postgres schema (tests). */
  schema?: string;
}

const KEY_GUESSES = { perSource: 5, total: 20, windowMs: 60_000 };
const PURGE_EVERY_MS = 60 * 60_000;

/** `keys`: every key the relay accepts (RELAY_KEY's and managed ones); RELAY_KEY's alone when not given. */
export async function createOAuth(config: RelayConfig, logger: Logger, overrides: OAuthOverrides = {}, keys: KeySource = configKeySource(config.relayKeys)): Promise<OAuth | undefined> {
  const endpoints = oauthEndpoints(config);
  if ('off' in endpoints) {
    logger.info(`OAuth for /mcp is off (${endpoints.off}); /mcp accepts relay keys only.`);
    return undefined;
  }
  const now = overrides.now ?? Date.now;
  const store: GrantStore = await openGrantStore({ databaseUrl: config.ops.databaseUrl, sqlitePath: config.ops.usageDbPath, schema: overrides.schema });
  const { redirectRules, accessTokenTtlS, refreshTokenTtlS } = config.oauth;
  const tokens = createTokens({
    store,
    keys,
    resource: endpoints.resource,
    accessTtlMs: accessTokenTtlS * 1000,
    refreshTtlMs: refreshTokenTtlS * 1000,
    now,
    onEvent: (event, fields) => logger.info(fields, event),
  });
  // Key ids take a slow hash each: worked out soon after start-up, not on the first token check.
  setTimeout(() => void keys.byId('').catch(() => {}), 1_000).unref();
  const purge = () => tokens.purge().catch((err) => logger.error({ err: { message: (err as Error)?.message } }, 'oauth purge failed'));
  void purge();
  const timer = setInterval(purge, PURGE_EVERY_MS);
  timer.unref();
  logger.info({ issuer: endpoints.issuer }, 'OAuth for /mcp is on');
  return {
    endpoints,
    redirectRules,
    keys,
    clients: createClients({ store, redirectRules, documents: { resolve: overrides.resolveClientHost, now }, now }),
    tokens,
    csrf: consentCsrf(store, now),
    keyGuesses: attemptLimiter({ ...KEY_GUESSES, now }),
    accessTokenTtlS,
    now,
    async close() {
      clearInterval(timer);
      await store.close();
    },
  };
}
