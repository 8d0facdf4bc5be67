import type { components } from '../../generated/openapi-types.ts';
import { RelayError } from '../core/errors.ts';
import { blobLink, type ActionHandler } from './context.ts';
import { fitPage } from './budget.ts';
import { checkFileRefs } from './file-refs.ts';
import { multipartBody } from './multipart.ts';

/** Files for a GPT: attachments uploaded to OpenAI Files, pages of the file list, and content out as files or links. */

/** Base64 of at most this many bytes fits an action answer (< 100,000 characters) with room to spare. */
const INLINE_MAX_BYTES = 64 * 1024;
/** ChatGPT takes an openaiFileResponse file of up to 10 MB. */
const FILE_RESPONSE_MAX_BYTES = 10 * 1024 * 1024;

const EXTENSION_TYPES: Record<string, string> = {
  pdf: 'application/pdf', txt: 'text/plain', md: 'text/markdown', csv: 'text/csv', json: 'application/json', jsonl: 'application/jsonl',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif', mp4: 'video/mp4', mp3: 'audio/mpeg',
  wav: 'audio/wav', html: 'text/html', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
};
const typeFromName = (name: string) => EXTENSION_TYPES[name.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';

type FileObject = components['schemas']['FileObject'];
const summary = (f: FileObject) => ({ id: f.id, filename: f.filename, bytes: f.bytes, purpose: f.purpose, created_at: f.created_at });

export const uploadActionFiles: ActionHandler<'uploadActionFiles'> = async (call, deps) => {
  const refs = checkFileRefs(call.body.openaiFileIdRefs);
  const purpose = call.body.purpose ?? 'user_data';
  // Every link is checked before the first upload, so a bad one cannot leave the others half-uploaded.
  for (const ref of refs) await deps.fetcher.check(ref);
  const uploaded = [];
  // One at a time: each download streams straight into its upload, and none waits idle on another.
  for (const ref of refs) {
    const file = await deps.fetcher.open(ref, ['*']);
    const { body, boundary } = multipartBody([
      { name: 'purpose', value: purpose },
      { name: 'file', filename: file.name, contentType: file.mimeType, stream: file.stream },
    ]);
    uploaded.push(summary(await deps.openai.upload<FileObject>('/v1/files', body, boundary, call.signal)));
  }
  const vectorStoreId = call.body.vector_store_id;
  if (vectorStoreId) {
    deps.openai.unwrap(
      await deps.openai.api.POST('/v1/vector_stores/{vector_store_id}/file_batches', {
        params: { path: { vector_store_id: vectorStoreId } },
        body: { file_ids: uploaded.map((f) => f.id) },
        signal: call.signal,
      }),
    );
  }
  return { files: uploaded, ...(vectorStoreId ? { vector_store_id: vectorStoreId } : {}) };
};

export const listActionFiles: ActionHandler<'listActionFiles'> = async (call, deps) => {
  const { purpose, limit, after } = call.query;
  const page = deps.openai.unwrap(
    await deps.openai.api.GET('/v1/files', {
      params: { query: { limit: limit ?? 20, order: 'desc', ...(purpose ? { purpose } : {}), ...(after ? { after } : {}) } },
      signal: call.signal,
    }),
  );
  return fitPage((page.data ?? []).map(summary), Boolean(page.has_more));
};

export const getActionFileContent: ActionHandler<'getActionFileContent'> = async (call, deps) => {
  const fileId = call.params.file_id;
  const meta = deps.openai.unwrap(await deps.openai.api.GET('/v1/files/{file_id}', { params: { path: { file_id: fileId } }, signal: call.signal }));
  const name = meta.filename ?? fileId;
  const mimeType = typeFromName(name);
  const download = await deps.openai.download(`/v1/files/${fileId}/content`, call.signal);
  const size = download.length ?? meta.bytes;
  if (size !== undefined && size <= INLINE_MAX_BYTES) {
    const chunks: Buffer[] = [];
    for await (const chunk of download.stream) chunks.push(chunk as Buffer);
    const content = Buffer.concat(chunks);
    if (content.length > INLINE_MAX_BYTES) throw new RelayError(502, 'OpenAI sent more bytes than the file has.', { code: 'upstream_mismatch' });
    return { openaiFileResponse: [{ name, mime_type: mimeType, content: content.toString('base64') }], name, mime_type: mimeType, bytes: content.length };
  }
  const blob = await deps.blobs.put(download.stream, { contentType: mimeType, filename: name });
  const link = blobLink(deps, call, blob);
  const base = { url: link.url, name, mime_type: mimeType, bytes: blob.size, expires_at: link.expires_at };
  return blob.size <= FILE_RESPONSE_MAX_BYTES ? { openaiFileResponse: [link.url], ...base } : base;
};
