/**
 * What a browser does with the admin page, without one: keeps the cookies it is given, reads each form's
 * hidden fields from the HTML, and posts forms back from the relay's own origin (or, to test the guards,
 * from another, or without the token).
 */

export interface PageAnswer {
  status: number;
  html: string;
  headers: Headers;
  location?: string;
  /** The set-cookie lines of this answer, whole. */
  setCookies: string[];
}

export class AdminBrowser {
  readonly cookies = new Map<string, string>();
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  private remember(res: Response): string[] {
    const lines = res.headers.getSetCookie();
    for (const line of lines) {
      const [pair] = line.split(';', 1);
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return lines;
  }

  private cookieHeader(): Record<string, string> {
    return this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<PageAnswer> {
    const res = await fetch(this.base + path, { headers: { ...this.cookieHeader(), ...headers }, redirect: 'manual' });
    const setCookies = this.remember(res);
    return { status: res.status, html: await res.text(), headers: res.headers, location: res.headers.get('location') ?? undefined, setCookies };
  }

  async post(path: string, fields: Record<string, string>, opts: { origin?: string | null; headers?: Record<string, string> } = {}): Promise<PageAnswer> {
    const origin = opts.origin === undefined ? this.base : opts.origin;
    const res = await fetch(this.base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin === null ? {} : { origin }), ...this.cookieHeader(), ...opts.headers },
      body: new URLSearchParams(fields),
      redirect: 'manual',
    });
    const setCookies = this.remember(res);
    return { status: res.status, html: await res.text(), headers: res.headers, location: res.headers.get('location') ?? undefined, setCookies };
  }

  /** Opens /admin and signs in with `adminKey` (the sign-in form's token included). */
  async signIn(adminKey: string): Promise<PageAnswer> {
    const form = await this.get('/admin');
    const answer = await this.post('/admin/login', { csrf: csrfOf(form.html), admin_key: adminKey });
    if (answer.status !== 303) throw new Error(`sign-in answered ${answer.status}: ${answer.html.slice(0, 300)}`);
    return this.get('/admin');
  }
}

/** The anti-CSRF token in a page's forms (every form of a page carries the same one). */
export function csrfOf(html: string): string {
  const match = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(html);
  if (!match) throw new Error('no csrf field in the page');
  return match[1]!;
}

/** The new secret a create or rotate form's answer shows once. */
export function secretOf(html: string): string | undefined {
  return /<div class="notice" role="status" id="new-secret">[\s\S]*?<code>([^<]+)<\/code>/.exec(html)?.[1];
}
