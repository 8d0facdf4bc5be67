import type { RelayConfig } from '../../config.ts';
import { AUTH_METHODS } from './client-metadata.ts';
import { isLoopbackHost } from './redirect-uris.ts';

/**
 * The relay as its own authorization server for /mcp: where everything is, and the two discovery
 * documents, protected resource metadata (RFC 9728) and authorization server metadata (RFC 8414).
 * The issuer is PUBLIC_BASE_URL (or Render's RENDER_EXTERNAL_URL). It is never worked out from a
 * request's Host header: the issuer, the token audience and the consent form's Origin check must not
 * depend on what a caller sends.
 */

/** The one scope: use the relay's MCP tools as the relay key that granted it. */
export const SCOPE = 'mcp';
export const MCP_PATH = '/mcp';

export interface OAuthEndpoints {
  /** `https://relay.example.com`: the issuer, and the origin a consent form must be posted from. */
  issuer: string;
  /** `<issuer>/mcp`: the protected resource, the audience of every token. */
  resource: string;
  resourceMetadataUrl: string;
  authorization: string;
  token: string;
  registration: string;
  revocation: string;
}

export const WELL_KNOWN = {
  resource: '/.well-known/oauth-protected-resource',
  resourceForMcp: `/.well-known/oauth-protected-resource${MCP_PATH}`,
  server: '/.well-known/oauth-authorization-server',
  openid: '/.well-known/openid-configuration',
} as const;

export const OAUTH_PATHS = { authorize: '/oauth/authorize', token: '/oauth/token', register: '/oauth/register', revoke: '/oauth/revoke' } as const;

/** The endpoints, or the sentence saying why OAuth is off. */
export function oauthEndpoints(config: RelayConfig): OAuthEndpoints | { off: string } {
  if (!config.oauth.enabled) return { off: 'MCP_OAUTH=off' };
  if (!config.relayAuth) return { off: 'RELAY_AUTH=off leaves /mcp open, so there is nothing to authorize' };
  const base = config.publicBaseUrl;
  if (!base) return { off: 'PUBLIC_BASE_URL is not set: OAuth needs the relay\'s public https URL as its issuer (set PUBLIC_BASE_URL=https://<your-relay>)' };
  if (base.pathname.replace(/\/+$/, '') !== '' || base.search) return { off: 'PUBLIC_BASE_URL has a path: OAuth needs the relay at the root of its origin (e.g. https://relay.example.com)' };
  if (base.protocol !== 'https:' && !isLoopbackHost(base.hostname)) return { off: 'PUBLIC_BASE_URL is http: OAuth needs https (http only on 127.0.0.1 or localhost, for trying it out)' };
  const issuer = base.origin;
  return {
    issuer,
    resource: `${issuer}${MCP_PATH}`,
    resourceMetadataUrl: `${issuer}${WELL_KNOWN.resourceForMcp}`,
    authorization: `${issuer}${OAUTH_PATHS.authorize}`,
    token: `${issuer}${OAUTH_PATHS.token}`,
    registration: `${issuer}${OAUTH_PATHS.register}`,
    revocation: `${issuer}${OAUTH_PATHS.revoke}`,
  };
}

export function protectedResourceMetadata(e: OAuthEndpoints) {
  return {
    resource: e.resource,
    authorization_servers: [e.issuer],
    scopes_supported: [SCOPE],
    bearer_methods_supported: ['header'],
    resource_name: 'OpenAI Relay (MCP)',
  };
}

export function authorizationServerMetadata(e: OAuthEndpoints) {
  return {
    issuer: e.issuer,
    authorization_endpoint: e.authorization,
    token_endpoint: e.token,
    registration_endpoint: e.registration,
    revocation_endpoint: e.revocation,
    scopes_supported: [SCOPE],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: [...AUTH_METHODS],
    revocation_endpoint_auth_methods_supported: [...AUTH_METHODS],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true,
  };
}

/** `https://x/mcp`, `HTTPS://X/mcp/` and the like name the same resource (RFC 8707; MCP asks servers to accept case variants). */
export function sameResource(given: string, resource: string): boolean {
  try {
    const url = new URL(given);
    if (url.hash || url.search) return false;
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}` === resource;
  } catch {
    return false;
  }
}
