import { randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll } from 'vitest';

/**
 * The S3-compatible server the suite runs against: .ci/services.sh starts s3rver on loopback and exports
 * TEST_S3_ENDPOINT (plus the bucket and s3rver's fixed keys). Unset on a developer's machine: S3 tests skip,
 * saying so. Each test works under a prefix of its own and removes it afterwards.
 */
export interface S3TestServer {
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export const S3_TEST: S3TestServer | undefined = process.env.TEST_S3_ENDPOINT
  ? {
      endpoint: process.env.TEST_S3_ENDPOINT,
      bucket: process.env.TEST_S3_BUCKET || 'relay-test',
      region: 'us-east-1',
      credentials: { accessKeyId: process.env.TEST_S3_ACCESS_KEY_ID || 'S3RVER', secretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY || 'S3RVER' },
    }
  : undefined;

export function warnIfNoS3(file: string, what: string): void {
  if (!S3_TEST) console.warn(`${file}: TEST_S3_ENDPOINT is not set — ${what} are SKIPPED (run \`source .ci/services.sh\` to start s3rver on 127.0.0.1:54569).`);
}

/** A client straight to the test server, to look behind a store's back. */
export function rawS3(server: S3TestServer = S3_TEST!): S3Client {
  return new S3Client({ ...server, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

export async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function putRaw(client: S3Client, bucket: string, key: string, body: string, metadata: Record<string, string> = {}): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
}

/** Prefixes unique to this test file's run (`t<hex>/<n>/`), all deleted after the file. */
export function useS3Prefixes(): () => string {
  const run = `t${randomBytes(5).toString('hex')}/`;
  let n = 0;
  afterAll(async () => {
    if (!S3_TEST) return;
    const client = rawS3();
    try {
      const keys = await listKeys(client, S3_TEST.bucket, run);
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(new DeleteObjectsCommand({ Bucket: S3_TEST.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
      }
    } finally {
      client.destroy();
    }
  });
  return () => `${run}${++n}/`;
}
