import type { IncomingHttpHeaders } from 'node:http';
import type { OAuthEndpoints } from '../auth/oauth/metadata.ts';
import { keyDirectory, type KeyDirectory } from '../auth/key-source.ts';
import { ACCESS_TOKEN_PREFIX } from '../auth/oauth/secrets.ts';
import type { Tokens } from '../auth/oauth/tokens.ts';
import type { RelayConfig } from '../config.ts';
import type { Ops } from '../ops/index.ts';
import { rateLimitError } from '../ops/rate-limit.ts';
import { presentedKeys, relayKeyring } from './auth.ts';
import { RelayError } from './errors.ts';

/**
 * Who may call, and how much: relay keys (RELAY_KEY's in constant time, managed ones by hash from memory:
 * see auth/key-source.ts), the admin key, per-label limits and in-flight caps. One gate, used by both doors
 * into the relay (the Hono app and the pass-through fast path), so a rule holds the same whichever way a
 * request comes in.
 */
export interface Gate {
  /** The caller's key label, or the 401 to answer. With RELAY_AUTH=off every caller is `-`. Synchronous: the hot path. */
  identify(headers: IncomingHttpHeaders): { label: string } | { error: RelayError };
  /**
   * `identify`, and after a miss on what may be a managed key made moments ago on another replica, once
   * more after reading the database's key version (the Hono door: the fast path hands misses to it).
   */
  identifyFresh(headers: IncomingHttpHeaders): Promise<{ label: string } | { error: RelayError }>;
  /**
   * /mcp: a relay key, or an OAuth access token granted for /mcp, which acts as the relay key it was
   * granted with (its label). The 401 names the protected resource metadata, so clients can find the
   * authorization server (RFC 9728 §5.1).
   */
  identifyMcp(headers: IncomingHttpHeaders): Promise<{ label: string } | { error: RelayError }>;
  /** The 401/403 to answer on an admin path, or undefined when the admin key was presented. */
  checkAdmin(headers: IncomingHttpHeaders): RelayError | undefined;
  /** True when per-label limits are configured (so `admit` must be awaited). */
  readonly limited: boolean;
  /** The 429/503 to answer when `label` is over a limit, else undefined. */
  admit(label: string): Promise<RelayError | undefined>;
  /** Takes an in-flight slot for `label` (give it back with `leave`), or the 429 when all are taken. */
  enter(label: string): RelayError | undefined;
  leave(label: string): void;
}

const AUTH_HEADERS = { 'www-authenticate': 'Bearer realm="openai-relay"' };

/** OAuth for /mcp, when it is on: the token check and where its metadata lives. */
export interface McpOAuth {
  tokens: Pick<Tokens, 'verify'>;
  endpoints: Pick<OAuthEndpoints, 'resourceMetadataUrl'>;
}

const TOKEN_REFUSALS = {
  invalid: 'The access token is not valid here (unknown, revoked, or issued for another resource). Authorize again.',
  expired: 'The access token has expired. Refresh it, or authorize again.',
  key_removed: 'The relay key this access token was granted with is no longer configured. Authorize again with a current key.',
} as const;

/** RFC 6750 §3 with RFC 9728's resource_metadata: where to get a token, and why this one failed. */
const challenge = (oauth: McpOAuth, error?: 'invalid_token') => ({
  'www-authenticate': `Bearer ${error ? `error="${error}", ` : ''}resource_metadata="${oauth.endpoints.resourceMetadataUrl}", scope="mcp"`,
});

export function createGate(config: RelayConfig, ops: Ops, oauth?: McpOAuth, keys: KeyDirectory = keyDirectory(config.relayKeys)): Gate {
  const adminKeyring = config.adminKey ? relayKeyring([config.adminKey]) : undefined;
  const inFlightByLabel = new Map<string, number>();

  const unauthorized = (missing: boolean, admin = false) =>
    new RelayError(
      401,
      missing
        ? `Missing ${admin ? 'admin' : 'relay'} key. Send it as \`Authorization: Bearer <key>\`${admin ? '' : ' or `X-Relay-Key: <key>`'}.`
        : admin
          ? 'Incorrect admin key provided: this path needs RELAY_ADMIN_KEY.'
          : 'Incorrect relay key provided. Use a key this relay gave you (from RELAY_KEY or made by its admin; not an OpenAI key).',
      { code: missing ? 'missing_relay_key' : 'invalid_relay_key', headers: AUTH_HEADERS },
    );

  const identify: Gate['identify'] = (headers) => {
    if (!config.relayAuth) return { label: '-' };
    const presented = presentedKeys(headers.authorization, headers['x-relay-key']);
    for (const key of presented) {
      const label = keys.labelOf(key);
      if (label !== undefined) return { label };
    }
    if (oauth && presented.some((key) => key.startsWith(ACCESS_TOKEN_PREFIX))) {
      return { error: new RelayError(401, 'OAuth access tokens work on /mcp only. On this path, send a relay key.', { code: 'invalid_relay_key', headers: AUTH_HEADERS }) };
    }
    return { error: unauthorized(presented.length === 0) };
  };

  const identifyFresh: Gate['identifyFresh'] = async (headers) => {
    const first = identify(headers);
    if (!('error' in first) || !presentedKeys(headers.authorization, headers['x-relay-key']).some(keys.mightBeNew)) return first;
    await keys.refresh();
    return identify(headers);
  };

  return {
    identify,
    identifyFresh,
    async identifyMcp(headers) {
      const byKey = await identifyFresh(headers);
      if (!oauth || !('error' in byKey)) return byKey;
      const presented = presentedKeys(headers.authorization, headers['x-relay-key']);
      const token = presented.find((key) => key.startsWith(ACCESS_TOKEN_PREFIX));
      if (token) {
        const verified = await oauth.tokens.verify(token);
        if ('label' in verified) return { label: verified.label };
        return { error: new RelayError(401, TOKEN_REFUSALS[verified.error], { code: 'invalid_token', headers: challenge(oauth, 'invalid_token') }) };
      }
      if (presented.length > 0) return { error: new RelayError(401, byKey.error.message, { code: 'invalid_relay_key', headers: challenge(oauth, 'invalid_token') }) };
      return {
        error: new RelayError(401, 'Authorization required: connect with OAuth (WWW-Authenticate names the resource metadata), or send a relay key as `Authorization: Bearer <key>`.', {
          code: 'missing_relay_key',
          headers: challenge(oauth),
        }),
      };
    },
    checkAdmin(headers) {
      if (!adminKeyring) return new RelayError(403, 'Admin endpoints are off: set RELAY_ADMIN_KEY to use them.', { code: 'admin_disabled' });
      const presented = presentedKeys(headers.authorization, headers['x-relay-key']);
      return presented.some((key) => adminKeyring.match(key) !== -1) ? undefined : unauthorized(presented.length === 0, true);
    },
    limited: ops.limitsActive,
    async admit(label) {
      const decision = await ops.admit(label);
      return decision.allowed ? undefined : rateLimitError(decision);
    },
    // A runaway caller (one key) cannot take every upstream connection from the others.
    enter(label) {
      const inFlight = inFlightByLabel.get(label) ?? 0;
      if (inFlight >= config.maxInFlightPerKey) {
        return new RelayError(429, `Too many concurrent requests for this relay key (limit ${config.maxInFlightPerKey}); retry when one finishes.`, {
          type: 'rate_limit_error',
          code: 'too_many_concurrent_requests',
          headers: { 'retry-after': '1' },
        });
      }
      inFlightByLabel.set(label, inFlight + 1);
      return undefined;
    },
    leave(label) {
      inFlightByLabel.set(label, (inFlightByLabel.get(label) ?? 1) - 1);
    },
  };
}
