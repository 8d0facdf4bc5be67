import type { components } from '../../generated/openapi-types.ts';
import { isObj } from '../core/json.ts';
import type { ActionDeps, ActionHandler, CallContext } from './context.ts';
import { sleep, timeLeft } from './budget.ts';
import { modelChoice, withModelAdvice } from './model-advice.ts';
import { RelayError } from '../core/errors.ts';

/**
 * Model answers for a GPT: always started in background mode, so an answer that outlives the 45 s
 * budget is never lost — the action waits as long as the budget allows, then hands back the id.
 */
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'incomplete']);
const POLL_MS = 1_000;
const POLL_AFTER_SECONDS = 5;

type ModelResponse = components['schemas']['Response'];

const textOf = (value: unknown) => (typeof value === 'string' ? value : undefined);

export function responseResult(r: ModelResponse) {
  const status = r.status ?? 'completed';
  if (!TERMINAL.has(status)) return { id: r.id, status, poll_after_seconds: POLL_AFTER_SECONDS };
  // Output items are open objects in the spec: a message's text parts are picked out by their type.
  const outputText = (r.output ?? [])
    .filter((item) => item.type === 'message')
    .flatMap((item) => (Array.isArray(item.content) ? (item.content as unknown[]) : []))
    .flatMap((part) => (isObj(part) && part.type === 'output_text' && typeof part.text === 'string' ? [part.text] : []))
    .join('\n\n');
  const error = textOf(r.error?.message) ?? (status === 'incomplete' ? `incomplete: ${textOf(r.incomplete_details?.reason) ?? 'unknown reason'}` : undefined);
  return { id: r.id, status, output_text: outputText, ...(r.usage ? { usage: r.usage } : {}), ...(error ? { error } : {}) };
}

async function getResponse(id: string, call: CallContext, deps: ActionDeps): Promise<ModelResponse> {
  return deps.openai.unwrap(await deps.openai.api.GET('/v1/responses/{response_id}', { params: { path: { response_id: id } }, signal: call.signal }));
}

/** Polls until the response is done or `waitMs` (bounded by the call's deadline) runs out. */
async function waitFor(first: ModelResponse, waitMs: number, call: CallContext, deps: ActionDeps): Promise<ModelResponse> {
  // Stop polling early enough to answer before the action deadline.
  const until = Math.min(Date.now() + waitMs, call.deadlineAt - 2_000);
  let current = first;
  while (!TERMINAL.has(current.status ?? 'completed')) {
    const left = timeLeft(until, 0);
    if (left <= 0) break;
    await sleep(Math.min(POLL_MS, left), call.signal);
    current = await getResponse(current.id, call, deps);
  }
  return current;
}

const waitMsOf = (seconds: number | undefined, fallback: number) => Math.min(40, Math.max(0, seconds ?? fallback)) * 1000;

export const createActionResponse: ActionHandler<'createActionResponse'> = async (call, deps) => {
  const { input, instructions, previous_response_id, conversation, web_search, vector_store_ids, wait_seconds } = call.body;
  if (previous_response_id && conversation) {
    throw new RelayError(400, 'Give previous_response_id or conversation, not both: a stored conversation already carries the earlier turns.', {
      code: 'invalid_request',
      param: 'conversation',
    });
  }
  const tools = [...(web_search ? [{ type: 'web_search' }] : []), ...(vector_store_ids?.length ? [{ type: 'file_search', vector_store_ids }] : [])];
  const choice = modelChoice(call.body.model, 'ACTION_DEFAULT_MODEL', deps.config.actions.defaultModel);
  const created = await withModelAdvice(choice, deps.models, async () =>
    deps.openai.unwrap(
      await deps.openai.api.POST('/v1/responses', {
        body: {
          model: choice.model,
          input,
          ...(instructions ? { instructions } : {}),
          ...(previous_response_id ? { previous_response_id } : {}),
          ...(conversation ? { conversation } : {}),
          ...(tools.length ? { tools } : {}),
          background: true,
          store: true,
        },
        signal: call.signal,
      }),
    ),
  );
  return responseResult(await waitFor(created, waitMsOf(wait_seconds, 30), call, deps));
};

export const getActionResponse: ActionHandler<'getActionResponse'> = async (call, deps) => responseResult(await getResponse(call.params.response_id, call, deps));

export const waitForActionResponse: ActionHandler<'waitForActionResponse'> = async (call, deps) => {
  const first = await getResponse(call.params.response_id, call, deps);
  return responseResult(await waitFor(first, waitMsOf(call.body.timeout_seconds, 30), call, deps));
};
