import { randomBytes } from 'node:crypto';
import { isLoopbackHost } from './redirect-uris.ts';

/**
 * The consent page a team member sees when an app (ChatGPT, Claude, Codex, …) connects to the relay:
 * which app, where it will be sent back to, and a password field for their relay key. The relay's own
 * HTML: no scripts, no external assets; styles allowed by nonce only; never framed (clickjacking);
 * the form may post only here and be redirected only to the app's callback.
 */

export interface ConsentView {
  clientName?: string;
  clientId: string;
  registration: 'dynamic' | 'document';
  redirectUri: string;
  /** Hidden fields: the authorization request and the anti-CSRF token. */
  fields: Record<string, string>;
  error?: string;
  accessTokenMinutes: number;
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; background: #f5f5f4; color: #1c1917; margin: 0; }
  main { max-width: 30rem; margin: 3rem auto; background: #fff; border: 1px solid #e7e5e4; border-radius: 12px; padding: 2rem; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  .meta { color: #57534e; font-size: .9rem; word-break: break-all; }
  .warn { background: #fef3c7; border: 1px solid #f59e0b; border-radius: 8px; padding: .6rem .8rem; font-size: .9rem; }
  .error { background: #fee2e2; border: 1px solid #ef4444; border-radius: 8px; padding: .6rem .8rem; }
  label { display: block; font-weight: 600; margin: 1.2rem 0 .3rem; }
  input[type=password] { width: 100%; box-sizing: border-box; padding: .6rem; font: inherit; border: 1px solid #a8a29e; border-radius: 8px; }
  .buttons { display: flex; gap: .8rem; margin-top: 1.2rem; }
  button { font: inherit; padding: .6rem 1.2rem; border-radius: 8px; border: 1px solid #1c1917; cursor: pointer; }
  button[value=allow] { background: #1c1917; color: #fff; }
  button[value=deny] { background: #fff; }
`;

/** The page's HTML and the headers it must go out with. */
export function renderConsentPage(view: ConsentView): { html: string; headers: Record<string, string> } {
  const nonce = randomBytes(16).toString('base64');
  const target = new URL(view.redirectUri);
  const appName = view.clientName ?? (view.registration === 'document' ? new URL(view.clientId).hostname : 'An app');
  const localhost = isLoopbackHost(target.hostname);
  const hidden = Object.entries(view.fields)
    .map(([name, value]) => `<input type="hidden" name="${escape(name)}" value="${escape(value)}">`)
    .join('\n      ');
  const html = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>Connect ${escape(appName)} to the OpenAI relay</title>
  <style nonce="${nonce}">${STYLE}</style>
</head>
<body>
  <main>
    <h1>Connect ${escape(appName)} to the OpenAI relay</h1>
    <p><strong>${escape(appName)}</strong> wants to use this relay's tools (model answers, images, files, vector stores, videos) on your behalf.
      It will act as your relay key: under your key's name, limits and usage. It never sees the key itself, and what it gets works only on the relay's MCP endpoint.</p>
    <p class="meta">App: ${escape(view.clientId)}${view.registration === 'document' ? ' (identified by its published metadata)' : ' (registered itself with the relay)'}<br>
      After you allow, you go back to: <strong>${escape(target.host)}</strong></p>
    ${localhost ? `<p class="warn">This app receives the connection on your own computer (${escape(target.host)}). Continue only if you started this connection yourself just now, in Claude Code, Codex, the MCP Inspector or a similar tool.</p>` : ''}
    ${view.error ? `<p class="error" role="alert">${escape(view.error)}</p>` : ''}
    <form method="post" action="/oauth/authorize" autocomplete="off">
      ${hidden}
      <label for="relay_key">Your relay key</label>
      <input type="password" id="relay_key" name="relay_key" autocomplete="off" spellcheck="false" autofocus>
      <p class="meta">The key the relay's operator gave you (not an OpenAI key). The connection lasts until it is revoked or the key is removed; access renews every ${view.accessTokenMinutes} minutes without asking.</p>
      <div class="buttons">
        <button type="submit" name="decision" value="allow">Allow</button>
        <button type="submit" name="decision" value="deny">Cancel</button>
      </div>
    </form>
  </main>
</body>
</html>
`;
  return { html, headers: pageHeaders(nonce, target.origin) };
}

/** An error page: no form, nothing sent anywhere. */
export function renderErrorPage(message: string): { html: string; headers: Record<string, string> } {
  const nonce = randomBytes(16).toString('base64');
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Cannot connect to the OpenAI relay</title><style nonce="${nonce}">${STYLE}</style></head>
<body><main><h1>Cannot connect to the OpenAI relay</h1><p class="error">${escape(message)}</p></main></body>
</html>
`;
  return { html, headers: pageHeaders(nonce) };
}

function pageHeaders(nonce: string, redirectOrigin?: string): Record<string, string> {
  // form-action covers the redirect that follows the post, so the app's callback origin is named too.
  const formAction = redirectOrigin ? `'self' ${redirectOrigin}` : `'self'`;
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'nonce-${nonce}'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  };
}
