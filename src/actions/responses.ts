import type { ActionCall, ActionDeps, ActionHandler } from './context.ts';
import { sleep, timeLeft } from './budget.ts';

/**
 * Model answers for a GPT: always started in background mode, so an answer that outlives the 45 s
 * budget is never lost — the action waits as long as the budget allows, then hands back the id.
 */
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'incomplete']);
const POLL_MS = 1_000;
const POLL_AFTER_SECONDS = 5;

interface UpstreamResponse {
  id: string;
  status?: string;
  output?: { type?: string; content?: { type?: string; text?: string }[] }[];
  usage?: object;
  error?: { message?: string } | null;
  incomplete_details?: { reason?: string } | null;
}

export function responseResult(r: UpstreamResponse) {
  const status = r.status ?? 'completed';
  if (!TERMINAL.has(status)) return { id: r.id, status, poll_after_seconds: POLL_AFTER_SECONDS };
  const outputText = (r.output ?? [])
    .filter((item) => item.type === 'message')
    .flatMap((item) => item.content ?? [])
    .filter((part) => part.type === 'output_text' && typeof part.text === 'string')
    .map((part) => part.text)
    .join('\n\n');
  const error = r.error?.message ?? (status === 'incomplete' ? `incomplete: ${r.incomplete_details?.reason ?? 'unknown reason'}` : undefined);
  return { id: r.id, status, output_text: outputText, ...(r.usage ? { usage: r.usage } : {}), ...(error ? { error } : {}) };
}

async function getResponse(id: string, call: ActionCall, deps: ActionDeps): Promise<UpstreamResponse> {
  return deps.openai.unwrap(
    await deps.openai.api.GET('/v1/responses/{response_id}', { params: { path: { response_id: id } }, signal: call.signal }),
  ) as UpstreamResponse;
}

/** Polls until the response is done or `waitMs` (bounded by the call's deadline) runs out. */
async function waitFor(first: UpstreamResponse, waitMs: number, call: ActionCall, deps: ActionDeps): Promise<UpstreamResponse> {
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

export const createActionResponse: ActionHandler = async (call, deps) => {
  const { input, model, instructions, previous_response_id, web_search, wait_seconds } = call.body;
  const created = deps.openai.unwrap(
    await deps.openai.api.POST('/v1/responses', {
      body: {
        model: model ?? deps.config.actions.defaultModel,
        input,
        ...(instructions ? { instructions } : {}),
        ...(previous_response_id ? { previous_response_id } : {}),
        ...(web_search ? { tools: [{ type: 'web_search' }] } : {}),
        background: true,
        store: true,
      } as never,
      signal: call.signal,
    }),
  ) as UpstreamResponse;
  return responseResult(await waitFor(created, waitMsOf(wait_seconds, 30), call, deps));
};

export const getActionResponse: ActionHandler = async (call, deps) => responseResult(await getResponse(call.params.response_id, call, deps));

export const waitForActionResponse: ActionHandler = async (call, deps) => {
  const first = await getResponse(call.params.response_id, call, deps);
  return responseResult(await waitFor(first, waitMsOf(call.body?.timeout_seconds, 30), call, deps));
};
