import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { RelayEnv } from '../core/env.ts';
import { checkAuthorizationRequest, redirectWith, REQUEST_FIELDS, type AuthorizationRequest } from '../auth/oauth/authorization-request.ts';
import { renderConsentPage, renderErrorPage } from '../auth/oauth/consent-page.ts';
import { FORM_TTL_MS } from '../auth/oauth/consent-csrf.ts';
import { OAuthError } from '../auth/oauth/errors.ts';
import type { OAuth } from '../auth/oauth/index.ts';
import { OAUTH_PATHS } from '../auth/oauth/metadata.ts';
import type { Logger } from '../core/logger.ts';
import { readForm, sourceOf } from './oauth.ts';

/**
 * The authorization endpoint: GET shows the consent page for a checked authorization request; POST
 * takes the team member's answer. A correct relay key makes a grant and sends its code back to the app
 * (303 to the redirect URI with code, state and iss); a wrong one shows the form again, and wrong keys
 * are counted (the form would otherwise be a way to guess keys). A post is refused when its Origin is
 * not PUBLIC_BASE_URL's (behind a proxy the Host header says something else) or its anti-CSRF token is
 * missing, stale or for another request.
 */

export function registerOAuthAuthorizeRoutes(app: OpenAPIHono<RelayEnv>, oauth: OAuth, logger: Logger): void {
  const { endpoints, csrf } = oauth;
  const secure = new URL(endpoints.issuer).protocol === 'https:';
  // __Host-: only this origin can set or read it (needs Secure, so plain http on loopback goes without).
  const cookieName = secure ? '__Host-relay_consent' : 'relay_consent';
  const deps = { clients: oauth.clients, endpoints, redirectRules: oauth.redirectRules };

  const errorPage = (message: string, status: number) => {
    const { html, headers } = renderErrorPage(message);
    return new Response(html, { status, headers });
  };
  const redirect = (location: string, status: 302 | 303) => new Response(null, { status, headers: { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' } });

  async function consentPage(c: Context<RelayEnv>, request: AuthorizationRequest, params: URLSearchParams, status = 200, error?: string) {
    const nonce = csrf.nonce(cookie(c.req.header('cookie'), cookieName));
    const fields: Record<string, string> = {};
    for (const name of REQUEST_FIELDS) {
      const value = params.get(name);
      if (value !== null) fields[name] = value;
    }
    fields.csrf = await csrf.token(nonce, params);
    const { html, headers } = renderConsentPage({
      clientName: request.client.metadata.client_name,
      clientId: request.client.clientId,
      registration: request.client.registration,
      redirectUri: request.redirectUri,
      fields,
      error,
      accessTokenMinutes: Math.max(1, Math.round(oauth.accessTokenTtlS / 60)),
    });
    const setCookie = `${cookieName}=${nonce}; Path=/; Max-Age=${FORM_TTL_MS / 1000}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    return new Response(html, { status, headers: { ...headers, 'set-cookie': setCookie } });
  }

  app.get(OAUTH_PATHS.authorize, async (c) => {
    const params = new URL(c.req.url).searchParams;
    const checked = await checkAuthorizationRequest(params, deps);
    if ('page' in checked) return errorPage(checked.page.message, checked.page.status);
    if ('redirect' in checked) return redirect(checked.redirect, 302);
    return consentPage(c, checked.ok, params);
  });

  app.post(OAUTH_PATHS.authorize, async (c) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && origin !== endpoints.issuer) {
      return errorPage('This form was sent from another site, so the relay refused it. Start the connection again from your app.', 403);
    }
    let params: URLSearchParams;
    try {
      params = await readForm(c.env.incoming);
    } catch (err) {
      if (err instanceof OAuthError) return errorPage(`${err.message} Start the connection again from your app.`, 400);
      throw err;
    }
    const checked = await checkAuthorizationRequest(params, deps);
    if ('page' in checked) return errorPage(checked.page.message, checked.page.status);
    if ('redirect' in checked) return redirect(checked.redirect, 303);
    const request = checked.ok;
    if (!(await csrf.valid(cookie(c.req.header('cookie'), cookieName), params.get('csrf') ?? undefined, params))) {
      return errorPage('This form has expired or did not come from this browser (its anti-CSRF token is missing or wrong). Start the connection again from your app.', 403);
    }
    if (params.get('decision') === 'deny') {
      return redirect(redirectWith(request.redirectUri, { error: 'access_denied', error_description: 'The person declined.', state: request.state }, endpoints.issuer), 303);
    }

    const source = sourceOf(c.env.incoming);
    if (oauth.keyGuesses.blocked(source)) {
      return consentPage(c, request, params, 429, 'Too many wrong relay keys were tried in the last minute. Wait a minute, then try again.');
    }
    const key = await oauth.keys.match(params.get('relay_key') ?? '');
    if (!key) {
      oauth.keyGuesses.hit(source);
      logger.warn({ client: request.client.clientId, source }, 'oauth consent: wrong relay key');
      return consentPage(c, request, params, 401, 'That is not a relay key of this relay. Check it (it is not an OpenAI key) and try again.');
    }
    const code = await oauth.tokens.authorize({
      client: request.client,
      keyId: key.id,
      scope: request.scope,
      resource: request.resource,
      redirectUri: request.redirectUri,
      codeChallenge: request.codeChallenge,
    });
    logger.info({ key: key.label, client: request.client.clientId }, 'oauth consent: allowed');
    return redirect(redirectWith(request.redirectUri, { code, state: request.state }, endpoints.issuer), 303);
  });
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
