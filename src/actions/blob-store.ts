import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * Files the relay hands back to a GPT (generated images, videos, large file content), kept for a short
 * time and served through signed links (see blob-links.ts and routes/blobs.ts).
 *
 * Two stores implement this interface (chosen by open-blob-store.ts): a local directory (blob-store-local.ts)
 * and an S3-compatible bucket shared by every replica (blob-store-s3.ts). Both stream bodies both ways, expire
 * a blob `ttlMs` after it was made (checked on open, cleaned up by a periodic sweep) and keep the bytes they
 * hold plus the bytes being written within one quota (blob-quota.ts).
 */

export interface BlobMeta {
  id: string;
  contentType: string;
  filename: string;
  size: number;
  /** Milliseconds since the epoch (the store's clock). */
  createdAt: number;
}

export interface BlobStore {
  /**
   * Streams the body to storage (never buffers a stream whole); refuses (RelayError 507 or 413) when the quota
   * would be exceeded after evicting expired blobs, and answers 503 when the storage cannot be reached.
   */
  put(body: Readable | Buffer | Uint8Array, meta: { contentType: string; filename: string }): Promise<BlobMeta>;
  /** `undefined` when the id is malformed, missing or expired (503 when the storage cannot be reached). The stream must be consumed or destroyed. */
  open(id: string): Promise<{ meta: BlobMeta; stream: Readable } | undefined>;
  /** Deletes expired blobs (and leftovers of interrupted writes). */
  sweep(): Promise<void>;
  /** Stops the periodic sweep timer (it is unref'd, so it never holds the process open). */
  close(): void;
}

/** 24 random bytes as base64url: 32 characters, 192 bits, unguessable. */
const ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;

export function newBlobId(): string {
  return randomBytes(24).toString('base64url');
}

/** Strict id check, done before any id reaches a file path (no `..`, `/`, `\`, NUL or dots at all). */
export function isBlobId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

const MIME_PATTERN = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}(\s*;\s*[a-z0-9_.-]+=("[^"\\\r\n]*"|[a-z0-9_.+-]+))*$/i;

export function safeContentType(value: string | undefined): string {
  const v = (value ?? '').trim();
  return MIME_PATTERN.test(v) && v.length <= 200 ? v : 'application/octet-stream';
}

/** A display file name: no path, no control characters, at most 200 characters. */
export function safeFilename(value: string | undefined, fallback = 'file'): string {
  const base = (value ?? '').split(/[/\\]/).pop() ?? '';
  const cleaned = base
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .trim()
    .replace(/^\.+/, '');
  const chars = Array.from(cleaned);
  const name = chars.length > 200 ? chars.slice(0, 200).join('') : cleaned;
  return name || fallback;
}


/**
 * Runs `sweep` every quarter of the TTL (from 10 s to 5 min) on an unref'd timer; returns the stop function.
 * A failed sweep is reported to `onError` and tried again at the next tick.
 */
export function sweepPeriodically(sweep: () => Promise<void>, ttlMs: number, intervalMs?: number, onError: (err: unknown) => void = () => {}): () => void {
  const timer = setInterval(() => {
    sweep().catch(onError);
  }, intervalMs ?? Math.min(Math.max(ttlMs / 4, 10_000), 5 * 60_000));
  timer.unref();
  return () => clearInterval(timer);
}
