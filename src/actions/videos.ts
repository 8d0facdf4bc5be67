import type { components } from '../../generated/openapi-types.ts';
import { blobLink, type ActionDeps, type ActionHandler, type CallContext } from './context.ts';
import { checkFileRefs } from './file-refs.ts';
import { multipartBody, type Part } from './multipart.ts';
import { sleep, timeLeft } from './budget.ts';

/**
 * Videos for a GPT: generation takes minutes, so creating one returns a job; status and a bounded wait
 * return a short-lived link to the finished video, stored once in the blob store.
 */
const POLL_MS = 3_000;
const POLL_AFTER_SECONDS = 15;

type VideoJob = components['schemas']['Video'];

/** Finished videos already copied to a relay's blob store: video id → link, reused until it nearly expires. */
const storedLinksByRelay = new WeakMap<ActionDeps, Map<string, { url: string; expires_at: number }>>();

async function jobResult(job: VideoJob, call: CallContext, deps: ActionDeps) {
  const base = { id: job.id, status: job.status ?? 'queued', ...(job.progress !== undefined ? { progress: job.progress } : {}) };
  if (job.status === 'failed') return { ...base, error: job.error?.message ?? 'The video failed.' };
  if (job.status !== 'completed') return { ...base, poll_after_seconds: POLL_AFTER_SECONDS };
  let storedLinks = storedLinksByRelay.get(deps);
  if (!storedLinks) storedLinksByRelay.set(deps, (storedLinks = new Map()));
  let link = storedLinks.get(job.id);
  if (!link || link.expires_at * 1000 < Date.now() + 60_000) {
    const download = await deps.openai.download(`/v1/videos/${job.id}/content`, call.signal);
    const blob = await deps.blobs.put(download.stream, { contentType: download.contentType, filename: `${job.id}.mp4` });
    link = blobLink(deps, call, blob);
    storedLinks.set(job.id, link);
  }
  return { ...base, url: link.url, expires_at: link.expires_at };
}

async function getJob(id: string, call: CallContext, deps: ActionDeps): Promise<VideoJob> {
  return deps.openai.unwrap(await deps.openai.api.GET('/v1/videos/{video_id}', { params: { path: { video_id: id } }, signal: call.signal }));
}

export const createActionVideo: ActionHandler<'createActionVideo'> = async (call, deps) => {
  const { prompt, model, seconds, size } = call.body;
  const fields = { prompt, model: model ?? deps.config.actions.videoModel, seconds, size };
  let job: VideoJob;
  if (call.body.openaiFileIdRefs?.length) {
    const [ref] = checkFileRefs(call.body.openaiFileIdRefs, 1);
    const image = await deps.fetcher.open(ref, ['image/png', 'image/jpeg', 'image/webp']);
    const parts: Part[] = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([name, v]) => ({ name, value: String(v) }));
    parts.push({ name: 'input_reference', filename: image.name, contentType: image.mimeType, stream: image.stream });
    const { body, boundary } = multipartBody(parts);
    job = await deps.openai.upload<VideoJob>('/v1/videos', body, boundary, call.signal);
  } else {
    const body = { prompt, model: fields.model, ...(seconds !== undefined ? { seconds } : {}), ...(size !== undefined ? { size } : {}) };
    job = deps.openai.unwrap(await deps.openai.api.POST('/v1/videos', { body, signal: call.signal }));
  }
  return jobResult(job, call, deps);
};

export const getActionVideo: ActionHandler<'getActionVideo'> = async (call, deps) => jobResult(await getJob(call.params.video_id, call, deps), call, deps);

export const waitForActionVideo: ActionHandler<'waitForActionVideo'> = async (call, deps) => {
  const until = Math.min(Date.now() + Math.min(40, call.body.timeout_seconds ?? 30) * 1000, call.deadlineAt);
  let job = await getJob(call.params.video_id, call, deps);
  // Leave room to copy the finished video into the blob store within the budget.
  while (job.status !== 'completed' && job.status !== 'failed' && timeLeft(until, 5_000) >= POLL_MS) {
    await sleep(POLL_MS, call.signal);
    job = await getJob(call.params.video_id, call, deps);
  }
  return jobResult(job, call, deps);
};
