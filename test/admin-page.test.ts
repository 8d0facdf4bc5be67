import { http, HttpResponse } from 'msw';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AdminBrowser, csrfOf, secretOf } from './helpers/admin-page.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * The admin page (issue 19, item 5) over plain HTTP, as a browser without scripts would use it: sign in
 * with the admin key (HttpOnly, SameSite=Strict cookies; wrong keys counted), see usage per key per day,
 * top models, budgets and keys, and create, rotate and revoke keys through forms that each need the
 * session and its anti-CSRF token and refuse posts from other sites. The page in a real browser, its
 * chart and its CSP: admin-browser.test.ts.
 */

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const { server } = useMockOpenAI();
const embeddings = (tokens: number, model = 'text-embedding-3-small') =>
  server.use(http.post(`${OPENAI_BASE}/v1/embeddings`, () => HttpResponse.json({ object: 'list', data: [], model, usage: { prompt_tokens: tokens, total_tokens: tokens } })));

let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay({ RELAY_KEY: `alice:${RELAY_KEY},bob:${RELAY_KEY_2}`, RELAY_ADMIN_KEY: ADMIN_KEY, RATE_LIMITS: 'alice=60/min:100000/day,*=5000/day' });
  for (const [key, tokens] of [[RELAY_KEY, 1200], [RELAY_KEY, 800], [RELAY_KEY_2, 300]] as const) {
    embeddings(tokens);
    const res = await fetch(`${relay.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"model":"text-embedding-3-small","input":"x"}' });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }
});
afterAll(() => relay.shutdown());

const strictCsp = (csp: string | null) => {
  expect(csp).toMatch(/^default-src 'none'; style-src 'nonce-[A-Za-z0-9+/=]+'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/);
};

describe('signing in', () => {
  test('the sign-in form: strict CSP, no scripts, a SameSite=Strict HttpOnly form cookie, never cached', async () => {
    const page = await new AdminBrowser(relay.url).get('/admin');
    expect(page.status).toBe(200);
    strictCsp(page.headers.get('content-security-policy'));
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.html).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/);
    expect(page.html).toContain('name="admin_key"');
    expect(page.setCookies).toEqual([expect.stringMatching(/^relay_admin_login=[A-Za-z0-9_-]{22}; Path=\/; Max-Age=900; HttpOnly; SameSite=Strict$/)]);
  });

  test('the admin key signs in: a session cookie HttpOnly, SameSite=Strict, 8 hours; then the page', async () => {
    const browser = new AdminBrowser(relay.url);
    const form = await browser.get('/admin');
    const answer = await browser.post('/admin/login', { csrf: csrfOf(form.html), admin_key: ADMIN_KEY });
    expect(answer.status).toBe(303);
    expect(answer.location).toBe('/admin');
    const session = answer.setCookies.find((c) => c.startsWith('relay_admin='))!;
    expect(session).toMatch(/^relay_admin=[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Strict$/);
    expect(answer.setCookies).toContainEqual(expect.stringMatching(/^relay_admin_login=; .*Max-Age=0/));
    const page = await browser.get('/admin');
    expect(page.status).toBe(200);
    expect(page.html).toContain('id="spend-chart"');
  });

  test('over https (X-Forwarded-Proto): __Host- cookies with Secure', async () => {
    const browser = new AdminBrowser(relay.url);
    const form = await browser.get('/admin', { 'x-forwarded-proto': 'https' });
    expect(form.setCookies[0]).toMatch(/^__Host-relay_admin_login=.*; Path=\/; Max-Age=900; HttpOnly; SameSite=Strict; Secure$/);
    const answer = await browser.post('/admin/login', { csrf: csrfOf(form.html), admin_key: ADMIN_KEY }, { headers: { 'x-forwarded-proto': 'https' } });
    expect(answer.status).toBe(303);
    expect(answer.setCookies[0]).toMatch(/^__Host-relay_admin=.*; HttpOnly; SameSite=Strict; Secure$/);
  });

  test('refused: a wrong key (401), no token or a token for another browser (403), another site (403); none signs in', async () => {
    const browser = new AdminBrowser(relay.url);
    const form = await browser.get('/admin');
    const csrf = csrfOf(form.html);
    const wrong = await browser.post('/admin/login', { csrf, admin_key: `${ADMIN_KEY}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('That is not the admin key');
    expect((await browser.post('/admin/login', { admin_key: ADMIN_KEY })).status).toBe(403);
    const other = new AdminBrowser(relay.url);
    await other.get('/admin');
    expect((await other.post('/admin/login', { csrf, admin_key: ADMIN_KEY })).status).toBe(403);
    expect((await browser.post('/admin/login', { csrf, admin_key: ADMIN_KEY }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await browser.post('/admin/login', { csrf, admin_key: ADMIN_KEY }, { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    for (const b of [browser, other]) expect(b.cookies.has('relay_admin')).toBe(false);
    // A forged or foreign session cookie is not a session.
    const forger = new AdminBrowser(relay.url);
    forger.cookies.set('relay_admin', `AAAAAAAAAAAAAAAAAAAAAA.${Date.now() + 60_000}.${'A'.repeat(43)}`);
    expect((await forger.get('/admin')).html).toContain('name="admin_key"');
  });

  test('wrong admin keys are counted: the sixth in a minute from one address is refused (429) even when right', async () => {
    // A relay of its own: the count is per address, and every test here comes from 127.0.0.1.
    const own = await startTestRelay({ RELAY_KEY: `alice:${RELAY_KEY}`, RELAY_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'silent' });
    try {
      const browser = new AdminBrowser(own.url);
      const csrf = csrfOf((await browser.get('/admin')).html);
      for (let i = 0; i < 5; i++) expect((await browser.post('/admin/login', { csrf, admin_key: `wrong-${i}-0123456789abcdef` })).status).toBe(401);
      const blocked = await browser.post('/admin/login', { csrf, admin_key: ADMIN_KEY });
      expect(blocked.status).toBe(429);
      expect(blocked.html).toContain('Wait a minute');
    } finally {
      await own.shutdown();
    }
  });
});

describe('the signed-in page', () => {
  let browser: AdminBrowser;
  let page: string;
  beforeAll(async () => {
    browser = new AdminBrowser(relay.url);
    page = (await browser.signIn(ADMIN_KEY)).html;
  });
  const rowOf = (html: string, label: string) => new RegExp(`<tr data-key-id="[^"]+"><td>${label}</td>[\\s\\S]*?</tr>`).exec(html)?.[0];

  test('usage per key per day as a chart (spend by default, tokens on request), top models, budgets with their use, keys', async () => {
    strictCsp((await browser.get('/admin')).headers.get('content-security-policy'));
    const today = new Date().toISOString().slice(0, 10);
    // The ledger prices the embeddings: spend is what the page shows first.
    expect(page).toContain('Spend (USD) per key per day');
    const tokens = (await browser.get('/admin?measure=totalTokens')).html;
    expect(tokens).toContain(`Total tokens per key per day`);
    // One bar segment per key today, with its exact total in the title.
    expect(tokens).toContain(`<title>${today} · alice: 2000</title>`);
    expect(tokens).toContain(`<title>${today} · bob: 300</title>`);
    expect(tokens.match(/<svg id="spend-chart"[\s\S]*?<\/svg>/)![0].match(/<rect /g)!.length).toBe(2);
    // Top models.
    expect(tokens).toMatch(/<table id="top-models">[\s\S]*<td>text-embedding-3-small<\/td><td class="num">3<\/td><td class="num">2300<\/td><td class="num">100%<\/td>/);
    // Budgets: alice's own limits with today's use, bob under the `*` entry.
    const budgets = /<table id="budget-table">[\s\S]*?<\/table>/.exec(page)![0];
    expect(budgets).toMatch(/alice<\/td><td>requests \/ minute<\/td><td class="num">2 of 60<\/td>/);
    expect(budgets).toMatch(/<td>tokens \/ day<\/td><td class="num">2000 of 100k<\/td><td><meter min="0" max="100000"[^>]* value="2000"><\/meter> 2%/);
    expect(budgets).toMatch(/bob <span class="muted">\(\*\)<\/span><\/td><td>tokens \/ day<\/td><td class="num">300 of 5000<\/td>/);
    // Keys: RELAY_KEY's read-only, with their last use.
    expect(rowOf(page, 'alice')).toContain('read-only (RELAY_KEY)');
    expect(page).toContain('id="create-key"');
    for (const secret of [RELAY_KEY, RELAY_KEY_2, ADMIN_KEY, OPENAI_KEY]) expect(page).not.toContain(secret);
  });

  test('the measure and the window can be switched by links', async () => {
    const byRequests = (await browser.get('/admin?days=7&measure=requests')).html;
    expect(byRequests).toContain('Requests per key per day');
    expect(byRequests).toContain('· alice: 2</title>');
    expect(byRequests.match(/<text [^>]*>\d\d-\d\d<\/text>/g)!.length).toBe(7);
    expect(byRequests).toContain('<strong>7 days</strong>');
    // Unknown values fall back to the defaults.
    expect((await browser.get('/admin?days=3650&measure=__proto__')).html).toContain('<strong>30 days</strong>');
  });

  test('create, rotate and revoke through the forms; a new secret is shown once and works at once', async () => {
    const csrf = csrfOf(page);
    const created = await browser.post('/admin/keys', { csrf, label: 'page-made' });
    expect(created.status).toBe(200);
    strictCsp(created.headers.get('content-security-policy'));
    const secret = secretOf(created.html)!;
    expect(secret).toMatch(/^rly_sk_/);
    server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
    const call = (key: string) => fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
    expect(await call(secret)).toBe(200);
    // Shown once: not on the next view of the page.
    const later = (await browser.get('/admin')).html;
    expect(later).not.toContain(secret);
    const row = rowOf(later, 'page-made')!;
    const id = /data-key-id="([^"]+)"/.exec(row)![1]!;
    expect(row).toContain('action="/admin/keys/rotate"');

    const rotated = await browser.post('/admin/keys/rotate', { csrf, id, overlap_seconds: '0' });
    const next = secretOf(rotated.html)!;
    expect(rotated.html).toContain('The previous secret is refused from now on.');
    expect(await call(secret)).toBe(401);
    expect(await call(next)).toBe(200);

    const unconfirmed = await browser.post('/admin/keys/revoke', { csrf, id });
    expect(unconfirmed.status).toBe(400);
    expect(await call(next)).toBe(200);
    const revoked = await browser.post('/admin/keys/revoke', { csrf, id, confirm: 'yes' });
    expect(revoked.status).toBe(200);
    expect(revoked.html).toContain('Revoked page-made');
    expect(await call(next)).toBe(401);
    expect(rowOf(revoked.html, 'page-made')).toMatch(/revoked \d{4}-\d\d-\d\d/);
  });

  test('refusals show on the page: a label in use, a read-only key', async () => {
    const csrf = csrfOf(page);
    const clash = await browser.post('/admin/keys', { csrf, label: 'alice' });
    expect(clash.status).toBe(409);
    expect(clash.html).toMatch(/<p class="error" role="alert">The label &quot;alice&quot; belongs to a key in RELAY_KEY/);
    const aliceId = /data-key-id="([^"]+)"><td>alice</.exec(page)![1]!;
    expect((await browser.post('/admin/keys/revoke', { csrf, id: aliceId, confirm: 'yes' })).status).toBe(409);
  });

  test('every form needs the session and its token, from this site', async () => {
    const csrf = csrfOf(page);
    const before = (await browser.get('/admin')).html.match(/data-key-id=/g)!.length;
    expect((await browser.post('/admin/keys', { label: 'no-token' })).status).toBe(403);
    expect((await browser.post('/admin/keys', { csrf: csrf.slice(0, -2) + 'AA', label: 'bad-token' })).status).toBe(403);
    expect((await browser.post('/admin/keys', { csrf, label: 'cross-site' }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await browser.post('/admin/keys', { csrf, label: 'null-origin' }, { origin: 'null' })).status).toBe(403);
    // Another browser with its own session cannot use this one's token.
    const other = new AdminBrowser(relay.url);
    await other.signIn(ADMIN_KEY);
    expect((await other.post('/admin/keys', { csrf, label: 'stolen-token' })).status).toBe(403);
    // Without a session: the sign-in form.
    const stranger = new AdminBrowser(relay.url);
    const anonymous = await stranger.post('/admin/keys', { csrf, label: 'anonymous-post' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.html).toContain('name="admin_key"');
    expect((await browser.get('/admin')).html.match(/data-key-id=/g)!.length).toBe(before);
  });

  test('signing out clears the session cookie', async () => {
    const own = new AdminBrowser(relay.url);
    const signed = await own.signIn(ADMIN_KEY);
    const out = await own.post('/admin/logout', { csrf: csrfOf(signed.html) });
    expect(out.status).toBe(303);
    expect(out.setCookies).toContainEqual(expect.stringMatching(/^relay_admin=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/));
    expect((await own.get('/admin')).html).toContain('name="admin_key"');
  });
});
