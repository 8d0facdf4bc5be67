import { pipeline, Readable } from 'node:stream';
import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { RelayError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { createBlobQuota } from './blob-quota.ts';
import { isBlobId, newBlobId, safeContentType, safeFilename, sweepPeriodically, type BlobMeta, type BlobStore } from './blob-store.ts';

/**
 * Blobs in an S3-compatible bucket, shared by every replica: `<prefix><id>` holds the bytes, with the
 * content type as Content-Type and the name and creation time as object metadata. Writes stream through a
 * multipart upload (at most `queueSize` parts of `partSize` bytes in flight, plus the one being filled);
 * reads stream GetObject's body. Loaded only when BLOB_S3_BUCKET is set (see open-blob-store.ts).
 *
 * Expiry is the local store's: `open` refuses a blob `ttlMs` after its creation time, and a sweep on every
 * replica deletes expired objects. The quota counts every blob under the prefix, as the last listing saw it,
 * plus this replica's writes since: replicas see each other's new blobs at their next sweep.
 */

export interface S3BlobStoreOptions {
  bucket: string;
  /** An S3-compatible server (MinIO, Ceph, R2, …), addressed path-style; unset for AWS itself. */
  endpoint?: string;
  region: string;
  /** Every key this store writes, lists or deletes starts with it. */
  prefix: string;
  /** Static keys; unset: the SDK's default chain (e.g. an instance or task role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  ttlMs: number;
  quotaBytes: number;
  now?: () => number;
  sweepIntervalMs?: number;
  /** Multipart part size (S3's minimum, 5 MiB, by default) and parts uploading at once (2). */
  partSize?: number;
  queueSize?: number;
  logger?: Pick<Logger, 'warn'>;
}

const META_CREATED = 'relay-created-at';
const META_FILENAME = 'relay-filename';
/** Objects whose Last-Modified is this close to expiry are asked for their exact creation time. */
const CANDIDATE_SLACK_MS = 5 * 60_000;
/** One listing reads at most this many pages of 1,000 keys. */
const MAX_LIST_PAGES = 100;
const DELETE_BATCH = 1000;
const WARN_EVERY_MS = 30_000;

export async function createS3BlobStore(opts: S3BlobStoreOptions): Promise<BlobStore> {
  const { bucket, prefix, ttlMs } = opts;
  const now = opts.now ?? Date.now;
  const client = new S3Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    // Checksums only where S3 requires them: S3-compatible servers differ in the newer trailing-checksum
    // framing, and SigV4 (or TLS) already covers each request's bytes.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    requestHandler: {
      connectionTimeout: 5_000,
      // Idle time on an open socket (a stalled download), not a cap on a long one.
      socketTimeout: 60_000,
      // One socket per blob being downloaded: room for many slow readers.
      httpAgent: { keepAlive: true, maxSockets: 256 },
      httpsAgent: { keepAlive: true, maxSockets: 256 },
    },
  });
  const where = `bucket "${bucket}"${opts.endpoint ? ` at ${opts.endpoint}` : ` in ${opts.region}`}`;
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    client.destroy();
    throw new Error(`the blob store (BLOB_S3_BUCKET, ${where}) cannot be used: ${describe(err)}. Check BLOB_S3_BUCKET, BLOB_S3_ENDPOINT, BLOB_S3_REGION and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.`);
  }

  const keyOf = (id: string) => prefix + id;
  /** Bytes under the prefix at the last listing (expired but not yet deleted objects included). */
  let listedBytes = 0;
  let listedOnce = false;
  /** This replica's writes finished since the last listing began, by id. */
  const recent = new Map<string, { size: number; finishedAt: number }>();
  /** Creation times learned from this replica's writes or from HeadObject, by key (pruned by each listing). */
  const createdAtByKey = new Map<string, number>();
  let sweeping: Promise<void> | undefined;
  let lastWarnAt = -Infinity;

  const quota = createBlobQuota({
    quotaBytes: opts.quotaBytes,
    ttlMs,
    stored: () => {
      let total = listedBytes;
      for (const entry of recent.values()) total += entry.size;
      return total;
    },
    makeRoom: () => sweep(),
  });

  function warn(op: string, err: unknown): void {
    if (now() - lastWarnAt < WARN_EVERY_MS) return;
    lastWarnAt = now();
    opts.logger?.warn({ op, bucket, err: describe(err) }, 'blob store (S3) request failed');
  }

  function unavailable(op: string, err: unknown): RelayError {
    warn(op, err);
    return new RelayError(503, "The relay's file storage cannot be reached right now. Try again in a minute; if it keeps failing, tell the relay's operator (its S3 bucket is unreachable or refusing requests).", {
      code: 'blob_storage_unavailable',
      headers: { 'retry-after': '30' },
    });
  }

  /** Lists the prefix, deletes blobs past their TTL, and recounts the bytes held. */
  async function sweepOnce(): Promise<void> {
    const startedAt = now();
    const objects: { key: string; size: number; lastModified: number }[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const answer = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of answer.Contents ?? []) {
        // Only keys this store could have written: a shared or mistyped prefix never loses someone else's objects.
        if (o.Key && isBlobId(o.Key.slice(prefix.length)) && o.Key.length === prefix.length + 32) {
          objects.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 });
        }
      }
      token = answer.IsTruncated ? answer.NextContinuationToken : undefined;
      if (!token) break;
      if (page === MAX_LIST_PAGES - 1) warn('list', new Error(`more than ${MAX_LIST_PAGES * 1000} objects under the prefix; counted the first ones only`));
    }
    const doomed: string[] = [];
    const kept = new Set<string>();
    let bytes = 0;
    for (const o of objects) {
      if (o.lastModified + ttlMs - CANDIDATE_SLACK_MS <= now()) {
        // Near or past expiry by Last-Modified (the server's clock): decide by the creation time, as open() does.
        const createdAt = createdAtByKey.get(o.key) ?? (await headCreatedAt(o.key));
        if (createdAt === undefined ? o.lastModified + ttlMs <= now() : now() >= createdAt + ttlMs) {
          doomed.push(o.key);
          continue;
        }
      }
      kept.add(o.key);
      bytes += o.size;
    }
    for (let i = 0; i < doomed.length; i += DELETE_BATCH) {
      const batch = doomed.slice(i, i + DELETE_BATCH);
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    }
    listedBytes = bytes;
    for (const [id, entry] of recent) if (kept.has(keyOf(id)) || entry.finishedAt < startedAt) recent.delete(id);
    for (const key of createdAtByKey.keys()) if (!kept.has(key) && !recent.has(key.slice(prefix.length))) createdAtByKey.delete(key);
    listedOnce = true;
  }

  /** The creation time in an object's metadata; `undefined` when it has none (or is gone). */
  async function headCreatedAt(key: string): Promise<number | undefined> {
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const createdAt = Number(head.Metadata?.[META_CREATED]);
      if (!Number.isSafeInteger(createdAt)) return undefined;
      createdAtByKey.set(key, createdAt);
      return createdAt;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  function sweep(): Promise<void> {
    sweeping ??= sweepOnce()
      .catch((err) => {
        throw unavailable('sweep', err);
      })
      .finally(() => {
        sweeping = undefined;
      });
    return sweeping;
  }

  async function put(body: Readable | Buffer | Uint8Array, metaIn: { contentType: string; filename: string }): Promise<BlobMeta> {
    if (!listedOnce) await sweep();
    const id = newBlobId();
    const meta: BlobMeta = { id, contentType: safeContentType(metaIn.contentType), filename: safeFilename(metaIn.filename), size: 0, createdAt: now() };
    const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]) : body;
    const meter = quota.meter();
    // The callback form hands back the last stream: the SDK reads it as the upload's body.
    const metered = pipeline(source, meter.stream, () => {});
    const upload = new Upload({
      client,
      params: {
        Bucket: bucket,
        Key: keyOf(id),
        Body: metered,
        ContentType: meta.contentType,
        Metadata: { [META_CREATED]: String(meta.createdAt), [META_FILENAME]: encodeURIComponent(meta.filename) },
      },
      partSize: opts.partSize ?? 5 * 1024 * 1024,
      queueSize: opts.queueSize ?? 2,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      meter.release();
      // The body's own failure (the source broke, or the quota refused) is the answer; anything else is S3's.
      const bodyError = metered.errored ?? source.errored;
      if (!source.destroyed) source.destroy();
      metered.destroy();
      if (bodyError) throw bodyError;
      throw unavailable('put', err);
    }
    meta.size = meter.bytes();
    recent.set(id, { size: meta.size, finishedAt: now() });
    createdAtByKey.set(keyOf(id), meta.createdAt);
    meter.release(); // now counted through `recent`
    return meta;
  }

  async function open(id: string): Promise<{ meta: BlobMeta; stream: Readable } | undefined> {
    if (!isBlobId(id)) return undefined;
    let answer;
    try {
      answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(id) }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw unavailable('get', err);
    }
    const stream = answer.Body as Readable;
    const createdAt = Number(answer.Metadata?.[META_CREATED]);
    const size = answer.ContentLength;
    if (!Number.isSafeInteger(createdAt) || size === undefined) {
      stream.destroy(); // not written by this store: never served
      return undefined;
    }
    if (now() >= createdAt + ttlMs) {
      stream.destroy();
      recent.delete(id);
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(id) })).catch((err) => warn('delete', err));
      return undefined;
    }
    const meta: BlobMeta = { id, contentType: safeContentType(answer.ContentType), filename: safeFilename(decodeName(answer.Metadata?.[META_FILENAME])), size, createdAt };
    return { meta, stream };
  }

  const stopSweeping = sweepPeriodically(sweep, ttlMs, opts.sweepIntervalMs);
  sweep().catch(() => {}); // the first listing, so the quota counts what other replicas already stored

  return {
    put,
    open,
    sweep,
    close() {
      stopSweeping();
      client.destroy();
    },
  };
}

function decodeName(raw: string | undefined): string | undefined {
  try {
    return raw === undefined ? undefined : decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** A short, secret-free account of an S3 failure: the error's name, HTTP status and network code. */
export function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  const parts = [e?.name ?? 'Error'];
  if (status) parts.push(`HTTP ${status}`);
  if (e?.code && e.code !== e.name) parts.push(e.code);
  if (!status && e?.message) parts.push(e.message.slice(0, 200));
  return parts.join(', ');
}
