import { randomBytes } from 'node:crypto';

/**
 * Request ids: unique, not secret. A random per-process prefix and a counter, so a busy relay does not
 * spend a UUID's worth of work on every request.
 */
const PREFIX = `req_relay_${randomBytes(6).toString('hex')}`;
let counter = 0;

export function nextRequestId(): string {
  return `${PREFIX}${(++counter).toString(36).padStart(6, '0')}`;
}
