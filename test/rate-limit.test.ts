import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createMemoryRateLimiter, type RateLimiter, rateLimitError } from '../src/ops/rate-limit.ts';
import { createRedisRateLimiter } from '../src/ops/rate-limit-redis.ts';

/**
 * Per-key limits: requests per minute and tokens per UTC day, in memory and in Redis (shared by replicas).
 * Time is injected (`now`), so windows are exact and nothing sleeps.
 */

const REDIS_URL = process.env.TEST_REDIS_URL;
if (!REDIS_URL) {
  console.warn('[rate-limit.test] TEST_REDIS_URL is not set: skipping the Redis rate limiter tests (e.g. TEST_REDIS_URL=redis://127.0.0.1:56379).');
}

// 2030-05-17 13:45:20.000 UTC: 20 s into a minute, 13 h 45 min 20 s into a day.
const T0 = Date.UTC(2030, 4, 17, 13, 45, 20);
const NEXT_MINUTE = Date.UTC(2030, 4, 17, 13, 46, 0);
const NEXT_DAY = Date.UTC(2030, 4, 18, 0, 0, 0);
const SECONDS_TO_MIDNIGHT = (NEXT_DAY - T0) / 1000;
const NEXT_MONTH = Date.UTC(2030, 5, 1, 0, 0, 0);
const USD = 1_000_000; // micro-dollars

/** The behaviour both limiters must share. `make` gives a fresh limiter with its own counters. */
function limiterBehaviour(make: () => RateLimiter | Promise<RateLimiter>) {
  test('requests/min: allowed up to the limit, then refused with Retry-After until the next minute', async () => {
    const rl = await make();
    const policy = { requestsPerMinute: 3 };
    for (const remaining of [2, 1, 0]) {
      expect(await rl.take('alice', policy, T0)).toEqual({ allowed: true, remaining });
    }
    expect(await rl.take('alice', policy, T0)).toEqual({
      allowed: false,
      limit: 'requests_per_minute',
      limitValue: 3,
      retryAfterSeconds: 40,
      remaining: 0,
    });
    const late = await rl.take('alice', policy, NEXT_MINUTE - 1);
    expect(late).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    expect(await rl.take('alice', policy, NEXT_MINUTE)).toEqual({ allowed: true, remaining: 2 });
  });

  test('tokens/day: usage accumulates and blocks until the next UTC day', async () => {
    const rl = await make();
    const policy = { tokensPerDay: 1000 };
    expect(await rl.take('bob', policy, T0)).toEqual({ allowed: true, remainingTokens: 1000 });
    await rl.addUsage('bob', { tokens: 600 }, T0);
    expect(await rl.take('bob', policy, T0 + 1000)).toEqual({ allowed: true, remainingTokens: 400 });
    await rl.addUsage('bob', { tokens: 500 }, T0 + 2000); // overshoots: the request was already running
    expect(await rl.take('bob', policy, T0 + 3000)).toEqual({
      allowed: false,
      limit: 'tokens_per_day',
      limitValue: 1000,
      retryAfterSeconds: SECONDS_TO_MIDNIGHT - 3,
      remainingTokens: 0,
    });
    expect(await rl.take('bob', policy, NEXT_DAY - 1)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    expect(await rl.take('bob', policy, NEXT_DAY)).toEqual({ allowed: true, remainingTokens: 1000 });
  });

  test('tokens that are not a positive finite number count nothing; fractions round up', async () => {
    const rl = await make();
    for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) await rl.addUsage('carol', { tokens: bad }, T0);
    await rl.addUsage('carol', { tokens: 0.2 }, T0);
    expect(await rl.take('carol', { tokensPerDay: 10 }, T0)).toEqual({ allowed: true, remainingTokens: 9 });
  });

  test('a request refused for tokens/day does not use up a request of the minute', async () => {
    const rl = await make();
    await rl.addUsage('dave', { tokens: 10 }, T0);
    expect(await rl.take('dave', { requestsPerMinute: 1, tokensPerDay: 10 }, T0)).toMatchObject({ allowed: false, limit: 'tokens_per_day' });
    expect(await rl.take('dave', { requestsPerMinute: 1 }, T0)).toEqual({ allowed: true, remaining: 0 });
  });

  test('both limits: the decision reports both remainders', async () => {
    const rl = await make();
    await rl.addUsage('erin', { tokens: 30 }, T0);
    expect(await rl.take('erin', { requestsPerMinute: 2, tokensPerDay: 100 }, T0)).toEqual({ allowed: true, remaining: 1, remainingTokens: 70 });
  });

  test('labels are independent', async () => {
    const rl = await make();
    const policy = { requestsPerMinute: 1, tokensPerDay: 5 };
    expect((await rl.take('a', policy, T0)).allowed).toBe(true);
    expect((await rl.take('a', policy, T0)).allowed).toBe(false);
    await rl.addUsage('b', { tokens: 5 }, T0);
    expect((await rl.take('b', policy, T0)).limit).toBe('tokens_per_day');
    expect((await rl.take('c', policy, T0)).allowed).toBe(true);
  });

  test('$/day: cost accumulates, refuses at the budget until the next UTC day, saying when it resets', async () => {
    const rl = await make();
    const policy = { costPerDay: 5 * USD, requestsPerMinute: 100 };
    expect(await rl.take('frank', policy, T0)).toEqual({ allowed: true, remaining: 99 });
    await rl.addUsage('frank', { costMicros: 4_999_999 }, T0);
    expect((await rl.take('frank', policy, T0)).allowed).toBe(true); // one micro-dollar under
    await rl.addUsage('frank', { costMicros: 2 }, T0); // the request in flight overshoots
    const refused = await rl.take('frank', policy, T0 + 1000);
    expect(refused).toEqual({
      allowed: false,
      limit: 'cost_per_day',
      limitValue: 5 * USD,
      spentMicros: 5 * USD + 1,
      resetAt: NEXT_DAY,
      retryAfterSeconds: SECONDS_TO_MIDNIGHT - 1,
    });
    // A refused request does not use up a request of the minute.
    expect(await rl.take('frank', { requestsPerMinute: 100 }, T0 + 1000)).toEqual({ allowed: true, remaining: 97 });
    expect(await rl.take('frank', policy, NEXT_DAY)).toEqual({ allowed: true, remaining: 99 });
  });

  test('$/month: spending of every day of the UTC month adds up, and the month\'s end resets it', async () => {
    const rl = await make();
    const policy = { costPerDay: 10 * USD, costPerMonth: 12 * USD };
    await rl.addUsage('gina', { costMicros: 7 * USD }, T0 - 3 * 86_400_000); // earlier this month
    await rl.addUsage('gina', { costMicros: 5 * USD, tokens: 10 }, T0);
    const refused = await rl.take('gina', policy, T0);
    expect(refused).toMatchObject({ allowed: false, limit: 'cost_per_month', limitValue: 12 * USD, spentMicros: 12 * USD, resetAt: NEXT_MONTH });
    expect(refused.retryAfterSeconds).toBe((NEXT_MONTH - T0) / 1000);
    expect((await rl.take('gina', policy, NEXT_MONTH)).allowed).toBe(true);
    // Spending of last month counts for nothing; the day budget alone still holds.
    await rl.addUsage('gina', { costMicros: 10 * USD }, NEXT_MONTH);
    expect(await rl.take('gina', policy, NEXT_MONTH + 1000)).toMatchObject({ allowed: false, limit: 'cost_per_day' });
  });

  test('seed: what the ledger says was spent counts at once; the store never goes below what it holds', async () => {
    const rl = await make();
    const policy = { tokensPerDay: 100, costPerDay: 5 * USD, costPerMonth: 50 * USD };
    await rl.seed([{ label: 'hank', dayTokens: 99, dayCostMicros: 1 * USD, monthCostMicros: 49 * USD }], T0);
    expect(await rl.take('hank', policy, T0)).toEqual({ allowed: true, remainingTokens: 1 });
    await rl.addUsage('hank', { costMicros: 1 * USD }, T0);
    expect(await rl.take('hank', policy, T0)).toMatchObject({ allowed: false, limit: 'cost_per_month', spentMicros: 50 * USD });
    // A second seed (another replica starting) with older, smaller figures changes nothing.
    await rl.seed([{ label: 'hank', dayTokens: 0, dayCostMicros: 0, monthCostMicros: 0 }], T0);
    expect(await rl.take('hank', policy, T0)).toMatchObject({ allowed: false, limit: 'cost_per_month' });
    await rl.seed([], T0);
  });

  test('unlimited policy allows everything', async () => {
    const rl = await make();
    await rl.addUsage('free', { tokens: 1e12 }, T0);
    for (let i = 0; i < 200; i++) expect(await rl.take('free', {}, T0)).toEqual({ allowed: true });
  });
}

describe('memory rate limiter', () => {
  const limiters: RateLimiter[] = [];
  afterAll(() => Promise.all(limiters.map((l) => l.close())));
  limiterBehaviour(() => {
    const rl = createMemoryRateLimiter();
    limiters.push(rl);
    return rl;
  });

  test('memory stays bounded: beyond maxLabels the least recently used label is dropped', async () => {
    const rl = createMemoryRateLimiter({ maxLabels: 3 });
    const policy = { requestsPerMinute: 1 };
    expect((await rl.take('a', policy, T0)).allowed).toBe(true);
    expect((await rl.take('b', policy, T0)).allowed).toBe(true);
    expect((await rl.take('a', policy, T0)).allowed).toBe(false); // a is now the most recently used
    expect((await rl.take('c', policy, T0)).allowed).toBe(true);
    expect((await rl.take('d', policy, T0)).allowed).toBe(true); // evicts b
    expect((await rl.take('a', policy, T0)).allowed).toBe(false); // a kept
    expect((await rl.take('b', policy, T0)).allowed).toBe(true); // b forgotten
    await rl.close();
  });
});

describe('rateLimitError', () => {
  test('requests/min → 429 rate_limit_error with Retry-After, naming the limit', () => {
    const err = rateLimitError({ allowed: false, limit: 'requests_per_minute', limitValue: 120, retryAfterSeconds: 40 });
    expect(err.status).toBe(429);
    expect(err.headers).toEqual({ 'retry-after': '40' });
    expect(err.toJSON()).toEqual({
      error: {
        message: 'Rate limit reached: this relay key has used its limit of 120 requests per minute. Retry in 40 seconds.',
        type: 'rate_limit_error',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
  });

  test('tokens/day → 429 naming tokens per day, Retry-After in whole seconds', () => {
    const err = rateLimitError({ allowed: false, limit: 'tokens_per_day', limitValue: 2_000_000, retryAfterSeconds: SECONDS_TO_MIDNIGHT });
    expect(err.status).toBe(429);
    expect(err.type).toBe('rate_limit_error');
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.headers['retry-after']).toBe(String(SECONDS_TO_MIDNIGHT));
    expect(err.message).toBe('Rate limit reached: this relay key has used its limit of 2000000 tokens per day (UTC). Retry in 10 h 15 min.');
  });

  test('$/day → 429 budget_exceeded: what was spent of which budget, and when it resets', () => {
    const err = rateLimitError({ allowed: false, limit: 'cost_per_day', limitValue: 5 * USD, spentMicros: 5_020_000, resetAt: NEXT_DAY, retryAfterSeconds: SECONDS_TO_MIDNIGHT });
    expect(err.status).toBe(429);
    expect(err.headers).toEqual({ 'retry-after': String(SECONDS_TO_MIDNIGHT) });
    expect(err.toJSON().error).toEqual({
      message:
        "Budget reached: this relay key has spent $5.02 of its $5.00 budget for today (UTC). The budget resets at 00:00 UTC, in 10 h 15 min; ask the relay's operator to raise it (RATE_LIMITS) if you need more before then.",
      type: 'rate_limit_error',
      param: null,
      code: 'budget_exceeded',
    });
  });

  test('$/month → 429 budget_exceeded naming the day it resets', () => {
    const err = rateLimitError({ allowed: false, limit: 'cost_per_month', limitValue: 125_000, spentMicros: 125_001, resetAt: NEXT_MONTH, retryAfterSeconds: (NEXT_MONTH - T0) / 1000 });
    expect(err.code).toBe('budget_exceeded');
    expect(err.message).toBe(
      "Budget reached: this relay key has spent $0.125001 of its $0.125 budget for this month (UTC). The budget resets on 2030-06-01 at 00:00 UTC, in 15 days; ask the relay's operator to raise it (RATE_LIMITS) if you need more before then.",
    );
  });

  test('limits unavailable (fail closed) → 503 rate_limits_unavailable, Retry-After 1', () => {
    const err = rateLimitError({ allowed: false, retryAfterSeconds: 1, unavailable: true });
    expect(err.status).toBe(503);
    expect(err.headers).toEqual({ 'retry-after': '1' });
    expect(err.toJSON().error).toMatchObject({ type: 'server_error', code: 'rate_limits_unavailable' });
    expect(err.message).toMatch(/cannot check this key's rate limits/);
  });
});

describe.skipIf(!REDIS_URL)('Redis rate limiter', () => {
  const url = REDIS_URL as string;
  const prefix = `test-rl-${randomUUID()}`;
  const limiters: RateLimiter[] = [];
  let admin: Redis;
  let n = 0;
  const make = (p = `${prefix}:${n++}`) => {
    const rl = createRedisRateLimiter(url, { prefix: p, failOpen: false, onError: (err) => console.error('unexpected Redis error', err) });
    limiters.push(rl);
    return rl;
  };

  beforeAll(() => {
    admin = new Redis(url);
  });
  afterAll(async () => {
    await Promise.all(limiters.map((l) => l.close()));
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length) await admin.del(...keys);
    await admin.quit();
  });

  limiterBehaviour(() => make());

  test('counters live under prefix:rpm:<label>:<minute>, prefix:tpd|cpd:<label>:<day> and prefix:cpm:<label>:<month>, and expire', async () => {
    const p = `${prefix}:names`;
    const rl = make(p);
    await rl.take('alice', { requestsPerMinute: 5, tokensPerDay: 100, costPerMonth: USD }, T0);
    await rl.addUsage('alice', { tokens: 7, costMicros: 1234 }, T0);
    const cpdKey = `${p}:cpd:alice:${Math.floor(T0 / 86_400_000)}`;
    const cpmKey = `${p}:cpm:alice:${2030 * 12 + 4}`;
    expect(await admin.get(cpdKey)).toBe('1234');
    expect(await admin.get(cpmKey)).toBe('1234');
    expect(await admin.ttl(cpmKey)).toBeGreaterThan((NEXT_MONTH - T0) / 1000);
    expect(await admin.ttl(cpmKey)).toBeLessThanOrEqual((NEXT_MONTH - T0) / 1000 + 86_400);
    const rpmKey = `${p}:rpm:alice:${Math.floor(T0 / 60_000)}`;
    const tpdKey = `${p}:tpd:alice:${Math.floor(T0 / 86_400_000)}`;
    expect(await admin.get(rpmKey)).toBe('1');
    expect(await admin.get(tpdKey)).toBe('7');
    const rpmTtl = await admin.pttl(rpmKey);
    expect(rpmTtl).toBeGreaterThan(40_000);
    expect(rpmTtl).toBeLessThanOrEqual(45_000);
    const tpdTtl = await admin.ttl(tpdKey);
    expect(tpdTtl).toBeGreaterThan(SECONDS_TO_MIDNIGHT);
    expect(tpdTtl).toBeLessThanOrEqual(SECONDS_TO_MIDNIGHT + 3600);
  });

  test('two replicas (two connections) share one label’s limits', async () => {
    const p = `${prefix}:shared`;
    const a = make(p);
    const b = make(p);
    const policy = { requestsPerMinute: 5 };
    for (let i = 0; i < 3; i++) expect((await a.take('alice', policy, T0)).allowed).toBe(true);
    for (let i = 0; i < 2; i++) expect((await b.take('alice', policy, T0)).allowed).toBe(true);
    expect(await a.take('alice', policy, T0)).toMatchObject({ allowed: false, limit: 'requests_per_minute', retryAfterSeconds: 40 });
    expect(await b.take('alice', policy, T0)).toMatchObject({ allowed: false, limit: 'requests_per_minute', retryAfterSeconds: 40 });

    await a.addUsage('bob', { tokens: 60 }, T0);
    await b.addUsage('bob', { tokens: 40 }, T0);
    expect(await b.take('bob', { tokensPerDay: 100 }, T0)).toMatchObject({ allowed: false, limit: 'tokens_per_day' });
    expect(await a.take('bob', { tokensPerDay: 101 }, T0)).toEqual({ allowed: true, remainingTokens: 1 });
  });

  test('atomic: 50 concurrent takes over two replicas let exactly the limit through', async () => {
    const p = `${prefix}:race`;
    const a = make(p);
    const b = make(p);
    await Promise.all([a.take('warm', {}, T0), b.take('warm', {}, T0)]);
    const decisions = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).take('racer', { requestsPerMinute: 20 }, T0)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    expect(decisions.filter((d) => !d.allowed && d.limit === 'requests_per_minute')).toHaveLength(30);
    // the remainders handed out are exactly 19..0, once each
    const remaining = decisions.filter((d) => d.allowed).map((d) => d.remaining).sort((x, y) => x! - y!);
    expect(remaining).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test('ready() connects explicitly (for a start-up check)', async () => {
    const rl = createRedisRateLimiter(url, { prefix: `${prefix}:ready` });
    limiters.push(rl);
    await expect(rl.ready()).resolves.toBeUndefined();
  });
});

/** A port nothing listens on: bind an ephemeral port, then close it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('Redis unreachable (runs without TEST_REDIS_URL)', () => {
  let refusedUrl: string;
  let silent: Server;
  let silentUrl: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    refusedUrl = `redis://127.0.0.1:${await closedPort()}`;
    // Accepts connections and never answers: a hung or partitioned Redis.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `redis://127.0.0.1:${(silent.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  test('fail open (the default): allowed, marked unavailable, reported via onError — quickly', async () => {
    const errors: Error[] = [];
    const rl = createRedisRateLimiter(refusedUrl, { onError: (err) => errors.push(err) });
    const started = performance.now();
    const first = await rl.take('alice', { requestsPerMinute: 1 }, T0);
    const again = await Promise.all(Array.from({ length: 5 }, () => rl.take('alice', { requestsPerMinute: 1 }, T0)));
    await rl.addUsage('alice', { tokens: 50 }, T0); // never rejects
    expect(performance.now() - started).toBeLessThan(1000);
    expect(first).toEqual({ allowed: true, unavailable: true });
    for (const d of again) expect(d).toEqual({ allowed: true, unavailable: true });
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeLessThanOrEqual(2); // throttled: not one report per request
    await rl.close();
  });

  test('fail closed: refused with a distinct "unavailable" decision that becomes a 503 — quickly', async () => {
    const errors: Error[] = [];
    const rl = createRedisRateLimiter(refusedUrl, { failOpen: false, onError: (err) => errors.push(err) });
    const started = performance.now();
    const decision = await rl.take('alice', { requestsPerMinute: 100 }, T0);
    const second = await rl.take('alice', { tokensPerDay: 100 }, T0);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(decision).toEqual({ allowed: false, retryAfterSeconds: 1, unavailable: true });
    expect(second).toEqual(decision);
    expect(rateLimitError(decision).status).toBe(503);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    await expect(rl.ready()).rejects.toThrow();
    await rl.close();
  });

  test('an unlimited policy needs no Redis at all', async () => {
    const rl = createRedisRateLimiter(refusedUrl, { failOpen: false, onError: () => {} });
    expect(await rl.take('alice', {}, T0)).toEqual({ allowed: true });
    await rl.close();
  });

  test('a Redis that accepts but never answers fails within the connect timeout', async () => {
    const errors: Error[] = [];
    const rl = createRedisRateLimiter(silentUrl, { failOpen: false, connectTimeoutMs: 300, onError: (err) => errors.push(err) });
    const started = performance.now();
    const decisions = await Promise.all(Array.from({ length: 20 }, () => rl.take('alice', { requestsPerMinute: 100 }, T0)));
    expect(performance.now() - started).toBeLessThan(1000);
    for (const d of decisions) expect(d).toEqual({ allowed: false, retryAfterSeconds: 1, unavailable: true });
    // the stuck connection was dropped: later requests fail at once, without waiting again
    const later = performance.now();
    expect(await rl.take('alice', { requestsPerMinute: 100 }, T0)).toMatchObject({ allowed: false, unavailable: true });
    expect(performance.now() - later).toBeLessThan(100);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    await rl.close();
  });

  test('a Redis that hangs after connecting: the command times out, later requests fail fast', async () => {
    // Answers the connection handshake like Redis, then never answers a script.
    const hung = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('data', (chunk) => {
        for (const command of chunk.toString('latin1').split(/\*\d+\r\n/).slice(1)) {
          const name = /^\$\d+\r\n([^\r]*)/.exec(command)?.[1]?.toLowerCase();
          if (name === 'evalsha' || name === 'eval') continue;
          socket.write(name === 'info' ? '$11\r\nloading:0\r\n\r\n' : '+OK\r\n');
        }
      });
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const hungUrl = `redis://127.0.0.1:${(hung.address() as { port: number }).port}`;
    const errors: Error[] = [];
    const rl = createRedisRateLimiter(hungUrl, { commandTimeoutMs: 200, onError: (err) => errors.push(err) });
    await rl.ready();
    const started = performance.now();
    expect(await rl.take('alice', { requestsPerMinute: 1 }, T0)).toEqual({ allowed: true, unavailable: true });
    expect(performance.now() - started).toBeLessThan(1000);
    const later = performance.now();
    expect(await rl.take('alice', { requestsPerMinute: 1 }, T0)).toEqual({ allowed: true, unavailable: true });
    expect(performance.now() - later).toBeLessThan(100);
    expect(errors[0].message).toMatch(/timed out/i);
    await rl.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => hung.close(() => resolve()));
  });

  test('after close, takes fail per policy and close is idempotent', async () => {
    const rl = createRedisRateLimiter(refusedUrl, { failOpen: false, onError: () => {} });
    await rl.close();
    await rl.close();
    expect(await rl.take('alice', { requestsPerMinute: 1 }, T0)).toMatchObject({ allowed: false, unavailable: true });
  });
});
