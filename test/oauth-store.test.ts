import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { describe, expect, test } from 'vitest';
import { configKeySource } from '../src/auth/key-source.ts';
import { openGrantStore, type Grant, type GrantStore } from '../src/auth/oauth/store.ts';
import { openLedgerStore } from '../src/ops/ledger.ts';
import { MIGRATIONS } from '../src/ops/migrations/index.ts';
import { useMockOpenAI } from './helpers/mock-openai.ts';
import { connectWithOAuth, mcpToolsList, startOAuthRelay, tokenRequest } from './helpers/oauth.ts';
import { useFreshSchemas } from './helpers/pg-schemas.ts';
import { RELAY_KEY } from './helpers/relay.ts';

/**
 * The grant store's contract, on both engines: SQLite (a temporary file) and PostgreSQL
 * (TEST_DATABASE_URL from .ci/services.sh, a fresh schema per test, dropped at the end).
 */
const PG_URL = process.env.TEST_DATABASE_URL || undefined;
if (!PG_URL) console.warn('oauth-store.test.ts: TEST_DATABASE_URL is not set — the PostgreSQL grant store tests are SKIPPED.');

useMockOpenAI();

const schemas = useFreshSchemas('oauth_test', PG_URL);
const stores = { push: (store: GrantStore) => schemas.closeLater(() => store.close()) };

const engines = [
  {
    name: 'SQLite',
    skip: false,
    open: async (path = join(mkdtempSync(join(tmpdir(), 'relay-grants-')), 'usage.sqlite')) => ({ store: await openGrantStore({ sqlitePath: path }), path }),
  },
  {
    name: 'PostgreSQL',
    skip: !PG_URL,
    open: async (schema = schemas.next()) => {
      schemas.adopt(schema);
      return { store: await openGrantStore({ databaseUrl: PG_URL, sqlitePath: 'unused', schema }), path: schema };
    },
  },
];

const T0 = 1_800_000_000_000;
const grant = (id: string, clientId = 'rcl_a'): Grant => ({
  grantId: id,
  clientId,
  keyId: 'cfg_key',
  scope: 'mcp',
  resource: 'https://relay.example.com/mcp',
  redirectUri: 'http://127.0.0.1:1/cb',
  codeChallenge: 'c'.repeat(43),
  createdAt: T0,
});

for (const engine of engines) {
  describe.skipIf(engine.skip)(`grant store on ${engine.name}`, () => {
    const open = async (where?: string) => {
      const opened = await engine.open(where);
      stores.push(opened.store);
      return opened;
    };

    test('clients round-trip; an unknown client is undefined', async () => {
      const { store } = await open();
      const metadata = { redirect_uris: ['http://127.0.0.1:1/cb'], token_endpoint_auth_method: 'none' as const, grant_types: ['authorization_code'], response_types: ['code'], client_name: 'Zoë' };
      await store.saveClient({ clientId: 'rcl_a', metadata, createdAt: T0 });
      expect(await store.findClient('rcl_a')).toEqual({ clientId: 'rcl_a', secretHash: undefined, metadata, createdAt: T0 });
      expect(await store.findClient('rcl_b')).toBeUndefined();
    });

    test('a code is spent once: then it is a replay; an expired or unknown code is invalid', async () => {
      const { store } = await open();
      await store.createGrant(grant('g1'), { hash: 'code1', expiresAt: T0 + 60_000 });
      const spent = await store.redeemCode('code1', T0 + 1);
      expect(spent).toEqual({ kind: 'ok', grant: { ...grant('g1'), revokedAt: undefined } });
      expect(await store.redeemCode('code1', T0 + 2)).toEqual({ kind: 'reused', grantId: 'g1' });
      await store.createGrant(grant('g2'), { hash: 'code2', expiresAt: T0 + 60_000 });
      expect(await store.redeemCode('code2', T0 + 60_000)).toEqual({ kind: 'invalid' });
      expect(await store.redeemCode('nope', T0)).toEqual({ kind: 'invalid' });
    });

    test('refresh tokens are spent once; access tokens cannot be spent as refresh tokens; a revoked grant spends nothing', async () => {
      const { store } = await open();
      await store.createGrant(grant('g1'), { hash: 'c', expiresAt: T0 + 1 });
      await store.addTokens('g1', [
        { hash: 'at1', kind: 'access', expiresAt: T0 + 3_600_000 },
        { hash: 'rt1', kind: 'refresh', expiresAt: T0 + 86_400_000 },
        { hash: 'rt2', kind: 'refresh', expiresAt: T0 + 86_400_000 },
      ]);
      expect(await store.spendRefreshToken('at1', T0)).toEqual({ kind: 'invalid' });
      expect((await store.spendRefreshToken('rt1', T0)).kind).toBe('ok');
      expect(await store.spendRefreshToken('rt1', T0)).toEqual({ kind: 'reused', grantId: 'g1' });
      expect(await store.findToken('at1')).toMatchObject({ kind: 'access', expiresAt: T0 + 3_600_000, grant: { grantId: 'g1', revokedAt: undefined } });
      expect(await store.findToken('rt1')).toMatchObject({ kind: 'refresh', usedAt: T0 });
      await store.revokeGrant('g1', T0 + 5);
      expect((await store.findToken('at1'))!.grant.revokedAt).toBe(T0 + 5);
      expect(await store.spendRefreshToken('rt2', T0 + 6)).toEqual({ kind: 'invalid' });
    });

    test('purge: expired codes and tokens, grants with nothing left, clients never used; the rest stays', async () => {
      const { store } = await open();
      const meta = { redirect_uris: ['http://127.0.0.1:1/cb'], token_endpoint_auth_method: 'none' as const, grant_types: ['authorization_code'], response_types: ['code'] };
      await store.saveClient({ clientId: 'rcl_used', metadata: meta, createdAt: T0 });
      await store.saveClient({ clientId: 'rcl_unused', metadata: meta, createdAt: T0 });
      await store.createGrant(grant('live', 'rcl_used'), { hash: 'c1', expiresAt: T0 + 60_000 });
      await store.addTokens('live', [{ hash: 'rt-live', kind: 'refresh', expiresAt: T0 + 10 * 86_400_000 }]);
      await store.createGrant(grant('dead', 'rcl_used'), { hash: 'c2', expiresAt: T0 + 60_000 });
      await store.addTokens('dead', [{ hash: 'at-dead', kind: 'access', expiresAt: T0 + 3_600_000 }]);
      await store.purge(T0 + 2 * 86_400_000, { unusedClientMs: 86_400_000 });
      expect(await store.findToken('rt-live')).toBeDefined();
      expect(await store.findToken('at-dead')).toBeUndefined();
      expect(await store.redeemCode('c1', T0)).toEqual({ kind: 'invalid' });
      expect(await store.findClient('rcl_used')).toBeDefined();
      expect(await store.findClient('rcl_unused')).toBeUndefined();
    });

    test('a named secret is made once and shared by every store on the database', async () => {
      const { store, path } = await open();
      const first = await store.secret('s', () => 'one');
      expect(first).toBe('one');
      expect(await store.secret('s', () => 'two')).toBe('one');
      const { store: second } = await open(path);
      expect(await second.secret('s', () => 'three')).toBe('one');
    });
  });
}

test('the ledger and the grant store share one SQLite file: each applies what is missing, once', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'relay-grants-')), 'usage.sqlite');
  const ledger = await openLedgerStore({ sqlitePath: path, sqliteThread: false });
  const grants = await openGrantStore({ sqlitePath: path });
  stores.push(grants);
  await ledger.migrate();
  await ledger.close();
  const db = new DatabaseSync(path);
  try {
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all().map((r) => Number(r.version));
    expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'oauth_%' ORDER BY name").all().map((r) => r.name)).toEqual([
      'oauth_clients',
      'oauth_codes',
      'oauth_grants',
      'oauth_secrets',
      'oauth_tokens',
    ]);
  } finally {
    db.close();
  }
});

test('key ids: stable for a key, different for another key under the same label, none for a key no longer configured', async () => {
  const before = configKeySource([{ label: 'alice', key: 'alice-key-0123456789abcdef' }]);
  const after = configKeySource([{ label: 'alice', key: 'alice-new-key-0123456789ab' }]);
  const ref = (await before.match('alice-key-0123456789abcdef'))!;
  expect(ref.label).toBe('alice');
  expect(ref.id).toMatch(/^cfg_[A-Za-z0-9_-]{32}$/);
  expect(ref.id).not.toContain('alice-key');
  expect(await before.byId(ref.id)).toEqual(ref);
  expect(await after.byId(ref.id)).toBeUndefined();
  expect(await before.match('alice-key-0123456789abcdeX')).toBeUndefined();
});

describe.skipIf(!PG_URL)('the OAuth flow with the grants in PostgreSQL', () => {
  test('consent, token, /mcp, refresh, revocation: all through a relay on DATABASE_URL', async () => {
    const schema = schemas.next();
    const relay = await startOAuthRelay({ DATABASE_URL: PG_URL!, USAGE_LEDGER: 'off' }, { oauth: { schema } });
    const { issuer } = relay;
    try {
      const c = await connectWithOAuth(issuer, RELAY_KEY);
      expect((await mcpToolsList(issuer, c.access)).status).toBe(200);
      const refreshed = (await (await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: c.refresh, client_id: c.clientId })).json()) as { access_token: string; refresh_token: string };
      expect((await mcpToolsList(issuer, refreshed.access_token)).status).toBe(200);
      await fetch(`${issuer}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: refreshed.access_token, client_id: c.clientId }) });
      expect((await mcpToolsList(issuer, refreshed.access_token)).status).toBe(401);
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT token_hash, kind FROM "${schema}".oauth_tokens`);
        expect(rows.length).toBe(4);
        // Stored as hashes only: no token appears in the table.
        expect(JSON.stringify(rows)).not.toContain('rly_');
      } finally {
        await client.end();
      }
    } finally {
      await relay.shutdown();
    }
  });
});
