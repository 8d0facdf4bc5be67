import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { RelayConfig } from '../config.ts';
import { RelayError } from './errors.ts';

/**
 * DNS rebinding: a web page on evil.example whose name is made to resolve to 127.0.0.1 can reach a relay
 * on the user's machine, and the browser sends `Host: evil.example`. Where reaching the relay is what
 * protects it — it listens on a loopback address, or runs without relay keys — the Host must be a name the
 * relay knows (PUBLIC_BASE_URL's, ALLOWED_HOSTS, a loopback name, or an IP literal, which no rebinding can
 * produce), and an Origin one of CORS_ORIGINS, PUBLIC_BASE_URL's, a loopback origin or the Host itself.
 * Elsewhere the relay key is the guard and nothing is checked. Liveness paths are never refused.
 */
export interface HostGuard {
  /** The 403 to answer, or undefined; `checkOrigin` false leaves Origin to a route that checks it itself. */
  refuse(headers: IncomingHttpHeaders, checkOrigin?: boolean): RelayError | undefined;
}

const LIVENESS = new Set(['/health', '/v1/health']);

export function createHostGuard(config: RelayConfig): HostGuard | undefined {
  if (!isLoopbackName(config.host) && config.relayAuth) return undefined;
  const publicUrl = config.publicBaseUrl;
  const names = new Set(config.allowedHosts.map(bareHostname));
  if (publicUrl) names.add(bareHostname(publicUrl.hostname));
  const origins = new Set(config.corsOrigins.map((o) => o.replace(/\/+$/, '')));
  if (publicUrl) origins.add(publicUrl.origin);
  const anyOrigin = origins.has('*');
  // Nearly every request repeats one of a few Host values: their verdicts are kept (a bounded few).
  const verdicts = new Map<string, boolean>();
  const hostAllowed = (host: string) => {
    let allowed = verdicts.get(host);
    if (allowed === undefined) {
      const name = bareHostname(host);
      // No Host at all is HTTP/1.0 (1.1 without one is refused earlier): no browser sends that.
      allowed = name === '' || names.has(name) || isLoopbackName(name) || isIP(name) !== 0;
      if (verdicts.size < 256) verdicts.set(host, allowed);
    }
    return allowed;
  };
  const why = config.relayAuth ? 'it listens on a loopback address' : 'it runs without relay keys (RELAY_AUTH=off)';

  return {
    refuse(headers, checkOrigin = true) {
      const host = headers.host ?? '';
      if (!hostAllowed(host)) {
        return new RelayError(403, `This relay does not answer to the host "${bareHostname(host)}" (${why}, so it checks the Host against DNS rebinding). Use its own address, or add the name to ALLOWED_HOSTS or PUBLIC_BASE_URL.`, {
          code: 'host_not_allowed',
        });
      }
      const origin = headers.origin;
      if (!checkOrigin || origin === undefined || anyOrigin || origins.has(origin)) return undefined;
      let url: URL | undefined;
      try {
        url = new URL(origin);
      } catch {
        // not a URL ("null" from a sandboxed page): refused below
      }
      if (url && (isLoopbackName(bareHostname(url.hostname)) || url.host === host.toLowerCase())) return undefined;
      return new RelayError(403, `Requests from the web origin "${origin}" are not allowed (${why}, so it checks the Origin against DNS rebinding). Add it to CORS_ORIGINS to allow it.`, {
        code: 'origin_not_allowed',
      });
    },
  };
}

/** Whether a request to `path` is checked at all (liveness probes come with whatever Host the prober uses). */
export function hostGuardApplies(path: string): boolean {
  return !LIVENESS.has(path);
}

/** Whether the guard checks `path`'s Origin: the OAuth endpoints check it themselves (against the issuer, with a page of their own). */
export function hostGuardChecksOrigin(path: string): boolean {
  return !path.startsWith('/oauth/');
}

/** The host name of a Host header or URL host, lowercase, without port, brackets or a final dot. */
function bareHostname(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']') === -1 ? undefined : name.indexOf(']'));
  else if (name.includes(':') && isIP(name) !== 6) name = name.slice(0, name.lastIndexOf(':'));
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** localhost (and its subdomains, RFC 6761), 127.0.0.0/8 and ::1. */
export function isLoopbackName(name: string): boolean {
  const bare = bareHostname(name);
  return bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
}
