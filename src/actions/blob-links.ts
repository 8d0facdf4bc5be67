import { createHmac, timingSafeEqual } from 'node:crypto';
import type { BlobMeta } from './blob-store.ts';

/**
 * Signed, expiring links to blobs: `<base>/v1/relay/blobs/<id>?expires=<unix s>&signature=<base64url>`.
 * The signature is HMAC-SHA256 over a versioned string naming both the id and the expiry, so neither can
 * be changed without the secret; links need no relay key (ChatGPT and browsers fetch them as they are).
 */

export const BLOB_ROUTE_PREFIX = '/v1/relay/blobs/';

export type LinkCheck = 'ok' | 'expired' | 'invalid';

export interface BlobLinks {
  /** `expiresAt` is in milliseconds since the epoch (the link itself carries whole seconds). */
  url(baseUrl: string, blob: BlobMeta): { url: string; expiresAt: number };
  verify(id: string, expires: string | undefined, signature: string | undefined): LinkCheck;
  /** Whole seconds a link with this `expires` has left (0 when past or malformed); for Cache-Control. */
  remainingSeconds(expires: string | undefined): number;
}

const EXPIRES_PATTERN = /^[0-9]{1,12}$/;
/** 32 bytes of HMAC-SHA256 in unpadded base64url. */
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function createBlobLinks(opts: { secret: Buffer; ttlMs: number; now?: () => number }): BlobLinks {
  if (opts.secret.length < 16) throw new Error('The blob link secret must be at least 16 bytes long.');
  const secret = Buffer.from(opts.secret);
  const now = opts.now ?? Date.now;

  const sign = (id: string, expires: string) => createHmac('sha256', secret).update(`relay-blob-link:v1\n${id}\n${expires}`).digest();

  return {
    url(baseUrl, blob) {
      // A link lives as long as its blob (created at the start of a long write, on S3), never longer.
      const expiresSec = Math.floor((Math.min(now(), blob.createdAt) + opts.ttlMs) / 1000);
      const expires = String(expiresSec);
      const base = baseUrl.replace(/\/+$/, '');
      const signature = sign(blob.id, expires).toString('base64url');
      return {
        url: `${base}${BLOB_ROUTE_PREFIX}${encodeURIComponent(blob.id)}?expires=${expires}&signature=${signature}`,
        expiresAt: expiresSec * 1000,
      };
    },

    verify(id, expires, signature) {
      if (typeof id !== 'string' || id.length === 0 || id.length > 256) return 'invalid';
      if (expires === undefined || signature === undefined) return 'invalid';
      if (!EXPIRES_PATTERN.test(expires) || !SIGNATURE_PATTERN.test(signature)) return 'invalid';
      // Compare the canonical text, not decoded bytes: base64url's spare low bits would let two spellings match.
      const given = Buffer.from(signature, 'ascii');
      const expected = Buffer.from(sign(id, expires).toString('base64url'), 'ascii');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
      // Checked after the signature, so a changed expiry reads as tampering, not as "expired".
      if (Math.floor(now() / 1000) >= Number(expires)) return 'expired';
      return 'ok';
    },

    remainingSeconds(expires) {
      if (expires === undefined || !EXPIRES_PATTERN.test(expires)) return 0;
      return Math.max(0, Number(expires) - Math.floor(now() / 1000));
    },
  };
}
