import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's chromium driven by playwright-core, as the browser tests use it: present or not (CI installs
 * it, .ci/browser.sh; elsewhere a test skips, saying so), and a page on which every request off the
 * relay's origin is refused (offline, or behind a strict proxy) and CSP violations are collected.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromiumPresent = existsSync(CHROMIUM);

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface OfflinePage {
  context: BrowserContext;
  page: Page;
  /** Requests the page made to any other origin (each refused). */
  offOrigin: string[];
  /** Console messages about the Content-Security-Policy. */
  violations: string[];
}

export async function openOfflinePage(profileDir: string, origin: string, viewport?: { width: number; height: number }): Promise<OfflinePage> {
  const context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: FLAGS, ...(viewport ? { viewport } : {}) });
  const offOrigin: string[] = [];
  await context.route('**/*', (route) => {
    if (new URL(route.request().url()).origin === origin) return route.continue();
    offOrigin.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
  });
  return { context, page, offOrigin, violations };
}
