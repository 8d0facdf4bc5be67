import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { RelayConfig } from '../config.ts';
import type { RelayEnv } from '../core/env.ts';
import { RelayError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { parseHostHeader } from '../http/server-url.ts';
import type { KeyAdmin, IssuedKey } from '../auth/managed-keys/admin.ts';
import { attemptLimiter } from '../auth/oauth/attempt-limiter.ts';
import { sameSecret } from '../auth/oauth/secrets.ts';
import { budgetRows, wantsMonth } from '../admin/budgets.ts';
import { renderDashboard, WINDOWS } from '../admin/dashboard.ts';
import { adminPage, escapeHtml } from '../admin/html.ts';
import { adminSessions, LOGIN_FORM_TTL_MS, SESSION_TTL_MS } from '../admin/session.ts';
import { renderSignIn } from '../admin/signin.ts';
import { measuresOf, usageByDay } from '../admin/usage-data.ts';
import type { Ops } from '../ops/index.ts';
import { readForm, sourceOf } from './oauth.ts';

/**
 * GET /admin and its forms: sign in with the admin key, then usage, budgets and keys (src/admin/). A
 * public path as far as relay keys go (app.ts): the page checks its own session cookie. Every POST needs
 * the session (or, to sign in, the sign-in form's cookie) and the form's anti-CSRF token, and is refused
 * when the browser says it came from another site. Wrong admin keys are counted, as on the consent page.
 */

export const isAdminPagePath = (path: string) => path === '/admin' || path.startsWith('/admin/');

const ADMIN_KEY_GUESSES = { perSource: 5, total: 20, windowMs: 60_000 };
const MINUTE_MS = 60_000;

export interface AdminPageDeps {
  config: RelayConfig;
  ops: Ops;
  admin?: KeyAdmin;
  logger: Logger;
  now?: () => number;
}

export function registerAdminPage(app: OpenAPIHono<RelayEnv>, deps: AdminPageDeps): void {
  const { config, ops, admin, logger } = deps;
  const now = deps.now ?? Date.now;
  const page = (body: string, status = 200, cookies: string[] = []) => {
    const { html, headers } = adminPage('OpenAI relay · admin', body);
    const h = new Headers(headers);
    for (const cookie of cookies) h.append('set-cookie', cookie);
    return new Response(html, { status, headers: h });
  };

  if (!config.adminKey || !admin) {
    app.all('/admin', () => page('<main class="signin"><section><h2>The admin page is off</h2><p>Set RELAY_ADMIN_KEY (at least 16 characters) and restart the relay to use it.</p></section></main>', 403));
    return;
  }
  const adminKey = config.adminKey;
  const sessions = adminSessions(adminKey, now);
  const guesses = attemptLimiter({ ...ADMIN_KEY_GUESSES, now });

  // Secure cookies (named __Host-, so only this origin can set them) whenever the relay is reached over https.
  const secure = (c: Context<RelayEnv>) => config.publicBaseUrl?.protocol === 'https:' || (c.req.header('x-forwarded-proto') ?? '').split(',')[0]!.trim() === 'https';
  const names = (c: Context<RelayEnv>) => (secure(c) ? { session: '__Host-relay_admin', login: '__Host-relay_admin_login' } : { session: 'relay_admin', login: 'relay_admin_login' });
  const setCookie = (c: Context<RelayEnv>, name: string, value: string, maxAgeMs: number) =>
    `${name}=${value}; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}; HttpOnly; SameSite=Strict${secure(c) ? '; Secure' : ''}`;
  const sessionOf = (c: Context<RelayEnv>) => sessions.verify(cookie(c, names(c).session));

  const signIn = (c: Context<RelayEnv>, status = 200, error?: string) => {
    const held = cookie(c, names(c).login);
    const nonce = sessions.validNonce(held) ? held : sessions.nonce();
    return page(renderSignIn(sessions.csrfToken(nonce), error), status, [setCookie(c, names(c).login, nonce, LOGIN_FORM_TTL_MS)]);
  };
  const seeOther = (location: string, cookies: string[] = []) => {
    const headers = new Headers({ location, 'cache-control': 'no-store' });
    for (const value of cookies) headers.append('set-cookie', value);
    return new Response(null, { status: 303, headers });
  };

  async function dashboard(c: Context<RelayEnv>, sid: string, extra: { status?: number; issued?: { key: IssuedKey; rotated: boolean }; notice?: string; error?: string } = {}) {
    const windowDays = WINDOWS.find((d) => String(d) === c.req.query('days')) ?? 30;
    const at = now();
    const days = await usageByDay(ops.usageTotals, windowDays, at);
    const measures = measuresOf(days);
    const measure = measures.find((m) => m.field === c.req.query('measure')) ?? measures[0]!;
    const keys = await admin!.list();
    const { limits } = config.ops;
    const monthStart = new Date(at);
    monthStart.setUTCDate(1);
    monthStart.setUTCHours(0, 0, 0, 0);
    const [lastMinute, month] = await Promise.all([
      ops.usageTotals({ from: new Date(at - MINUTE_MS), to: new Date(at + 1) }),
      wantsMonth(limits) ? ops.usageTotals({ from: monthStart, to: new Date(at + 1) }) : undefined,
    ]);
    const labels = keys.filter((k) => k.revokedAt === undefined).map((k) => k.label);
    const budgets = budgetRows(labels, limits, { lastMinute, today: days[days.length - 1]!.rows, month, money: measures.find((m) => m.money) });
    const body = renderDashboard({ csrf: sessions.csrfToken(sid), windowDays, days, measures, measure, budgets, keys, ...extra });
    return page(body, extra.status ?? 200);
  }

  /** The checks every POST passes: same site, a form, a live session (or sign-in cookie) and its token. */
  async function checkedForm(c: Context<RelayEnv>, subject: string | undefined): Promise<URLSearchParams | Response> {
    if (!sameSite(c, config.publicBaseUrl)) return page('<main class="signin"><section><p class="error">This form was sent from another site, so the relay refused it.</p></section></main>', 403);
    let form: URLSearchParams;
    try {
      form = await readForm(c.env.incoming);
    } catch (err) {
      return page(`<main class="signin"><section><p class="error">${escapeHtml((err as Error).message)}</p></section></main>`, 400);
    }
    if (!sessions.csrfValid(subject, form.get('csrf') ?? undefined)) return signIn(c, 403, 'This form has expired or did not come from this page (its anti-CSRF token is missing or wrong). Sign in again.');
    return form;
  }

  app.get('/admin', async (c) => {
    const sid = sessionOf(c);
    return sid ? dashboard(c, sid) : signIn(c);
  });

  app.post('/admin/login', async (c) => {
    const nonce = cookie(c, names(c).login);
    const form = await checkedForm(c, sessions.validNonce(nonce) ? nonce : undefined);
    if (form instanceof Response) return form;
    const source = sourceOf(c.env.incoming);
    if (guesses.blocked(source)) return signIn(c, 429, 'Too many wrong admin keys were tried in the last minute. Wait a minute, then try again.');
    if (!sameSecret(form.get('admin_key') ?? '', adminKey)) {
      guesses.hit(source);
      logger.warn({ source }, 'admin page: wrong admin key');
      return signIn(c, 401, 'That is not the admin key (RELAY_ADMIN_KEY). Check it and try again.');
    }
    logger.info({ source }, 'admin page: signed in');
    return seeOther('/admin', [setCookie(c, names(c).session, sessions.issue(), SESSION_TTL_MS), setCookie(c, names(c).login, '', 0)]);
  });

  app.post('/admin/logout', async (c) => {
    const form = await checkedForm(c, sessionOf(c));
    if (form instanceof Response) return form;
    return seeOther('/admin', [setCookie(c, names(c).session, '', 0)]);
  });

  const keyAction = (path: string, act: (form: URLSearchParams) => Promise<{ issued?: { key: IssuedKey; rotated: boolean }; notice?: string }>) =>
    app.post(path, async (c) => {
      const sid = sessionOf(c);
      if (!sid) return signIn(c, 401, 'Your admin session has ended. Sign in again.');
      const form = await checkedForm(c, sid);
      if (form instanceof Response) return form;
      try {
        return await dashboard(c, sid, await act(form));
      } catch (err) {
        if (!(err instanceof RelayError)) throw err;
        return dashboard(c, sid, { status: err.status, error: err.message });
      }
    });

  keyAction('/admin/keys', async (form) => ({ issued: { key: await admin.create(form.get('label') ?? ''), rotated: false } }));
  keyAction('/admin/keys/rotate', async (form) => ({
    issued: { key: await admin.rotate(form.get('id') ?? '', Number(form.get('overlap_seconds') ?? '0')), rotated: true },
  }));
  keyAction('/admin/keys/revoke', async (form) => {
    if (form.get('confirm') !== 'yes') throw new RelayError(400, 'Tick "sure" next to Revoke to revoke a key (it cannot be undone).', { code: 'confirmation_required' });
    const revoked = await admin.revoke(form.get('id') ?? '');
    return { notice: `Revoked ${revoked.label} (${revoked.id}): refused from now on, on every replica within a second.` };
  });
}

function cookie(c: Context<RelayEnv>, name: string): string | undefined {
  for (const part of (c.req.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The browser's own word on where a form came from: Sec-Fetch-Site, else Origin against this host. */
function sameSite(c: Context<RelayEnv>, publicBaseUrl: URL | undefined): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = c.req.header('origin');
  if (origin === undefined || origin === 'null') return origin === undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const own = [publicBaseUrl?.host, c.req.header('x-forwarded-host')?.split(',')[0]?.trim(), c.req.header('host')].filter((h): h is string => h !== undefined && parseHostHeader(h) !== undefined);
  return own.some((h) => h.toLowerCase() === host.toLowerCase());
}
