import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, expect, test } from 'vitest';
import contract from '../generated/openapi.full.json' with { type: 'json' };
import { API_REFERENCE_CSP } from '../src/routes/api-reference.ts';
import { CHROMIUM, chromiumPresent, openOfflinePage } from './helpers/browser.ts';
import { useRelay } from './helpers/relay.ts';

/**
 * /docs in a real browser (Debian's chromium, driven by playwright-core) with every request off the
 * relay's origin refused, as offline or behind a strict proxy: the reference renders every operation of
 * the contract, nothing else is even asked for, and the page's CSP is not violated. CI installs chromium
 * (.ci/run); elsewhere the test skips, saying so, when it is missing.
 */
const present = chromiumPresent;
if (!present) console.warn(`docs-browser.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium) — the /docs browser test is SKIPPED.`);


const relay = useRelay();
let context: BrowserContext | undefined;
const profile = mkdtempSync(join(tmpdir(), 'relay-chromium-'));
afterAll(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
});

test.runIf(process.env.CI === 'true')('CI has chromium for the /docs browser test', () => {
  expect(present, `${CHROMIUM} must be installed in CI (.ci/run installs it)`).toBe(true);
});

test.skipIf(!present)('/docs renders every operation with the network off, asks nothing of other origins, and keeps its CSP', { timeout: 90_000 }, async () => {
  const { url } = await relay.ready;
  const origin = new URL(url).origin;
  const browser = await openOfflinePage(profile, origin);
  context = browser.context;
  const { page, offOrigin, violations } = browser;
  const res = await page.goto(`${url}/docs`);
  expect(res?.status()).toBe(200);
  expect(res?.headers()['content-security-policy']).toBe(API_REFERENCE_CSP);

  const operations = Object.values(contract.paths as Record<string, object>).flatMap((item) => Object.keys(item).filter((k) => ['get', 'post', 'delete'].includes(k)));
  await page.waitForFunction(() => document.querySelectorAll('.opblock').length > 0, undefined, { timeout: 60_000 });
  // From 150 operations and tags on, Swagger UI renders only those near the viewport: scroll through the
  // page and count every operation that was rendered on the way.
  const rendered = new Set<string>();
  for (let step = 0; step < 1_000; step++) {
    const { ids, atEnd } = await page.evaluate(() => {
      const ids = [...document.querySelectorAll('.opblock')].map((e) => e.id);
      const atEnd = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2;
      window.scrollBy(0, window.innerHeight / 2);
      return { ids, atEnd };
    });
    for (const id of ids) rendered.add(id);
    if (atEnd || rendered.size >= operations.length) break;
    await page.waitForTimeout(20);
  }
  expect(rendered.size).toBe(operations.length);
  await page.evaluate(() => window.scrollTo(0, 0));
  await expect.poll(() => page.locator('.opblock-summary-path', { hasText: '/v1/responses' }).count()).toBeGreaterThan(0);
  expect(await page.title()).toBe('OpenAI Relay API reference');
  expect(offOrigin).toEqual([]);
  expect(violations).toEqual([]);
});
