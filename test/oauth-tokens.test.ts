import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from './helpers/child-relay.ts';
import { useMockOpenAI } from './helpers/mock-openai.ts';
import {
  authorizationUrl,
  connectWithOAuth,
  consentWith,
  LOOPBACK_REDIRECT,
  mcpToolsList,
  pkce,
  registerClient,
  startOAuthRelay,
  type OAuthRelay,
  tokenRequest,
} from './helpers/oauth.ts';
import { RELAY_KEY, RELAY_KEY_2, startTestRelay } from './helpers/relay.ts';

/**
 * From code to /mcp: the token endpoint (PKCE, single-use codes, resource binding, client
 * authentication, rotating refresh tokens), revocation, and what a token is on /mcp and elsewhere.
 * The OAuth clock is the test's, so expiry needs no waiting.
 */
const { upstream } = useMockOpenAI();

const clock = { now: Date.now() };
const now = () => clock.now;
let relay: OAuthRelay;
let issuer: string;
beforeAll(async () => {
  relay = await startOAuthRelay({ LOG_LEVEL: 'info', OAUTH_ACCESS_TOKEN_TTL_S: '600' }, { oauth: { now } });
  issuer = relay.issuer;
});
afterAll(() => relay.shutdown());

const errorOf = async (res: Response) => ((await res.json()) as { error: string; error_description: string }).error;

/** A code for a fresh client, with what the token request needs. */
async function codeFor(metadata: Record<string, unknown> = {}) {
  const client = await registerClient(issuer, metadata);
  const { verifier, challenge } = pkce();
  const callback = await consentWith(authorizationUrl(issuer, { clientId: client.client_id, challenge }), issuer, RELAY_KEY);
  const code = callback.searchParams.get('code')!;
  const params = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: LOOPBACK_REDIRECT, client_id: client.client_id, resource: `${issuer}/mcp` };
  return { client, params };
}

describe('the token endpoint', () => {
  test('a good exchange: Bearer token for /mcp, a refresh token, never cached', async () => {
    const { params } = await codeFor();
    const res = await tokenRequest(issuer, params);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ access_token: expect.stringMatching(/^rly_at_/), token_type: 'Bearer', expires_in: 600, refresh_token: expect.stringMatching(/^rly_rt_/), scope: 'mcp' });
  });

  test('a wrong code verifier is refused (invalid_grant)', async () => {
    const { params } = await codeFor();
    const res = await tokenRequest(issuer, { ...params, code_verifier: pkce().verifier });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toBe('invalid_grant');
  });

  test('a reused code is refused, and what it issued is revoked', async () => {
    const { params } = await codeFor();
    const first = (await (await tokenRequest(issuer, params)).json()) as { access_token: string; refresh_token: string };
    expect((await mcpToolsList(issuer, first.access_token)).status).toBe(200);
    const again = await tokenRequest(issuer, params);
    expect(again.status).toBe(400);
    expect(await errorOf(again)).toBe('invalid_grant');
    expect((await mcpToolsList(issuer, first.access_token)).status).toBe(401);
    const refresh = await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: params.client_id });
    expect(await errorOf(refresh)).toBe('invalid_grant');
  });

  test('a wrong resource (RFC 8707), another redirect_uri, another client: refused', async () => {
    const wrongResource = await codeFor();
    const res = await tokenRequest(issuer, { ...wrongResource.params, resource: 'https://other.example.com/mcp' });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toBe('invalid_target');

    const wrongRedirect = await codeFor();
    expect(await errorOf(await tokenRequest(issuer, { ...wrongRedirect.params, redirect_uri: 'http://127.0.0.1:7777/other' }))).toBe('invalid_grant');

    const stolen = await codeFor();
    const thief = await registerClient(issuer);
    expect(await errorOf(await tokenRequest(issuer, { ...stolen.params, client_id: thief.client_id }))).toBe('invalid_grant');
  });

  test('an expired code (older than 60 s) is refused', async () => {
    const { params } = await codeFor();
    clock.now += 61_000;
    expect(await errorOf(await tokenRequest(issuer, params))).toBe('invalid_grant');
  });

  test('client authentication: an unknown client is 401; a confidential client needs its secret, by Basic or in the form', async () => {
    const unknown = await tokenRequest(issuer, { grant_type: 'authorization_code', code: 'x', client_id: 'rcl_nobody' });
    expect(unknown.status).toBe(401);
    expect(await errorOf(unknown)).toBe('invalid_client');

    const { client, params } = await codeFor({ token_endpoint_auth_method: 'client_secret_basic' });
    const { client_id: _id, ...withoutId } = params;
    expect((await tokenRequest(issuer, params)).status).toBe(401);
    expect((await tokenRequest(issuer, { ...params, client_secret: 'rcs_wrong' })).status).toBe(401);
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
    const ok = await tokenRequest(issuer, withoutId, { authorization: basic });
    expect(ok.status).toBe(200);

    const post = await codeFor({ token_endpoint_auth_method: 'client_secret_post' });
    expect((await tokenRequest(issuer, { ...post.params, client_secret: post.client.client_secret })).status).toBe(200);
  });

  test('unsupported grant types, form encoding required, GET refused', async () => {
    expect(await errorOf(await tokenRequest(issuer, { grant_type: 'password', client_id: (await registerClient(issuer)).client_id }))).toBe('unsupported_grant_type');
    const json = await fetch(`${issuer}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(await errorOf(json)).toBe('invalid_request');
    expect((await fetch(`${issuer}/oauth/token`)).status).toBe(405);
  });
});

describe('tokens on /mcp and elsewhere', () => {
  test('an access token acts as its relay key on /mcp: the request is logged under that key', async () => {
    const connected = await connectWithOAuth(issuer, RELAY_KEY_2);
    const res = await mcpToolsList(issuer, connected.access);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: { tools: unknown[] } }).result.tools.length).toBeGreaterThan(0);
    const line = relay.logs.filter((l) => l.includes('"op":"mcp:tools/list"') && l.includes('"status":200')).at(-1)!;
    expect(JSON.parse(line).key).toBe('key-2');
    expect(relay.logs.join('')).not.toContain(connected.access);
  });

  test('a token on /v1/models is a 401 saying tokens work on /mcp only; nothing goes upstream', async () => {
    const { access } = await connectWithOAuth(issuer, RELAY_KEY);
    const res = await fetch(`${issuer}/v1/models`, { headers: { authorization: `Bearer ${access}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('/mcp only');
    const action = await fetch(`${issuer}/v1/proxy`, { method: 'POST', headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' }, body: '{"method":"GET","path":"/v1/models"}' });
    expect(action.status).toBe(401);
    expect(upstream).toEqual([]);
  });

  test('an expired token is refused with invalid_token; the refresh token still works', async () => {
    const { access, refresh, clientId } = await connectWithOAuth(issuer, RELAY_KEY);
    expect((await mcpToolsList(issuer, access)).status).toBe(200);
    clock.now += 601_000;
    const expired = await mcpToolsList(issuer, access);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", resource_metadata="${issuer}/.well-known/oauth-protected-resource/mcp", scope="mcp"`);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toContain('expired');
    const renewed = (await (await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: refresh, client_id: clientId })).json()) as { access_token: string };
    expect((await mcpToolsList(issuer, renewed.access_token)).status).toBe(200);
  });

  test('refresh tokens rotate: the old one is refused, and its reuse revokes the connection', async () => {
    const { refresh, clientId } = await connectWithOAuth(issuer, RELAY_KEY);
    const next = (await (await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: refresh, client_id: clientId, resource: `${issuer}/mcp` })).json()) as {
      access_token: string;
      refresh_token: string;
    };
    expect(next.refresh_token).not.toBe(refresh);
    expect((await mcpToolsList(issuer, next.access_token)).status).toBe(200);
    expect(await errorOf(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: refresh, client_id: clientId }))).toBe('invalid_grant');
    expect((await mcpToolsList(issuer, next.access_token)).status).toBe(401);
    expect(await errorOf(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: next.refresh_token, client_id: clientId }))).toBe('invalid_grant');
  });

  test("revocation (RFC 7009): a client's own token ends its grant at once; another client's or an unknown token changes nothing", async () => {
    const mine = await connectWithOAuth(issuer, RELAY_KEY);
    const other = await registerClient(issuer);
    const revoke = (token: string, clientId: string) =>
      fetch(`${issuer}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, client_id: clientId }) });
    expect((await revoke(mine.access, other.client_id)).status).toBe(200);
    expect((await mcpToolsList(issuer, mine.access)).status).toBe(200);
    expect((await revoke('rly_at_unknown', mine.clientId)).status).toBe(200);
    expect((await revoke(mine.access, mine.clientId)).status).toBe(200);
    expect((await mcpToolsList(issuer, mine.access)).status).toBe(401);
    expect(await errorOf(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: mine.refresh, client_id: mine.clientId }))).toBe('invalid_grant');
  });

  test('static relay keys keep working on /mcp', async () => {
    expect((await mcpToolsList(issuer, RELAY_KEY)).status).toBe(200);
  });
});

describe('grants live in the database', () => {
  const sharedDb = () => join(mkdtempSync(join(tmpdir(), 'relay-oauth-')), 'usage.sqlite');

  test('a relay key removed from the configuration (or rotated under its label) takes its tokens with it', async () => {
    const db = sharedDb();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = { PORT: String(port), PUBLIC_BASE_URL: base, LOG_LEVEL: 'silent', USAGE_DB_PATH: db };
    const first = await startTestRelay({ ...env, RELAY_KEY: `alice:${RELAY_KEY},bob:${RELAY_KEY_2}` });
    const alice = await connectWithOAuth(base, RELAY_KEY);
    const bob = await connectWithOAuth(base, RELAY_KEY_2);
    await first.shutdown();

    // Restarted with the same database: tokens survive a restart...
    const same = await startTestRelay({ ...env, RELAY_KEY: `alice:${RELAY_KEY},bob:${RELAY_KEY_2}` });
    expect((await mcpToolsList(base, alice.access)).status).toBe(200);
    await same.shutdown();

    // ...but not the removal of alice's key, nor a new key for bob under the same label.
    const rotated = await startTestRelay({ ...env, RELAY_KEY: `bob:bob-new-relay-key-0123456789` });
    try {
      for (const token of [alice.access, bob.access]) {
        const res = await mcpToolsList(base, token);
        expect(res.status).toBe(401);
        expect(((await res.json()) as { error: { message: string } }).error.message).toContain('no longer configured');
      }
      expect(await errorOf(await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: alice.refresh, client_id: alice.clientId }))).toBe('invalid_grant');
    } finally {
      await rotated.shutdown();
    }
  });

  test('two replicas on one database: a revocation on one is seen by the other within the 30 s cache', async () => {
    const db = sharedDb();
    const shared = { now: Date.now() };
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTestRelay({ PORT: String(portA), PUBLIC_BASE_URL: `http://127.0.0.1:${portA}`, LOG_LEVEL: 'silent', USAGE_DB_PATH: db }, { oauth: { now: () => shared.now } });
    const b = await startTestRelay({ PORT: String(portB), PUBLIC_BASE_URL: `http://127.0.0.1:${portA}`, LOG_LEVEL: 'silent', USAGE_DB_PATH: db }, { oauth: { now: () => shared.now } });
    try {
      const issuerA = `http://127.0.0.1:${portA}`;
      const c = await connectWithOAuth(issuerA, RELAY_KEY);
      const onB = () => mcpToolsList(`http://127.0.0.1:${portB}`, c.access);
      expect((await onB()).status).toBe(200);
      await fetch(`${issuerA}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: c.refresh, client_id: c.clientId }) });
      expect((await mcpToolsList(issuerA, c.access)).status).toBe(401);
      expect((await onB()).status).toBe(200);
      shared.now += 30_000;
      expect((await onB()).status).toBe(401);
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  });
});
