import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Random values the relay hands out (256 bits, base64url) and the hashes it keeps of them. */

export const randomValue = (prefix = '', bytes = 32) => `${prefix}${randomBytes(bytes).toString('base64url')}`;

export const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** Constant-time comparison of two strings of any lengths (both are hashed first). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** Access and refresh tokens carry a prefix, so a token sent where a relay key belongs can be named as such. */
export const ACCESS_TOKEN_PREFIX = 'rly_at_';
export const REFRESH_TOKEN_PREFIX = 'rly_rt_';
