/**
 * The relay's public server URL as a request names it: for the served documents (the GPT Action schema's
 * `servers`, the plugin manifest) and for links to stored files. Header values are validated strictly, so
 * no request can inject text into a document.
 */

export interface ForwardingHeaders {
  host?: string;
  'x-forwarded-proto'?: string;
  'x-forwarded-host'?: string;
}

const HOST_PATTERN =
  /^(?:(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?))*|\[[0-9a-f:.]{2,45}\])(?::(\d{1,5}))?$/;

/** `hostname[:port]` lower-cased, or undefined when the value is anything else (no injection into documents). */
export function parseHostHeader(value: string | undefined): { hostname: string; port?: number } | undefined {
  if (typeof value !== 'string') return undefined;
  const first = value.split(',')[0].trim().toLowerCase();
  if (first.length === 0 || first.length > 255) return undefined;
  const match = HOST_PATTERN.exec(first);
  if (!match) return undefined;
  const port = match[1] === undefined ? undefined : Number(match[1]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  const hostname = port === undefined ? first : first.slice(0, first.length - match[1].length - 1);
  if (hostname.startsWith('[') && !isIpv6Literal(hostname.slice(1, -1))) return undefined;
  return { hostname, port };
}

function isIpv6Literal(text: string): boolean {
  try {
    return new URL(`http://[${text}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    host === '[::1]' ||
    host === '[0:0:0:0:0:0:0:1]'
  );
}

/**
 * The action schema's server URL. PUBLIC_BASE_URL when set (without trailing slash); else the first
 * X-Forwarded-Host (or Host) value, strictly validated. The scheme is https for every host but loopback:
 * ChatGPT only calls https servers, and a TLS-terminating proxy often says `X-Forwarded-Proto: http`
 * (seed fault 8). Loopback hosts get http unless X-Forwarded-Proto says https.
 * Anything unparseable gives `fallback` (a loopback URL) rather than attacker-chosen text.
 */
export function actionServerUrl(publicBaseUrl: URL | undefined, headers: ForwardingHeaders, fallback = 'http://localhost'): string {
  if (publicBaseUrl) return `${publicBaseUrl.origin}${publicBaseUrl.pathname.replace(/\/+$/, '')}`;
  const host = parseHostHeader(headers['x-forwarded-host']) ?? parseHostHeader(headers.host);
  if (!host) return fallback;
  const proto = (headers['x-forwarded-proto'] ?? '').split(',')[0].trim().toLowerCase();
  const scheme = isLoopbackHost(host.hostname) && proto !== 'https' ? 'http' : 'https';
  const defaultPort = scheme === 'https' ? 443 : 80;
  const port = host.port === undefined || host.port === defaultPort ? '' : `:${host.port}`;
  return `${scheme}://${host.hostname}${port}`;
}
