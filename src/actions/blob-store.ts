import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open as openFile, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RelayError } from '../core/errors.ts';

/**
 * Files the relay hands back to a GPT (generated images, videos, large file content), kept for a short
 * time and served through signed links (see blob-links.ts and routes/blobs.ts).
 *
 * The interface is storage-neutral so an S3-compatible store can replace the local one later:
 * - put: stream the body with a multipart upload (`@aws-sdk/lib-storage` Upload or plain
 *   CreateMultipartUpload/UploadPart) to `<prefix>/<id>`, with contentType, filename and createdAt as
 *   object metadata; the quota becomes a bucket lifecycle rule plus an optional per-relay byte budget.
 * - open: HeadObject + GetObject (the Body is a Readable), `undefined` on NoSuchKey or when expired.
 * - sweep: a no-op, or DeleteObjects over a ListObjectsV2 page, since a lifecycle rule (expire after 1 day,
 *   the finest S3 grain) does the real clean-up; expiry is enforced on open from createdAt.
 * - links: the relay's own signed links keep working unchanged (the route streams from `open`); a store
 *   may instead offer presigned GetObject URLs (with ResponseContentDisposition) and skip the relay hop.
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
  /** Streams the body to storage (never buffers a stream whole); refuses (RelayError 507 or 413) when the quota would be exceeded after evicting expired blobs. */
  put(body: Readable | Buffer | Uint8Array, meta: { contentType: string; filename: string }): Promise<BlobMeta>;
  /** `undefined` when the id is malformed, missing or expired. The stream must be consumed or destroyed. */
  open(id: string): Promise<{ meta: BlobMeta; stream: Readable } | undefined>;
  /** Deletes expired blobs (and leftovers of interrupted writes). */
  sweep(): Promise<void>;
  /** Stops the periodic sweep timer (it is unref'd, so it never holds the process open). */
  close(): void;
}

/** 24 random bytes as base64url: 32 characters, 192 bits, unguessable. */
const ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;
const DATA_SUFFIX = '.bin';
const META_SUFFIX = '.json';
const TMP_PREFIX = '.tmp-';

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

const MB = 1024 * 1024;
const fmtMB = (bytes: number) => `${Math.round((bytes / MB) * 10) / 10} MB`;

export function createLocalBlobStore(opts: {
  dir: string;
  ttlMs: number;
  quotaBytes: number;
  now?: () => number;
  sweepIntervalMs?: number;
}): BlobStore {
  const { dir, ttlMs, quotaBytes } = opts;
  const now = opts.now ?? Date.now;
  /** What is on disk and complete, by id. Rebuilt from the directory by every full sweep. */
  const index = new Map<string, BlobMeta>();
  /** Bytes being written right now (counted against the quota before they land). */
  let reserved = 0;
  const writing = new Set<string>();
  let ready: Promise<void> | undefined;

  const dataPath = (id: string) => join(dir, id + DATA_SUFFIX);
  const metaPath = (id: string) => join(dir, id + META_SUFFIX);
  const expired = (meta: BlobMeta) => now() >= meta.createdAt + ttlMs;
  const used = () => {
    let total = reserved;
    for (const meta of index.values()) total += meta.size;
    return total;
  };

  const init = () => (ready ??= (async () => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await rescan();
  })().catch((err) => {
    ready = undefined;
    throw err;
  }));

  async function remove(id: string): Promise<void> {
    index.delete(id);
    // Meta first: a blob without meta is invisible to open(), so a half-deleted blob is never served.
    await unlink(metaPath(id)).catch(() => {});
    await unlink(dataPath(id)).catch(() => {});
  }

  async function readMeta(id: string): Promise<BlobMeta | undefined> {
    try {
      const parsed = JSON.parse(await readFile(metaPath(id), 'utf8')) as Partial<BlobMeta>;
      if (
        parsed.id !== id ||
        typeof parsed.size !== 'number' ||
        typeof parsed.createdAt !== 'number' ||
        typeof parsed.contentType !== 'string' ||
        typeof parsed.filename !== 'string'
      ) {
        return undefined;
      }
      return { id, contentType: parsed.contentType, filename: parsed.filename, size: parsed.size, createdAt: parsed.createdAt };
    } catch {
      return undefined;
    }
  }

  /** Reads the directory: indexes complete blobs, deletes expired ones and leftovers of dead writes. */
  async function rescan(): Promise<void> {
    const scanStartedAt = now();
    const names = await readdir(dir);
    const seen = new Set<string>();
    const graceMs = Math.max(ttlMs, 60_000);
    for (const name of names) {
      const full = join(dir, name);
      if (name.startsWith(TMP_PREFIX)) {
        if (writing.has(name)) continue;
        const info = await stat(full).catch(() => undefined);
        if (info && now() - info.mtimeMs > graceMs) await unlink(full).catch(() => {});
        continue;
      }
      const id = name.endsWith(META_SUFFIX) ? name.slice(0, -META_SUFFIX.length) : name.endsWith(DATA_SUFFIX) ? name.slice(0, -DATA_SUFFIX.length) : '';
      if (!isBlobId(id) || seen.has(id)) continue;
      seen.add(id);
      const meta = await readMeta(id);
      if (!meta) {
        // Data without meta: a write that died between the two renames, or a deletion half done.
        const info = await stat(dataPath(id)).catch(() => undefined);
        if (!info || now() - info.mtimeMs > graceMs) await remove(id);
        continue;
      }
      if (expired(meta)) await remove(id);
      else index.set(id, meta);
    }
    // Forget blobs that vanished from disk, but not ones a put finished while this scan ran.
    for (const meta of [...index.values()]) if (!seen.has(meta.id) && meta.createdAt < scanStartedAt) index.delete(meta.id);
  }

  async function evictExpired(): Promise<void> {
    for (const meta of [...index.values()]) if (expired(meta)) await remove(meta.id);
  }

  function fullError(size: number | undefined): RelayError {
    if (size !== undefined && size > quotaBytes) {
      return new RelayError(413, `The file is ${fmtMB(size)}, more than this relay can keep (${fmtMB(quotaBytes)}). Ask for a smaller result (fewer pages, lower resolution or a shorter video).`, {
        code: 'blob_too_large',
      });
    }
    const minutes = Math.max(1, Math.round(ttlMs / 60_000));
    return new RelayError(507, `The relay's file storage is full (${fmtMB(quotaBytes)}); files are deleted ${minutes} minutes after they are made. Tell the user to try again later, or ask for a smaller result.`, {
      code: 'blob_storage_full',
    });
  }

  async function put(body: Readable | Buffer | Uint8Array, metaIn: { contentType: string; filename: string }): Promise<BlobMeta> {
    await init();
    await evictExpired();
    const knownSize = body instanceof Uint8Array ? body.byteLength : undefined;
    if (knownSize !== undefined && used() + knownSize > quotaBytes) {
      throw fullError(knownSize);
    }

    const id = newBlobId();
    const tmpName = `${TMP_PREFIX}${id}`;
    const tmpPath = join(dir, tmpName);
    let written = 0;
    const release = () => {
      reserved -= written;
      written = 0;
    };
    writing.add(tmpName);
    try {
      const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) : body;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          if (used() + chunk.length > quotaBytes) {
            const err = fullError(written + chunk.length > quotaBytes ? written + chunk.length : undefined);
            release(); // at once, so a concurrent put can use the space this one gives up
            done(err);
            return;
          }
          written += chunk.length;
          reserved += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(source, meter, createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 }));
      const size = written;
      const meta: BlobMeta = {
        id,
        contentType: safeContentType(metaIn.contentType),
        filename: safeFilename(metaIn.filename),
        size,
        createdAt: now(),
      };
      await rename(tmpPath, dataPath(id));
      const metaTmp = join(dir, `${TMP_PREFIX}${id}${META_SUFFIX}`);
      await writeFile(metaTmp, JSON.stringify(meta), { flag: 'wx', mode: 0o600 });
      await rename(metaTmp, metaPath(id));
      index.set(id, meta);
      release(); // now counted through the index
      return meta;
    } catch (err) {
      release();
      if (body instanceof Readable && !body.destroyed) body.destroy();
      await unlink(tmpPath).catch(() => {});
      await unlink(dataPath(id)).catch(() => {});
      await unlink(join(dir, `${TMP_PREFIX}${id}${META_SUFFIX}`)).catch(() => {});
      throw err;
    } finally {
      writing.delete(tmpName);
    }
  }

  async function open(id: string): Promise<{ meta: BlobMeta; stream: Readable } | undefined> {
    if (!isBlobId(id)) return undefined;
    await init();
    const meta = await readMeta(id);
    if (!meta) return undefined;
    if (expired(meta)) {
      await remove(id);
      return undefined;
    }
    // Open the file before answering: once open, a concurrent sweep's unlink cannot break the read.
    const handle = await openFile(dataPath(id), 'r').catch(() => undefined);
    if (!handle) return undefined;
    const info = await handle.stat().catch(() => undefined);
    if (!info || info.size !== meta.size) {
      await handle.close().catch(() => {});
      return undefined;
    }
    return { meta, stream: handle.createReadStream({ autoClose: true }) };
  }

  async function sweep(): Promise<void> {
    await init();
    await rescan();
  }

  const interval = opts.sweepIntervalMs ?? Math.min(Math.max(ttlMs / 4, 10_000), 5 * 60_000);
  const timer = setInterval(() => {
    sweep().catch(() => {});
  }, interval);
  timer.unref();

  return {
    put,
    open,
    sweep,
    close: () => clearInterval(timer),
  };
}
