import type { MiddlewareHandler } from 'hono';
import type { RelayEnv } from '../app.ts';
import type { RelayConfig } from '../config.ts';
import type { Ops } from '../ops/index.ts';
import { rateLimitError } from '../ops/rate-limit.ts';
import { presentedKeys, relayKeyring } from './auth.ts';
import { errorResponse, RelayError } from './errors.ts';

/**
 * Who may call what. Fails closed: public paths need nothing; admin paths need RELAY_ADMIN_KEY (and
 * stay shut without it); everything else needs a relay key, whose label then names the caller and
 * whose limits (concurrency, requests per minute, tokens per day) are checked before work starts.
 */
export function relayAuth(
  config: RelayConfig,
  ops: Ops,
  paths: { isPublic: (path: string) => boolean; isAdmin: (path: string) => boolean },
): MiddlewareHandler<RelayEnv> {
  const keyring = relayKeyring(config.relayKeys.map((k) => k.key));
  const adminKeyring = config.adminKey ? relayKeyring([config.adminKey]) : undefined;
  const inFlightByLabel = new Map<string, number>();

  const unauthorized = (missing: boolean, requestId: string, admin = false) =>
    errorResponse(
      new RelayError(
        401,
        missing
          ? `Missing ${admin ? 'admin' : 'relay'} key. Send it as \`Authorization: Bearer <key>\`${admin ? '' : ' or `X-Relay-Key: <key>`'}.`
          : admin
            ? 'Incorrect admin key provided: this path needs RELAY_ADMIN_KEY.'
            : 'Incorrect relay key provided. Use one of the keys configured in RELAY_KEY (not an OpenAI key).',
        { code: missing ? 'missing_relay_key' : 'invalid_relay_key', headers: { 'www-authenticate': 'Bearer realm="openai-relay"' } },
      ),
      requestId,
    );

  return async (c, next) => {
    const path = c.req.path;
    if (paths.isPublic(path)) return next();
    const { authorization, 'x-relay-key': relayKeyHeader } = c.env.incoming.headers;
    const presented = presentedKeys(authorization, relayKeyHeader);

    if (paths.isAdmin(path)) {
      if (!adminKeyring) {
        return errorResponse(new RelayError(403, 'Admin endpoints are off: set RELAY_ADMIN_KEY to use them.', { code: 'admin_disabled' }), c.get('requestId'));
      }
      if (!presented.some((key) => adminKeyring.match(key) !== -1)) return unauthorized(presented.length === 0, c.get('requestId'), true);
      c.set('keyLabel', 'admin');
      return next();
    }

    let label = '-';
    if (config.relayAuth) {
      let index = -1;
      for (const key of presented) {
        index = keyring.match(key);
        if (index !== -1) break;
      }
      if (index === -1) return unauthorized(presented.length === 0, c.get('requestId'));
      label = config.relayKeys[index].label;
    }
    c.set('keyLabel', label);

    if (ops.limitsActive) {
      const decision = await ops.admit(label);
      if (!decision.allowed) return errorResponse(rateLimitError(decision), c.get('requestId'));
    }

    // A runaway caller (one key) cannot take every upstream connection from the others.
    const inFlight = inFlightByLabel.get(label) ?? 0;
    if (inFlight >= config.maxInFlightPerKey) {
      return errorResponse(
        new RelayError(429, `Too many concurrent requests for this relay key (limit ${config.maxInFlightPerKey}); retry when one finishes.`, {
          type: 'rate_limit_error',
          code: 'too_many_concurrent_requests',
          headers: { 'retry-after': '1' },
        }),
        c.get('requestId'),
      );
    }
    inFlightByLabel.set(label, inFlight + 1);
    try {
      await next();
    } finally {
      inFlightByLabel.set(label, (inFlightByLabel.get(label) ?? 1) - 1);
    }
  };
}
