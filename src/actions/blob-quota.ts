import { Transform } from 'node:stream';
import { RelayError } from '../core/errors.ts';

/**
 * The quota rule both blob stores apply: the bytes a store holds plus the bytes being written right now stay
 * within `quotaBytes`. A blob bigger than the whole quota is refused with 413, one that does not fit beside
 * the live blobs with 507. Before refusing, the store gets one chance per write to make room (evict expired
 * blobs, or list the bucket afresh), so a stale count never refuses a write that would fit.
 */
export interface BlobQuota {
  /** Bytes held (as the store counts them) plus bytes reserved by writes in progress. */
  used(): number;
  /**
   * A pass-through for one write: counts each chunk as reserved before passing it on, and errors with the
   * 413/507 refusal once a chunk would not fit. `release()` returns the reserved bytes (call it once the
   * store counts the blob itself, or when the write failed); `bytes()` is what has passed so far.
   */
  meter(): { stream: Transform; bytes(): number; release(): void };
}

const MB = 1024 * 1024;
const fmtMB = (bytes: number) => `${Math.round((bytes / MB) * 10) / 10} MB`;

export function createBlobQuota(opts: {
  quotaBytes: number;
  ttlMs: number;
  /** Bytes the store holds now. */
  stored: () => number;
  /** Frees what can be freed (expired blobs) and refreshes `stored`. */
  makeRoom: () => Promise<void>;
}): BlobQuota {
  const { quotaBytes, ttlMs } = opts;
  let reserved = 0;
  const used = () => opts.stored() + reserved;

  function refusal(size: number): RelayError {
    if (size > quotaBytes) {
      return new RelayError(413, `The file is ${fmtMB(size)}, more than this relay can keep (${fmtMB(quotaBytes)}). Ask for a smaller result (fewer pages, lower resolution or a shorter video).`, {
        code: 'blob_too_large',
      });
    }
    const minutes = Math.max(1, Math.round(ttlMs / 60_000));
    return new RelayError(507, `The relay's file storage is full (${fmtMB(quotaBytes)}); files are deleted ${minutes} minutes after they are made. Tell the user to try again later, or ask for a smaller result.`, {
      code: 'blob_storage_full',
    });
  }

  function meter() {
    let written = 0;
    let madeRoom = false;
    const release = () => {
      reserved -= written;
      written = 0;
    };
    const admit = (n: number) => {
      if (written + n > quotaBytes || used() + n > quotaBytes) return false;
      written += n;
      reserved += n;
      return true;
    };
    const stream = new Transform({
      transform(chunk: Buffer, _enc, done) {
        if (admit(chunk.length)) return done(null, chunk);
        const refuse = () => {
          const err = refusal(written + chunk.length);
          release(); // at once, so a concurrent write can use the space this one gives up
          done(err);
        };
        if (madeRoom || written + chunk.length > quotaBytes) return refuse();
        madeRoom = true;
        opts.makeRoom().then(
          () => (admit(chunk.length) ? done(null, chunk) : refuse()),
          (err) => {
            release();
            done(err); // the store could not be asked (e.g. its server is unreachable): say that, not "full"
          },
        );
      },
    });
    return { stream, bytes: () => written, release };
  }

  return { used, meter };
}
