import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { expect, test } from 'vitest';
import { rawS3, S3_TEST } from './helpers/s3.ts';

/**
 * The ledger (PostgreSQL), shared-limit (Redis) and S3 blob-store suites skip when their servers are absent
 * on a developer's machine. In CI they must never skip: .ci/run starts all three and exports their URLs.
 */
test.runIf(process.env.CI === 'true')('CI provides PostgreSQL, Redis and an S3-compatible server to the suite', async () => {
  expect(process.env.TEST_DATABASE_URL, 'TEST_DATABASE_URL (set by .ci/services.sh)').toMatch(/^postgres:\/\//);
  expect(process.env.TEST_REDIS_URL, 'TEST_REDIS_URL (set by .ci/services.sh)').toMatch(/^redis:\/\//);
  expect(process.env.TEST_S3_ENDPOINT, 'TEST_S3_ENDPOINT (set by .ci/services.sh)').toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  // Up, with the test bucket in place.
  const client = rawS3();
  try {
    const head = await client.send(new HeadBucketCommand({ Bucket: S3_TEST!.bucket }));
    expect(head.$metadata.httpStatusCode).toBe(200);
  } finally {
    client.destroy();
  }
});
