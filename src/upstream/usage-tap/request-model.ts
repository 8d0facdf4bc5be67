import { firstValueInHead } from './edges.ts';
import { modelName } from './read.ts';
import type { UsageInfo } from './types.ts';

/**
 * Some answers report usage without naming the model that spent it (image generations and edits, audio
 * transcriptions): their price depends on it all the same. When the caller's JSON body was held before the
 * upstream request (as small ones are), its top-level `model` names it. Read only for such answers, so
 * the other answers cost nothing more.
 */
export function withRequestModel(usage: UsageInfo, body: Buffer | undefined): UsageInfo {
  if (usage.model !== undefined || body === undefined || body.length === 0) return usage;
  const model = modelName(firstValueInHead(body.toString('utf8'), 'model', 1, false));
  if (model !== undefined) usage.model = model;
  return usage;
}
