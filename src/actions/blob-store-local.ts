import { createWriteStream } from 'node:fs';
import { mkdir, open as openFile, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBlobQuota } from './blob-quota.ts';
import { isBlobId, newBlobId, safeContentType, safeFilename, sweepPeriodically, type BlobMeta, type BlobStore } from './blob-store.ts';

/**
 * Blobs in a local directory: `<id>.bin` (the bytes) beside `<id>.json` (BlobMeta), each written under a
 * temporary name and renamed into place, data first, so a blob is visible only once whole. One replica's
 * files: behind a load balancer, use the S3 store (or a shared volume) so every replica can serve every link.
 */

const DATA_SUFFIX = '.bin';
const META_SUFFIX = '.json';
const TMP_PREFIX = '.tmp-';

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
  const writing = new Set<string>();
  let ready: Promise<void> | undefined;

  const dataPath = (id: string) => join(dir, id + DATA_SUFFIX);
  const metaPath = (id: string) => join(dir, id + META_SUFFIX);
  const expired = (meta: BlobMeta) => now() >= meta.createdAt + ttlMs;
  const quota = createBlobQuota({
    quotaBytes,
    ttlMs,
    stored: () => {
      let total = 0;
      for (const meta of index.values()) total += meta.size;
      return total;
    },
    makeRoom: () => evictExpired(),
  });

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

  async function put(body: Readable | Buffer | Uint8Array, metaIn: { contentType: string; filename: string }): Promise<BlobMeta> {
    await init();
    await evictExpired();
    const id = newBlobId();
    const tmpName = `${TMP_PREFIX}${id}`;
    const tmpPath = join(dir, tmpName);
    const meter = quota.meter();
    writing.add(tmpName);
    try {
      const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) : body;
      await pipeline(source, meter.stream, createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 }));
      const meta: BlobMeta = {
        id,
        contentType: safeContentType(metaIn.contentType),
        filename: safeFilename(metaIn.filename),
        size: meter.bytes(),
        createdAt: now(),
      };
      await rename(tmpPath, dataPath(id));
      const metaTmp = join(dir, `${TMP_PREFIX}${id}${META_SUFFIX}`);
      await writeFile(metaTmp, JSON.stringify(meta), { flag: 'wx', mode: 0o600 });
      await rename(metaTmp, metaPath(id));
      index.set(id, meta);
      meter.release(); // now counted through the index
      return meta;
    } catch (err) {
      meter.release();
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

  return { put, open, sweep, close: sweepPeriodically(sweep, ttlMs, opts.sweepIntervalMs) };
}
