import { hash, timingSafeEqual } from 'node:crypto';

/**
 * Relay keys are compared in constant time: both sides are hashed to 32 bytes first (so lengths never
 * differ) and every configured key is compared, with no early exit, whatever matched.
 */
export interface RelayKeyring {
  /** Index of the configured key the presented one equals, or -1. */
  match(presented: string): number;
}

const digest = (value: string) => hash('sha256', value, 'buffer');

export function relayKeyring(keys: readonly string[]): RelayKeyring {
  const digests = keys.map(digest);
  return {
    match(presented) {
      const candidate = digest(presented);
      let found = -1;
      for (let i = 0; i < digests.length; i++) {
        if (timingSafeEqual(candidate, digests[i]) && found === -1) found = i;
      }
      return found;
    },
  };
}

/** The key a caller presents: `Authorization: Bearer <key>` or `X-Relay-Key: <key>`. */
export function presentedKeys(authorization: string | undefined, relayKeyHeader: string | string[] | undefined): string[] {
  const keys: string[] = [];
  if (authorization) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match) keys.push(match[1]);
  }
  if (typeof relayKeyHeader === 'string' && relayKeyHeader.trim()) keys.push(relayKeyHeader.trim());
  return keys;
}
