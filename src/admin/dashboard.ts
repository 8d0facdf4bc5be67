import type { IssuedKey, KeyInfo } from '../auth/managed-keys/admin.ts';
import { MAX_OVERLAP_SECONDS } from '../auth/managed-keys/admin.ts';
import type { BudgetRow } from './budgets.ts';
import { renderChart } from './chart.ts';
import { csrfField, escapeHtml } from './html.ts';
import { seriesByKey, topModels, type DayTotals, type Measure } from './usage-data.ts';

/**
 * The signed-in admin page: spend per key per day (a chart of the chosen measure), top models, budgets
 * and their use, and the keys with forms to create, rotate and revoke them. Every form posts to /admin
 * with the session's anti-CSRF token; a new secret is shown once, in the answer to the form that made it.
 */

export const WINDOWS = [7, 30, 90] as const;
export const OVERLAPS: readonly { seconds: number; text: string }[] = [
  { seconds: 0, text: 'old secret refused at once' },
  { seconds: 3600, text: 'old secret works 1 more hour' },
  { seconds: 86_400, text: 'old secret works 1 more day' },
  { seconds: MAX_OVERLAP_SECONDS, text: 'old secret works 7 more days' },
];

export interface DashboardView {
  csrf: string;
  windowDays: number;
  days: DayTotals[];
  measures: Measure[];
  measure: Measure;
  budgets: BudgetRow[];
  keys: KeyInfo[];
  /** A key just created or rotated: its secret, shown this once. */
  issued?: { key: IssuedKey; rotated: boolean };
  notice?: string;
  error?: string;
}

const count = (n: number) => (n >= 1e9 ? `${short(n / 1e9)}B` : n >= 1e6 ? `${short(n / 1e6)}M` : n >= 1e4 ? `${short(n / 1e3)}k` : String(Math.round(n)));
const short = (n: number) => n.toFixed(1).replace(/\.0$/, '');
const dollars = (n: number) => (n >= 100 ? `$${Math.round(n).toLocaleString('en-US')}` : `$${n.toFixed(2)}`);
export const formatFor = (m: Pick<Measure, 'money'>) => (m.money ? dollars : count);
const when = (ms: number | undefined) => (ms === undefined ? '—' : new Date(ms).toISOString().slice(0, 16).replace('T', ' '));

export function renderDashboard(v: DashboardView): string {
  const format = formatFor(v.measure);
  const series = seriesByKey(v.days, v.measure);
  const link = (days: number, field: string) => `/admin?days=${days}&amp;measure=${encodeURIComponent(field)}`;
  const choice = <T,>(items: readonly T[], current: (t: T) => boolean, text: (t: T) => string, href: (t: T) => string) =>
    items.map((t) => (current(t) ? `<strong>${escapeHtml(text(t))}</strong>` : `<a href="${href(t)}">${escapeHtml(text(t))}</a>`)).join('');
  const from = v.days[0]?.day ?? '';
  const to = v.days[v.days.length - 1]?.day ?? '';

  return `<header><h1>OpenAI relay · admin</h1>
  <form method="post" action="/admin/logout">${csrfField(v.csrf)}<button class="secondary" type="submit">Sign out</button></form></header>
<main>
  ${v.error ? `<p class="error" role="alert">${escapeHtml(v.error)}</p>` : ''}
  ${v.notice ? `<p class="notice" role="status">${escapeHtml(v.notice)}</p>` : ''}
  ${v.issued ? issuedNotice(v.issued) : ''}
  <section aria-labelledby="spend">
    <h2 id="spend">${escapeHtml(v.measure.title)} per key per day <span class="muted">(${escapeHtml(from)} to ${escapeHtml(to)}, UTC)</span></h2>
    <nav class="choices">
      <span>Window: ${choice(WINDOWS, (d) => d === v.windowDays, (d) => `${d} days`, (d) => link(d, v.measure.field))}</span>
      <span>Measure: ${choice(v.measures, (m) => m.field === v.measure.field, (m) => m.title, (m) => link(v.windowDays, m.field))}</span>
    </nav>
    ${renderChart({ days: v.days.map((d) => d.day), series, format, title: `${v.measure.title} per key per day` })}
  </section>
  <section aria-labelledby="models">
    <h2 id="models">Top models <span class="muted">(by ${escapeHtml(v.measure.title.toLowerCase())}, last ${v.windowDays} days)</span></h2>
    ${modelsTable(v.days, v.measure, format)}
  </section>
  <section aria-labelledby="budgets">
    <h2 id="budgets">Budgets</h2>
    ${budgetsTable(v.budgets)}
  </section>
  <section aria-labelledby="keys">
    <h2 id="keys">Keys</h2>
    ${keysTable(v.keys, v.csrf)}
    <form method="post" action="/admin/keys" class="inline" id="create-key">
      ${csrfField(v.csrf)}
      <label for="label">New key labelled</label>
      <input type="text" id="label" name="label" required maxlength="64" pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]*" placeholder="e.g. support-gpt" autocomplete="off">
      <button type="submit">Create key</button>
    </form>
  </section>
</main>`;
}

function issuedNotice({ key, rotated }: { key: IssuedKey; rotated: boolean }): string {
  const overlap = key.previousExpiresAt ? ` The previous secret keeps working until ${when(key.previousExpiresAt)} UTC.` : rotated ? ' The previous secret is refused from now on.' : '';
  return `<div class="notice" role="status" id="new-secret">
    <strong>${rotated ? 'New secret for' : 'Key created:'} ${escapeHtml(key.label)}</strong> <span class="muted">(${escapeHtml(key.id)})</span>
    <code>${escapeHtml(key.key)}</code>
    Copy it now: it is shown only this once (the relay keeps only a hash).${overlap}
  </div>`;
}

function modelsTable(days: DayTotals[], m: Measure, format: (n: number) => string): string {
  const models = topModels(days, m);
  if (models.length === 0) return '<p class="muted">No requests in this window yet.</p>';
  const total = models.reduce((sum, row) => sum + row.value, 0);
  const rows = models
    .map((row) => `<tr><td>${escapeHtml(row.model)}</td><td class="num">${row.requests}</td><td class="num">${escapeHtml(format(row.value))}</td><td class="num">${total > 0 ? `${Math.round((row.value / total) * 100)}%` : '—'}</td></tr>`)
    .join('');
  return `<table id="top-models"><thead><tr><th>Model</th><th class="num">Requests</th><th class="num">${escapeHtml(m.title)}</th><th class="num">Share</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function budgetsTable(budgets: BudgetRow[]): string {
  if (budgets.length === 0) return '<p class="muted">No limits: set RATE_LIMITS (e.g. <code>alice=120/min:2000000/day</code>) to cap a key.</p>';
  const rows = budgets.flatMap((b) =>
    b.lines.map((l, i) => {
      const fmt = l.money ? dollars : count;
      const used = l.used === undefined ? '<span class="muted">not in the ledger</span>' : `${escapeHtml(fmt(l.used))} of ${escapeHtml(fmt(l.limit))}`;
      const meter = l.used === undefined ? '' : `<meter min="0" max="${l.limit}" low="${l.limit * 0.75}" high="${l.limit * 0.9}" optimum="0" value="${Math.min(l.used, l.limit)}"></meter> ${Math.round((l.used / l.limit) * 100)}%`;
      return `<tr><td>${i === 0 ? `${escapeHtml(b.label)}${b.inherited ? ' <span class="muted">(*)</span>' : ''}` : ''}</td><td>${escapeHtml(l.name)}</td><td class="num">${used}</td><td>${meter}</td></tr>`;
    }),
  );
  return `<table id="budget-table"><thead><tr><th>Key</th><th>Limit</th><th class="num">Used</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>
  <p class="muted">(*) the <code>*</code> entry of RATE_LIMITS. Minutes are the last 60 s; days and months are UTC.</p>`;
}

function keysTable(keys: KeyInfo[], csrf: string): string {
  const rows = keys.map((k) => {
    const status = k.revokedAt !== undefined ? `revoked ${when(k.revokedAt)}` : 'active';
    let actions = '<span class="muted">read-only (RELAY_KEY)</span>';
    if (!k.readOnly && k.revokedAt === undefined) {
      const id = escapeHtml(k.id);
      actions = `<form method="post" action="/admin/keys/rotate" class="inline">${csrfField(csrf)}<input type="hidden" name="id" value="${id}">
          <select name="overlap_seconds" aria-label="Overlap for ${escapeHtml(k.label)}">${OVERLAPS.map((o) => `<option value="${o.seconds}">${o.text}</option>`).join('')}</select>
          <button type="submit" class="secondary">Rotate</button></form>
        <form method="post" action="/admin/keys/revoke" class="inline">${csrfField(csrf)}<input type="hidden" name="id" value="${id}">
          <label><input type="checkbox" name="confirm" value="yes" required> sure</label>
          <button type="submit" class="danger">Revoke</button></form>`;
    } else if (!k.readOnly) {
      actions = '';
    }
    return `<tr data-key-id="${escapeHtml(k.id)}"><td>${escapeHtml(k.label)}</td><td><code>${escapeHtml(k.id.length > 20 ? `${k.id.slice(0, 20)}…` : k.id)}</code></td><td class="when">${escapeHtml(when(k.createdAt))}</td><td class="when">${escapeHtml(when(k.lastUsedAt))}</td><td>${escapeHtml(status)}</td><td>${actions}</td></tr>`;
  });
  return `<table id="key-table"><thead><tr><th>Label</th><th>Id</th><th>Created (UTC)</th><th>Last used (UTC)</th><th>Status</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}
