import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { SERVER_URL_PLACEHOLDER } from '../../generated/documents.ts';

/**
 * The served documents, as `npm run generate` wrote them: generated/action-schema.json (the GPT Action
 * schema) and generated/openapi.full.json (every operation), each naming the placeholder server once.
 * Per server URL only the placeholder is swapped in the text: serializing a document takes long enough
 * (the full contract's YAML most of all) that rotating Host headers must not be able to trigger it on
 * every request, so each format is serialized at most once per process.
 */

export interface DocumentTexts {
  /** generated/action-schema.json */
  readonly action: string;
  /** generated/openapi.full.json */
  readonly full: string;
}

export interface RenderedDocument {
  /** Rendered lazily, once. */
  readonly json: string;
  readonly yaml: string;
}

export interface DocumentCache {
  action(serverUrl: string): RenderedDocument;
  full(serverUrl: string): RenderedDocument;
}

const generatedFile = (name: string) => readFileSync(new URL(`../../generated/${name}`, import.meta.url), 'utf8');

export function loadGeneratedDocuments(): DocumentTexts {
  return { action: generatedFile('action-schema.json'), full: generatedFile('openapi.full.json') };
}

type Doc = Record<string, unknown>;

/** JSON as the generator writes it; YAML without anchors/aliases (importers choke on them) or folded lines. */
const toJson = (doc: Doc) => `${JSON.stringify(doc, null, 2)}\n`;
const toYaml = (doc: Doc) => stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });

/** `text` with its single `from` replaced, or undefined when `from` is not there exactly once. */
function replaceOnce(text: string, from: string, to: string): string | undefined {
  const at = text.indexOf(from);
  if (at === -1 || text.indexOf(from, at + 1) !== -1) return undefined;
  return text.slice(0, at) + to + text.slice(at + from.length);
}

function withServer(doc: Doc, serverUrl: string): Doc {
  const out: Doc = {};
  for (const [key, value] of Object.entries(doc)) out[key] = key === 'servers' ? [{ url: serverUrl }] : value;
  return out;
}

/** Renders one generated document for any server URL from its text with the placeholder. */
function renderer(template: string): (serverUrl: string) => RenderedDocument {
  let parsed: Doc | undefined;
  let yaml: string | undefined;
  const doc = () => (parsed ??= JSON.parse(template) as Doc);
  return (serverUrl) => {
    let jsonText: string | undefined;
    let yamlText: string | undefined;
    return {
      get json() {
        return (jsonText ??= replaceOnce(template, JSON.stringify(SERVER_URL_PLACEHOLDER), JSON.stringify(serverUrl)) ?? toJson(withServer(doc(), serverUrl)));
      },
      get yaml() {
        yaml ??= toYaml(doc());
        return (yamlText ??=
          replaceOnce(yaml, `url: ${SERVER_URL_PLACEHOLDER}\n`, `url: ${stringify(serverUrl).trimEnd()}\n`) ?? toYaml(withServer(doc(), serverUrl)));
      },
    };
  };
}

/** Keeps the rendered copies of the last `maxEntries` server URLs of each document. */
export function createDocumentCache(texts: DocumentTexts = loadGeneratedDocuments(), maxEntries = 16): DocumentCache {
  const memo = (template: string) => {
    const render = renderer(template);
    const entries = new Map<string, RenderedDocument>();
    return (serverUrl: string): RenderedDocument => {
      let hit = entries.get(serverUrl);
      if (!hit) {
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
        hit = render(serverUrl);
        entries.set(serverUrl, hit);
      }
      return hit;
    };
  };
  return { action: memo(texts.action), full: memo(texts.full) };
}
