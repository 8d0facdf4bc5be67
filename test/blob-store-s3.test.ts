import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import type { BlobStore } from '../src/actions/blob-store.ts';
import { createS3BlobStore, type S3BlobStoreOptions } from '../src/actions/blob-store-s3.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { refusal } from './helpers/assertions.ts';
import { freePort, startChildRelay } from './helpers/child-relay.ts';
import { OPENAI_KEY, RELAY_KEY } from './helpers/relay.ts';
import { listKeys, putRaw, rawS3, S3_TEST, useS3Prefixes, warnIfNoS3 } from './helpers/s3.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

/**
 * What the S3 store does beyond the contract both stores share (test/blob-store.test.ts): it streams
 * (measured at the socket, through a counting TCP relay), several replicas share one prefix, it leaves
 * objects it did not write alone, it says so when S3 is unreachable, and its SDK loads only when configured.
 */
warnIfNoS3('blob-store-s3.test.ts', 'the S3 store streaming, sharing and outage tests');

const MiB = 1024 * 1024;
const HOUR = 60 * 60 * 1000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nextPrefix = useS3Prefixes();

const opened: BlobStore[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) s.close();
  for (const p of proxies.splice(0)) await p.close();
});

async function s3Store(opts: Partial<S3BlobStoreOptions> & { prefix: string }): Promise<BlobStore> {
  const store = await createS3BlobStore({ ...S3_TEST!, ttlMs: HOUR, quotaBytes: 1024 * MiB, ...opts });
  opened.push(store);
  return store;
}

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy(S3_TEST!.endpoint);
  proxies.push(p);
  return p;
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.skipIf(!S3_TEST)('S3 blob store against s3rver (TEST_S3_ENDPOINT)', () => {
  test('a 64 MiB write streams: the bytes pulled from the source never run ahead of the socket by more than the parts in flight', async () => {
    const PART = 5 * MiB;
    const QUEUE = 2;
    const TOTAL = 64 * MiB;
    const p = await proxy();
    const store = await s3Store({ endpoint: p.url, prefix: nextPrefix(), partSize: PART, queueSize: QUEUE });
    const sentBefore = p.up;
    const hash = createHash('sha256');
    let pulled = 0;
    let maxAhead = 0;
    const source = new Readable({
      read() {
        maxAhead = Math.max(maxAhead, pulled - (p.up - sentBefore));
        if (pulled >= TOTAL) return void this.push(null);
        const chunk = randomBytes(MiB);
        hash.update(chunk);
        pulled += chunk.length;
        this.push(chunk);
      },
    });
    const meta = await store.put(source, { contentType: 'video/mp4', filename: 'long.mp4' });
    expect(meta.size).toBe(TOTAL);
    expect(p.up - sentBefore).toBeGreaterThan(TOTAL);
    // Parts in flight, the part being filled and one source chunk: far below the 64 MiB a gathered body needs.
    expect(maxAhead).toBeLessThanOrEqual((QUEUE + 2) * PART + MiB);
    const back = await store.open(meta.id);
    expect(back!.meta.size).toBe(TOTAL);
    const readHash = createHash('sha256');
    for await (const chunk of back!.stream) readHash.update(chunk as Buffer);
    expect(readHash.digest('hex')).toBe(hash.digest('hex'));
  });

  test('a read streams: while the reader pauses, the download from S3 stops well short of the whole object', async () => {
    const p = await proxy();
    const store = await s3Store({ endpoint: p.url, prefix: nextPrefix() });
    const bytes = randomBytes(48 * MiB);
    const meta = await store.put(bytes, { contentType: 'video/mp4', filename: 'big.mp4' });
    const receivedBefore = p.down;
    const blob = await store.open(meta.id);
    const reader = blob!.stream[Symbol.asyncIterator]();
    const first = (await reader.next()).value as Buffer;
    await sleep(300);
    const heldBack = p.down - receivedBefore;
    // Socket buffers on both sides of the loopback relay, nothing like the 48 MiB body.
    expect(heldBack).toBeLessThan(20 * MiB);
    const rest: Buffer[] = [first];
    for (let next = await reader.next(); !next.done; next = await reader.next()) rest.push(next.value as Buffer);
    expect(sha256(Buffer.concat(rest))).toBe(sha256(bytes));
    expect(p.down - receivedBefore).toBeGreaterThan(48 * MiB);
  });

  test('two replicas on one prefix: a blob written by one opens on the other, counts in its quota, and either sweep deletes it once expired', async () => {
    const prefix = nextPrefix();
    let clock = Date.now();
    const now = () => clock;
    const a = await s3Store({ prefix, now, quotaBytes: 1000 });
    const b = await s3Store({ prefix, now, quotaBytes: 1000 });
    const meta = await a.put(randomBytes(700), { contentType: 'image/png', filename: 'from-a.png' });
    const onB = await b.open(meta.id);
    expect(onB!.meta).toEqual(meta);
    expect((await drain(onB!.stream)).length).toBe(700);
    // B counts A's blob from its next listing on (its periodic sweep): then a write that would not fit is refused.
    await b.sweep();
    expect((await refusal(b.put(randomBytes(400), { contentType: 'image/png', filename: 'b.png' }))).status).toBe(507);
    clock += HOUR;
    expect(await a.open(meta.id)).toBeUndefined(); // expired by its creation time, on any replica
    const later = await b.put(randomBytes(400), { contentType: 'image/png', filename: 'b.png' });
    await b.sweep();
    expect(await listKeys(rawS3(), S3_TEST!.bucket, prefix)).toEqual([`${prefix}${later.id}`]);
  });

  test('objects the store did not write: never served, never counted; blob-shaped ones without its metadata go after the TTL, other keys stay', async () => {
    const prefix = nextPrefix();
    const raw = rawS3();
    const lookalike = 'A'.repeat(32);
    await putRaw(raw, S3_TEST!.bucket, `${prefix}${lookalike}`, 'no relay metadata');
    await putRaw(raw, S3_TEST!.bucket, `${prefix}notes.txt`, 'someone else', { 'relay-created-at': '0' });
    await putRaw(raw, S3_TEST!.bucket, `${prefix}sub/${'B'.repeat(32)}`, 'nested', { 'relay-created-at': '0' });
    let clock = Date.now();
    const store = await s3Store({ prefix, now: () => clock, quotaBytes: 20 });
    expect(await store.open(lookalike)).toBeUndefined();
    // Only the lookalike (17 bytes) counts against the quota, as it sits where a blob would.
    expect((await refusal(store.put(Buffer.from('12345'), { contentType: 'text/plain', filename: 'x.txt' }))).status).toBe(507);
    clock += HOUR;
    await store.sweep();
    expect(await listKeys(raw, S3_TEST!.bucket, prefix)).toEqual([`${prefix}notes.txt`, `${prefix}sub/${'B'.repeat(32)}`]);
    raw.destroy();
  });

  test('S3 gone after start-up: writes and reads fail with 503 blob_storage_unavailable (logged once, without secrets), and work again when it is back', async () => {
    const p = await proxy();
    const warnings: unknown[] = [];
    const prefix = nextPrefix();
    const store = await s3Store({ endpoint: p.url, prefix, logger: { warn: (obj: unknown) => void warnings.push(obj) } as never });
    const meta = await store.put(Buffer.from('kept'), { contentType: 'text/plain', filename: 'k.txt' });
    await p.close();
    const started = performance.now();
    const put = await refusal(store.put(Buffer.from('lost'), { contentType: 'text/plain', filename: 'l.txt' }));
    expect(put.status).toBe(503);
    expect(put.code).toBe('blob_storage_unavailable');
    expect(put.headers['retry-after']).toBe('30');
    const open = await refusal(store.open(meta.id));
    expect(open.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(10_000);
    // At most one line per 30 s, naming the operation, the bucket and the failure: never a key.
    expect(warnings).toEqual([{ op: 'put', bucket: S3_TEST!.bucket, err: expect.stringMatching(/ECONNREFUSED/) }]);

    // The same bucket reached directly again: the blob written before the outage is intact.
    const direct = await s3Store({ prefix });
    expect((await drain((await direct.open(meta.id))!.stream)).toString()).toBe('kept');
  });

  test('start-up refuses an unreachable endpoint, a missing bucket and wrong keys, naming the settings and never the secret', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const secret = `wrong-secret-${randomBytes(8).toString('hex')}`;
    const cases: [Partial<S3BlobStoreOptions>, RegExp][] = [
      [{ endpoint: closed }, /ECONNREFUSED/],
      [{ bucket: `missing-${randomBytes(4).toString('hex')}` }, /HTTP 404/],
      // s3rver checks the access key id (it does not verify SigV4 signatures).
      [{ credentials: { accessKeyId: `UNKNOWN${randomBytes(4).toString('hex')}`, secretAccessKey: secret } }, /HTTP 403/],
    ];
    for (const [override, reason] of cases) {
      const err = (await createS3BlobStore({ ...S3_TEST!, prefix: nextPrefix(), ttlMs: HOUR, quotaBytes: MiB, ...override }).then(
        () => undefined,
        (e: Error) => e,
      ))!;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/BLOB_S3_BUCKET/);
      expect(err.message).toMatch(/AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY/);
      expect(err.message).toMatch(reason);
      expect(err.message).not.toContain(secret);
    }
  });
});

describe('S3 blob store configuration (no server needed)', () => {
  const base = { OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY };

  test('BLOB_S3_* and the standard AWS variables make blobS3; blank values count as unset', () => {
    const config = loadConfig({
      ...base,
      BLOB_S3_BUCKET: 'relay-files',
      BLOB_S3_ENDPOINT: 'http://minio:9000/',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret/value+1',
    });
    expect(config.actions.blobS3).toEqual({
      bucket: 'relay-files',
      endpoint: 'http://minio:9000',
      region: 'us-east-1',
      prefix: 'relay-blobs/',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret/value+1' },
    });
    expect(loadConfig({ ...base, BLOB_S3_BUCKET: 'b-1.x', AWS_REGION: 'eu-west-3', BLOB_S3_PREFIX: 'team/a/' }).actions.blobS3).toEqual({
      bucket: 'b-1.x',
      endpoint: undefined,
      region: 'eu-west-3',
      prefix: 'team/a/',
      credentials: undefined,
    });
    expect(loadConfig({ ...base, BLOB_S3_BUCKET: ' ', BLOB_S3_ENDPOINT: '', BLOB_S3_REGION: '' }).actions.blobS3).toBeUndefined();
  });

  test('mistakes are refused with a sentence naming the setting', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems.join('\n');
      }
      throw new Error('accepted');
    };
    expect(problems({ BLOB_S3_ENDPOINT: 'http://minio:9000' })).toMatch(/BLOB_S3_ENDPOINT is set but BLOB_S3_BUCKET is not/);
    expect(problems({ BLOB_S3_BUCKET: 'Bad_Bucket' })).toMatch(/BLOB_S3_BUCKET must be an S3 bucket name/);
    expect(problems({ BLOB_S3_BUCKET: 'ok-bucket', BLOB_S3_ENDPOINT: 'ftp://x' })).toMatch(/BLOB_S3_ENDPOINT must start with/);
    expect(problems({ BLOB_S3_BUCKET: 'ok-bucket', BLOB_S3_ENDPOINT: 'http://key:secret@minio:9000' })).toMatch(/must not carry credentials/);
    expect(problems({ BLOB_S3_BUCKET: 'ok-bucket', BLOB_S3_PREFIX: '../x/' })).toMatch(/BLOB_S3_PREFIX must be empty or folder names/);
    expect(problems({ BLOB_S3_BUCKET: 'ok-bucket', BLOB_S3_PREFIX: 'no-slash' })).toMatch(/BLOB_S3_PREFIX/);
    expect(problems({ BLOB_S3_BUCKET: 'ok-bucket', AWS_ACCESS_KEY_ID: 'AKIA' })).toMatch(/both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  test('the AWS SDK is imported by one module, reached only through import() when S3 is configured', () => {
    const dir = join(ROOT, 'src');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const importing = (needle: RegExp) => files.filter((f) => needle.test(readFileSync(join(dir, f), 'utf8'))).sort();
    expect(importing(/from '@aws-sdk\//)).toEqual(['actions/blob-store-s3.ts']);
    expect(importing(/blob-store-s3\.ts'/)).toEqual(['actions/open-blob-store.ts']);
    expect(readFileSync(join(dir, 'actions/open-blob-store.ts'), 'utf8')).toMatch(/await import\('\.\/blob-store-s3\.ts'\)/);
  });

  test('a relay without S3 settings starts and stops without loading the AWS SDK', () => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@aws-sdk/')) seen.push(specifier); return next(specifier, context); } });
      const { loadConfig } = await import('./src/config.ts');
      const { createLogger } = await import('./src/core/logger.ts');
      const { startRelay } = await import('./src/server.ts');
      const config = loadConfig({ OPENAI_API_KEY: 'sk-lazy-0123456789abcdef', RELAY_AUTH: 'off', HOST: '127.0.0.1', PORT: '1', USAGE_LEDGER: 'off', BLOB_DIR: process.env.BLOB_DIR });
      config.port = 0;
      const relay = await startRelay(config, createLogger('silent'));
      await relay.shutdown();
      console.log(JSON.stringify(seen));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', BLOB_DIR: mkdtempSync(join(tmpdir(), 'relay-blobs-')) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual([]);
  });

  test('npm start with an unreachable BLOB_S3_ENDPOINT exits with a sentence naming the S3 settings', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const err = await startChildRelay({ OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, BLOB_S3_BUCKET: 'relay-test', BLOB_S3_ENDPOINT: closed, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/relay exited with 1/);
    expect(err?.message).toMatch(/The relay cannot start: the blob store \(BLOB_S3_BUCKET, bucket "relay-test" at http:\/\/127\.0\.0\.1:\d+\) cannot be used: .*ECONNREFUSED/);
  });
});
