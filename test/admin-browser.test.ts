import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, HttpResponse } from 'msw';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PALETTE } from '../src/admin/chart.ts';
import { openLedgerStore } from '../src/ops/ledger.ts';
import type { UsageRow } from '../src/ops/ledger-values.ts';
import { CHROMIUM, chromiumPresent, openOfflinePage } from './helpers/browser.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { countColour, decodePng } from './helpers/png.ts';
import { RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * The admin page in a real browser (Debian's chromium, driven by playwright-core), with every request off
 * the relay's origin refused: sign in through the form, see the chart drawn (its pixels counted in a
 * screenshot), create a key and use it, revoke it, all without a script on the page and without a CSP
 * violation. CI installs chromium (.ci/browser.sh); elsewhere the test skips, saying so, when it is
 * missing. ADMIN_SCREENSHOT=docs/admin.png writes the page's picture for the docs.
 */

const present = chromiumPresent;
if (!present) console.warn(`admin-browser.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium) — the admin page browser test is SKIPPED.`);

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const DAY_MS = 86_400_000;
const { server } = useMockOpenAI();

/** A month of a small team's usage, written to the ledger before the relay starts. */
function history(now: number): UsageRow[] {
  const rows: UsageRow[] = [];
  const team: [string, string, number][] = [
    ['alice', 'gpt-5', 42_000],
    ['ci-bot', 'gpt-5-mini', 18_000],
    ['support-gpt', 'gpt-5-mini', 30_000],
    ['research', 'text-embedding-3-small', 9_000],
  ];
  for (let d = 29; d >= 0; d--) {
    team.forEach(([keyLabel, model, base], i) => {
      const tokens = Math.round(base * (0.5 + ((d * 7 + i * 3) % 10) / 10));
      const time = new Date(now - d * DAY_MS - (d === 0 ? 60_000 : 0));
      rows.push({ time, keyLabel, operation: 'createResponse', status: 200, latencyMs: 900, model, inputTokens: Math.round(tokens * 0.8), outputTokens: Math.round(tokens * 0.2), totalTokens: tokens });
    });
  }
  return rows;
}

let relay: TestRelay;
let context: BrowserContext | undefined;
const dir = mkdtempSync(join(tmpdir(), 'relay-admin-browser-'));

beforeAll(async () => {
  if (!present) return;
  const ledgerPath = join(dir, 'usage.sqlite');
  const store = await openLedgerStore({ sqlitePath: ledgerPath, sqliteThread: false });
  await store.insert(history(Date.now()));
  await store.close();
  relay = await startTestRelay({
    RELAY_KEY: `alice:${RELAY_KEY},ci-bot:${RELAY_KEY_2}`,
    RELAY_ADMIN_KEY: ADMIN_KEY,
    RATE_LIMITS: 'alice=120/min:2000000/day,*=1000000/day',
    USAGE_DB_PATH: ledgerPath,
    LOG_LEVEL: 'silent',
  });
});
afterAll(async () => {
  await context?.close();
  await relay?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

test.runIf(process.env.CI === 'true')('CI has chromium for the admin page browser test', () => {
  expect(present, `${CHROMIUM} must be installed in CI (.ci/browser.sh installs it)`).toBe(true);
});

test.skipIf(!present)('sign in, see the chart drawn, create a key and use it, revoke it: no script, nothing off-origin, no CSP violation', { timeout: 120_000 }, async () => {
  const origin = new URL(relay.url).origin;
  const browser = await openOfflinePage(join(dir, 'profile'), origin, { width: 1200, height: 900 });
  context = browser.context;
  const { page, offOrigin, violations } = browser;

  // Two keys made through the API (the page lists them with their forms), one RELAY_KEY key in use.
  for (const label of ['support-gpt', 'research']) {
    const res = await fetch(`${relay.url}/v1/relay/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ label }) });
    expect(res.status).toBe(201);
  }
  server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: [] })));
  expect((await fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${RELAY_KEY}` } })).status).toBe(200);

  // Sign in through the form.
  const first = await page.goto(`${relay.url}/admin`);
  expect(first?.status()).toBe(200);
  await page.fill('#admin_key', ADMIN_KEY);
  await Promise.all([page.waitForURL(`${relay.url}/admin`), page.click('button[type=submit]')]);

  await page.waitForSelector('#spend-chart');
  const session = (await context.cookies()).find((c) => c.name === 'relay_admin')!;
  expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });

  // The chart is drawn: the two largest keys' colours fill a good part of its box.
  const box = (await page.locator('#spend-chart').boundingBox())!;
  expect(box.width).toBeGreaterThan(500);
  const pixels = decodePng(await page.locator('#spend-chart').screenshot());
  const area = pixels.width * pixels.height;
  for (const colour of PALETTE.slice(0, 4)) expect(countColour(pixels, colour), `pixels of ${colour} in the chart`).toBeGreaterThan(area * 0.01);
  expect(await page.locator('#spend-chart rect').count()).toBe(30 * 4);
  expect(await page.locator('#top-models tbody tr').count()).toBe(4); // three models, and the model list call (no model)
  expect(await page.locator('#budget-table').textContent()).toContain('tokens / day');
  if (process.env.ADMIN_SCREENSHOT) writeFileSync(process.env.ADMIN_SCREENSHOT, await page.screenshot({ fullPage: true }));

  // Create a key through the form: its secret is shown once and works at once.
  await page.fill('#label', 'browser-made');
  await Promise.all([page.waitForLoadState('load'), page.click('#create-key button')]);
  const secret = (await page.locator('#new-secret code').textContent())!.trim();
  expect(secret).toMatch(/^rly_sk_[A-Za-z0-9_-]{43}$/);
  const call = () => fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } }).then((r) => r.status);
  expect(await call()).toBe(200);

  // Revoke it: the form needs its confirmation box ticked.
  const row = page.locator('tr', { has: page.locator('td', { hasText: /^browser-made$/ }) });
  await row.locator('input[name=confirm]').check();
  await Promise.all([page.waitForLoadState('load'), row.locator('button.danger').click()]);
  expect(await page.locator('.notice').first().textContent()).toContain('Revoked browser-made');
  expect(await call()).toBe(401);

  expect(await page.locator('script').count()).toBe(0);
  expect(offOrigin).toEqual([]);
  expect(violations).toEqual([]);
});
