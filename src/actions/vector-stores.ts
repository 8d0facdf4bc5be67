import type { ActionHandler } from './context.ts';
import { fitActionAnswer, fitPage } from './budget.ts';

/** Vector stores for a GPT: list, create, search — answers kept to what a model needs. */

interface VectorStore {
  id: string;
  name?: string;
  status?: string;
  file_counts?: object;
  created_at?: number;
}
const summary = (v: VectorStore) => ({ id: v.id, name: v.name, status: v.status, file_counts: v.file_counts, created_at: v.created_at });

export const listActionVectorStores: ActionHandler = async (call, deps) => {
  const { limit, after } = call.query as { limit?: number; after?: string };
  const page = deps.openai.unwrap(
    await deps.openai.api.GET('/v1/vector_stores', {
      params: { query: { limit: limit ?? 20, order: 'desc', ...(after ? { after } : {}) } },
      signal: call.signal,
    }),
  ) as { data?: VectorStore[]; has_more?: boolean };
  return fitPage((page.data ?? []).map(summary), Boolean(page.has_more));
};

export const createActionVectorStore: ActionHandler = async (call, deps) => {
  const { name, file_ids } = call.body;
  const store = deps.openai.unwrap(
    await deps.openai.api.POST('/v1/vector_stores', { body: { name, ...(file_ids?.length ? { file_ids } : {}) }, signal: call.signal }),
  ) as VectorStore;
  return summary(store);
};

export const searchActionVectorStore: ActionHandler = async (call, deps) => {
  const { query, max_num_results } = call.body;
  const results = deps.openai.unwrap(
    await deps.openai.api.POST('/v1/vector_stores/{vector_store_id}/search', {
      params: { path: { vector_store_id: call.params.vector_store_id } },
      body: { query, max_num_results: max_num_results ?? 10 } as never,
      signal: call.signal,
    }),
  ) as { data?: { file_id?: string; filename?: string; score?: number; content?: { text?: string }[] }[] };
  const data = (results.data ?? []).map((r) => ({
    file_id: r.file_id,
    filename: r.filename,
    score: r.score,
    text: (r.content ?? []).map((c) => c.text ?? '').join('\n'),
  }));
  const fitted = fitActionAnswer({ data });
  return { ...fitted.value, truncated: fitted.truncated };
};
