import { describe, expect, test } from 'vitest';
import { attemptLimiter } from '../src/auth/oauth/attempt-limiter.ts';
import { oauthEndpoints, sameResource } from '../src/auth/oauth/metadata.ts';
import { DEFAULT_REDIRECT_HOSTS, parseRedirectRules, redirectUriProblem, redirectUriRegistered } from '../src/auth/oauth/redirect-uris.ts';
import { ConfigError, loadConfig } from '../src/config.ts';

/** The pure rules under the authorization server: redirect URIs, resources, attempt limits, configuration. */

const rules = parseRedirectRules([...DEFAULT_REDIRECT_HOSTS]);
const base = { OPENAI_API_KEY: 'sk-policy-test-key-0123456789abcdef', RELAY_KEY: 'relay-policy-key-0123456789' };

describe('redirect URIs', () => {
  test.each([
    ['https://chatgpt.com/connector/oauth/OUbdUMlL15Ct', true],
    ['https://chatgpt.com/connector_platform_oauth_redirect', true],
    ['https://claude.ai/api/mcp/auth_callback', true],
    ['https://claude.com/api/mcp/auth_callback', true],
    ['http://127.0.0.1:33418/callback', true],
    ['http://localhost:8976/oauth/callback', true],
    ['http://[::1]:5000/cb', true],
    ['https://chatgpt.com/connector/other', false],
    ['https://chatgpt.com.evil.example/connector/oauth/x', false],
    ['https://evilchatgpt.com/connector/oauth/x', false],
    ['https://chatgpt.com:8443/connector/oauth/x', false],
    ['https://user:pw@chatgpt.com/connector/oauth/x', false],
    ['https://chatgpt.com/connector/oauth/../../steal', false],
    ['https://chatgpt.com/connector/oauth/x#frag', false],
    ['http://chatgpt.com/connector/oauth/x', false],
    ['http://10.0.0.1/cb', false],
    ['https://1.2.3.4/cb', false],
    ['myapp://callback', false],
    ['', false],
  ])('%s allowed: %s', (uri, allowed) => {
    expect(redirectUriProblem(uri, rules) === undefined).toBe(allowed);
  });

  test('a request must name a registered URI exactly; on loopback any port will do (RFC 8252 §7.3)', () => {
    const registered = ['http://127.0.0.1:3000/cb', 'https://claude.ai/api/mcp/auth_callback'];
    expect(redirectUriRegistered('http://127.0.0.1:51111/cb', registered)).toBe(true);
    expect(redirectUriRegistered('http://127.0.0.1/cb', registered)).toBe(true);
    expect(redirectUriRegistered('http://127.0.0.1:3000/other', registered)).toBe(false);
    expect(redirectUriRegistered('http://localhost:3000/cb', registered)).toBe(false);
    expect(redirectUriRegistered('https://claude.ai/api/mcp/auth_callback', registered)).toBe(true);
    expect(redirectUriRegistered('https://claude.ai/api/mcp/auth_callback?x=1', registered)).toBe(false);
  });

  test('OAUTH_REDIRECT_HOSTS entries: a host with an optional path prefix, nothing else', () => {
    expect(parseRedirectRules(['Example.com', 'chatgpt.com/connector/oauth/'])).toEqual([
      { host: 'example.com', pathPrefix: '/' },
      { host: 'chatgpt.com', pathPrefix: '/connector/oauth/' },
    ]);
    for (const bad of ['https://example.com', '*.example.com', 'localhost', 'example.com/a?b', 'exa mple.com']) {
      expect(() => parseRedirectRules([bad]), bad).toThrow(/OAUTH_REDIRECT_HOSTS/);
    }
  });
});

describe('configuration', () => {
  test('OAuth settings: defaults, and bad values refused with sentences', () => {
    const config = loadConfig(base);
    expect(config.oauth).toMatchObject({ enabled: true, accessTokenTtlS: 3600, refreshTokenTtlS: 30 * 86_400 });
    expect(config.oauth.redirectRules).toEqual(rules);
    for (const [env, text] of [
      [{ OAUTH_REDIRECT_HOSTS: 'https://x.example.com' }, 'OAUTH_REDIRECT_HOSTS'],
      [{ OAUTH_ACCESS_TOKEN_TTL_S: '0' }, 'OAUTH_ACCESS_TOKEN_TTL_S'],
      [{ OAUTH_REFRESH_TOKEN_TTL_S: 'soon' }, 'OAUTH_REFRESH_TOKEN_TTL_S'],
      [{ MCP_OAUTH: 'maybe' }, 'MCP_OAUTH'],
    ] as const) {
      let thrown: unknown;
      try {
        loadConfig({ ...base, ...env });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).message).toContain(text);
    }
  });

  test('the issuer is PUBLIC_BASE_URL (or Render’s URL); without one, or with a path or plain http off loopback, OAuth is off with a reason', () => {
    expect(oauthEndpoints(loadConfig({ ...base, PUBLIC_BASE_URL: 'https://relay.example.com/' }))).toMatchObject({
      issuer: 'https://relay.example.com',
      resource: 'https://relay.example.com/mcp',
      resourceMetadataUrl: 'https://relay.example.com/.well-known/oauth-protected-resource/mcp',
    });
    expect(oauthEndpoints(loadConfig({ ...base, RENDER_EXTERNAL_URL: 'https://relay.onrender.com' }))).toMatchObject({ issuer: 'https://relay.onrender.com' });
    expect(oauthEndpoints(loadConfig({ ...base, PUBLIC_BASE_URL: 'http://localhost:8000' }))).toMatchObject({ issuer: 'http://localhost:8000' });
    for (const [env, reason] of [
      [{}, 'PUBLIC_BASE_URL is not set'],
      [{ PUBLIC_BASE_URL: 'https://relay.example.com/base' }, 'has a path'],
      [{ PUBLIC_BASE_URL: 'http://relay.example.com' }, 'needs https'],
      [{ PUBLIC_BASE_URL: 'https://relay.example.com', MCP_OAUTH: 'off' }, 'MCP_OAUTH=off'],
      [{ PUBLIC_BASE_URL: 'https://relay.example.com', RELAY_AUTH: 'off' }, 'RELAY_AUTH=off'],
    ] as const) {
      const endpoints = oauthEndpoints(loadConfig({ ...base, ...env }));
      expect('off' in endpoints && endpoints.off).toContain(reason);
    }
  });
});

test('resources: case of scheme and host and a trailing slash do not matter; anything else does', () => {
  const resource = 'https://relay.example.com/mcp';
  for (const same of ['https://relay.example.com/mcp', 'HTTPS://Relay.Example.com/mcp', 'https://relay.example.com/mcp/', 'https://relay.example.com:443/mcp']) {
    expect(sameResource(same, resource), same).toBe(true);
  }
  for (const other of ['https://relay.example.com', 'https://relay.example.com/MCP', 'https://relay.example.com/mcp?x=1', 'https://relay.example.com/mcp#f', 'http://relay.example.com/mcp', 'not a url']) {
    expect(sameResource(other, resource), other).toBe(false);
  }
});

test('attempt limits: per source and in all, over a sliding window', () => {
  const clock = { now: 0 };
  const limiter = attemptLimiter({ perSource: 2, total: 3, windowMs: 1000, now: () => clock.now });
  limiter.hit('a');
  limiter.hit('a');
  expect(limiter.blocked('a')).toBe(true);
  expect(limiter.blocked('b')).toBe(false);
  limiter.hit('b');
  expect(limiter.blocked('c')).toBe(true);
  clock.now = 1001;
  expect(limiter.blocked('a')).toBe(false);
  expect(limiter.blocked('c')).toBe(false);
});
