import { createHmac } from 'node:crypto';
import { REQUEST_FIELDS } from './authorization-request.ts';
import { randomValue, sameSecret } from './secrets.ts';
import type { GrantStore } from './store.ts';

/**
 * The consent form's anti-CSRF token: an HMAC, under a secret every replica shares (kept in the grant
 * store), of a per-browser nonce (a SameSite=Strict cookie set with the form), the time the form was
 * made and every parameter of the authorization request. So a posted form is accepted only from the
 * browser that loaded it, within FORM_TTL_MS, for exactly the request it showed.
 */

export const FORM_TTL_MS = 15 * 60_000;
const NONCE = /^[A-Za-z0-9_-]{43}$/;

export interface ConsentCsrf {
  /** A nonce for the cookie: the browser's own when it sent a valid one, else a new one. */
  nonce(fromCookie: string | undefined): string;
  token(nonce: string, params: URLSearchParams): Promise<string>;
  valid(nonce: string | undefined, token: string | undefined, params: URLSearchParams): Promise<boolean>;
}

export function consentCsrf(store: GrantStore, now: () => number = Date.now): ConsentCsrf {
  let secret: Promise<string> | undefined;
  const mac = async (nonce: string, at: string, params: URLSearchParams) => {
    secret ??= store.secret('consent-csrf', () => randomValue());
    const fields = REQUEST_FIELDS.map((name) => params.get(name) ?? '');
    return createHmac('sha256', await secret).update(JSON.stringify([nonce, at, ...fields])).digest('base64url');
  };
  return {
    nonce: (fromCookie) => (fromCookie && NONCE.test(fromCookie) ? fromCookie : randomValue()),
    async token(nonce, params) {
      const at = String(now());
      return `${at}.${await mac(nonce, at, params)}`;
    },
    async valid(nonce, token, params) {
      if (!nonce || !NONCE.test(nonce) || !token) return false;
      const [at, given] = token.split('.', 2);
      const age = now() - Number(at);
      if (!/^\d{1,15}$/.test(at) || !given || age < 0 || age > FORM_TTL_MS) return false;
      return sameSecret(given, await mac(nonce, at, params));
    },
  };
}
