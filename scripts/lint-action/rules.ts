import { GPT_ACTION_LIMITS, OPENAI_FILE_ID_REF_FIELDS, OPERATION_ID_PATTERN } from './limits.ts';
import { isObj, resolvePointer, type Json } from '../generate/walk.ts';

export interface LintViolation {
  pointer: string;
  rule: string;
  message: string;
}

/** Every rule, by id. */
export const LINT_RULES = {
  'openapi-version': 'openapi is 3.1.0 or 3.1.1 (the importer accepts nothing else)',
  'servers-count': 'exactly one server, and none per path or operation',
  'server-https': 'the server URL is an absolute https URL',
  'server-port': 'the server uses port 443 (or none)',
  'max-operations': `at most ${GPT_ACTION_LIMITS.maxOperations} operations`,
  'operation-id': `every operation has an operationId matching ${OPERATION_ID_PATTERN}`,
  'operation-id-unique': 'operationIds are unique',
  'summary-length': `operation summary at most ${GPT_ACTION_LIMITS.maxOperationText} characters`,
  'description-length': `operation description at most ${GPT_ACTION_LIMITS.maxOperationText} characters`,
  'parameter-description-length': `parameter description at most ${GPT_ACTION_LIMITS.maxParameterDescription} characters`,
  'property-description-length': `property description at most ${GPT_ACTION_LIMITS.maxParameterDescription} characters`,
  'no-header-parameters': 'no header parameters (ChatGPT ignores them)',
  'no-cookie-parameters': 'no cookie parameters (ChatGPT keeps no cookies)',
  'no-ref-parameters': 'parameters written inline, not by $ref (the operation is dropped)',
  'no-head-method': 'no HEAD operations',
  'no-circular-ref': 'no circular $ref',
  'ref-resolves': 'every $ref is local and resolves',
  'components-schemas-present': 'components.schemas is present',
  'object-properties': 'every object schema has properties (properties: {} when free-form)',
  'no-nullable-union': 'no 3.1 nullable unions (anyOf/oneOf with {type: null}, type: [x, "null"])',
  'single-security-scheme': 'exactly one security scheme',
  'security-scheme-type': 'the scheme is one ChatGPT offers: HTTP bearer/basic, an API key header, or OAuth2',
  'consequential-flag': 'x-openai-isConsequential present and boolean on every operation',
  'json-request-body': 'request bodies are JSON (no multipart or other media types)',
  'json-response': 'answers are JSON (no binary or other media types)',
  'no-sse-response': 'no event-stream answers',
  'openai-file-id-refs': `openaiFileIdRefs is an array (at most ${GPT_ACTION_LIMITS.maxFiles}) of {${OPENAI_FILE_ID_REF_FIELDS.join(', ')}} in a POST JSON body`,
  'openai-file-response': `openaiFileResponse is an array (at most ${GPT_ACTION_LIMITS.maxFiles}) of {name, mime_type, content} or URLs, in an answer`,
  'max-characters': `no string may be longer than ${GPT_ACTION_LIMITS.maxCharacters} characters (maxLength), the limit of a request or answer`,
  'wait-within-45s': `a wait/timeout _seconds field has a maximum of at most ${GPT_ACTION_LIMITS.maxWaitSeconds} (the round trip is ${GPT_ACTION_LIMITS.roundTripSeconds} s)`,
  'no-x-relay': 'no x-relay metadata in a served document',
} as const;

export type LintRule = keyof typeof LINT_RULES;

export type Add = (at: string, rule: LintRule, message: string) => void;

/** A `$ref`'s target as a JSON pointer (without the leading `#`). */
export function refPointer(ref: string): string {
  return ref.startsWith('#') ? ref.slice(1) : ref;
}

/** The object a node names through any chain of local `$ref`s, or undefined when a link does not resolve. */
export function follow(doc: Json, node: unknown): Json | undefined {
  let current = node;
  for (let hops = 0; isObj(current) && typeof current.$ref === 'string' && hops < 20; hops++) {
    current = resolvePointer(doc, current.$ref);
  }
  return isObj(current) && typeof current.$ref !== 'string' ? current : undefined;
}
