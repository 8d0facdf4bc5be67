import type { MiddlewareHandler } from 'hono';
import type { RelayEnv } from '../core/env.ts';
import { errorResponse } from './errors.ts';
import type { Gate } from './gate.ts';

/**
 * The gate as Hono middleware. Fails closed: public paths need nothing; admin paths need
 * RELAY_ADMIN_KEY (and stay shut without it); /mcp needs a relay key or an OAuth access token granted
 * with one; everything else needs a relay key, whose label then names
 * the caller and whose limits (requests per minute, tokens per day, concurrency) are checked first.
 */
export function relayAuth(
  gate: Gate,
  paths: { isPublic: (path: string) => boolean; isAdmin: (path: string) => boolean; isMcp: (path: string) => boolean },
): MiddlewareHandler<RelayEnv> {
  return async (c, next) => {
    const path = c.req.path;
    if (paths.isPublic(path)) return next();
    const { headers } = c.env.incoming;

    if (paths.isAdmin(path)) {
      const refusal = gate.checkAdmin(headers);
      if (refusal) return errorResponse(refusal, c.get('requestId'));
      c.set('keyLabel', 'admin');
      return next();
    }

    // /mcp also takes OAuth access tokens (which act as the relay key they were granted with).
    let who = paths.isMcp(path) ? await gate.identifyMcp(headers) : gate.identify(headers);
    // A miss may be a managed key made moments ago on another replica: looked up once more.
    if ('error' in who && !paths.isMcp(path)) who = await gate.identifyFresh(headers);
    if ('error' in who) return errorResponse(who.error, c.get('requestId'));
    c.set('keyLabel', who.label);
    if (gate.limited) {
      const refusal = await gate.admit(who.label);
      if (refusal) return errorResponse(refusal, c.get('requestId'));
    }
    const full = gate.enter(who.label);
    if (full) return errorResponse(full, c.get('requestId'));
    try {
      await next();
    } finally {
      gate.leave(who.label);
    }
  };
}
