/** What a usage tap reads from an answer, and the tap itself (see index.ts). */

export interface UsageInfo {
  model?: string;
  /** With `responseState`: the Responses object's id and status (queued, in_progress, completed, ...). */
  responseId?: string;
  responseStatus?: string;
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
}

export interface UsageTap {
  write(chunk: Buffer): void;
  end(): UsageInfo | undefined;
}
