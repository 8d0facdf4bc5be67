import { SERVER_URL_PLACEHOLDER } from '../generate/emit-documents.ts';
import { lintActionSchema } from './lint.ts';
import type { LintViolation } from './rules.ts';

/** The server the lint pretends to be served from: a public https host, as ChatGPT requires. */
export const DEFAULT_SERVER_URL = 'https://relay.example.com';

/**
 * generated/action-schema.json as the relay serves it at `serverUrl`: the placeholder swapped in the text,
 * exactly as src/routes/document-cache.ts does it, then parsed.
 */
export function servedActionSchema(generatedText: string, serverUrl = DEFAULT_SERVER_URL): unknown {
  const placeholder = JSON.stringify(SERVER_URL_PLACEHOLDER);
  const at = generatedText.indexOf(placeholder);
  if (at === -1 || generatedText.indexOf(placeholder, at + 1) !== -1) {
    throw new Error(`the generated action schema must name ${SERVER_URL_PLACEHOLDER} exactly once (run npm run generate)`);
  }
  return JSON.parse(generatedText.slice(0, at) + JSON.stringify(serverUrl) + generatedText.slice(at + placeholder.length));
}

export function lintServedActionSchema(generatedText: string, serverUrl = DEFAULT_SERVER_URL): LintViolation[] {
  return lintActionSchema(servedActionSchema(generatedText, serverUrl));
}
