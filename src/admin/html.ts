import { randomBytes } from 'node:crypto';

/**
 * The admin page's HTML frame: no scripts at all, no external assets, one stylesheet allowed by nonce;
 * never framed, never cached, forms may post only to the relay itself.
 */

export const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** `default-src 'none'`: no script, image, font or connection of any kind; the one <style> by its nonce. */
export const adminCsp = (nonce: string) => `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

const STYLE = `
  body { font: 15px/1.5 system-ui, sans-serif; background: #f5f5f4; color: #1c1917; margin: 0; }
  header { background: #1c1917; color: #fafaf9; padding: .8rem 1.5rem; display: flex; align-items: center; justify-content: space-between; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header form { margin: 0; }
  main { max-width: 72rem; margin: 1.5rem auto; padding: 0 1rem; }
  section { background: #fff; border: 1px solid #e7e5e4; border-radius: 12px; padding: 1.2rem 1.5rem; margin-bottom: 1.2rem; }
  h2 { font-size: 1.05rem; margin: 0 0 .8rem; }
  table { border-collapse: collapse; width: 100%; font-size: .92rem; }
  th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #f0efed; vertical-align: middle; }
  th { color: #57534e; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  code { font-size: .85rem; word-break: break-all; }
  td.when { white-space: nowrap; }
  .muted { color: #78716c; }
  .notice { background: #ecfdf5; border: 1px solid #10b981; border-radius: 8px; padding: .8rem 1rem; margin-bottom: 1.2rem; }
  .notice code { display: block; background: #fff; border: 1px solid #a7f3d0; padding: .5rem; margin: .4rem 0; font-size: .95rem; user-select: all; }
  .error { background: #fee2e2; border: 1px solid #ef4444; border-radius: 8px; padding: .8rem 1rem; margin-bottom: 1.2rem; }
  .chart { margin: 0; }
  .chart svg { width: 100%; height: auto; display: block; }
  .legend { list-style: none; padding: 0; margin: .6rem 0 0; display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; font-size: .9rem; }
  .swatch { display: inline-block; margin-right: .35rem; vertical-align: -1px; }
  nav.choices { font-size: .9rem; margin-bottom: .6rem; display: flex; gap: 1.5rem; flex-wrap: wrap; }
  nav.choices a { color: #2563eb; margin-right: .5rem; }
  nav.choices strong { margin-right: .5rem; }
  form.inline { display: inline-flex; gap: .4rem; align-items: center; margin: 0 .4rem 0 0; }
  input[type=text], input[type=password], select { font: inherit; padding: .35rem .5rem; border: 1px solid #a8a29e; border-radius: 6px; }
  button { font: inherit; padding: .35rem .8rem; border-radius: 6px; border: 1px solid #1c1917; background: #1c1917; color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: #1c1917; }
  button.danger { background: #b91c1c; border-color: #b91c1c; }
  meter { width: 8rem; }
  .signin { max-width: 26rem; margin: 4rem auto; }
  .signin input[type=password] { width: 100%; box-sizing: border-box; margin: .4rem 0 1rem; }
`;

/** A complete page and the headers it must go out with. */
export function adminPage(title: string, body: string): { html: string; headers: Record<string, string> } {
  const nonce = randomBytes(16).toString('base64');
  const html = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="same-origin">
  <title>${escapeHtml(title)}</title>
  <style nonce="${nonce}">${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': adminCsp(nonce),
      'x-frame-options': 'DENY',
      // Not no-referrer: the browser would then send its forms with `Origin: null`, which sameSite() refuses.
      'referrer-policy': 'same-origin',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    },
  };
}

/** The hidden field every form carries. */
export const csrfField = (token: string) => `<input type="hidden" name="csrf" value="${escapeHtml(token)}">`;
