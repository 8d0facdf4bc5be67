import type { components } from '../../generated/openapi-types.ts';
import { isObj } from '../core/json.ts';
import type { ActionHandler } from './context.ts';
import { fitPage } from './budget.ts';

/**
 * Conversations for a GPT: a thread OpenAI stores, started here and continued by createActionResponse
 * (`conversation`), so a team member's work carries over between chats; read back as role and text.
 */

type ConversationItem = components['schemas']['ConversationItem'];

/** A message's text parts joined; other items (tool calls, reasoning) show as their type with no text. */
function itemSummary(item: ConversationItem) {
  const text = (item.content ?? [])
    .flatMap((part) => (isObj(part) && typeof part.text === 'string' ? [part.text] : []))
    .join('\n');
  return { id: item.id ?? '', role: item.type === 'message' ? (item.role ?? 'unknown') : item.type, text };
}

export const createActionConversation: ActionHandler<'createActionConversation'> = async (call, deps) => {
  const title = call.body.title?.trim();
  const created = deps.openai.unwrap(
    await deps.openai.api.POST('/v1/conversations', { body: title ? { metadata: { title } } : {}, signal: call.signal }),
  );
  const kept = created.metadata?.title;
  return { id: created.id, ...(typeof kept === 'string' ? { title: kept } : {}), created_at: created.created_at };
};

export const listActionConversationItems: ActionHandler<'listActionConversationItems'> = async (call, deps) => {
  const { limit, order, after } = call.query;
  const page = deps.openai.unwrap(
    await deps.openai.api.GET('/v1/conversations/{conversation_id}/items', {
      params: {
        path: { conversation_id: call.params.conversation_id },
        query: { limit: limit ?? 20, order: order ?? 'asc', ...(after ? { after } : {}) },
      },
      signal: call.signal,
    }),
  );
  return fitPage((page.data ?? []).map(itemSummary), Boolean(page.has_more));
};
