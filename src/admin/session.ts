import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { sameSecret } from '../auth/oauth/secrets.ts';

/**
 * The admin page's sign-in session and its anti-CSRF tokens, without server-side state (so any replica
 * serves any request): a session is `<id>.<expiry>.<HMAC>` under a key derived from RELAY_ADMIN_KEY, kept
 * in an HttpOnly, SameSite=Strict cookie. Every form carries a token that is an HMAC of the session id
 * (or, on the sign-in form, of a nonce in its own cookie), checked in constant time. Changing the admin
 * key ends every session; signing out clears the cookie (a copied cookie stays valid until it expires,
 * SESSION_TTL_MS at most).
 */

export const SESSION_TTL_MS = 8 * 60 * 60_000;
export const LOGIN_FORM_TTL_MS = 15 * 60_000;
const ID = /^[A-Za-z0-9_-]{22}$/;

export interface AdminSessions {
  /** A new session's cookie value. */
  issue(): string;
  /** The session id of a valid, unexpired cookie value, else undefined. */
  verify(cookie: string | undefined): string | undefined;
  /** The anti-CSRF token of every form shown in session `sid` (or on the sign-in form, for its nonce). */
  csrfToken(sid: string): string;
  csrfValid(sid: string | undefined, token: string | undefined): boolean;
  /** A nonce for the sign-in form's cookie. */
  nonce(): string;
  validNonce(value: string | undefined): value is string;
}

export function adminSessions(adminKey: string, now: () => number = Date.now): AdminSessions {
  const secret = Buffer.from(hkdfSync('sha256', adminKey, 'openai-relay/admin-session/v1', 'admin page', 32));
  const mac = (...parts: string[]) => createHmac('sha256', secret).update(parts.join('\n')).digest('base64url');
  const newId = () => randomBytes(16).toString('base64url');
  return {
    issue() {
      const sid = newId();
      const expires = String(now() + SESSION_TTL_MS);
      return `${sid}.${expires}.${mac('session', sid, expires)}`;
    },
    verify(cookie) {
      const [sid, expires, given, extra] = (cookie ?? '').split('.');
      if (extra !== undefined || !sid || !ID.test(sid) || !/^\d{1,15}$/.test(expires ?? '') || !given) return undefined;
      if (!sameSecret(given, mac('session', sid, expires!)) || now() >= Number(expires)) return undefined;
      return sid;
    },
    csrfToken: (sid) => mac('csrf', sid),
    csrfValid: (sid, token) => sid !== undefined && token !== undefined && token.length > 0 && sameSecret(token, mac('csrf', sid)),
    nonce: newId,
    validNonce: (value): value is string => value !== undefined && ID.test(value),
  };
}
