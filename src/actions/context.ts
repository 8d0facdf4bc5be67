import type { operations } from '../../generated/openapi-types.ts';
import type { ActionOperationId } from '../../generated/routes.ts';
import type { RelayConfig } from '../config.ts';
import type { BlobStore } from './blob-store.ts';
import type { createBlobLinks } from './blob-links.ts';
import type { FileRefFetcher } from './file-fetch.ts';
import type { OpenAIClient, OpenAIClients } from '../upstream/client.ts';
import type { UsageAccount } from '../upstream/usage-account.ts';
import type { ModelCheck } from '../ops/model-check.ts';

/** What the relay builds once for the action operations: one implementation, reached over HTTP and MCP. */
export interface ActionServices {
  config: RelayConfig;
  clients: OpenAIClients;
  blobs: BlobStore;
  links: ReturnType<typeof createBlobLinks>;
  fetcher: FileRefFetcher;
  /** What the last check of the configured models found (when the relay runs one), for actions' advice. */
  models?: ModelCheck;
}

/** What one action call works with: the services, and an OpenAI client counting into the call's account. */
export interface ActionDeps extends ActionServices {
  openai: OpenAIClient;
}

export function actionDeps(services: ActionServices, account: UsageAccount): ActionDeps {
  return { ...services, openai: services.clients.forCall(account) };
}

/** What every action call carries besides its arguments. */
export interface CallContext {
  /** Aborts at the action deadline or when the caller goes away. */
  signal: AbortSignal;
  /** Epoch ms by which the answer must be sent. */
  deadlineAt: number;
  /** Public base URL of the relay, for links to stored files. */
  baseUrl: string;
}

/** A call as a door hands it over: arguments validated by the operation's generated zod schemas, not yet typed. */
export interface ActionCall extends CallContext {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
}

/** The action operations the relay implements itself (relayProxy is served by the proxy route). */
export type HandledActionId = Exclude<ActionOperationId, 'relayProxy'>;

/** `T`, or `Else` when the spec declares nothing there (openapi-typescript writes `?: never`). */
type Declared<T, Else> = [NonNullable<T>] extends [never] ? Else : NonNullable<T>;
type OperationParameters<Id extends HandledActionId> = operations[Id]['parameters'];
type JsonBody<Id extends HandledActionId> = operations[Id] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;

/**
 * A call to the action `Id`, typed from generated/openapi-types.ts: renaming a field in the spec is a
 * type error in its handler. A door passes `{}` for a JSON body the caller left out, so `body` is never
 * undefined for an operation that takes one.
 */
export interface TypedActionCall<Id extends HandledActionId> extends CallContext {
  params: Declared<OperationParameters<Id>['path'], Record<string, never>>;
  query: Declared<OperationParameters<Id>['query'], Record<string, never>>;
  body: Declared<JsonBody<Id>, undefined>;
}

export type ActionHandler<Id extends HandledActionId> = (call: TypedActionCall<Id>, deps: ActionDeps) => Promise<object>;

/** A handler as a door calls it (src/actions/index.ts pairs each door call with its typed handler). */
export type ActionRunner = (call: ActionCall, deps: ActionDeps) => Promise<object>;

/** A signed link to a stored blob, as action answers give it: `expires_at` in Unix seconds. */
export function blobLink(deps: ActionDeps, call: CallContext, blob: Parameters<ActionDeps['links']['url']>[1]) {
  const link = deps.links.url(call.baseUrl, blob);
  return { url: link.url, expires_at: Math.floor(link.expiresAt / 1000) };
}
