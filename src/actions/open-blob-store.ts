import type { ActionConfig } from '../config.ts';
import type { Logger } from '../core/logger.ts';
import { createLocalBlobStore } from './blob-store-local.ts';
import type { BlobStore } from './blob-store.ts';

/**
 * The blob store the configuration asks for: the S3-compatible bucket when BLOB_S3_BUCKET is set (its SDK is
 * imported only then, so a relay without S3 starts as fast as before), otherwise the local directory.
 * An S3 bucket that cannot be reached stops start-up with a sentence naming the settings to check.
 */
export async function openBlobStore(config: ActionConfig, logger: Logger): Promise<BlobStore> {
  const { blobS3, blobTtlMs: ttlMs, blobQuotaBytes: quotaBytes } = config;
  if (!blobS3) return createLocalBlobStore({ dir: config.blobDir, ttlMs, quotaBytes });
  const { createS3BlobStore } = await import('./blob-store-s3.ts');
  return createS3BlobStore({ ...blobS3, ttlMs, quotaBytes, logger });
}
