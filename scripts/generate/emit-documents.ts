import { stringify } from 'yaml';
import { ACTION_INFO_DESCRIPTION, buildActionSchema, type OpenApiDocument } from './action-schema.ts';
import { HEADER } from './header.ts';
import { retirementOf } from './marks.ts';
import { HTTP_METHODS, RELAY_KEY } from './spec.ts';
import { isObj, stripKey, type Json } from './walk.ts';

/**
 * The served documents, written once with a placeholder server: generated/action-schema.json (the GPT
 * Action schema) and generated/openapi.full.json (every operation, without `x-relay`). At start-up the
 * relay only swaps the placeholder for the server URL a request came through (src/routes/document-cache.ts).
 * generated/documents.ts tells the relay the placeholder and the texts it needs besides the documents.
 */

/** A URL no request can name (`.invalid` is reserved), so swapping it in the text cannot hit anything else. */
export const SERVER_URL_PLACEHOLDER = 'https://served-server-url.invalid';

/**
 * The whole spec (every operation) with `servers` set to the one URL and no `x-relay` metadata; a retired
 * operation is `deprecated` and its description says what the relay answers instead.
 */
export function buildFullSchema(spec: Json, options: { serverUrl: string }): OpenApiDocument {
  const stripped = stripKey(markRetired(spec), RELAY_KEY);
  const out: Json = {};
  for (const [key, value] of Object.entries(stripped)) {
    if (key === 'servers') continue;
    out[key] = value;
    if (key === 'info') out.servers = [{ url: options.serverUrl }];
  }
  out.servers ??= [{ url: options.serverUrl }];
  return out;
}

function markRetired(spec: Json): Json {
  const out = structuredClone(spec);
  for (const [path, item] of Object.entries<Json>(isObj(out.paths) ? out.paths : {})) {
    for (const method of HTTP_METHODS) {
      const op = item?.[method];
      const retired = isObj(op?.[RELAY_KEY]) ? retirementOf(op[RELAY_KEY], `${method.toUpperCase()} ${path}`, []) : null;
      if (!retired) continue;
      op.deprecated = true;
      op.description = `${retired.message} (410 Gone)`;
    }
  }
  return out;
}

/** How the relay serializes a served document as JSON. */
export function documentJson(doc: OpenApiDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** How the relay serializes a served document as YAML: no anchors/aliases (importers choke on them), no folded lines. */
export function documentYaml(doc: OpenApiDocument): string {
  return stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
}

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

/** One served document as generated: its JSON text, proven to name the placeholder exactly once in JSON and in YAML. */
function documentFile(name: string, doc: OpenApiDocument): string {
  const json = documentJson(doc);
  const yaml = documentYaml(doc);
  if (occurrences(json, JSON.stringify(SERVER_URL_PLACEHOLDER)) !== 1 || occurrences(yaml, `url: ${SERVER_URL_PLACEHOLDER}\n`) !== 1) {
    throw new Error(`generated/${name}: the spec itself mentions ${SERVER_URL_PLACEHOLDER}; the relay could not fill in its server URL.`);
  }
  return json;
}

export function emitDocuments(spec: Json): Map<string, string> {
  const info = isObj(spec.info) ? spec.info : {};
  const specInfo = {
    title: typeof info.title === 'string' ? info.title : 'OpenAI Relay',
    version: typeof info.version === 'string' ? info.version : '1.0.0',
  };
  const documents = `${HEADER}
/** The server URL of generated/action-schema.json and generated/openapi.full.json; the relay swaps in its own. */
export const SERVER_URL_PLACEHOLDER = ${JSON.stringify(SERVER_URL_PLACEHOLDER)};

/** What a model reads to decide when to use the relay: the action schema's info.description, the MCP instructions. */
export const ACTION_INFO_DESCRIPTION = ${JSON.stringify(ACTION_INFO_DESCRIPTION)};

/** The spec's title and version (the MCP server names itself with them). */
export const SPEC_INFO = ${JSON.stringify(specInfo)} as const;
`;
  return new Map([
    ['action-schema.json', documentFile('action-schema.json', buildActionSchema(spec, { serverUrl: SERVER_URL_PLACEHOLDER }))],
    ['openapi.full.json', documentFile('openapi.full.json', buildFullSchema(spec, { serverUrl: SERVER_URL_PLACEHOLDER }))],
    ['documents.ts', documents],
  ]);
}
