import { RelayError } from '../core/errors.ts';

/**
 * The files a GPT Action receives as `openaiFileIdRefs`: `{name, id, mime_type, download_link}` entries whose
 * links live five minutes on OpenAI's file hosts. Everything in an entry is untrusted (the model can write
 * any of it): this checks their shape; file-fetch.ts follows the links under the network policy.
 */

export interface FileRef {
  name?: string;
  id?: string;
  mime_type?: string;
  download_link: string;
}

export const FILE_REFS_PARAM = 'openaiFileIdRefs';
const PARAM = FILE_REFS_PARAM;
const MAX_LINK_LENGTH = 8192;

/** Checks the `openaiFileIdRefs` array ChatGPT sends (at most `max` entries); RelayError 400 otherwise. */
export function checkFileRefs(refs: unknown, max = 10): FileRef[] {
  if (!Array.isArray(refs)) {
    throw new RelayError(
      400,
      `${PARAM} must be an array of the files the user attached, each {name, id, mime_type, download_link} as ChatGPT provides them. Ask the user to attach the file in the chat, then call again.`,
      { code: 'invalid_file_refs', param: PARAM },
    );
  }
  if (refs.length > max) {
    throw new RelayError(400, `${PARAM} has ${refs.length} files, but at most ${max} can be sent in one call. Send at most ${max} and the rest in another call.`, {
      code: 'too_many_files',
      param: PARAM,
    });
  }
  return refs.map((entry, i) => {
    const where = `${PARAM}[${i}]`;
    if (typeof entry === 'string' && /^https:\/\//i.test(entry) && entry.length <= MAX_LINK_LENGTH) {
      return { download_link: entry };
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new RelayError(
        400,
        `${where} must be an object {name, id, mime_type, download_link} as ChatGPT provides it for an attached file; a file id or name alone cannot be downloaded. Ask the user to attach the file in the chat, then pass ${PARAM} unchanged.`,
        { code: 'invalid_file_refs', param: where },
      );
    }
    const record = entry as Record<string, unknown>;
    const link = record.download_link;
    if (typeof link !== 'string' || link.trim() === '' || link.length > MAX_LINK_LENGTH) {
      throw new RelayError(
        400,
        `${where}.download_link is missing or not a link. Pass ${PARAM} exactly as ChatGPT provided it; if the user has not attached a file, ask them to attach it.`,
        { code: 'invalid_file_refs', param: `${where}.download_link` },
      );
    }
    const ref: FileRef = { download_link: link.trim() };
    for (const key of ['name', 'id', 'mime_type'] as const) {
      const value = record[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== 'string' || value.length > 1024) {
        throw new RelayError(400, `${where}.${key} must be a string (as ChatGPT provides it).`, { code: 'invalid_file_refs', param: `${where}.${key}` });
      }
      ref[key] = value;
    }
    return ref;
  });
}
