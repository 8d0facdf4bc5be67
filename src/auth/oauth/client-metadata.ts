import { OAuthError } from './errors.ts';
import { redirectUriProblem, type RedirectRule } from './redirect-uris.ts';

/**
 * Client metadata (RFC 7591 §2), from a registration request or a Client ID Metadata Document, checked
 * and reduced to what the relay uses. Every redirect URI must pass the redirect policy, so a client can
 * only ever name callbacks the relay would send a code to anyway.
 */

export const AUTH_METHODS = ['none', 'client_secret_post', 'client_secret_basic'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface ClientMetadata {
  redirect_uris: string[];
  token_endpoint_auth_method: AuthMethod;
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  client_uri?: string;
  scope?: string;
}

const GRANT_TYPES = new Set(['authorization_code', 'refresh_token']);
const MAX_REDIRECT_URIS = 10;
const MAX_NAME = 100;

type Source = 'registration' | 'document';

const invalid = (description: string, error = 'invalid_client_metadata') => new OAuthError(error, description);

function stringList(value: unknown, field: string, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw invalid(`${field} must be an array of strings.`);
  return [...new Set(value as string[])];
}

/** Printable text without control characters, cut to `max`; undefined when absent or empty. */
function text(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string.`);
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, ' ').trim();
  return clean ? clean.slice(0, max) : undefined;
}

/**
 * The metadata the relay keeps for a client. `source` decides the defaults and the rules: a
 * registration may ask for a client secret (RFC 7591's default method is client_secret_basic); a
 * metadata document may not (a public document cannot hold a shared secret), so it is always `none`.
 */
export function checkClientMetadata(input: unknown, rules: readonly RedirectRule[], source: Source): ClientMetadata {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalid('The client metadata must be a JSON object.');
  const doc = input as Record<string, unknown>;

  const redirectUris = stringList(doc.redirect_uris, 'redirect_uris', []);
  if (redirectUris.length === 0) throw invalid('redirect_uris must list at least one redirect URI.', 'invalid_redirect_uri');
  if (redirectUris.length > MAX_REDIRECT_URIS) throw invalid(`redirect_uris may list at most ${MAX_REDIRECT_URIS} URIs.`, 'invalid_redirect_uri');
  for (const uri of redirectUris) {
    const problem = redirectUriProblem(uri, rules);
    if (problem) {
      throw invalid(
        `The redirect URI ${JSON.stringify(uri.slice(0, 200))} ${problem}. This relay sends codes only to https callbacks on OAUTH_REDIRECT_HOSTS or to http on loopback; ask its operator to add your callback host.`,
        'invalid_redirect_uri',
      );
    }
  }

  let method: AuthMethod;
  if (source === 'document') {
    if ('client_secret' in doc || 'client_secret_expires_at' in doc) throw invalid('A client metadata document must not carry a client secret.');
    if (doc.token_endpoint_auth_method !== undefined && doc.token_endpoint_auth_method !== 'none') {
      throw invalid(`token_endpoint_auth_method "${String(doc.token_endpoint_auth_method).slice(0, 40)}" is not supported for a metadata document; use "none" (PKCE protects the code).`);
    }
    method = 'none';
  } else {
    const asked = doc.token_endpoint_auth_method ?? 'client_secret_basic';
    if (!AUTH_METHODS.includes(asked as AuthMethod)) {
      throw invalid(`token_endpoint_auth_method must be one of ${AUTH_METHODS.join(', ')}.`);
    }
    method = asked as AuthMethod;
  }

  const grantTypes = stringList(doc.grant_types, 'grant_types', ['authorization_code']);
  const unsupported = grantTypes.filter((g) => !GRANT_TYPES.has(g));
  if (unsupported.length) throw invalid(`grant_types may hold only authorization_code and refresh_token (not ${unsupported.join(', ').slice(0, 100)}).`);
  const responseTypes = stringList(doc.response_types, 'response_types', ['code']);
  if (responseTypes.some((r) => r !== 'code')) throw invalid('response_types may hold only "code".');

  const clientUri = text(doc.client_uri, 'client_uri', 500);
  return {
    redirect_uris: redirectUris,
    token_endpoint_auth_method: method,
    grant_types: grantTypes,
    response_types: responseTypes,
    client_name: text(doc.client_name, 'client_name', MAX_NAME),
    ...(clientUri && /^https:\/\//i.test(clientUri) ? { client_uri: clientUri } : {}),
    scope: text(doc.scope, 'scope', 500),
  };
}
