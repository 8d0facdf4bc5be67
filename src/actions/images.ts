import type { components } from '../../generated/openapi-types.ts';
import { RelayError } from '../core/errors.ts';
import { blobLink, type ActionDeps, type ActionHandler, type CallContext } from './context.ts';
import { checkFileRefs } from './file-refs.ts';
import { modelChoice, withModelAdvice } from './model-advice.ts';
import { multipartBody, type Part } from './multipart.ts';

/**
 * Images for a GPT: generated or edited upstream, stored in the relay's blob store, and handed back as
 * short-lived signed https links — never as base64 in the answer (a single image is ~2 MB of text).
 */
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
const MIME: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

type ImagesAnswer = components['schemas']['ImagesResponse'];

async function linkImages(answer: ImagesAnswer, requestedFormat: string | undefined, call: CallContext, deps: ActionDeps) {
  const format = answer.output_format ?? requestedFormat ?? 'png';
  const mimeType = MIME[format] ?? 'image/png';
  const images = [];
  for (const [index, item] of (answer.data ?? []).entries()) {
    if (item.b64_json) {
      const blob = await deps.blobs.put(Buffer.from(item.b64_json, 'base64'), { contentType: mimeType, filename: `image-${index + 1}.${format}` });
      const link = blobLink(deps, call, blob);
      images.push({ url: link.url, mime_type: mimeType, expires_at: link.expires_at });
    } else if (item.url) {
      images.push({ url: item.url, mime_type: mimeType });
    }
  }
  if (images.length === 0) throw new RelayError(502, 'OpenAI returned no image.', { code: 'upstream_empty' });
  const revised = answer.data?.find((d) => d.revised_prompt)?.revised_prompt;
  return { images, ...(revised ? { revised_prompt: revised } : {}), ...(answer.usage ? { usage: answer.usage } : {}) };
}

export const generateActionImage: ActionHandler<'generateActionImage'> = async (call, deps) => {
  const { prompt, n, size, quality, background, output_format } = call.body;
  const choice = modelChoice(call.body.model, 'ACTION_IMAGE_MODEL', deps.config.actions.imageModel);
  const answer = await withModelAdvice(choice, deps.models, async () => deps.openai.unwrap(
    await deps.openai.api.POST('/v1/images/generations', {
      body: {
        prompt,
        model: choice.model,
        ...(n ? { n } : {}),
        ...(size ? { size } : {}),
        ...(quality ? { quality } : {}),
        ...(background ? { background } : {}),
        ...(output_format ? { output_format } : {}),
      },
      signal: call.signal,
    }),
  ));
  return linkImages(answer, output_format, call, deps);
};

export const editActionImage: ActionHandler<'editActionImage'> = async (call, deps) => {
  const { prompt, n, size, quality, output_format, mask_index } = call.body;
  const choice = modelChoice(call.body.model, 'ACTION_IMAGE_MODEL', deps.config.actions.imageModel);
  const refs = checkFileRefs(call.body.openaiFileIdRefs);
  if (mask_index !== undefined && (mask_index >= refs.length || refs.length < 2)) {
    throw new RelayError(400, `mask_index ${mask_index} does not name an attached file other than the image: attach the image and the mask, and give the mask's index.`, {
      code: 'invalid_mask_index',
      param: 'mask_index',
    });
  }
  const opened = await Promise.allSettled(refs.map((ref, i) => deps.fetcher.open(ref, i === mask_index ? ['image/png'] : IMAGE_TYPES)));
  const refused = opened.find((o) => o.status === 'rejected');
  if (refused) {
    // A paused download has no timer of its own: close every one that did open.
    for (const o of opened) if (o.status === 'fulfilled') o.value.stream.destroy();
    throw refused.reason;
  }
  const files = opened.map((o) => (o as PromiseFulfilledResult<Awaited<ReturnType<typeof deps.fetcher.open>>>).value);
  const images = files.filter((_, i) => i !== mask_index);
  const fields: Record<string, string | number | undefined> = { prompt, model: choice.model, n, size, quality, output_format };
  const parts: Part[] = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([name, v]) => ({ name, value: String(v) }));
  for (const file of images) {
    parts.push({ name: images.length > 1 ? 'image[]' : 'image', filename: file.name, contentType: file.mimeType, stream: file.stream });
  }
  if (mask_index !== undefined) {
    const mask = files[mask_index];
    parts.push({ name: 'mask', filename: mask.name, contentType: mask.mimeType, stream: mask.stream });
  }
  const { body, boundary } = multipartBody(parts);
  const answer = await withModelAdvice(choice, deps.models, () => deps.openai.upload<ImagesAnswer>('/v1/images/edits', body, boundary, call.signal, choice.model));
  return linkImages(answer, output_format, call, deps);
};
