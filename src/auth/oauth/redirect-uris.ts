import net from 'node:net';

/**
 * Where the relay may send an authorization code: an https URI on the OAUTH_REDIRECT_HOSTS allowlist
 * (a host, optionally with a path prefix: ChatGPT mints one callback path per connector), or an http URI
 * on a loopback address (RFC 8252 §7.3: native clients such as Claude Code, Codex and the Inspector
 * listen on 127.0.0.1 or localhost on a port of their choosing). Nothing else is ever registered, so
 * no code can be sent anywhere else.
 */

/** ChatGPT's per-connector and legacy callbacks, and Claude's (claude.ai, moving to claude.com). */
export const DEFAULT_REDIRECT_HOSTS = [
  'chatgpt.com/connector/oauth/',
  'chatgpt.com/connector_platform_oauth_redirect',
  'claude.ai/api/mcp/auth_callback',
  'claude.com/api/mcp/auth_callback',
] as const;

export interface RedirectRule {
  host: string;
  /** The URI's path must start with this ('/' when only the host was given). */
  pathPrefix: string;
}

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const MAX_URI_LENGTH = 2048;

/** Parses OAUTH_REDIRECT_HOSTS entries (`host` or `host/path-prefix`); throws a sentence per bad entry. */
export function parseRedirectRules(entries: readonly string[]): RedirectRule[] {
  const problems: string[] = [];
  const rules = entries.map((raw) => {
    const entry = raw.trim().toLowerCase();
    const slash = entry.indexOf('/');
    const host = slash === -1 ? entry : entry.slice(0, slash);
    const pathPrefix = slash === -1 ? '/' : entry.slice(slash);
    if (!HOST_NAME.test(host) || /[?#\s*]/.test(pathPrefix) || pathPrefix.includes('/../') || pathPrefix.endsWith('/..')) {
      problems.push(`OAUTH_REDIRECT_HOSTS entry "${raw}" must be a host name, optionally followed by a path prefix (e.g. chatgpt.com/connector/oauth/), without scheme or wildcard.`);
    }
    return { host, pathPrefix };
  });
  if (problems.length) throw new RedirectRulesError(problems);
  return rules;
}

export class RedirectRulesError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join(' '));
    this.problems = problems;
  }
}

export const isLoopbackHost = (hostname: string) => LOOPBACK_HOSTS.has(hostname.toLowerCase());

/**
 * Why `uri` may not be registered as a redirect URI, or undefined when it may: https on an allowed host
 * and path (port 443), or http on loopback (any port). Never a fragment, credentials or dot segments.
 */
export function redirectUriProblem(uri: string, rules: readonly RedirectRule[]): string | undefined {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > MAX_URI_LENGTH) return 'is empty or too long';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  if (url.hash || uri.includes('#')) return 'has a fragment';
  if (url.username || url.password) return 'carries credentials';
  if (/\/\.\.?(\/|$)/.test(uri.split(/[?#]/, 1)[0].replace(/^[a-z]+:\/\/[^/]*/i, ''))) return 'has dot segments';
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname) ? undefined : 'uses http on a host that is not loopback (http is allowed only on 127.0.0.1, [::1] and localhost)';
  }
  if (url.protocol !== 'https:') return `uses ${url.protocol} (only https, or http on loopback)`;
  if (url.port !== '') return 'names a port (only 443)';
  if (net.isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0) return 'names an IP address';
  const host = url.hostname.toLowerCase();
  const allowed = rules.some((rule) => rule.host === host && url.pathname.toLowerCase().startsWith(rule.pathPrefix));
  return allowed ? undefined : `points at ${host}${url.pathname}, which is not on OAUTH_REDIRECT_HOSTS`;
}

/**
 * Whether the redirect URI of an authorization request is one the client registered: exactly, except
 * that a loopback URI may name any port (RFC 8252 §7.3).
 */
export function redirectUriRegistered(requested: string, registered: readonly string[]): boolean {
  if (registered.includes(requested)) return true;
  let asked: URL;
  try {
    asked = new URL(requested);
  } catch {
    return false;
  }
  if (asked.protocol !== 'http:' || !isLoopbackHost(asked.hostname)) return false;
  const withoutPort = (url: URL) => `${url.protocol}//${url.hostname}${url.pathname}${url.search}`;
  return registered.some((uri) => {
    try {
      const url = new URL(uri);
      return url.protocol === 'http:' && isLoopbackHost(url.hostname) && withoutPort(url) === withoutPort(asked);
    } catch {
      return false;
    }
  });
}
