import type { RelayConfig } from '../config.ts';
import type { BlobStore } from './blob-store.ts';
import type { createBlobLinks } from './blob-links.ts';
import type { FileRefFetcher } from './file-refs.ts';
import type { OpenAIClient, OpenAIClients } from '../upstream/client.ts';
import type { UsageAccount } from '../upstream/usage-account.ts';

/** What the relay builds once for the action operations: one implementation, reached over HTTP and MCP. */
export interface ActionServices {
  config: RelayConfig;
  clients: OpenAIClients;
  blobs: BlobStore;
  links: ReturnType<typeof createBlobLinks>;
  fetcher: FileRefFetcher;
}

/** What one action call works with: the services, and an OpenAI client counting into the call's account. */
export interface ActionDeps extends ActionServices {
  openai: OpenAIClient;
}

export function actionDeps(services: ActionServices, account: UsageAccount): ActionDeps {
  return { ...services, openai: services.clients.forCall(account) };
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
