import { deref, isObj, type Json } from './walk.ts';

/**
 * How an operation's usage can be read, derived from the shapes the spec gives it (no mark to keep in
 * step): the relay counts tokens from answers, and two shapes need more than reading the answer.
 */
export interface UsageShape {
  /**
   * The JSON request takes `stream_options.include_usage`: a stream carries its usage only when asked, so
   * the relay asks for it on every stream (and withholds the extra chunk from a caller that did not).
   */
  streamOption: boolean;
  /**
   * The success answer is a Responses object (`object: "response"`): one started in the background answers
   * before it has spent its tokens, and its usage comes with a later answer (a poll, a cancel).
   */
  responseObject: boolean;
}

export function usageShape(spec: Json, op: Json): UsageShape {
  const problems: string[] = [];
  const at = (node: unknown) => deref(spec, node, problems, 'usage shape');
  const body = at(at(op.requestBody)?.content?.['application/json']?.schema);
  const streamOptions = at(body?.properties?.stream_options);
  const ok = Object.entries<Json>(isObj(op.responses) ? op.responses : {}).find(([status]) => /^2\d\d$/.test(status))?.[1];
  const answer = at(at(ok)?.content?.['application/json']?.schema);
  const objectEnum = at(answer?.properties?.object)?.enum;
  return {
    streamOption: isObj(streamOptions?.properties) && 'include_usage' in streamOptions.properties,
    responseObject: Array.isArray(objectEnum) && objectEnum.length === 1 && objectEnum[0] === 'response',
  };
}
