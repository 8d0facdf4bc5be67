import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { useMockOpenAI } from './helpers/mock-openai.ts';
import {
  authorizationUrl,
  LOOPBACK_REDIRECT,
  openConsent,
  pkce,
  postConsent,
  registerClient,
  startOAuthRelay,
  type OAuthRelay,
  type ConsentAnswer,
} from './helpers/oauth.ts';
import { RELAY_KEY, startTestRelay } from './helpers/relay.ts';

/**
 * The relay's authorization server up to the code: discovery documents, client registration (RFC 7591),
 * the authorization request's checks (which errors become an error page and which go back to the app),
 * and the consent page (what it shows, how it guards itself, what a right or wrong relay key does).
 */
const { upstream } = useMockOpenAI();

let relay: OAuthRelay;
let issuer: string;
beforeAll(async () => {
  relay = await startOAuthRelay({ LOG_LEVEL: 'info' });
  issuer = relay.issuer;
});
afterAll(() => relay.shutdown());

const noRedirect = (answer: ConsentAnswer) => {
  expect(answer.location).toBeUndefined();
  expect(answer.headers.get('content-type')).toContain('text/html');
};

describe('discovery', () => {
  test('protected resource metadata (RFC 9728) at the root and path-suffixed well-known URLs', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await fetch(`${issuer}${path}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        resource: `${issuer}/mcp`,
        authorization_servers: [issuer],
        scopes_supported: ['mcp'],
        bearer_methods_supported: ['header'],
        resource_name: 'OpenAI Relay (MCP)',
      });
    }
  });

  test('authorization server metadata (RFC 8414), also at the OpenID discovery path', async () => {
    const expected = {
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: `${issuer}/oauth/token`,
      registration_endpoint: `${issuer}/oauth/register`,
      revocation_endpoint: `${issuer}/oauth/revoke`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
    };
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const doc = (await (await fetch(`${issuer}${path}`)).json()) as Record<string, unknown>;
      expect(doc).toMatchObject(expected);
      expect(doc.token_endpoint_auth_methods_supported).toContain('none');
    }
  });

  test('/mcp without credentials: 401 naming the resource metadata; an unknown /.well-known path is a 404 without a key', async () => {
    const res = await fetch(`${issuer}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp", scope="mcp"`);
    const wrong = await fetch(`${issuer}/mcp`, { method: 'POST', headers: { authorization: 'Bearer not-a-key-at-all-0000', 'content-type': 'application/json' }, body: '{}' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const unknown = await fetch(`${issuer}/.well-known/security.txt`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('unknown_url');
  });

  test('without PUBLIC_BASE_URL OAuth is off: no metadata, /mcp keeps its relay-key challenge', async () => {
    const plain = await startTestRelay({ LOG_LEVEL: 'silent' });
    try {
      expect((await fetch(`${plain.url}/.well-known/oauth-protected-resource`)).status).toBe(404);
      expect((await fetch(`${plain.url}/oauth/register`, { method: 'POST', body: '{}' })).status).toBe(404);
      const res = await fetch(`${plain.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="openai-relay"');
    } finally {
      await plain.shutdown();
    }
  });
});

describe('client registration (RFC 7591)', () => {
  const register = (body: unknown) =>
    fetch(`${issuer}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('a public loopback client gets a client_id and no secret; a confidential one gets a secret', async () => {
    const pub = await registerClient(issuer);
    expect(pub).toMatchObject({ client_id: expect.stringMatching(/^rcl_/), token_endpoint_auth_method: 'none', redirect_uris: [LOOPBACK_REDIRECT] });
    expect(pub.client_secret).toBeUndefined();
    const confidential = await registerClient(issuer, { token_endpoint_auth_method: 'client_secret_basic' });
    expect(confidential.client_secret).toMatch(/^rcs_/);
    expect(confidential.client_secret_expires_at).toBe(0);
  });

  test("ChatGPT's and Claude's callbacks are allowed by default; other https hosts, http off loopback and fragments are not", async () => {
    const ok = await register({ redirect_uris: ['https://chatgpt.com/connector/oauth/AbC123xyz', 'https://claude.ai/api/mcp/auth_callback'], token_endpoint_auth_method: 'none' });
    expect(ok.status).toBe(201);
    for (const uri of ['https://evil.example.com/callback', 'http://chatgpt.com/connector/oauth/x', 'https://chatgpt.com/other/path', 'http://192.168.1.5/cb', 'https://claude.ai/api/mcp/auth_callback#x', 'javascript:alert(1)']) {
      const res = await register({ redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      expect(res.status, uri).toBe(400);
      expect(((await res.json()) as { error: string }).error, uri).toBe('invalid_redirect_uri');
    }
  });

  test('bad metadata: no redirect URIs, unsupported grant types, an unknown auth method, not JSON', async () => {
    const cases: [unknown, string][] = [
      [{ token_endpoint_auth_method: 'none' }, 'invalid_redirect_uri'],
      [{ redirect_uris: [LOOPBACK_REDIRECT], grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
      [{ redirect_uris: [LOOPBACK_REDIRECT], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
      [[1, 2], 'invalid_client_metadata'],
    ];
    for (const [body, error] of cases) {
      const res = await register(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe(error);
    }
    const notJson = await fetch(`${issuer}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(notJson.status).toBe(400);
  });
});

describe('the authorization request', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = (await registerClient(issuer)).client_id;
  });

  test('an unregistered redirect URI or an unknown client gets an error page: nothing is sent anywhere', async () => {
    const { challenge } = pkce();
    for (const url of [
      authorizationUrl(issuer, { clientId, challenge, redirectUri: 'http://127.0.0.1:7777/other' }),
      authorizationUrl(issuer, { clientId, challenge, redirectUri: 'https://evil.example.com/callback' }),
      authorizationUrl(issuer, { clientId: 'rcl_unknown', challenge }),
    ]) {
      const page = await openConsent(url);
      expect(page.status).toBe(400);
      noRedirect(page);
      expect(page.html).not.toContain('relay_key');
    }
  });

  test('a loopback redirect URI may name another port (RFC 8252 §7.3)', async () => {
    const page = await openConsent(authorizationUrl(issuer, { clientId, challenge: pkce().challenge, redirectUri: 'http://127.0.0.1:61234/callback' }));
    expect(page.status).toBe(200);
  });

  test('plain or missing PKCE, a wrong resource, another response type: errors go back to the app with state and iss', async () => {
    const { challenge } = pkce();
    const cases: [URL, string][] = [
      [authorizationUrl(issuer, { clientId, challenge, method: 'plain' }), 'invalid_request'],
      [authorizationUrl(issuer, { clientId, challenge, method: null }), 'invalid_request'],
      [authorizationUrl(issuer, { clientId, challenge: '' }), 'invalid_request'],
      [authorizationUrl(issuer, { clientId, challenge, resource: 'https://other.example.com/mcp' }), 'invalid_target'],
      [authorizationUrl(issuer, { clientId, challenge, resource: `${issuer}/v1` }), 'invalid_target'],
      [authorizationUrl(issuer, { clientId, challenge, extra: { response_type: 'token' } }), 'unsupported_response_type'],
    ];
    for (const [url, error] of cases) {
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status, url.search).toBe(302);
      const back = new URL(res.headers.get('location')!);
      expect(back.origin + back.pathname).toBe(LOOPBACK_REDIRECT);
      expect(back.searchParams.get('error'), url.search).toBe(error);
      expect(back.searchParams.get('state')).toBe('state-1');
      expect(back.searchParams.get('iss')).toBe(issuer);
      expect(back.searchParams.get('code')).toBeNull();
    }
  });
});

describe('the consent page', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = (await registerClient(issuer, { client_name: 'Claude <Code>' })).client_id;
  });
  const fresh = () => openConsent(authorizationUrl(issuer, { clientId, challenge: pkce().challenge }));

  test("the relay's own page: names the app and where it returns, a relay_key field, never framed, no external assets", async () => {
    const page = await fresh();
    expect(page.status).toBe(200);
    expect(page.html).toContain('Claude &lt;Code&gt;');
    expect(page.html).not.toContain('<Code>');
    expect(page.html).toContain('127.0.0.1:7777');
    expect(page.html).toContain('your own computer');
    expect(page.html).toMatch(/<input type="password" id="relay_key" name="relay_key"/);
    expect(page.fields.csrf).toMatch(/^\d+\.[A-Za-z0-9_-]{43}$/);
    expect(page.fields.code_challenge).toBeDefined();
    expect(page.html).not.toMatch(/<script|<img|<link|src=|@import|url\(/i);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'self' http://127.0.0.1:7777");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.cookie).toMatch(/^relay_consent=[A-Za-z0-9_-]{43}$/);
    expect(page.headers.get('set-cookie')).toContain('SameSite=Strict');
  });

  test('the right relay key: 303 to the callback with code, state and iss', async () => {
    const answer = await postConsent(await fresh(), issuer, RELAY_KEY);
    expect(answer.status).toBe(303);
    const back = new URL(answer.location!);
    expect(back.origin + back.pathname).toBe(LOOPBACK_REDIRECT);
    expect(back.searchParams.get('code')).toMatch(/^rly_code_/);
    expect(back.searchParams.get('state')).toBe('state-1');
    expect(back.searchParams.get('iss')).toBe(issuer);
    expect(relay.logs.join('')).toContain('oauth consent: allowed');
  });

  test('a wrong relay key (or the OpenAI key) shows the form again with an error, and no redirect', async () => {
    for (const key of ['not-the-right-key-000000', 'sk-test-server-key-0123456789abcdef', '']) {
      const page = await fresh();
      const answer = await postConsent(page, issuer, key);
      expect(answer.status).toBe(401);
      noRedirect(answer);
      expect(answer.html).toContain('not a relay key of this relay');
      expect(answer.html).toContain('name="relay_key"');
    }
    expect(relay.logs.join('')).not.toContain('not-the-right-key-000000');
    expect(upstream).toEqual([]);
  });

  test('refused: no anti-CSRF token, a token for other parameters, no cookie, or a foreign Origin', async () => {
    const cases: [string, (page: Awaited<ReturnType<typeof fresh>>) => Promise<ConsentAnswer>][] = [
      ['no csrf', (p) => postConsent(p, issuer, RELAY_KEY, { changes: { csrf: undefined } })],
      ['csrf of another request', (p) => postConsent(p, issuer, RELAY_KEY, { changes: { state: 'other-state' } })],
      ['no cookie', (p) => postConsent(p, issuer, RELAY_KEY, { cookie: null })],
      ['another browser', (p) => postConsent(p, issuer, RELAY_KEY, { cookie: `relay_consent=${'A'.repeat(43)}` })],
      ['foreign origin', (p) => postConsent(p, issuer, RELAY_KEY, { origin: 'https://evil.example.com' })],
      ['null origin', (p) => postConsent(p, issuer, RELAY_KEY, { origin: 'null' })],
    ];
    for (const [name, post] of cases) {
      const answer = await post(await fresh());
      expect(answer.status, name).toBe(403);
      noRedirect(answer);
    }
    // No Origin header at all (older browsers): the anti-CSRF token alone decides.
    expect((await postConsent(await fresh(), issuer, RELAY_KEY, { origin: null })).status).toBe(303);
  });

  test('Cancel: back to the app with access_denied', async () => {
    const answer = await postConsent(await fresh(), issuer, '', { changes: { decision: 'deny' } });
    expect(answer.status).toBe(303);
    expect(new URL(answer.location!).searchParams.get('error')).toBe('access_denied');
  });
});

test('wrong relay keys are counted: after five in a minute even the right key is refused (429), with no redirect', async () => {
  const guarded = await startOAuthRelay();
  const own = guarded.issuer;
  try {
    const clientId = (await registerClient(own)).client_id;
    const page = () => openConsent(authorizationUrl(own, { clientId, challenge: pkce().challenge }));
    for (let i = 0; i < 5; i++) expect((await postConsent(await page(), own, `wrong-key-guess-${i}-000000`)).status).toBe(401);
    const blocked = await postConsent(await page(), own, RELAY_KEY);
    expect(blocked.status).toBe(429);
    noRedirect(blocked);
    expect(blocked.html).toContain('Too many wrong relay keys');
  } finally {
    await guarded.shutdown();
  }
});
