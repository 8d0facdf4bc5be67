import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { sample } from './helpers/assertions.ts';
import { startChildRelay, type ChildRelay } from './helpers/child-relay.ts';
import { makePng } from './helpers/files.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';
import { OPENAI_KEY } from './helpers/relay.ts';
import { listKeys, rawS3, S3_TEST, useS3Prefixes } from './helpers/s3.ts';

/**
 * Two relay processes behind one (simulated) address, one mock OpenAI on loopback, sharing PostgreSQL (the
 * usage ledger and managed keys), Redis (limits) and S3 (blobs), as docker-compose.yaml deploys them. Requests alternate
 * between the replicas; whatever a caller can observe must not depend on which one answers.
 */

const PG_URL = process.env.TEST_DATABASE_URL || undefined;
const REDIS_URL = process.env.TEST_REDIS_URL || undefined;
const READY = Boolean(PG_URL && REDIS_URL && S3_TEST);
if (!READY) {
  console.warn('two-replicas.test.ts: TEST_DATABASE_URL, TEST_REDIS_URL and TEST_S3_ENDPOINT are not all set — the two-replica tests are SKIPPED (run `source .ci/services.sh`).');
}

const RUN = `run${randomBytes(5).toString('hex')}`;
const LABEL = `${RUN}team`;
const MANAGED_LABEL = `${RUN}managed`;
const KEY = `k${randomBytes(16).toString('hex')}`;
const ADMIN_KEY = `admin-${randomBytes(16).toString('hex')}`;
/** What every replica is told its public address is: the load balancer's. */
const PUBLIC_URL = 'https://relay.example.test';
const TOKENS_PER_CALL = 30;
const BUDGET = 100; // tokens per day: the 4th call (120 tokens in all) is the last one let through
/** A second caller with a dollar budget: 1,500 tokens of text-embedding-3-large cost 1,500 × 0.13 = 195 µ$ a call. */
const SPENDER = `${RUN}spender`;
const SPENDER_KEY = `k${randomBytes(16).toString('hex')}`;
const COST_PER_CALL = 195;
const DOLLAR_BUDGET = '$0.0005'; // 500 µ$ a day: the 3rd call (585 µ$ in all) is the last one let through
const PNG = makePng(48, 48);
const nextPrefix = useS3Prefixes();

const served = new Map<string, number>();
function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const body: Buffer[] = [];
  req.on('data', (chunk: Buffer) => body.push(chunk));
  req.on('end', () => {
    const path = new URL(req.url ?? '/', 'http://upstream').pathname;
    const large = Buffer.concat(body).includes('text-embedding-3-large');
    served.set(path, (served.get(path) ?? 0) + 1);
    res.setHeader('content-type', 'application/json');
    if (path === '/v1/images/generations') {
      res.end(JSON.stringify({ created: 1, data: [{ b64_json: PNG.toString('base64') }], output_format: 'png' }));
    } else if (path === '/v1/embeddings') {
      const tokens = large ? 1500 : TOKENS_PER_CALL;
      const usage = { prompt_tokens: tokens, total_tokens: tokens };
      res.end(JSON.stringify({ object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.5] }], model: large ? 'text-embedding-3-large' : 'text-embedding-3-small', usage }));
    } else {
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { message: `no mock for ${path}`, type: 'invalid_request_error', param: null, code: null } }));
    }
  });
}

describe.skipIf(!READY)('two replicas sharing PostgreSQL, Redis and S3', () => {
  let upstream: LocalUpstream;
  let replicas: ChildRelay[] = [];
  let prefix: string;
  let turn = 0;
  /** The replica the (simulated) round-robin balancer sends the next request to. */
  const next = () => replicas[turn++ % 2]!;
  const call = (relay: ChildRelay, path: string, body: unknown, key = KEY) =>
    fetch(relay.url + path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const admin = (relay: ChildRelay, path: string) => fetch(relay.url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

  beforeAll(async () => {
    upstream = await startLocalUpstream(upstreamHandler);
    // A schema of this run's own: the shared database may hold other branches' migrations.
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    await db.query(`CREATE SCHEMA "${RUN}"`).finally(() => db.end());
    const databaseUrl = new URL(PG_URL!);
    databaseUrl.searchParams.set('options', `-c search_path=${RUN}`);
    prefix = nextPrefix();
    const env = {
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: upstream.baseUrl,
      RELAY_KEY: `${LABEL}:${KEY},${SPENDER}:${SPENDER_KEY}`,
      RELAY_ADMIN_KEY: ADMIN_KEY,
      RATE_LIMITS: `${LABEL}=${BUDGET}/day,${SPENDER}=${DOLLAR_BUDGET}/day`,
      PUBLIC_BASE_URL: PUBLIC_URL,
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: REDIS_URL!,
      BLOB_S3_BUCKET: S3_TEST!.bucket,
      BLOB_S3_ENDPOINT: S3_TEST!.endpoint,
      BLOB_S3_PREFIX: prefix,
      AWS_ACCESS_KEY_ID: S3_TEST!.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_TEST!.credentials.secretAccessKey,
    };
    replicas = await Promise.all([startChildRelay(env), startChildRelay(env)]);
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await upstream?.close();
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    await db.query(`DROP SCHEMA IF EXISTS "${RUN}" CASCADE`).finally(() => db.end());
    const redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const keys = [...(await redis.keys(`relay:rl:*:${LABEL}:*`)), ...(await redis.keys(`relay:rl:*:${SPENDER}:*`))];
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  test('a file link minted by one replica is served by the other (and by the first), byte for byte', async () => {
    const [a, b] = [next(), next()];
    const res = await call(a, '/v1/actions/images/generations', { prompt: 'a cat' });
    expect(res.status).toBe(200);
    const { images } = (await res.json()) as { images: { url: string; expires_at: number }[] };
    expect(images).toHaveLength(1);
    const link = new URL(images[0]!.url);
    expect(link.origin).toBe(PUBLIC_URL); // the balancer's address, not the replica's
    const sha = (bytes: ArrayBuffer) => createHash('sha256').update(Buffer.from(bytes)).digest('hex');
    for (const relay of [b, a]) {
      const blob = await fetch(relay.url + link.pathname + link.search);
      expect(blob.status).toBe(200);
      expect(blob.headers.get('content-type')).toBe('image/png');
      expect(sha(await blob.arrayBuffer())).toBe(sha(PNG.buffer.slice(PNG.byteOffset, PNG.byteOffset + PNG.byteLength) as ArrayBuffer));
    }
    // One object in the shared bucket, under this deployment's prefix.
    const s3 = rawS3();
    expect(await listKeys(s3, S3_TEST!.bucket, prefix)).toEqual([`${prefix}${link.pathname.split('/').pop()}`]);
    s3.destroy();
  });

  test('a token budget spent across both replicas refuses the next call on either', async () => {
    const body = { model: 'text-embedding-3-small', input: 'x' };
    const before = served.get('/v1/embeddings') ?? 0;
    // 4 calls alternate between the replicas: 120 tokens, over the budget of 100 only after the 4th.
    for (let i = 0; i < 4; i++) {
      const res = await call(next(), '/v1/embeddings', body);
      expect(res.status, `call ${i + 1}`).toBe(200);
      await res.arrayBuffer();
      // Each call's tokens reach Redis as its answer ends; wait for them so the next admission sees them.
      await vi.waitFor(async () => expect(await tokensToday()).toBe((i + 1) * TOKENS_PER_CALL), { timeout: 3000, interval: 20 });
    }
    for (const relay of replicas) {
      const refused = await call(relay, '/v1/embeddings', body);
      expect(refused.status).toBe(429);
      const error = ((await refused.json()) as { error: { type: string; message: string } }).error;
      expect(error.type).toBe('rate_limit_error');
      expect(error.message).toMatch(new RegExp(`${BUDGET} tokens per day`));
    }
    expect((served.get('/v1/embeddings') ?? 0) - before).toBe(4);
  });

  test('a dollar budget spent across both replicas refuses the next call on either, saying when it resets', async () => {
    const body = { model: 'text-embedding-3-large', input: 'x' };
    for (let i = 0; i < 3; i++) {
      const res = await call(replicas[i % 2]!, '/v1/embeddings', body, SPENDER_KEY);
      expect(res.status, `call ${i + 1}`).toBe(200);
      await res.arrayBuffer();
      await vi.waitFor(async () => expect(await counterToday('cpd', SPENDER)).toBe((i + 1) * COST_PER_CALL), { timeout: 3000, interval: 20 });
    }
    for (const relay of replicas) {
      const refused = await call(relay, '/v1/embeddings', body, SPENDER_KEY);
      expect(refused.status).toBe(429);
      const error = ((await refused.json()) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('budget_exceeded');
      expect(error.message).toMatch(/spent \$0\.000585 of its \$0\.0005 budget for today \(UTC\)\. The budget resets at 00:00 UTC/);
    }
    // The ledger (shared PostgreSQL) holds the same cost, read through either replica.
    for (const relay of replicas) {
      await vi.waitFor(
        async () => {
          const usage = (await (await admin(relay, `/v1/relay/usage?key=${SPENDER}`)).json()) as { data: { cost_usd: number; requests: number }[] };
          expect(Math.round(usage.data.reduce((sum, r) => sum + r.cost_usd, 0) * 1e6)).toBe(3 * COST_PER_CALL);
        },
        { timeout: 5000, interval: 100 },
      );
    }
  });

  test('usage totals, read through either replica, equal the sum of what both served', async () => {
    // What each replica served, from its own (in-memory) request counters.
    const servedBy = await Promise.all(
      replicas.map(async (relay) => {
        const text = await (await admin(relay, '/metrics')).text();
        const counts: Record<string, number> = {};
        for (const m of text.matchAll(/^relay_requests_total\{([^}]*)\} (\d+)$/gm)) {
          const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
          if (labels.key === LABEL) counts[labels.operation!] = (counts[labels.operation!] ?? 0) + Number(m[2]);
        }
        return counts;
      }),
    );
    // Both replicas served some of each kind of call (the alternation reached both).
    for (const counts of servedBy) expect(counts.createEmbedding).toBeGreaterThan(0);
    const expected: Record<string, number> = {};
    for (const counts of servedBy) for (const [op, n] of Object.entries(counts)) expected[op] = (expected[op] ?? 0) + n;
    expect(expected).toEqual({ generateActionImage: 1, createEmbedding: 6 });
    expect(sample(await (await admin(replicas[0]!, '/metrics')).text(), 'relay_requests_total', { operation: 'createEmbedding', status: '429', key: LABEL })).toBe(1);

    // The ledger batches rows once a second per replica: wait until both replicas' rows are in.
    for (const relay of replicas) {
      await vi.waitFor(
        async () => {
          const usage = (await (await admin(relay, `/v1/relay/usage?key=${LABEL}`)).json()) as {
            data: { operation: string; requests: number; errors: number; totalTokens: number }[];
          };
          const totals: Record<string, number> = {};
          for (const row of usage.data) totals[row.operation] = (totals[row.operation] ?? 0) + row.requests;
          expect(totals).toEqual(expected);
          const tokens = usage.data.filter((r) => r.operation === 'createEmbedding').reduce((sum, r) => sum + r.totalTokens, 0);
          expect(tokens).toBe(4 * TOKENS_PER_CALL);
        },
        { timeout: 5000, interval: 100 },
      );
    }
  });

  test('a managed key created on one replica works on the other at once; rotated or revoked on one, its old secret is refused by the other within a second', async () => {
    const [a, b] = replicas as [ChildRelay, ChildRelay];
    const keys = (relay: ChildRelay, path: string, method: string, body?: unknown) =>
      fetch(relay.url + path, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const embed = (relay: ChildRelay, key: string) =>
      fetch(relay.url + '/v1/embeddings', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'text-embedding-3-small', input: 'x' }) }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      });
    /** How long after `since` the replica first refuses `key` (polled every 20 ms, for up to 3 s). */
    const refusedAfter = async (relay: ChildRelay, key: string, since: number) => {
      while (performance.now() - since < 3000) {
        if ((await embed(relay, key)) === 401) return performance.now() - since;
        await new Promise((r) => setTimeout(r, 20));
      }
      return Infinity;
    };

    const created = await keys(a, '/v1/relay/keys', 'POST', { label: MANAGED_LABEL });
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    // At once on the other replica: its first look at an unknown managed-key-shaped secret reads the key version.
    expect(await embed(b, key)).toBe(200);
    expect(await embed(a, key)).toBe(200);
    const listed = (await (await keys(b, '/v1/relay/keys', 'GET')).json()) as { data: { id: string; label: string }[] };
    expect(listed.data.find((k) => k.id === id)?.label).toBe(MANAGED_LABEL);

    // Rotated on B: the new secret works on A at once, the old one is refused by A within a second.
    const rotated = await keys(b, `/v1/relay/keys/${id}/rotate`, 'POST');
    expect(rotated.status).toBe(200);
    const rotatedAt = performance.now();
    const next = ((await rotated.json()) as { key: string }).key;
    expect(await embed(a, next)).toBe(200);
    expect(await embed(b, key)).toBe(401);
    const t1 = await refusedAfter(a, key, rotatedAt); console.log("ROT", t1); expect(t1).toBeLessThan(1000);

    // Revoked on A: refused by A at once and by B within a second.
    const revoked = await keys(a, `/v1/relay/keys/${id}`, 'DELETE');
    expect(revoked.status).toBe(200);
    const revokedAt = performance.now();
    expect(await embed(a, next)).toBe(401);
    const t2 = await refusedAfter(b, next, revokedAt); console.log("REV", t2); expect(t2).toBeLessThan(1000);
    expect(await embed(b, next)).toBe(401);
  });

  const tokensToday = () => counterToday('tpd', LABEL);

  /** Today's shared counter of `kind` (tpd: tokens, cpd: micro-dollars) for `label`, as Redis holds it. */
  async function counterToday(kind: 'tpd' | 'cpd', label: string): Promise<number> {
    const redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      const keys = await redis.keys(`relay:rl:${kind}:${label}:*`);
      return keys.length ? Number(await redis.get(keys[0]!)) : 0;
    } finally {
      redis.disconnect();
    }
  }
});
