import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { RelayEnv } from '../core/env.ts';
import type { OAuth } from '../auth/oauth/index.ts';
import type { ClientCredentials } from '../auth/oauth/clients.ts';
import { OAuthError, oauthErrorResponse, oauthJson } from '../auth/oauth/errors.ts';
import { authorizationServerMetadata, OAUTH_PATHS, protectedResourceMetadata, sameResource, WELL_KNOWN } from '../auth/oauth/metadata.ts';
import { readBodyCapped } from '../core/read-body.ts';
import { RelayError } from '../core/errors.ts';

/**
 * The OAuth endpoints other than the consent page (oauth-authorize.ts): discovery documents (RFC 9728,
 * RFC 8414 and its OpenID Connect alias), client registration (RFC 7591), token (OAuth 2.1 §3.2) and
 * revocation (RFC 7009). All public paths: they are how a client gets a credential in the first place.
 * Errors in RFC 6749's shape, answers never cached.
 */

/** Small form and JSON bodies only: an authorization or registration request is a few hundred bytes. */
export const OAUTH_BODY_CAP = 16 * 1024;

export function registerOAuthRoutes(app: OpenAPIHono<RelayEnv>, oauth: OAuth): void {
  const { endpoints } = oauth;
  const publicJson = (body: unknown) =>
    new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' } });
  const resourceDocument = protectedResourceMetadata(endpoints);
  const serverDocument = authorizationServerMetadata(endpoints);
  app.get(WELL_KNOWN.resource, () => publicJson(resourceDocument));
  app.get(WELL_KNOWN.resourceForMcp, () => publicJson(resourceDocument));
  app.get(WELL_KNOWN.server, () => publicJson(serverDocument));
  app.get(WELL_KNOWN.openid, () => publicJson(serverDocument));

  const handle = (fn: (c: Context<RelayEnv>) => Promise<Response>) => async (c: Context<RelayEnv>) => {
    try {
      return await fn(c);
    } catch (err) {
      if (err instanceof OAuthError) return oauthErrorResponse(err);
      throw err;
    }
  };

  app.post(
    OAUTH_PATHS.register,
    handle(async (c) => {
      let body: unknown;
      try {
        body = JSON.parse((await readBodyCapped(c.env.incoming, OAUTH_BODY_CAP, 'registration request')).toString('utf8'));
      } catch (err) {
        throw new OAuthError('invalid_client_metadata', err instanceof RelayError ? err.message : 'The registration request must be a JSON object.');
      }
      return oauthJson(await oauth.clients.register(body, sourceOf(c.env.incoming)), 201);
    }),
  );

  app.post(
    OAUTH_PATHS.token,
    handle(async (c) => {
      const params = await readForm(c.env.incoming);
      const client = await oauth.clients.authenticate(credentialsOf(c.env.incoming.headers, params));
      const given = params.get('resource') ?? undefined;
      const resource = given !== undefined && sameResource(given, endpoints.resource) ? endpoints.resource : given;
      const grantType = params.get('grant_type');
      if (grantType === 'authorization_code') {
        return oauthJson(
          await oauth.tokens.exchangeCode(client, {
            code: params.get('code') ?? undefined,
            codeVerifier: params.get('code_verifier') ?? undefined,
            redirectUri: params.get('redirect_uri') ?? undefined,
            resource,
          }),
        );
      }
      if (grantType === 'refresh_token') {
        return oauthJson(await oauth.tokens.refresh(client, { refreshToken: params.get('refresh_token') ?? undefined, scope: params.get('scope') ?? undefined, resource }));
      }
      throw new OAuthError('unsupported_grant_type', 'grant_type must be authorization_code or refresh_token.');
    }),
  );

  app.post(
    OAUTH_PATHS.revoke,
    handle(async (c) => {
      const params = await readForm(c.env.incoming);
      const client = await oauth.clients.authenticate(credentialsOf(c.env.incoming.headers, params));
      const token = params.get('token');
      if (!token) throw new OAuthError('invalid_request', 'Send the token to revoke as token.');
      await oauth.tokens.revoke(client, token);
      return new Response(null, { status: 200, headers: { 'cache-control': 'no-store' } });
    }),
  );

  for (const path of [OAUTH_PATHS.register, OAUTH_PATHS.token, OAUTH_PATHS.revoke]) {
    app.all(path, (c) => {
      throw new RelayError(405, `${c.req.method} is not allowed on ${path}; use POST.`, { code: 'method_not_allowed', headers: { allow: 'POST' } });
    });
  }
}

/** Where a request came from, for the attempt limits (the peer address: headers can say anything). */
export const sourceOf = (incoming: IncomingMessage) => incoming.socket.remoteAddress ?? 'unknown';

/** An application/x-www-form-urlencoded body (OAuth 2.1 §3.2), capped; each parameter at most once. */
export async function readForm(incoming: IncomingMessage): Promise<URLSearchParams> {
  const type = (incoming.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new OAuthError('invalid_request', 'Send the parameters as application/x-www-form-urlencoded.');
  let raw: Buffer;
  try {
    raw = await readBodyCapped(incoming, OAUTH_BODY_CAP, 'form');
  } catch (err) {
    throw new OAuthError('invalid_request', err instanceof RelayError ? err.message : 'The form could not be read.');
  }
  const params = new URLSearchParams(raw.toString('utf8'));
  for (const name of new Set(params.keys())) {
    if (params.getAll(name).length > 1) throw new OAuthError('invalid_request', `The parameter ${name} is given more than once.`);
  }
  return params;
}

/** The client's credentials: HTTP Basic (client_secret_basic), form fields (client_secret_post), or a bare client_id. */
function credentialsOf(headers: IncomingHttpHeaders, params: URLSearchParams): ClientCredentials {
  const basic = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(headers.authorization ?? '');
  const bodyId = params.get('client_id') ?? undefined;
  const bodySecret = params.get('client_secret') ?? undefined;
  if (basic) {
    if (bodySecret !== undefined) throw new OAuthError('invalid_request', 'Authenticate the client one way only: HTTP Basic or client_secret, not both.');
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        throw new OAuthError('invalid_client', 'The HTTP Basic credentials are not form-encoded (RFC 6749 §2.3.1).', 401);
      }
    };
    const clientId = decode(colon === -1 ? decoded : decoded.slice(0, colon));
    if (bodyId !== undefined && bodyId !== clientId) throw new OAuthError('invalid_request', 'client_id differs from the one in HTTP Basic authentication.');
    return { clientId, secret: colon === -1 ? '' : decode(decoded.slice(colon + 1)), method: 'client_secret_basic' };
  }
  return { clientId: bodyId, secret: bodySecret, method: bodySecret === undefined ? 'none' : 'client_secret_post' };
}
