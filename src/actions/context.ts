import type { RelayConfig } from '../config.ts';
import type { BlobStore } from './blob-store.ts';
import type { createBlobLinks } from './blob-links.ts';
import type { FileRefFetcher } from './file-refs.ts';
import type { OpenAIClient } from './openai-client.ts';

/** What every action operation works with: one implementation, reached over HTTP and (later) MCP. */
export interface ActionDeps {
  config: RelayConfig;
  openai: OpenAIClient;
  blobs: BlobStore;
  links: ReturnType<typeof createBlobLinks>;
  fetcher: FileRefFetcher;
}

export interface ActionCall {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: any;
  /** Aborts at the action deadline or when the caller goes away. */
  signal: AbortSignal;
  /** Epoch ms by which the answer must be sent. */
  deadlineAt: number;
  /** Public base URL of the relay, for links to stored files. */
  baseUrl: string;
}

export type ActionHandler = (call: ActionCall, deps: ActionDeps) => Promise<object>;

/** A signed link to a stored blob, as action answers give it: `expires_at` in Unix seconds. */
export function blobLink(deps: ActionDeps, call: ActionCall, blob: Parameters<ActionDeps['links']['url']>[1]) {
  const link = deps.links.url(call.baseUrl, blob);
  return { url: link.url, expires_at: Math.floor(link.expiresAt / 1000) };
}
