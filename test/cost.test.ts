import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { costOf, microsOf } from '../src/ops/cost.ts';
import { BUILTIN_PRICES_PATH, createPriceBook, loadPriceBook, priceTableSchema, PriceTableError, type PriceTable } from '../src/ops/prices.ts';
import { createUsageAccount } from '../src/upstream/usage-account.ts';
import type { UsageInfo } from '../src/upstream/usage-tap/index.ts';

/**
 * Prices as data and the cost of a call. Every expected cost is worked out by hand from the table's prices
 * (USD per 1M tokens = micro-dollars per token), so a mistake in the arithmetic or in the reading of
 * OpenAI's usage (cached and reasoning tokens above all) shows.
 */

const book = loadPriceBook();
const micros = (usage: UsageInfo) => {
  const c = costOf(usage, book);
  if (typeof c !== 'number') throw new Error(`unpriced: ${JSON.stringify(c)}`);
  return c / 1e6; // picodollars → micro-dollars, unrounded
};
const tmp = mkdtempSync(join(tmpdir(), 'relay-prices-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the built-in price table', () => {
  test('is valid, dated, sourced, and names every model the way OpenAI does', () => {
    const raw = JSON.parse(readFileSync(BUILTIN_PRICES_PATH, 'utf8'));
    const table = priceTableSchema.parse(raw);
    expect(table.retrieved).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(table.source).toMatch(/^https:\/\/developers\.openai\.com\//);
    expect(Object.keys(table.models).length).toBeGreaterThan(30);
    for (const [name, prices] of Object.entries(table.models)) {
      expect(prices.source, name).toMatch(/^https:\/\/developers\.openai\.com\/api\/docs\/models\//);
      // A cached price above the uncached one would be a typo.
      if (prices.cached_input !== undefined) expect(prices.cached_input, name).toBeLessThanOrEqual(prices.input);
    }
    // The relay's own defaults have prices.
    for (const model of ['gpt-5-mini', 'gpt-image-1', 'text-embedding-3-small']) expect(book.lookup(model)).toBeDefined();
  });

  test('a dated snapshot costs what its model costs, unless it has a price of its own', () => {
    expect(book.lookup('gpt-5-mini-2025-08-07')?.name).toBe('gpt-5-mini');
    expect(book.lookup('gpt-4.1-mini-2025-04-14')?.name).toBe('gpt-4.1-mini');
    expect(book.lookup('GPT-4o-2024-08-06')?.name).toBe('gpt-4o');
    expect(book.lookup('gpt-4o-2024-05-13')?.name).toBe('gpt-4o-2024-05-13');
    expect(book.lookup('gpt-realtime-2025-08-28')?.name).toBe('gpt-realtime');
    expect(book.lookup('o1-0613')?.name).toBe('o1'); // the older four-digit dates
    expect(book.lookup('gpt-5-mini-preview')).toBeUndefined();
    expect(book.lookup('no-such-model')).toBeUndefined();
    // A fine-tuned model is never priced as its base (its inference costs more).
    expect(book.lookup('ft:gpt-4.1-mini-2025-04-14:acme::abc123')).toBeUndefined();
    // Lookups are remembered: the same answer, the same object.
    expect(book.lookup('gpt-5-mini-2025-08-07')).toBe(book.lookup('gpt-5-mini-2025-08-07'));
  });
});

describe('the cost of a call, by hand', () => {
  test('plain input and output: gpt-5-mini, 20 in and 10 out = 20 × 0.25 + 10 × 2 = 25 µ$', () => {
    expect(micros({ model: 'gpt-5-mini-2025-08-07', inputTokens: 20, outputTokens: 10, totalTokens: 30 })).toBe(25);
  });

  test('cached input at its own price; reasoning already in the output, not added again', () => {
    // gpt-5: 464 uncached × 1.25 + 1536 cached × 0.125 + 900 output × 10 = 580 + 192 + 9000
    const usage = { model: 'gpt-5', inputTokens: 2000, outputTokens: 900, totalTokens: 2900, details: { cachedInput: 1536, reasoning: 640 } };
    expect(micros(usage)).toBe(9772);
    // The same call without a cache hit, and without the reasoning detail: reasoning changes nothing.
    expect(micros({ ...usage, details: { reasoning: 640 } })).toBe(2000 * 1.25 + 9000);
    expect(micros({ ...usage, details: undefined })).toBe(2000 * 1.25 + 9000);
  });

  test('cache writes at their rate where a model has one (gpt-6.1-terra), as plain input where not', () => {
    // 4000 uncached × 1 + 4000 cached × 0.05 + 2000 written × 1.25 + 1000 output × 5
    const usage = { model: 'gpt-6.1-terra', inputTokens: 10_000, outputTokens: 1000, details: { cachedInput: 4000, cacheWrite: 2000 } };
    expect(micros(usage)).toBe(4000 + 200 + 2500 + 5000);
    expect(micros({ ...usage, model: 'gpt-5.4' })).toBe(6000 * 2.5 + 4000 * 0.25 + 1000 * 15);
  });

  test('above 272K input tokens the whole call is priced long-context (gpt-6.2-sol: input × 2, output × 1.5)', () => {
    // 200,000 uncached × 2 × 2 + 100,000 cached × 0.1 × 2 + 2000 output × 10 × 1.5
    const usage = { model: 'gpt-6.2-sol', inputTokens: 300_000, outputTokens: 2000, details: { cachedInput: 100_000 } };
    expect(micros(usage)).toBe(800_000 + 20_000 + 30_000);
    expect(micros({ ...usage, inputTokens: 272_000, details: undefined })).toBe(272_000 * 2 + 20_000); // at the threshold: not above it
  });

  test('service tiers: flex halves every price, priority where the model has it; a tier without a price is unpriced', () => {
    const usage = { model: 'gpt-5', inputTokens: 1000, outputTokens: 100 };
    expect(micros({ ...usage, serviceTier: 'default' })).toBe(1250 + 1000);
    expect(micros({ ...usage, serviceTier: 'flex' })).toBe((1250 + 1000) / 2);
    expect(micros({ ...usage, model: 'gpt-6.2-sol', serviceTier: 'priority' })).toBe((2000 + 1000) * 2);
    expect(costOf({ ...usage, serviceTier: 'priority' }, book)).toEqual({ model: 'gpt-5', missing: 'a price for gpt-5 in the priority service tier' });
  });

  test('audio and image tokens at their own prices, the cached part of each at its cached price (gpt-realtime)', () => {
    const usage: UsageInfo = {
      model: 'gpt-realtime',
      inputTokens: 500,
      outputTokens: 200,
      details: { cachedInput: 300, audioInput: 350, cachedAudioInput: 250, imageInput: 50, cachedImageInput: 10, audioOutput: 180 },
    };
    // input: cached 300 = 250 audio + 10 image + 40 text; uncached audio 100, image 40, text 500-300-100-40 = 60
    const input = 60 * 4 + 40 * 0.4 + 100 * 32 + 250 * 0.4 + 40 * 5 + 10 * 0.5;
    const output = 20 * 16 + 180 * 64;
    expect(micros(usage)).toBeCloseTo(input + output, 9);
  });

  test('image generation: image input and output at image prices (gpt-image-1 reports output without a split)', () => {
    // 20 text × 5 + 40 image × 10 + 1100 output (all image tokens) × 40
    expect(micros({ inputTokens: 60, outputTokens: 1100, details: { imageInput: 40 }, model: 'gpt-image-1' })).toBe(100 + 400 + 44_000);
    expect(micros({ inputTokens: 60, outputTokens: 1100, details: { imageInput: 40, imageOutput: 1100 }, model: 'gpt-image-1' })).toBe(100 + 400 + 44_000);
  });

  test('image input to a text model is billed as text input', () => {
    expect(micros({ model: 'gpt-4.1', inputTokens: 1000, outputTokens: 0, details: { imageInput: 765 } })).toBe(1000 * 2);
  });

  test('never a silent 0: unknown model, no model, a kind without a price', () => {
    expect(costOf({ model: 'gpt-9-ultra', inputTokens: 5, outputTokens: 5 }, book)).toEqual({ model: 'gpt-9-ultra', missing: 'a price for gpt-9-ultra' });
    expect(costOf({ inputTokens: 5, outputTokens: 5 }, book)).toEqual({ model: 'unknown', missing: 'the model (the answer named none)' });
    expect(costOf({ model: 'gpt-5', inputTokens: 5, outputTokens: 5, details: { audioInput: 5 } }, book)).toEqual({ model: 'gpt-5', missing: 'a audio input price for gpt-5' });
    expect(costOf({ model: 'text-embedding-3-small', inputTokens: 5, outputTokens: 5 }, book)).toEqual({
      model: 'text-embedding-3-small',
      missing: 'an output price for text-embedding-3-small',
    });
    expect(costOf({ model: 'gpt-9-ultra', totalTokens: 5 }, book)).toMatchObject({ missing: 'a usage without its input and output tokens' });
    // Nothing spent: nothing to price.
    expect(costOf({ model: 'gpt-9-ultra' }, book)).toBeUndefined();
    expect(costOf({ model: 'gpt-5', inputTokens: 0, outputTokens: 0, totalTokens: 0 }, book)).toBeUndefined();
  });

  test('details larger than the totals they are part of are clamped, never a negative part', () => {
    expect(micros({ model: 'gpt-5', inputTokens: 100, outputTokens: 10, details: { cachedInput: 500, reasoning: 99 } })).toBe(100 * 0.125 + 10 * 10);
  });

  test('picodollars to micro-dollars: nearest, half up, exact', () => {
    expect([0, 499_999, 500_000, 1_499_999, 1_500_000, 25_000_000, 123_456_789_500_000].map(microsOf)).toEqual([0, 0, 1, 1, 2, 25, 123_456_790]);
    // 8 embedding tokens cost 0.16 µ$: recorded as 0, the nearest whole micro-dollar.
    expect(microsOf(costOf({ model: 'text-embedding-3-small', inputTokens: 8, totalTokens: 8 }, book) as number)).toBe(0);
  });
});

describe('a request of several calls (an action, an MCP tool)', () => {
  const priced = (usage: UsageInfo): UsageInfo => {
    const c = costOf(usage, book);
    return { ...usage, costPicoUsd: typeof c === 'number' ? c : c === undefined ? undefined : null };
  };

  test('each call is priced at its own model\'s price, then summed; the first model names the record', async () => {
    const account = createUsageAccount();
    account.add(priced({ model: 'gpt-5-mini', inputTokens: 1000, outputTokens: 100, details: { cachedInput: 200 } }), 10, 1);
    account.add(Promise.resolve(priced({ model: 'gpt-image-1', inputTokens: 50, outputTokens: 4000, details: { imageInput: 10 } })), 20, 1);
    account.add(priced({ model: 'gpt-5-mini' }), 5, 1); // a poll that spent nothing
    await account.settled();
    // 800 × 0.25 + 200 × 0.025 + 100 × 2 = 405 µ$; 40 × 5 + 10 × 10 + 4000 × 40 = 160,300 µ$
    expect(account.usage).toEqual({
      model: 'gpt-5-mini',
      inputTokens: 1050,
      outputTokens: 4100,
      totalTokens: undefined,
      details: { cachedInput: 200, imageInput: 10 },
      costPicoUsd: (405 + 160_300) * 1e6,
    });
    expect(microsOf(account.usage!.costPicoUsd!)).toBe(160_705);
  });

  test('one call without a price makes the whole cost unknown (a part of a cost is not its cost)', () => {
    const account = createUsageAccount();
    account.add(priced({ model: 'gpt-5-mini', inputTokens: 1000, outputTokens: 100 }), 10, 1);
    account.add(priced({ inputTokens: 50, outputTokens: 40 }), 10, 1); // an image answer names no model
    account.add(priced({ model: 'gpt-5-mini', inputTokens: 1000, outputTokens: 100 }), 10, 1);
    expect(account.usage?.costPicoUsd).toBeNull();
  });
});

describe('PRICES_FILE', () => {
  const minimal: PriceTable = {
    source: 'https://example.com/our-prices',
    retrieved: '2026-12-01',
    currency: 'USD',
    per_tokens: 1_000_000,
    service_tiers: {},
    models: { 'gpt-5': { input: 1, cached_input: 0.5, output: 2 } },
  };

  test('a valid file replaces the built-in table', () => {
    const file = join(tmp, 'ours.json');
    writeFileSync(file, JSON.stringify(minimal));
    const ours = loadPriceBook(file);
    expect(ours.origin).toBe(file);
    expect(costOf({ model: 'gpt-5-2025-08-07', inputTokens: 10, outputTokens: 10 }, ours)).toBe(30 * 1e6);
    expect(ours.lookup('gpt-5-mini')).toBeUndefined();
    expect(loadConfig({ OPENAI_API_KEY: 'sk-test-0123456789abcdef', RELAY_KEY: 'relay-key-0123456789abcdef', PRICES_FILE: file }).ops.pricesFile).toBe(file);
  });

  test('a bad file stops the relay with a sentence naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...minimal, models: { 'gpt-5': { input: -1 } } }, /models\.gpt-5\.input: a price cannot be negative/],
      [{ ...minimal, models: { 'gpt-5': { input: 0.0000001 } } }, /at most 6 decimals/],
      [{ ...minimal, models: { 'GPT-5': { input: 1 } } }, /lowercase/],
      [{ ...minimal, models: { 'gpt-5': { input: 1, ouput: 2 } } }, /ouput/],
      [{ ...minimal, retrieved: 'last week' }, /retrieved must be the date/],
      [{ ...minimal, source: undefined }, /source/],
    ];
    for (const [table, message] of cases) {
      const file = join(tmp, 'bad.json');
      writeFileSync(file, JSON.stringify(table));
      expect(() => loadPriceBook(file)).toThrow(PriceTableError);
      expect(() => loadPriceBook(file)).toThrow(message);
    }
    writeFileSync(join(tmp, 'broken.json'), '{"models": ');
    expect(() => loadPriceBook(join(tmp, 'broken.json'))).toThrow(/could not be read as JSON/);
    expect(() => loadPriceBook(join(tmp, 'missing.json'))).toThrow(/PRICES_FILE \(.*missing\.json\) could not be read/);
    try {
      loadConfig({ OPENAI_API_KEY: 'sk-test-0123456789abcdef', RELAY_KEY: 'relay-key-0123456789abcdef', PRICES_FILE: join(tmp, 'missing.json') });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toMatch(/PRICES_FILE .* could not be read.*See docs\/costs\.md/);
    }
  });

  test('createPriceBook compiles each rate once per tier and length of context', () => {
    const ours = createPriceBook({ ...minimal, service_tiers: { flex: 0.5 } });
    const prices = ours.lookup('gpt-5')!;
    expect(prices.rates(undefined, false)).toEqual({ input: 1_000_000, cached_input: 500_000, output: 2_000_000 });
    expect(prices.rates('flex', false)).toEqual({ input: 500_000, cached_input: 250_000, output: 1_000_000 });
    expect(prices.rates('flex', false)).toBe(prices.rates('flex', false));
    expect(prices.rates('scale', false)).toBeUndefined();
  });
});
