import type { components } from '../../generated/openapi-types.ts';
import type { ActionHandler } from './context.ts';
import { fitActionAnswer, fitPage } from './budget.ts';

/** Vector stores for a GPT: list, create, search — answers kept to what a model needs. */

type VectorStore = components['schemas']['VectorStore'];
const summary = (v: VectorStore) => ({ id: v.id, name: v.name, status: v.status, file_counts: v.file_counts, created_at: v.created_at });

export const listActionVectorStores: ActionHandler<'listActionVectorStores'> = async (call, deps) => {
  const { limit, after } = call.query;
  const page = deps.openai.unwrap(
    await deps.openai.api.GET('/v1/vector_stores', {
      params: { query: { limit: limit ?? 20, order: 'desc', ...(after ? { after } : {}) } },
      signal: call.signal,
    }),
  );
  return fitPage((page.data ?? []).map(summary), Boolean(page.has_more));
};

export const createActionVectorStore: ActionHandler<'createActionVectorStore'> = async (call, deps) => {
  const { name, file_ids } = call.body;
  const store = deps.openai.unwrap(
    await deps.openai.api.POST('/v1/vector_stores', { body: { name, ...(file_ids?.length ? { file_ids } : {}) }, signal: call.signal }),
  );
  return summary(store);
};

export const searchActionVectorStore: ActionHandler<'searchActionVectorStore'> = async (call, deps) => {
  const { query, max_num_results } = call.body;
  const results = deps.openai.unwrap(
    await deps.openai.api.POST('/v1/vector_stores/{vector_store_id}/search', {
      params: { path: { vector_store_id: call.params.vector_store_id } },
      body: { query, max_num_results: max_num_results ?? 10 },
      signal: call.signal,
    }),
  );
  const data = (results.data ?? []).map((r) => ({
    file_id: r.file_id,
    filename: r.filename,
    score: r.score,
    text: (r.content ?? []).map((c) => c.text ?? '').join('\n'),
  }));
  const fitted = fitActionAnswer({ data });
  return { ...fitted.value, truncated: fitted.truncated };
};
