import { csrfField, escapeHtml } from './html.ts';

/** The sign-in form: the admin key (RELAY_ADMIN_KEY) in a password field, and the form's anti-CSRF token. */
export function renderSignIn(csrf: string, error?: string): string {
  return `<main class="signin"><section>
  <h2>OpenAI relay · admin</h2>
  ${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
  <form method="post" action="/admin/login" autocomplete="off">
    ${csrfField(csrf)}
    <label for="admin_key">Admin key</label>
    <input type="password" id="admin_key" name="admin_key" required autofocus spellcheck="false" autocomplete="off">
    <button type="submit">Sign in</button>
  </form>
  <p class="muted">The relay's RELAY_ADMIN_KEY. Signing in sets a session cookie for this page only, for 8 hours.</p>
</section></main>`;
}
