import type { ActionHandler, ActionRunner, HandledActionId } from './context.ts';
import { createActionConversation, listActionConversationItems } from './conversations.ts';
import { editActionImage, generateActionImage } from './images.ts';
import { getActionFileContent, listActionFiles, uploadActionFiles } from './files.ts';
import { createActionResponse, getActionResponse, waitForActionResponse } from './responses.ts';
import { createActionVectorStore, listActionVectorStores, searchActionVectorStore } from './vector-stores.ts';

export type { ActionRunner } from './context.ts';

/**
 * The implementation of every action operation of schemas/openapi.yaml, by operationId. The spec decides
 * which operations exist and how they are shaped; a spec action without a handler here is a type error.
 * (POST /v1/proxy is an action too, served by the proxy route over the forwarding core.)
 */
export const actionHandlers: { readonly [Id in HandledActionId]: ActionHandler<Id> } = {
  createActionResponse,
  getActionResponse,
  waitForActionResponse,
  generateActionImage,
  editActionImage,
  uploadActionFiles,
  listActionFiles,
  getActionFileContent,
  listActionVectorStores,
  createActionVectorStore,
  searchActionVectorStore,
  createActionConversation,
  listActionConversationItems,
};

/**
 * The handlers as the doors call them, by operationId. Both doors validate a call's path parameters, query
 * and body with the operation's generated zod schemas before it gets here, and those schemas and the types
 * of TypedActionCall are generated from the same spec entry: this is the one place a validated call
 * becomes a typed one.
 */
export const actionRunners = actionHandlers as unknown as Readonly<Record<string, ActionRunner | undefined>>;
