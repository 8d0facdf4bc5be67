import type { UsageInfo } from '../upstream/usage-tap/index.ts';
import type { PriceBook, PriceKind } from './prices.ts';

/**
 * What one call cost, from the usage OpenAI reported and the price table.
 *
 * The usage's details are parts of its input and output (never extra tokens), so the input is split into
 * cached text, cached audio and cached image tokens, cache writes, uncached audio and image tokens, and the
 * uncached text rest; the output into audio, image and text. Reasoning tokens are output tokens OpenAI has
 * already counted in the output: they add nothing. Each part is priced at its own rate:
 *   - cached text at `cached_input`, else `input` (no discount known is no discount given);
 *   - cache writes at `cache_write`, else as input (models before it had no write charge);
 *   - image input at `image_input`, else `input` (text models bill image input as text tokens),
 *     cached image input at `cached_image_input`, else like uncached image input when the model prices
 *     images apart, else at the cached text rate;
 *   - audio input at `audio_input`, cached audio at `cached_audio_input` else `audio_input`;
 *   - output at `output`, `audio_output`, `image_output`.
 * A part with tokens and no rate (audio on a model without audio prices, say), an unknown model or a
 * service tier without a multiplier leaves the call unpriced: a cost that is not known is not a cost of 0.
 */

/** Why a call has no cost: what is missing from the price table. */
export interface Unpriced {
  /** The model as the answer named it (`unknown` when it named none). */
  model: string;
  /** A sentence's worth: which price is missing. */
  missing: string;
}

/** The cost in picodollars; Unpriced; or undefined when the usage spent no tokens. */
export function costOf(usage: UsageInfo, book: PriceBook): number | Unpriced | undefined {
  const input = usage.inputTokens ?? 0;
  const output = usage.outputTokens ?? 0;
  if (input === 0 && output === 0) {
    if ((usage.totalTokens ?? 0) === 0) return undefined;
    return { model: usage.model ?? 'unknown', missing: 'a usage without its input and output tokens' };
  }
  if (usage.model === undefined) return { model: 'unknown', missing: 'the model (the answer named none)' };
  const prices = book.lookup(usage.model);
  if (!prices) return { model: usage.model, missing: `a price for ${usage.model}` };
  const long = prices.longAbove !== undefined && input > prices.longAbove;
  const rates = prices.rates(usage.serviceTier, long);
  if (!rates) return { model: usage.model, missing: `a price for ${prices.name} in the ${usage.serviceTier} service tier` };

  const d = usage.details;
  if (d === undefined) {
    // Most answers: only input and output (a text model, or a cache miss).
    if (output > 0 && rates.output === undefined) return { model: usage.model, missing: `an output price for ${prices.name}` };
    return input * rates.input! + output * (rates.output ?? 0);
  }
  const cached = clamp(d.cachedInput, input);
  const cachedAudio = clamp(d.cachedAudioInput, cached);
  const cachedImage = clamp(d.cachedImageInput, cached - cachedAudio);
  const cachedText = cached - cachedAudio - cachedImage;
  const audioIn = clamp((d.audioInput ?? 0) - cachedAudio, input - cached);
  const imageIn = clamp((d.imageInput ?? 0) - cachedImage, input - cached - audioIn);
  const write = clamp(d.cacheWrite, input - cached - audioIn - imageIn);
  const textIn = input - cached - audioIn - imageIn - write;
  const audioOut = clamp(d.audioOutput, output);
  const imageOut = clamp(d.imageOutput, output - audioOut);
  const textOut = output - audioOut - imageOut;

  const imagesApart = rates.image_input !== undefined;
  const parts: [number, number | undefined, PriceKind][] = [
    [textIn, rates.input, 'input'],
    [cachedText, rates.cached_input ?? rates.input, 'cached_input'],
    [write, rates.cache_write ?? rates.input, 'cache_write'],
    [imageIn, rates.image_input ?? rates.input, 'image_input'],
    [cachedImage, imagesApart ? (rates.cached_image_input ?? rates.image_input) : (rates.cached_input ?? rates.input), 'cached_image_input'],
    [audioIn, rates.audio_input, 'audio_input'],
    [cachedAudio, rates.cached_audio_input ?? rates.audio_input, 'cached_audio_input'],
    [textOut, rates.output, 'output'],
    [audioOut, rates.audio_output, 'audio_output'],
    [imageOut, rates.image_output, 'image_output'],
  ];
  let total = 0;
  for (const [tokens, rate, kind] of parts) {
    if (tokens === 0) continue;
    if (rate === undefined) return { model: usage.model, missing: `a ${kind.replace(/_/g, ' ')} price for ${prices.name}` };
    total += tokens * rate;
  }
  return total;
}

const clamp = (v: number | undefined, max: number) => (v === undefined || v <= 0 ? 0 : v > max ? Math.max(max, 0) : v);

/**
 * Picodollars to whole micro-dollars, half up. Exact below 2⁵³ p$ (9,007 USD in one request); one call
 * cannot come near that (2M tokens at the dearest output price is about 1,200 USD).
 */
export function microsOf(pico: number): number {
  const shifted = pico + 500_000;
  return (shifted - (shifted % 1_000_000)) / 1_000_000;
}
