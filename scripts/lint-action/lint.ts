import { escapePointer, isJsonMediaType, isObj, type Json } from '../generate/walk.ts';
import { HTTP_METHODS } from '../generate/spec.ts';
import { GPT_ACTION_LIMITS, OPERATION_ID_PATTERN } from './limits.ts';
import { follow, refPointer, type Add, type LintRule, type LintViolation } from './rules.ts';
import { containsProperty, findRelayMetadata, forEachSchemaRoot, lintRefs, lintSchemaNode, topLevelProperties, walkSchema } from './schemas.ts';

/**
 * Checks a served GPT Action schema against every GPT Action rule (LINT_RULES). Each violation names its
 * rule and the RFC 6901 pointer of the offending node.
 */
export function lintActionSchema(doc: unknown): LintViolation[] {
  const out: LintViolation[] = [];
  const add = (at: string, rule: LintRule, message: string) => out.push({ pointer: at, rule, message });
  if (!isObj(doc)) {
    add('', 'openapi-version', 'the document is not a JSON/YAML object');
    return out;
  }

  // ------------------------------------------------------------ document
  if (!GPT_ACTION_LIMITS.openapiVersions.includes(doc.openapi)) {
    add('/openapi', 'openapi-version', `openapi must be "3.1.0" or "3.1.1" (got ${JSON.stringify(doc.openapi)})`);
  }
  lintServers(doc, add);

  const schemas = doc.components?.schemas;
  if (!isObj(schemas)) {
    add(isObj(doc.components) ? '/components/schemas' : '/components', 'components-schemas-present', 'components.schemas is missing (the builder needs it, even empty)');
  }
  const schemes = doc.components?.securitySchemes;
  const schemeNames = isObj(schemes) ? Object.keys(schemes) : [];
  if (schemeNames.length !== 1) {
    add(
      isObj(schemes) ? '/components/securitySchemes' : isObj(doc.components) ? '/components/securitySchemes' : '/components',
      'single-security-scheme',
      `exactly one security scheme is supported (found ${schemeNames.length})`,
    );
  }
  for (const name of schemeNames) {
    const scheme = follow(doc, schemes[name]);
    const ok =
      isObj(scheme) &&
      ((scheme.type === 'http' && ['bearer', 'basic'].includes(String(scheme.scheme).toLowerCase())) ||
        (scheme.type === 'apiKey' && scheme.in === 'header') ||
        scheme.type === 'oauth2');
    if (!ok) {
      add(`/components/securitySchemes/${escapePointer(name)}`, 'security-scheme-type', 'ChatGPT sends only an HTTP bearer/basic key, one custom header, or an OAuth2 token');
    }
  }

  // ------------------------------------------------------------ operations
  const ids = new Map<string, string>();
  let operations = 0;
  for (const [path, rawItem] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    const itemAt = `/paths/${escapePointer(path)}`;
    const item = follow(doc, rawItem);
    if (!isObj(item)) continue;
    if (item.servers !== undefined) add(`${itemAt}/servers`, 'servers-count', 'servers per path are not supported: use the one top-level server');
    lintParameters(item.parameters, `${itemAt}/parameters`, add);
    for (const method of Object.keys(item)) {
      if (!(HTTP_METHODS as readonly string[]).includes(method)) continue;
      const op = item[method];
      const opAt = `${itemAt}/${method}`;
      if (!isObj(op)) continue;
      operations++;
      if (method === 'head') add(opAt, 'no-head-method', 'HEAD operations break the import');
      if (op.operationId === undefined) {
        add(opAt, 'operation-id', 'operationId is missing: the operation would be skipped');
      } else if (typeof op.operationId !== 'string' || !OPERATION_ID_PATTERN.test(op.operationId)) {
        add(`${opAt}/operationId`, 'operation-id', `operationId ${JSON.stringify(op.operationId)} must match ${OPERATION_ID_PATTERN}`);
      } else if (ids.has(op.operationId)) {
        add(`${opAt}/operationId`, 'operation-id-unique', `operationId ${op.operationId} is also used at ${ids.get(op.operationId)}`);
      } else ids.set(op.operationId, opAt);
      for (const [key, rule] of [['summary', 'summary-length'], ['description', 'description-length']] as const) {
        if (typeof op[key] === 'string' && op[key].length > GPT_ACTION_LIMITS.maxOperationText) {
          add(`${opAt}/${key}`, rule, `${key} has ${op[key].length} characters; at most ${GPT_ACTION_LIMITS.maxOperationText}`);
        }
      }
      if (typeof op['x-openai-isConsequential'] !== 'boolean') {
        add(
          op['x-openai-isConsequential'] === undefined ? opAt : `${opAt}/x-openai-isConsequential`,
          'consequential-flag',
          'x-openai-isConsequential must be true or false, on purpose (absent means true for every method but GET)',
        );
      }
      if (op.servers !== undefined) add(`${opAt}/servers`, 'servers-count', 'servers per operation are not supported: use the one top-level server');
      lintParameters(op.parameters, `${opAt}/parameters`, add);

      if (op.requestBody !== undefined) {
        const body = follow(doc, op.requestBody);
        const bodyAt = isObj(op.requestBody) && typeof op.requestBody.$ref === 'string' ? refPointer(op.requestBody.$ref) : `${opAt}/requestBody`;
        for (const [mediaType, media] of Object.entries(isObj(body?.content) ? body.content : {})) {
          const mediaAt = `${bodyAt}/content/${escapePointer(mediaType)}`;
          if (!isJsonMediaType(mediaType)) {
            add(
              mediaAt,
              'json-request-body',
              mediaType.toLowerCase().startsWith('multipart/')
                ? `a ${mediaType} body cannot be sent by an action: take files as openaiFileIdRefs in a JSON body`
                : `a ${mediaType} body cannot be sent by an action: actions send JSON`,
            );
          } else if (isObj(media) && topLevelProperties(doc, media.schema).has('openaiFileIdRefs') && method !== 'post') {
            add(`${mediaAt}/schema`, 'openai-file-id-refs', `openaiFileIdRefs is only filled in the JSON body of a POST operation (this is ${method.toUpperCase()})`);
          }
        }
      }
      for (const [status, rawResponse] of Object.entries(isObj(op.responses) ? op.responses : {})) {
        const response = follow(doc, rawResponse);
        const responseAt = isObj(rawResponse) && typeof rawResponse.$ref === 'string' ? refPointer(rawResponse.$ref) : `${opAt}/responses/${escapePointer(status)}`;
        for (const [mediaType, media] of Object.entries(isObj(response?.content) ? response.content : {})) {
          const mediaAt = `${responseAt}/content/${escapePointer(mediaType)}`;
          const base = mediaType.split(';')[0].trim().toLowerCase();
          if (base === 'text/event-stream') add(mediaAt, 'no-sse-response', 'an action cannot read a stream of server-sent events: answer JSON');
          else if (!isJsonMediaType(mediaType)) add(mediaAt, 'json-response', `a ${mediaType} answer is not usable by the model: answer JSON (files as links or openaiFileResponse)`);
          else if (isObj(media) && containsProperty(doc, media.schema, 'openaiFileIdRefs')) {
            add(`${mediaAt}/schema`, 'openai-file-id-refs', 'openaiFileIdRefs belongs in a POST request body, never in an answer');
          }
        }
      }
    }
  }
  if (operations > GPT_ACTION_LIMITS.maxOperations) {
    add('/paths', 'max-operations', `${operations} operations; a GPT Action schema may have at most ${GPT_ACTION_LIMITS.maxOperations}`);
  }

  // ------------------------------------------------------------ schemas, refs, metadata
  forEachSchemaRoot(doc, (schema, at) => walkSchema(schema, at, (node, nodeAt, name) => lintSchemaNode(doc, node, nodeAt, name, add)));
  lintRefs(doc, add);
  findRelayMetadata(doc, '', '', add);
  return out;
}

function lintServers(doc: Json, add: Add): void {
  const servers = doc.servers;
  if (!Array.isArray(servers) || servers.length !== 1) {
    add('/servers', 'servers-count', `exactly one server is required (found ${Array.isArray(servers) ? servers.length : 'none'})`);
  }
  if (!Array.isArray(servers) || servers.length === 0) return;
  const raw = servers[0]?.url;
  let url: URL | undefined;
  try {
    url = new URL(String(raw));
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'https:' || typeof raw !== 'string' || /[{}]/.test(raw)) {
    add('/servers/0/url', 'server-https', `the server must be an absolute https URL (got ${JSON.stringify(raw)})`);
  }
  if (url && url.port !== '' && !(url.protocol === 'https:' && url.port === '443')) {
    add('/servers/0/url', 'server-port', `the server must use port 443 (got ${url.port})`);
  }
}

function lintParameters(params: unknown, at: string, add: Add): void {
  if (!Array.isArray(params)) return;
  params.forEach((param, i) => {
    const paramAt = `${at}/${i}`;
    if (isObj(param) && typeof param.$ref === 'string') {
      add(paramAt, 'no-ref-parameters', `parameter given by $ref (${param.$ref}): the builder drops the operation; write it inline`);
      return;
    }
    if (!isObj(param)) return;
    if (param.in === 'header') add(`${paramAt}/in`, 'no-header-parameters', `header parameter ${JSON.stringify(param.name)} is ignored by ChatGPT`);
    if (param.in === 'cookie') add(`${paramAt}/in`, 'no-cookie-parameters', `cookie parameter ${JSON.stringify(param.name)}: ChatGPT keeps no cookies`);
    if (typeof param.description === 'string' && param.description.length > GPT_ACTION_LIMITS.maxParameterDescription) {
      add(
        `${paramAt}/description`,
        'parameter-description-length',
        `description has ${param.description.length} characters; at most ${GPT_ACTION_LIMITS.maxParameterDescription}`,
      );
    }
  });
}

