import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { connectWithOAuth, mcpToolsList, startOAuthRelay, type OAuthRelay } from './helpers/oauth.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay } from './helpers/relay.ts';

/**
 * Keys managed without a restart (issue 19, item 4): the admin API under /v1/relay/keys. A created key
 * works at once on both doors (the pass-through fast path and the Hono app), a rotated key's old secret is
 * refused at once or after its overlap, a revoked key is refused at once and takes its OAuth connections
 * with it, RELAY_KEY's keys are listed read-only, and no secret ever appears in a list or a log line.
 */

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const { server } = useMockOpenAI();
const MODELS = { object: 'list', data: [{ id: 'gpt-5', object: 'model', created: 1, owned_by: 'openai' }] };
const EMBEDDING = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.5] }], model: 'text-embedding-3-small', usage: { prompt_tokens: 7, total_tokens: 7 } };

/** The clock of key overlaps (advanced by the rotation test). */
let clock = Date.now();
let relay: OAuthRelay;
beforeAll(async () => {
  relay = await startOAuthRelay({ RELAY_KEY: `alice:${RELAY_KEY},bob:${RELAY_KEY_2}`, RELAY_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'info' }, { keys: { now: () => clock } });
});
afterAll(() => relay.shutdown());

const mockUpstream = () =>
  server.use(
    http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json(MODELS)),
    http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json(EMBEDDING)),
  );
const admin = (path: string, init: { method?: string; body?: unknown; key?: string } = {}) =>
  fetch(relay.url + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${init.key ?? ADMIN_KEY}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
/** GET /v1/models (the pass-through door) and POST /v1/proxy (the Hono app): the two statuses. */
async function statuses(key: string): Promise<[number, number]> {
  mockUpstream();
  const direct = await fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  await direct.arrayBuffer();
  const proxied = await fetch(`${relay.url}/v1/proxy`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'POST', path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'x' } }),
  });
  await proxied.arrayBuffer();
  return [direct.status, proxied.status];
}
async function create(label: string): Promise<{ id: string; key: string; label: string; created_at: number; object: string }> {
  const res = await admin('/v1/relay/keys', { body: { label } });
  expect(res.status, await res.clone().text()).toBe(201);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return (await res.json()) as never;
}
const list = async () => ((await (await admin('/v1/relay/keys')).json()) as { object: string; data: Record<string, unknown>[] });
const issued: string[] = [];

/** An error in OpenAI's shape with this status: its `error` object. */
async function expectOpenAIError(res: Response, status: number): Promise<{ message: string; type: string; param: string | null; code: string | null }> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.message.length).toBeGreaterThan(20);
  return body.error;
}

describe('creating a key', () => {
  test('201 with id, label and the secret once; it works at once on both doors, under its label', async () => {
    const before = Math.floor(clock / 1000);
    const created = await create('Support-GPT');
    issued.push(created.key);
    expect(created).toMatchObject({ object: 'relay.key', label: 'support-gpt', rotated_at: null, previous_key_expires_at: null });
    expect(created.id).toMatch(/^key_[A-Za-z0-9_-]{16}$/);
    expect(created.key).toMatch(/^rly_sk_[A-Za-z0-9_-]{43}$/);
    expect(created.created_at).toBeGreaterThanOrEqual(before);
    expect(await statuses(created.key)).toEqual([200, 200]);
    // The request line names the key's label (never the key).
    expect(relay.logs.join('')).toMatch(/"key":"support-gpt","op":"listModels","status":200/);
    // X-Relay-Key works as for RELAY_KEY's keys.
    mockUpstream();
    expect((await fetch(`${relay.url}/v1/models`, { headers: { 'x-relay-key': created.key } })).status).toBe(200);
  });

  test('the list: RELAY_KEY keys read-only, managed keys with created and last used; never a secret', async () => {
    const created = await create('lister');
    issued.push(created.key);
    expect(await statuses(created.key)).toEqual([200, 200]);
    const { object, data } = await list();
    expect(object).toBe('list');
    const byLabel = Object.fromEntries(data.map((k) => [k.label, k]));
    expect(byLabel.alice).toMatchObject({ object: 'relay.key', source: 'relay_key', read_only: true, status: 'active', created_at: null });
    expect(byLabel.alice!.id).toMatch(/^cfg_/);
    expect(byLabel.lister).toMatchObject({ id: created.id, source: 'managed', read_only: false, status: 'active', created_at: created.created_at, revoked_at: null });
    expect(byLabel.lister!.last_used_at).toBeGreaterThanOrEqual(created.created_at);
    expect(Object.keys(byLabel.lister!).sort()).toEqual(['created_at', 'id', 'label', 'last_used_at', 'object', 'read_only', 'revoked_at', 'rotated_at', 'source', 'status']);
    const text = JSON.stringify(data);
    for (const secret of [...issued, RELAY_KEY, RELAY_KEY_2, ADMIN_KEY]) expect(text).not.toContain(secret);
  });

  test('labels: a RELAY_KEY label, a live key\'s label, reserved and malformed labels are refused with a sentence', async () => {
    const clash = await expectOpenAIError(await admin('/v1/relay/keys', { body: { label: 'alice' } }), 409);
    expect(clash).toMatchObject({ code: 'label_in_use', param: 'label' });
    expect(clash.message).toContain('RELAY_KEY');
    await create('twice');
    const again = await expectOpenAIError(await admin('/v1/relay/keys', { body: { label: 'TWICE' } }), 409);
    expect(again.message).toMatch(/rotate it|revoke it/);
    for (const label of ['admin', 'anonymous']) expect((await expectOpenAIError(await admin('/v1/relay/keys', { body: { label } }), 400)).code).toBe('invalid_label');
    for (const label of ['-x', 'a b', 'é', 'x'.repeat(65), '']) expect((await admin('/v1/relay/keys', { body: { label } })).status).toBe(400);
    expect((await admin('/v1/relay/keys', { body: { label: 'ok', extra: 1 } })).status).toBe(400);
    expect((await admin('/v1/relay/keys', { body: {} })).status).toBe(400);
  });

  test('malformed requests: not JSON, too large', async () => {
    const notJson = await fetch(`${relay.url}/v1/relay/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'text/plain' }, body: 'label=x' });
    expect(notJson.status).toBe(415);
    const huge = await fetch(`${relay.url}/v1/relay/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ label: 'x'.repeat(10_000) }) });
    expect(huge.status).toBe(413);
  });
});

describe('the admin key guards the key API', () => {
  test('no key, a relay key (managed or not), a wrong key: refused; nothing is created', async () => {
    const created = await create('guarded');
    const count = (await list()).data.length;
    for (const key of [undefined, RELAY_KEY, created.key, 'admin-key-0123456789abcdeX']) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (key) headers.authorization = `Bearer ${key}`;
      const res = await fetch(`${relay.url}/v1/relay/keys`, { method: 'POST', headers, body: JSON.stringify({ label: 'intruder' }) });
      expect(res.status).toBe(401);
      const del = await fetch(`${relay.url}/v1/relay/keys/${created.id}`, { method: 'DELETE', headers });
      expect(del.status).toBe(401);
    }
    // Nor through the proxy envelope (it reaches OpenAI's operations only).
    for (const envelope of [{ method: 'POST', path: '/v1/relay/keys', body: { label: 'via-proxy' } }, { method: 'GET', path: '/v1/relay/keys' }]) {
      const res = await fetch(`${relay.url}/v1/proxy`, { method: 'POST', headers: { authorization: `Bearer ${RELAY_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(await res.text()).not.toContain('rly_sk_');
    }
    expect((await list()).data.length).toBe(count);
    expect(await statuses(created.key)).toEqual([200, 200]);
  });

  test('without RELAY_ADMIN_KEY the API answers 403 and only RELAY_KEY keys open the relay', async () => {
    const plain = await startTestRelay({ LOG_LEVEL: 'silent' });
    try {
      const res = await fetch(`${plain.url}/v1/relay/keys`, { headers: { authorization: `Bearer ${RELAY_KEY}` } });
      expect((await expectOpenAIError(res, 403)).code).toBe('admin_disabled');
      expect((await fetch(`${plain.url}/admin`)).status).toBe(403);
    } finally {
      await plain.shutdown();
    }
  });
});

describe('without RELAY_KEY', () => {
  test('a relay with only an admin key starts closed, and opens to the keys made through the API', async () => {
    const only = await startTestRelay({ RELAY_KEY: '', RELAY_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'silent' });
    try {
      mockUpstream();
      expect((await fetch(`${only.url}/v1/models`, { headers: { authorization: `Bearer ${RELAY_KEY}` } })).status).toBe(401);
      const res = await fetch(`${only.url}/v1/relay/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: '{"label":"first"}' });
      const { key } = (await res.json()) as { key: string };
      expect((await fetch(`${only.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    } finally {
      await only.shutdown();
    }
  });
});

describe('two relays on one SQLite file', () => {
  test("a key made on one is taken by the other at once; revoked on one, the other refuses it within a second", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'relay-keys-shared-')), 'usage.sqlite');
    const env = { RELAY_KEY: `alice:${RELAY_KEY}`, RELAY_ADMIN_KEY: ADMIN_KEY, USAGE_DB_PATH: file, LOG_LEVEL: 'silent' };
    const [a, b] = await Promise.all([startTestRelay(env), startTestRelay(env)]);
    try {
      const keys = (relay: typeof a, path: string, method: string, body?: string) =>
        fetch(relay.url + path, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body });
      const call = (relay: typeof a, key: string) => {
        mockUpstream();
        return fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
      };
      const { id, key } = (await (await keys(a, '/v1/relay/keys', 'POST', '{"label":"shared"}')).json()) as { id: string; key: string };
      expect(await call(b, key)).toBe(200);
      expect((await keys(b, `/v1/relay/keys/${id}`, 'DELETE')).status).toBe(200);
      const revokedAt = performance.now();
      expect(await call(b, key)).toBe(401);
      while ((await call(a, key)) !== 401 && performance.now() - revokedAt < 3000) await new Promise((r) => setTimeout(r, 20));
      expect(performance.now() - revokedAt).toBeLessThan(1000);
    } finally {
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
  });
});

describe('rotating a key', () => {
  test('no overlap: a new secret under the same id; the old one is refused at once', async () => {
    const created = await create('rotor');
    const res = await admin(`/v1/relay/keys/${created.id}/rotate`, { method: 'POST' });
    expect(res.status).toBe(200);
    const rotated = (await res.json()) as { id: string; key: string; label: string; rotated_at: number; previous_key_expires_at: null };
    issued.push(created.key, rotated.key);
    expect(rotated).toMatchObject({ object: 'relay.key', id: created.id, label: 'rotor', previous_key_expires_at: null });
    expect(rotated.key).not.toBe(created.key);
    expect(await statuses(created.key)).toEqual([401, 401]);
    expect(await statuses(rotated.key)).toEqual([200, 200]);
  });

  test('with an overlap: both secrets work until it ends, then only the new one', async () => {
    const created = await create('overlapper');
    const res = await admin(`/v1/relay/keys/${created.id}/rotate`, { body: { overlap_seconds: 3600 } });
    const rotated = (await res.json()) as { key: string; rotated_at: number; previous_key_expires_at: number };
    issued.push(created.key, rotated.key);
    expect(rotated.previous_key_expires_at - rotated.rotated_at).toBe(3600);
    expect(await statuses(created.key)).toEqual([200, 200]);
    expect(await statuses(rotated.key)).toEqual([200, 200]);
    clock += 3600_000 + 1;
    try {
      expect(await statuses(created.key)).toEqual([401, 401]);
      expect(await statuses(rotated.key)).toEqual([200, 200]);
    } finally {
      clock = Date.now();
    }
  });

  test('bad overlaps are refused; RELAY_KEY keys are read-only; unknown ids are 404', async () => {
    const created = await create('picky');
    for (const overlap of [-1, 604_801, 1.5, '60']) expect((await admin(`/v1/relay/keys/${created.id}/rotate`, { body: { overlap_seconds: overlap } })).status).toBe(400);
    const aliceId = (await list()).data.find((k) => k.label === 'alice')!.id as string;
    const readOnly = await expectOpenAIError(await admin(`/v1/relay/keys/${aliceId}/rotate`, { method: 'POST' }), 409);
    expect(readOnly.code).toBe('key_read_only');
    expect(readOnly.message).toContain('RELAY_KEY');
    expect((await expectOpenAIError(await admin(`/v1/relay/keys/${aliceId}`, { method: 'DELETE' }), 409)).code).toBe('key_read_only');
    expect((await expectOpenAIError(await admin('/v1/relay/keys/key_doesnotexist00000/rotate', { method: 'POST' }), 404)).code).toBe('key_not_found');
    expect((await admin('/v1/relay/keys/cfg_unknown', { method: 'DELETE' })).status).toBe(404);
    expect(await statuses(RELAY_KEY)).toEqual([200, 200]);
  });
});

describe('revoking a key', () => {
  test('refused at once on both doors; a second revoke is 404; the label can be used again', async () => {
    const created = await create('leaver');
    issued.push(created.key);
    expect(await statuses(created.key)).toEqual([200, 200]);
    const res = await admin(`/v1/relay/keys/${created.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'relay.key.deleted', id: created.id, label: 'leaver', deleted: true });
    expect(await statuses(created.key)).toEqual([401, 401]);
    expect((await admin(`/v1/relay/keys/${created.id}`, { method: 'DELETE' })).status).toBe(404);
    expect((await admin(`/v1/relay/keys/${created.id}/rotate`, { method: 'POST' })).status).toBe(404);
    const listed = (await list()).data.find((k) => k.id === created.id)!;
    expect(listed).toMatchObject({ status: 'revoked', read_only: false });
    expect(listed.revoked_at).toEqual(expect.any(Number));
    const reborn = await create('leaver');
    expect(reborn.id).not.toBe(created.id);
    expect(await statuses(reborn.key)).toEqual([200, 200]);
  });

  test("a managed key's OAuth connections die with it", async () => {
    const created = await create('mcp-user');
    issued.push(created.key);
    const connected = await connectWithOAuth(relay.issuer, created.key);
    expect((await mcpToolsList(relay.issuer, connected.access)).status).toBe(200);
    expect((await admin(`/v1/relay/keys/${created.id}`, { method: 'DELETE' })).status).toBe(200);
    const after = await mcpToolsList(relay.issuer, connected.access);
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { message: string } }).error.message).toMatch(/no longer configured/);
  });

  test('rotation keeps the OAuth connections (same id)', async () => {
    const created = await create('mcp-rotor');
    const connected = await connectWithOAuth(relay.issuer, created.key);
    expect((await admin(`/v1/relay/keys/${created.id}/rotate`, { method: 'POST' })).status).toBe(200);
    expect((await mcpToolsList(relay.issuer, connected.access)).status).toBe(200);
  });
});

test('no secret in any log line; the key events are logged by id and label', async () => {
  const log = relay.logs.join('');
  for (const secret of [...issued, RELAY_KEY, RELAY_KEY_2, ADMIN_KEY, OPENAI_KEY]) expect(log).not.toContain(secret);
  expect(log).toMatch(/"keyId":"key_[^"]+","label":"support-gpt","msg":"relay key created"/);
  expect(log).toContain('"msg":"relay key rotated"');
  expect(log).toContain('"msg":"relay key revoked"');
});
