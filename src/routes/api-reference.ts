import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { RelayEnv } from '../core/env.ts';

/**
 * `GET /docs`: an interactive reference of the whole contract (Swagger UI), served entirely by the relay
 * from the `swagger-ui-dist` package (pinned in package.json, checked by the lockfile's integrity hash):
 * it works offline and behind strict proxies, and no third-party script runs on the relay's origin. The
 * Content-Security-Policy allows scripts, styles and requests from the relay's own origin only.
 *
 * Swagger UI rather than Scalar: Scalar's browser bundle ships in @scalar/api-reference, which installs
 * ~285 packages into production; swagger-ui-dist is static files with no runtime dependency.
 */

/** The asset paths, public like /docs itself. */
export const API_REFERENCE_PATHS = ['/docs', '/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js', '/docs/init.js'] as const;

export const API_REFERENCE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Swagger UI sets element styles from script; no inline <style> or <script> of ours exists.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  // The contract, and "Try it out" against this relay.
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

// Relative URLs: the page works behind a path-prefixing proxy and on plain-http hosts alike.
const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>OpenAI Relay API reference</title>
    <link rel="stylesheet" href="docs/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/swagger-ui-bundle.js"></script>
    <script src="docs/init.js"></script>
  </body>
</html>
`;

// validatorUrl null: Swagger UI would otherwise send the contract to validator.swagger.io. The schemas
// appear under each operation; the separate list of all of them (hundreds) is left out.
const INIT = `window.ui = SwaggerUIBundle({
  url: 'openapi.full.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  defaultModelsExpandDepth: -1,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

const ASSETS = {
  '/docs/swagger-ui.css': { file: 'swagger-ui-dist/swagger-ui.css', type: 'text/css; charset=utf-8' },
  '/docs/swagger-ui-bundle.js': { file: 'swagger-ui-dist/swagger-ui-bundle.js', type: 'text/javascript; charset=utf-8' },
} as const;

export function registerApiReference(app: OpenAPIHono<RelayEnv>, commonHeaders: (c: Context<RelayEnv>) => Record<string, string>): void {
  const headers = (c: Context<RelayEnv>, type: string, cacheControl?: string) => ({
    ...commonHeaders(c),
    'content-type': type,
    'content-security-policy': API_REFERENCE_CSP,
    ...(cacheControl ? { 'cache-control': cacheControl } : {}),
  });
  app.get('/docs', (c) => c.body(PAGE, 200, headers(c, 'text/html; charset=utf-8')));
  app.get('/docs/init.js', (c) => c.body(INIT, 200, headers(c, 'text/javascript; charset=utf-8')));
  for (const [path, asset] of Object.entries(ASSETS)) {
    // Read on first use (1.9 MB in all), then kept: start-up does not pay for a page few open.
    let bytes: Promise<Uint8Array<ArrayBuffer>> | undefined;
    app.get(path, async (c) => {
      bytes ??= readFile(fileURLToPath(import.meta.resolve(asset.file))).catch((err: unknown) => {
        bytes = undefined;
        throw err;
      });
      // The files change only with the package version: a day's caching is safe.
      return c.body(await bytes, 200, headers(c, asset.type, 'public, max-age=86400'));
    });
  }
}
