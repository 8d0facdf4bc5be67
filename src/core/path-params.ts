import { RelayError } from './errors.ts';

/**
 * Path parameters are the only caller-chosen text that enters an upstream URL path, so each must stay
 * one path segment: an OpenAI id or model name. Allowlist, not blocklist: ASCII letters, digits and
 * `_ - . : @ + = ~`, never a lone `.`/`..`. Encoded `/`, `\`, `..`, `?`, `#`, `%` and control characters
 * all fall outside it, so no request can leave its operation's path.
 */
const SAFE_SEGMENT = /^[A-Za-z0-9_\-.:@+=~]{1,256}$/;

/** `value` is the router's already percent-decoded parameter; a `%` left in it means double encoding. */
export function checkPathParam(name: string, value: string): string {
  if (!SAFE_SEGMENT.test(value) || value === '.' || value === '..') {
    throw invalidParam(name, 'must be a single id made of letters, digits and _ - . : @ + = ~');
  }
  return value;
}

function invalidParam(name: string, why: string): RelayError {
  return new RelayError(400, `Invalid path parameter '${name}': it ${why}.`, {
    code: 'invalid_path_parameter',
    param: name,
  });
}

/**
 * The one place an upstream path is built: the operation's template with each parameter checked and
 * then used as-is (the allowlist admits only characters legal in a path segment), so the path sent upstream is always exactly one of the spec's paths.
 */
export function canonicalUpstreamPath(template: string, params: Record<string, string | undefined>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw invalidParam(name, 'is missing');
    // Every character the allowlist admits is legal in a path segment as it is (RFC 3986 pchar), so the
    // checked value goes upstream unencoded: `ft:gpt-4o:acme::id` stays exactly what the caller sent.
    return checkPathParam(name, value);
  });
}

/**
 * The raw request path, before any URL parsing: WHATWG URL parsing resolves `%2e%2e` and `..` segments,
 * which would silently turn a traversal attempt into some other (allowed) operation. No OpenAI path ever
 * has dot segments, backslashes, empty segments, or encoded `.`, `/`, `\`, `%` or NUL, so any of those is
 * refused outright, before routing.
 */
const SUSPICIOUS_RAW_PATH = /(?:^|\/)\.{1,2}(?:\/|$)|\/\/|\\|%(?:2e|2f|5c|25|00)|[\x00-\x20\x7f-\uffff]/i;

export function checkRawPath(rawUrl: string): RelayError | undefined {
  const queryStart = rawUrl.indexOf('?');
  const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
  if (!path.startsWith('/')) {
    return new RelayError(400, 'The request target must be an absolute path such as /v1/responses.', { code: 'invalid_path' });
  }
  if (SUSPICIOUS_RAW_PATH.test(path)) {
    return new RelayError(400, 'The request path contains dot segments, empty segments, backslashes or encoded separators, which this relay refuses.', {
      code: 'invalid_path',
    });
  }
  return undefined;
}
