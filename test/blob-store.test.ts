import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { serve } from '@hono/node-server';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { RelayEnv } from '../src/core/env.ts';
import { createBlobLinks } from '../src/actions/blob-links.ts';
import { isBlobId, newBlobId, type BlobMeta, type BlobStore } from '../src/actions/blob-store.ts';
import { createLocalBlobStore } from '../src/actions/blob-store-local.ts';
import { createS3BlobStore } from '../src/actions/blob-store-s3.ts';
import { RelayError } from '../src/core/errors.ts';
import { contentDisposition, registerBlobRoutes } from '../src/routes/blobs.ts';
import { expectOpenAIError, refusal } from './helpers/assertions.ts';
import { listKeys, putRaw, rawS3, S3_TEST, useS3Prefixes, warnIfNoS3 } from './helpers/s3.ts';

/**
 * The blob stores, signed links, and the public download route. Every store test runs against both stores:
 * the local directory, and an S3 bucket on the loopback s3rver (TEST_S3_ENDPOINT, set by .ci/services.sh).
 */
warnIfNoS3('blob-store.test.ts', 'the S3 blob store tests');

const HOUR = 60 * 60 * 1000;
const SECRET = Buffer.from('blob-link-test-secret-0123456789');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let root: string;
let dir: string;
const stores: BlobStore[] = [];
// Near the real time: an S3 server stamps Last-Modified with its own clock.
let clock = Date.now();
const now = () => clock;
const nextPrefix = useS3Prefixes();
const s3 = S3_TEST ? rawS3() : undefined;

interface StoreOptions {
  quotaBytes?: number;
  ttlMs?: number;
}

/** One kind of store, and what it keeps where a test can look: files in the directory, keys under the prefix. */
interface StoreKind {
  name: string;
  /** Entries the store keeps per blob (local: data and meta files; S3: one object). */
  perBlob: number;
  /** Opens a store over this test's storage (a second call opens another one over the same storage). */
  open(opts?: StoreOptions): Promise<BlobStore>;
  entries(): Promise<string[]>;
  /** A blob-shaped entry one level above this test's storage: a traversal would reach it. */
  plantOutside(): Promise<void>;
}

function track<T extends BlobStore>(s: T): T {
  stores.push(s);
  return s;
}

const localKind: StoreKind = {
  name: 'local directory',
  perBlob: 2,
  open: async (opts = {}) => track(createLocalBlobStore({ dir, ttlMs: opts.ttlMs ?? HOUR, quotaBytes: opts.quotaBytes ?? 10 * 1024 * 1024, now })),
  entries: async () => filesIn(dir),
  plantOutside: async () => {
    const outsideMeta = { id: '../outside', contentType: 'text/plain', filename: 'secret.txt', size: 6, createdAt: clock };
    writeFileSync(join(root, 'outside.json'), JSON.stringify(outsideMeta));
    writeFileSync(join(root, 'outside.bin'), 'secret');
  },
};

let prefix = '';
const s3Kind: StoreKind = {
  name: 'S3 bucket',
  perBlob: 1,
  open: async (opts = {}) =>
    track(await createS3BlobStore({ ...S3_TEST!, prefix, ttlMs: opts.ttlMs ?? HOUR, quotaBytes: opts.quotaBytes ?? 10 * 1024 * 1024, now })),
  entries: () => listKeys(s3!, S3_TEST!.bucket, prefix),
  plantOutside: async () => {
    const parent = prefix.replace(/[^/]+\/$/, '');
    await putRaw(s3!, S3_TEST!.bucket, `${parent}outside`, 'secret', { 'relay-created-at': String(clock) });
  },
};

/** Both kinds; the S3 one shows as skipped when no S3 server is configured. */
const KINDS = [localKind, s3Kind];
const available = (kind: StoreKind) => kind === localKind || S3_TEST !== undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'relay-blobs-'));
  dir = join(root, 'blobs');
  prefix = S3_TEST ? nextPrefix() : '';
  clock = Date.now();
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  rmSync(root, { recursive: true, force: true });
});

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function slowStream(chunks: Buffer[], gapMs = 1): Readable {
  return Readable.from(
    (async function* () {
      for (const c of chunks) {
        await new Promise((r) => setTimeout(r, gapMs));
        yield c;
      }
    })(),
  );
}


const filesIn = (d: string) => readdirSync(d).sort();

for (const kind of KINDS) describe.skipIf(!available(kind))(`blob store: ${kind.name}`, () => {
  const store = (opts?: StoreOptions) => kind.open(opts);

  test('put a Buffer, open it back', async () => {
    const s = await store();
    const bytes = randomBytes(12_345);
    const meta = await s.put(bytes, { contentType: 'image/png', filename: 'cat.png' });
    expect(meta).toEqual({ id: expect.any(String), contentType: 'image/png', filename: 'cat.png', size: 12_345, createdAt: clock });
    expect(isBlobId(meta.id)).toBe(true);
    const opened = await s.open(meta.id);
    expect(opened?.meta).toEqual(meta);
    expect(sha256(await drain(opened!.stream))).toBe(sha256(bytes));
  });

  test('put a stream, open it back', async () => {
    const s = await store();
    const chunks = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    const meta = await s.put(slowStream(chunks, 0), { contentType: 'video/mp4', filename: 'clip.mp4' });
    expect(meta.size).toBe(40 * 64 * 1024);
    expect(await kind.entries()).toEqual(kind === localKind ? [`${meta.id}.bin`, `${meta.id}.json`].sort() : [`${prefix}${meta.id}`]);
    const opened = await s.open(meta.id);
    expect(sha256(await drain(opened!.stream))).toBe(sha256(Buffer.concat(chunks)));
  });

  test('names and types are made safe (and read back as stored); ids are unique and unguessable-looking', async () => {
    const s = await store();
    const meta = await s.put(Buffer.from('x'), { contentType: 'text/html\r\nx-evil: 1', filename: '../../etc/pass\u0000wd' });
    expect(meta.contentType).toBe('application/octet-stream');
    expect(meta.filename).toBe('passwd');
    const unicode = await s.put(Buffer.from('y'), { contentType: 'text/plain; charset=utf-8', filename: 'résumé 日本 "q".txt' });
    const opened = await s.open(unicode.id);
    opened!.stream.destroy();
    expect(opened!.meta).toEqual(unicode);
    expect(unicode.filename).toBe('résumé 日本 "q".txt');
    const ids = new Set(Array.from({ length: 1000 }, newBlobId));
    expect(ids.size).toBe(1000);
  });

  test('a failing source stream leaves nothing behind', async () => {
    const s = await store();
    const source = new Readable({
      read() {
        this.push(randomBytes(1000));
        this.destroy(new Error('source broke'));
      },
    });
    await expect(s.put(source, { contentType: 'image/png', filename: 'a.png' })).rejects.toThrow('source broke');
    expect(await kind.entries()).toEqual([]);
  });

  test('TTL: open answers until the blob expires, then undefined; sweep deletes the rest', async () => {
    const s = await store({ ttlMs: HOUR });
    const meta = await s.put(Buffer.from('hello'), { contentType: 'text/plain', filename: 'a.txt' });
    clock += HOUR - 1;
    const early = await s.open(meta.id);
    expect(early).toBeDefined();
    early!.stream.destroy();
    clock += 1;
    expect(await s.open(meta.id)).toBeUndefined();
    const other = await s.put(Buffer.from('world'), { contentType: 'text/plain', filename: 'b.txt' });
    clock += HOUR;
    await s.sweep();
    expect(await kind.entries()).toEqual([]);
    expect(await s.open(other.id)).toBeUndefined();
  });

  test('quota: refuse with 507 while the space is held by live blobs, 413 for one blob over the quota', async () => {
    const s = await store({ quotaBytes: 1000, ttlMs: HOUR });
    await s.put(randomBytes(600), { contentType: 'image/png', filename: 'a.png' });
    const full = await refusal(s.put(randomBytes(600), { contentType: 'image/png', filename: 'b.png' }));
    expect(full.status).toBe(507);
    expect(full.message).toMatch(/storage is full/);
    const fullStream = await refusal(s.put(slowStream([randomBytes(300), randomBytes(300)]), { contentType: 'image/png', filename: 'b.png' }));
    expect(fullStream.status).toBe(507);
    const huge = await refusal(s.put(randomBytes(1500), { contentType: 'image/png', filename: 'c.png' }));
    expect(huge.status).toBe(413);
    expect(await kind.entries()).toHaveLength(kind.perBlob); // only the first blob; no temp files left

    // Once the first blob expires it is evicted to make room.
    clock += HOUR;
    const later = await s.put(randomBytes(600), { contentType: 'image/png', filename: 'd.png' });
    expect(later.size).toBe(600);
    expect(await kind.entries()).toHaveLength(kind.perBlob);
  });

  test('quota holds for concurrent streams (bytes in flight are counted)', async () => {
    const s = await store({ quotaBytes: 1000 });
    const chunks = () => Array.from({ length: 6 }, () => randomBytes(100));
    const results = await Promise.allSettled([
      s.put(slowStream(chunks(), 2), { contentType: 'image/png', filename: 'a.png' }),
      s.put(slowStream(chunks(), 2), { contentType: 'image/png', filename: 'b.png' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((rejected.reason as RelayError).status).toBe(507);
    expect(await kind.entries()).toHaveLength(kind.perBlob);
  });

  test('a stream bigger than the whole quota → 413, and the partial file is removed', async () => {
    const s = await store({ quotaBytes: 1000 });
    const err = await refusal(s.put(slowStream(Array.from({ length: 15 }, () => randomBytes(100))), { contentType: 'video/mp4', filename: 'v.mp4' }));
    expect(err.status).toBe(413);
    expect(await kind.entries()).toEqual([]);
  });

  test('strict ids: traversal-looking or malformed ids are undefined without touching anything outside the store', async () => {
    const s = await store();
    const meta = await s.put(Buffer.from('inside'), { contentType: 'text/plain', filename: 'in.txt' });
    await kind.plantOutside();
    for (const id of ['../outside', '..%2Foutside', `${meta.id}/../${meta.id}`, '', '.', '..', `${meta.id}x`, meta.id.slice(1), `${meta.id.slice(0, 31)}.`, `${meta.id.slice(0, 31)}/`, `${meta.id.slice(0, 31)}\u0000`, '/etc/passwd', 'C:\\x']) {
      expect(await s.open(id), JSON.stringify(id)).toBeUndefined();
    }
    const inside = await s.open(meta.id);
    expect(inside).toBeDefined();
    inside!.stream.destroy();
  });

  test('a new store over existing storage finds the blobs already there', async () => {
    const first = await store();
    const meta = await first.put(Buffer.from('persisted'), { contentType: 'text/plain', filename: 'p.txt' });
    first.close();
    const second = await store({ quotaBytes: 12 });
    expect((await drain((await second.open(meta.id))!.stream)).toString()).toBe('persisted');
    // Its quota accounting includes them.
    expect((await refusal(second.put(Buffer.from('1234'), { contentType: 'text/plain', filename: 'q.txt' }))).status).toBe(507);
  });
});

describe('blob store: local directory only', () => {
  const store = () => localKind.open();

  test('a blob whose meta is missing (interrupted write) is never served, and stale leftovers are swept', async () => {
    const s = await store();
    const meta = await s.put(Buffer.from('data'), { contentType: 'text/plain', filename: 'a.txt' });
    rmSync(join(dir, `${meta.id}.json`));
    writeFileSync(join(dir, '.tmp-leftover'), 'partial');
    expect(await s.open(meta.id)).toBeUndefined();
    clock = Date.now() + 2 * HOUR; // the leftovers' mtimes are now well in the past
    await s.sweep();
    expect(filesIn(dir)).toEqual([]);
  });
});

describe('blob links', () => {
  const id0 = newBlobId();
  let blob: BlobMeta;
  beforeEach(() => {
    blob = { id: id0, contentType: 'image/png', filename: 'a.png', size: 1, createdAt: clock };
  });
  const links = (t = clock) => createBlobLinks({ secret: SECRET, ttlMs: HOUR, now: () => t });
  const parse = (url: string) => {
    const u = new URL(url);
    return { id: decodeURIComponent(u.pathname.split('/').pop()!), expires: u.searchParams.get('expires')!, signature: u.searchParams.get('signature')! };
  };

  test('a fresh link verifies, with the expected shape', () => {
    const { url, expiresAt } = links().url('https://relay.example.com/', blob);
    expect(url).toMatch(new RegExp(`^https://relay\\.example\\.com/v1/relay/blobs/${blob.id}\\?expires=\\d+&signature=[A-Za-z0-9_-]{43}$`));
    expect(expiresAt).toBe(Math.floor((clock + HOUR) / 1000) * 1000);
    const { id, expires, signature } = parse(url);
    expect(expires).toBe(String(expiresAt / 1000));
    expect(links().verify(id, expires, signature)).toBe('ok');
    expect(links().remainingSeconds(expires)).toBe(3600);
  });

  test('a link never outlives its blob: minted after the blob was made, it expires with the blob', () => {
    const { expiresAt } = links(clock + 40_000).url('https://r.example', blob);
    expect(expiresAt).toBe(Math.floor((clock + HOUR) / 1000) * 1000);
  });

  test('expired once the clock passes the expiry', () => {
    const { id, expires, signature } = parse(links().url('https://r.example', blob).url);
    expect(links(clock + HOUR - 1000).verify(id, expires, signature)).toBe('ok');
    expect(links(clock + HOUR).verify(id, expires, signature)).toBe('expired');
  });

  test('tampering with the id, the expiry or the signature → invalid', () => {
    const { id, expires, signature } = parse(links().url('https://r.example', blob).url);
    const l = links();
    expect(l.verify(newBlobId(), expires, signature)).toBe('invalid');
    expect(l.verify(id, String(Number(expires) + 3600), signature)).toBe('invalid');
    expect(l.verify(id, String(Number(expires) - 1), signature)).toBe('invalid');
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    expect(l.verify(id, expires, flip(signature, 10))).toBe('invalid');
    expect(l.verify(id, expires, flip(signature, 42))).toBe('invalid'); // the last character's spare bits too
    expect(l.verify(id, expires, signature.slice(0, -1))).toBe('invalid');
    expect(l.verify(id, expires, undefined)).toBe('invalid');
    expect(l.verify(id, undefined, signature)).toBe('invalid');
    expect(l.verify(id, `${expires}.0`, signature)).toBe('invalid');
    // A different secret does not verify either.
    expect(createBlobLinks({ secret: Buffer.from('another-secret-0123456789abcdef'), ttlMs: HOUR, now }).verify(id, expires, signature)).toBe('invalid');
  });
});

for (const kind of KINDS) describe.skipIf(!available(kind))(`GET /v1/relay/blobs/:blob_id from the ${kind.name}`, () => {
  const store = () => kind.open();
  function app(s: BlobStore, linkClock = () => Date.now()) {
    const a = new OpenAPIHono<RelayEnv>();
    a.use(async (c, next) => {
      c.set('requestId', 'req_test_1');
      await next();
    });
    const l = createBlobLinks({ secret: SECRET, ttlMs: HOUR, now: linkClock });
    registerBlobRoutes(a, s, l);
    return { app: a, links: l };
  }
  const pathOf = (url: string) => url.slice('http://relay.test'.length);

  async function expectError(res: Response, status: number, code: string) {
    expect(res.headers.get('x-request-id')).toBe('req_test_1');
    await expectOpenAIError(res, status, { code, minMessageLength: 41 });
  }

  test('200 streams the bytes with download headers', async () => {
    clock = Date.now();
    const s = await store();
    const bytes = randomBytes(70_000);
    const meta = await s.put(bytes, { contentType: 'image/png', filename: 'sunset "final".png' });
    const { app: a, links } = app(s);
    const res = await a.request(pathOf(links.url('http://relay.test', meta).url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-length')).toBe('70000');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="sunset _final_.png"; filename*=UTF-8''sunset%20%22final%22.png`);
    expect(res.headers.get('cache-control')).toMatch(/^private, max-age=(3600|3599)$/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-request-id')).toBe('req_test_1');
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(bytes));
  });

  test('HEAD answers the same headers without a body', async () => {
    clock = Date.now();
    const s = await store();
    const meta = await s.put(Buffer.from('twelve bytes'), { contentType: 'text/plain', filename: 'a.txt' });
    const { app: a, links } = app(s);
    const res = await a.request(pathOf(links.url('http://relay.test', meta).url), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('12');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="a.txt"');
    expect(await res.text()).toBe('');
  });

  test('403 for a tampered or missing signature (before the store is asked)', async () => {
    clock = Date.now();
    const s = await store();
    const meta = await s.put(Buffer.from('x'), { contentType: 'text/plain', filename: 'x.txt' });
    const { app: a, links } = app(s);
    const url = new URL(links.url('http://relay.test', meta).url);
    const other = newBlobId();
    await expectError(await a.request(url.pathname.replace(meta.id, other) + url.search), 403, 'invalid_blob_link');
    await expectError(await a.request(url.pathname), 403, 'invalid_blob_link');
    url.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 60));
    await expectError(await a.request(url.pathname + url.search), 403, 'invalid_blob_link');
  });

  test('410 for an expired link', async () => {
    clock = Date.now();
    const s = await store();
    const meta = await s.put(Buffer.from('x'), { contentType: 'text/plain', filename: 'x.txt' });
    const issuer = createBlobLinks({ secret: SECRET, ttlMs: HOUR, now: () => Date.now() - 2 * HOUR });
    const { app: a } = app(s);
    await expectError(await a.request(pathOf(issuer.url('http://relay.test', meta).url)), 410, 'blob_link_expired');
  });

  test('404 for a validly signed link to a blob that is gone (or never was)', async () => {
    clock = Date.now();
    const s = await store();
    const { app: a, links } = app(s);
    const ghost: BlobMeta = { id: newBlobId(), contentType: 'image/png', filename: 'g.png', size: 1, createdAt: clock };
    await expectError(await a.request(pathOf(links.url('http://relay.test', ghost).url)), 404, 'blob_not_found');
  });

  test('over a real socket: a 3 MB blob streams with Content-Length and RFC 5987 filename', async () => {
    clock = Date.now();
    const s = await store();
    const bytes = randomBytes(3 * 1024 * 1024);
    const meta = await s.put(Readable.from([bytes.subarray(0, 1_000_000), bytes.subarray(1_000_000)]), { contentType: 'video/mp4', filename: 'café clip.mp4' });
    const { app: a, links } = app(s);
    const server = serve({ fetch: a.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await fetch(links.url(base, meta).url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(bytes.length));
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="caf_ clip.mp4"; filename*=UTF-8''caf%C3%A9%20clip.mp4`);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(bytes));
    } finally {
      (server as Server).closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('Content-Disposition quoting', () => {
    expect(contentDisposition('report.pdf')).toBe('attachment; filename="report.pdf"');
    expect(contentDisposition("a'b(c)*.txt")).toBe(`attachment; filename="a'b(c)*.txt"`);
    expect(contentDisposition('back\\slash%.txt')).toBe(`attachment; filename="back_slash_.txt"; filename*=UTF-8''back%5Cslash%25.txt`);
    expect(contentDisposition('日本.png')).toBe(`attachment; filename="__.png"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png`);
    expect(contentDisposition('x\r\nSet-Cookie: a=b')).toBe('attachment; filename="xSet-Cookie: a=b"');
  });
});
