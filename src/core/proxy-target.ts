import { matchOperation, methodsForPath } from '../../generated/matcher.ts';
import type { RelayOperation } from '../../generated/routes.ts';
import { RelayError } from './errors.ts';
import { canonicalUpstreamPath } from './path-params.ts';
import { retiredError } from './retired.ts';

/**
 * Resolves a proxy envelope's `{method, path, query}` to one OpenAI operation of the generated route
 * table — the same table the direct routes come from, so the proxy can reach exactly what the relay
 * passes through and nothing else. The path is canonicalized once, and anything ambiguous is refused.
 */

export type QueryValue = string | number | boolean | null | QueryValue[] | { [key: string]: unknown };

export interface ProxyTarget {
  operation: RelayOperation;
  upstreamPath: string;
  search: string;
}

/** An operation can travel in a JSON envelope when it takes JSON (or nothing) and answers JSON or SSE. */
export function isProxyable(op: RelayOperation): boolean {
  const takesJson = op.requestContentTypes.length === 0 || op.requestContentTypes.includes('application/json');
  return op.kind === 'passthrough' && takesJson && op.answer !== 'binary';
}

const refuse = (status: number, message: string, code: string, param = 'path') => new RelayError(status, message, { code, param });

/** The envelope's path → one canonical `/v1/...` path, or a refusal. Decodes exactly once. */
export function canonicalProxyPath(raw: string): string {
  if (raw.length === 0 || raw.length > 2048) throw refuse(400, 'path must be 1 to 2048 characters.', 'invalid_proxy_path');
  if (/^[a-z][a-z0-9+.-]*:/i.test(raw) || raw.startsWith('//')) {
    throw refuse(400, 'path must be an OpenAI path such as /v1/models, not a URL.', 'invalid_proxy_path');
  }
  if (raw.includes('?') || raw.includes('#')) {
    throw refuse(400, 'path must not contain ? or #: pass query parameters in `query`.', 'invalid_proxy_path');
  }
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    throw refuse(400, 'path is not valid percent-encoding.', 'invalid_proxy_path');
  }
  // After one decode: no second layer of encoding, no separators in disguise, nothing outside printable ASCII.
  if (/[%\\]|[^\x21-\x7e]/.test(path)) {
    throw refuse(400, 'path may contain only printable ASCII, without %, \\ or spaces.', 'invalid_proxy_path');
  }
  if (!path.startsWith('/')) path = `/${path}`;
  if (!path.startsWith('/v1/')) path = `/v1${path}`;
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw refuse(400, 'path must not contain empty, . or .. segments.', 'invalid_proxy_path');
  }
  return path;
}

/** `query` → `?a=1&b=x&b=y`: scalars as they are, arrays as repeated parameters, nulls left out. */
export function proxySearch(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v === null || v === undefined) continue;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw refuse(400, `query.${key} must be a string, number, boolean or an array of them.`, 'invalid_proxy_query', `query.${key}`);
      }
      if (typeof v === 'number' && !Number.isFinite(v)) {
        throw refuse(400, `query.${key} must be a finite number.`, 'invalid_proxy_query', `query.${key}`);
      }
      params.append(key, String(v));
    }
  }
  const search = params.toString();
  return search ? `?${search}` : '';
}

export function resolveProxyTarget(method: string, rawPath: string, query?: Record<string, unknown>): ProxyTarget {
  const path = canonicalProxyPath(rawPath);
  const found = matchOperation(method.toUpperCase(), path);
  if (!found) {
    const allowed = methodsForPath(path);
    if (allowed.length === 0) throw refuse(403, `${path} is not an OpenAI operation this relay serves.`, 'proxy_path_not_allowed');
    throw refuse(405, `${path} takes ${allowed.join(' or ')}, not ${method.toUpperCase()}.`, 'proxy_method_not_allowed', 'method');
  }
  const { operation: op, params } = found;
  const gone = retiredError(op);
  if (gone) throw gone;
  if (op.kind !== 'passthrough') {
    throw refuse(400, `${path} is one of the relay's own operations; call it directly, not through the proxy.`, 'proxy_path_not_allowed');
  }
  if (!isProxyable(op)) {
    const why = op.body === 'sdp' ? 'takes an SDP offer' : op.body === 'multipart' ? 'takes a multipart upload' : 'answers with binary data';
    throw refuse(400, `${op.method.toUpperCase()} ${op.path} ${why}, which a JSON envelope cannot carry: call ${op.method.toUpperCase()} ${path} directly.`, 'proxy_operation_not_json');
  }
  // The path was decoded once already (canonicalProxyPath): the parameters are used as they are.
  return { operation: op, upstreamPath: canonicalUpstreamPath(op.path, params), search: proxySearch(query) };
}
