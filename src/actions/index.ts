import type { ActionHandler } from './context.ts';
import { editActionImage, generateActionImage } from './images.ts';
import { getActionFileContent, listActionFiles, uploadActionFiles } from './files.ts';
import { createActionResponse, getActionResponse, waitForActionResponse } from './responses.ts';
import { createActionVectorStore, listActionVectorStores, searchActionVectorStore } from './vector-stores.ts';
import { createActionVideo, getActionVideo, waitForActionVideo } from './videos.ts';

/**
 * The implementation of every action operation of schemas/openapi.yaml, by operationId. The spec decides
 * which operations exist and how they are shaped; a spec action without a handler here fails at start-up.
 * (POST /v1/proxy is an action too, served by the proxy route over the forwarding core.)
 */
export const actionHandlers: Record<string, ActionHandler> = {
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
  createActionVideo,
  getActionVideo,
  waitForActionVideo,
};
