import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The price table: what each model costs per 1M tokens, by kind of token, as data (prices.json, or the file
 * PRICES_FILE names), checked once at start-up. Lookups resolve a dated snapshot name to its model and are
 * remembered, so pricing a call costs a Map lookup.
 *
 * Prices are kept as integer picodollars per token: 1 USD per 1M tokens is 1 µ$ per token, 10⁶ p$. A price
 * with at most six decimals (what the schema allows) is then exact, and so is tokens × price.
 */

export const BUILTIN_PRICES_PATH = new URL('./prices.json', import.meta.url);

/** Token kinds with a price of their own. */
export const PRICE_KINDS = [
  'input',
  'cached_input',
  'cache_write',
  'output',
  'audio_input',
  'cached_audio_input',
  'audio_output',
  'image_input',
  'cached_image_input',
  'image_output',
] as const;
export type PriceKind = (typeof PRICE_KINDS)[number];

const MAX_PRICE = 1_000_000;
const price = z
  .number()
  .min(0, 'a price cannot be negative')
  .max(MAX_PRICE, `a price above ${MAX_PRICE} USD per 1M tokens is surely a typo`)
  .refine((v) => Math.abs(v * 1e6 - Math.round(v * 1e6)) < 1e-6, 'a price has at most 6 decimals (a millionth of a dollar per 1M tokens)');
const multiplier = z.number().positive().max(100);
const MODEL_NAME = /^[a-z0-9][a-z0-9:._-]{0,199}$/;
const tierName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'a service tier is a lowercase word as OpenAI sends it (flex, priority, ...)');

const modelPricesSchema = z
  .object({
    input: price,
    cached_input: price.optional(),
    cache_write: price.optional(),
    output: price.optional(),
    audio_input: price.optional(),
    cached_audio_input: price.optional(),
    audio_output: price.optional(),
    image_input: price.optional(),
    cached_image_input: price.optional(),
    image_output: price.optional(),
    /** A prompt above this many input tokens is priced higher, for the whole call. */
    long_context: z.strictObject({ above_input_tokens: z.number().int().positive(), input: multiplier, output: multiplier }).optional(),
    /** Price multipliers by the service tier an answer reports; over the table's own. */
    service_tiers: z.record(tierName, multiplier).optional(),
    source: z.string().url().optional(),
    note: z.string().optional(),
  })
  .strict();

export const priceTableSchema = z
  .object({
    about: z.string().optional(),
    source: z.string().url({ message: 'source must be the URL the prices were read from' }),
    retrieved: z.iso.date({ message: 'retrieved must be the date the prices were read, as YYYY-MM-DD' }),
    currency: z.literal('USD'),
    per_tokens: z.literal(1_000_000),
    /** Multipliers by service tier for every model (`default` is 1); a tier missing everywhere leaves a call unpriced. */
    service_tiers: z.record(tierName, multiplier).default({}),
    models: z.record(z.string(), modelPricesSchema).superRefine((models, ctx) => {
      for (const name of Object.keys(models)) {
        if (!MODEL_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'a model name is written in lowercase, as OpenAI names it' });
      }
    }),
  })
  .strict();

export type PriceTable = z.infer<typeof priceTableSchema>;
export type ModelPrices = z.infer<typeof modelPricesSchema>;

/** Picodollars per token for each kind a model has a price for (undefined: none). */
export type Rates = Partial<Record<PriceKind, number>>;

/** A model's prices as the cost of one call needs them. */
export interface ResolvedPrices {
  /** The table's entry name (the base model of a dated snapshot). */
  name: string;
  /** The rates for a call in `tier` (undefined or `default`: Standard), long-context when `long`; undefined when the tier has no price. */
  rates(tier: string | undefined, long: boolean): Rates | undefined;
  /** The long-context threshold in input tokens, if the model has one. */
  longAbove: number | undefined;
}

export interface PriceBook {
  readonly table: PriceTable;
  /** Where the table came from: `builtin` or the PRICES_FILE path. */
  readonly origin: string;
  /** The prices for `model` as an answer names it; undefined when the table has none. */
  lookup(model: string): ResolvedPrices | undefined;
}

export class PriceTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PriceTableError';
  }
}

/** Reads and checks the table (PRICES_FILE when given, else the built-in one); throws a PriceTableError saying what to fix. */
export function loadPriceBook(file?: string): PriceBook {
  const origin = file ?? 'builtin';
  const where = file ? `PRICES_FILE (${file})` : 'the built-in price table (src/ops/prices.json)';
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file ?? BUILTIN_PRICES_PATH, 'utf8'));
  } catch (err) {
    throw new PriceTableError(`${where} could not be read as JSON: ${(err as Error).message}`);
  }
  const parsed = priceTableSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new PriceTableError(`${where} is not a valid price table: ${problems.join('; ')}.`);
  }
  return createPriceBook(parsed.data, origin);
}

/** Trailing snapshot dates: `-2025-08-07`, or the older `-0613`. */
const SNAPSHOT_DATE = /-(?:\d{4}-\d{2}-\d{2}|\d{4})$/;
const MAX_REMEMBERED = 1024;
const STANDARD_TIERS = new Set(['default', 'auto', 'standard']);

export function createPriceBook(table: PriceTable, origin = 'builtin'): PriceBook {
  const entries = new Map<string, ResolvedPrices>();
  for (const [name, prices] of Object.entries(table.models)) entries.set(name, compile(name, prices, table.service_tiers));
  const remembered = new Map<string, ResolvedPrices | null>();

  /**
   * The exact name first (a snapshot may have a price of its own), then without its date. A fine-tuned model
   * (`ft:<base>:<org>::<id>`) is priced only by an `ft:<base>` entry: its inference costs more than its base.
   */
  function resolve(model: string): ResolvedPrices | undefined {
    const name = model.toLowerCase();
    const exact = entries.get(name);
    if (exact) return exact;
    if (name.startsWith('ft:')) {
      const base = name.slice(3).split(':', 1)[0]!;
      return entries.get(`ft:${base}`) ?? entries.get(`ft:${base.replace(SNAPSHOT_DATE, '')}`);
    }
    const undated = name.replace(SNAPSHOT_DATE, '');
    return undated !== name ? entries.get(undated) : undefined;
  }

  return {
    table,
    origin,
    lookup(model) {
      const known = remembered.get(model);
      if (known !== undefined) return known ?? undefined;
      const found = resolve(model);
      if (remembered.size >= MAX_REMEMBERED) remembered.clear();
      remembered.set(model, found ?? null);
      return found;
    },
  };
}

function compile(name: string, prices: ModelPrices, tableTiers: Record<string, number>): ResolvedPrices {
  const base: Rates = {};
  for (const kind of PRICE_KINDS) {
    const usd = prices[kind];
    if (usd !== undefined) base[kind] = Math.round(usd * 1e6);
  }
  const long = prices.long_context;
  const variants = new Map<string, Rates>();
  const scaled = (tier: number, inputTimes: number, outputTimes: number): Rates => {
    const out: Rates = {};
    for (const kind of PRICE_KINDS) {
      const p = base[kind];
      if (p !== undefined) out[kind] = Math.round(p * tier * (isOutput(kind) ? outputTimes : inputTimes));
    }
    return out;
  };
  return {
    name,
    longAbove: long?.above_input_tokens,
    rates(tier, isLong) {
      const t = tier === undefined || STANDARD_TIERS.has(tier) ? 'default' : tier;
      const key = isLong && long ? `${t}:long` : t;
      let rates = variants.get(key);
      if (rates) return rates;
      const times = t === 'default' ? 1 : (prices.service_tiers?.[t] ?? tableTiers[t]);
      if (times === undefined) return undefined;
      rates = times === 1 && key === 'default' ? base : scaled(times, isLong && long ? long.input : 1, isLong && long ? long.output : 1);
      variants.set(key, rates);
      return rates;
    },
  };
}

const isOutput = (kind: PriceKind) => kind === 'output' || kind === 'audio_output' || kind === 'image_output';
