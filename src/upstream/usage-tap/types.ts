/** What a usage tap reads from an answer, and the tap itself (see index.ts). */

/**
 * Parts of a call's input and output tokens that OpenAI prices apart (its `*_tokens_details`). Each is
 * already counted in `inputTokens` or `outputTokens`: a detail says how some of them are billed, it never
 * adds tokens. Only parts above zero are kept.
 */
export interface TokenDetails {
  /** Input read from the prompt cache (`cached_tokens`), of every modality. */
  cachedInput?: number;
  /** Input written to the prompt cache (`cache_write_tokens`): billed at its own rate where a model has one. */
  cacheWrite?: number;
  /** Audio input (`audio_tokens`), cached or not. */
  audioInput?: number;
  /** The cached part of the audio input (`cached_tokens_details.audio_tokens`). */
  cachedAudioInput?: number;
  /** Image input (`image_tokens`), cached or not. */
  imageInput?: number;
  /** The cached part of the image input (`cached_tokens_details.image_tokens`). */
  cachedImageInput?: number;
  /** Reasoning (`reasoning_tokens`): billed as output, and already part of it. */
  reasoning?: number;
  audioOutput?: number;
  imageOutput?: number;
}

export type TokenDetail = keyof TokenDetails;

export interface UsageInfo {
  model?: string;
  /** With `responseState`: the Responses object's id and status (queued, in_progress, completed, ...). */
  responseId?: string;
  responseStatus?: string;
  /** The processing tier OpenAI says served the call (`default`, `flex`, `priority`, ...): it changes the price. */
  serviceTier?: string;
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  details?: TokenDetails;
  /**
   * What the call cost, in picodollars (10⁻¹² USD, so that token × price stays an exact integer), set once by
   * the operator's price table (ops/cost.ts), never by a tap: null when the model has no price, absent until
   * priced or when nothing was spent.
   */
  costPicoUsd?: number | null;
}

export interface UsageTap {
  write(chunk: Buffer): void;
  end(): UsageInfo | undefined;
}
