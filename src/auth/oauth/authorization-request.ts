import type { Client, Clients } from './clients.ts';
import { OAuthError } from './errors.ts';
import { sameResource, SCOPE, type OAuthEndpoints } from './metadata.ts';
import { redirectUriProblem, redirectUriRegistered, type RedirectRule } from './redirect-uris.ts';

/**
 * An authorization request (OAuth 2.1 §4.1.1 with PKCE, RFC 8707's resource and RFC 9207's iss),
 * checked in the order that decides where its errors go: while the client or its redirect URI is in
 * doubt, the answer is an error page and nothing is sent anywhere; after that, errors go back to the
 * (registered) redirect URI as `error`, `state` and `iss`.
 */

export interface AuthorizationRequest {
  client: Client;
  redirectUri: string;
  state?: string;
  codeChallenge: string;
  resource: string;
  scope: string;
}

export type Checked =
  | { ok: AuthorizationRequest }
  /** Shown to the person; never redirected. */
  | { page: { status: number; message: string } }
  /** Sent back to the client's redirect URI. */
  | { redirect: string };

/** The parameters a consent form carries through (hidden fields), in this order. */
export const REQUEST_FIELDS = ['response_type', 'client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method', 'resource', 'scope'] as const;

const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const MAX_PARAM = 2048;

/** `redirect_uri` with `params` (and `iss`) added to its query. */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>, issuer: string): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries({ ...params, iss: issuer })) if (value !== undefined) url.searchParams.append(name, value);
  return url.href;
}

export async function checkAuthorizationRequest(
  params: URLSearchParams,
  deps: { clients: Clients; endpoints: OAuthEndpoints; redirectRules: readonly RedirectRule[] },
): Promise<Checked> {
  const page = (message: string, status = 400): Checked => ({ page: { status, message } });
  for (const name of REQUEST_FIELDS) {
    if (params.getAll(name).length > 1) return page(`The authorization request names ${name} more than once. Start the connection again from your app.`);
    if ((params.get(name) ?? '').length > MAX_PARAM) return page(`The authorization request's ${name} is too long. Start the connection again from your app.`);
  }
  const clientId = params.get('client_id');
  if (!clientId) return page('The authorization request names no client (client_id). Start the connection again from your app.');
  let client: Client;
  try {
    client = await deps.clients.find(clientId);
  } catch (err) {
    if (err instanceof OAuthError) return page(`This app is not known to the relay: ${err.message}`);
    throw err;
  }

  const registered = client.metadata.redirect_uris;
  const asked = params.get('redirect_uri') ?? (registered.length === 1 ? registered[0] : undefined);
  if (!asked) return page('The authorization request names no redirect_uri and the app registered several. Start the connection again from your app.');
  if (!redirectUriRegistered(asked, registered) || redirectUriProblem(asked, deps.redirectRules)) {
    return page('The app asked to be sent back to an address it did not register (or that this relay does not allow), so the relay will not send anything there.');
  }

  const state = params.get('state') ?? undefined;
  const back = (error: string, description: string): Checked => ({
    redirect: redirectWith(asked, { error, error_description: description, state }, deps.endpoints.issuer),
  });
  if (params.get('response_type') !== 'code') return back('unsupported_response_type', 'response_type must be "code".');
  const challenge = params.get('code_challenge');
  const method = params.get('code_challenge_method');
  if (!challenge) return back('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256.');
  if (method !== 'S256') return back('invalid_request', `code_challenge_method must be S256 (${method ? `"${method.slice(0, 20)}" is not accepted` : 'it is missing'}).`);
  if (!CHALLENGE.test(challenge)) return back('invalid_request', 'code_challenge must be the 43-character base64url SHA-256 of the code verifier.');
  const resource = params.get('resource');
  if (resource !== null && !sameResource(resource, deps.endpoints.resource)) {
    return back('invalid_target', `This authorization server issues tokens only for ${deps.endpoints.resource}.`);
  }
  // Only one scope exists; asking for others (or none) grants it all the same (RFC 6749 §3.3).
  return { ok: { client, redirectUri: asked, state, codeChallenge: challenge, resource: deps.endpoints.resource, scope: SCOPE } };
}
