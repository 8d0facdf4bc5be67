import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ACTION_INFO_DESCRIPTION } from '../../generated/documents.ts';
import type { RelayEnv } from '../core/env.ts';
import type { RelayConfig } from '../config.ts';
import { actionServerUrl } from '../http/server-url.ts';
import { API_REFERENCE_PATHS, registerApiReference } from './api-reference.ts';
import { createDocumentCache, type DocumentCache } from './document-cache.ts';

/**
 * The served documents, public (no relay key): the GPT Action schema (/openapi.yaml, /openapi.json),
 * the whole contract (/openapi.full.yaml, /openapi.full.json), the plugin manifest, the privacy policy
 * a public GPT must link to, the API reference (api-reference.ts) and the manifest's logo.
 * The documents come from generated/ (src/routes/document-cache.ts); the relay only fills in its server URL.
 */

/** Add these to the app's public paths (they reveal nothing secret). */
export const DOCUMENT_PATHS = [
  '/openapi.yaml',
  '/openapi.json',
  '/openapi.full.yaml',
  '/openapi.full.json',
  '/.well-known/ai-plugin.json',
  '/privacy',
  ...API_REFERENCE_PATHS,
  '/logo.svg',
] as const;

const YAML_TYPE = 'application/yaml; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';

export function registerDocumentRoutes(app: OpenAPIHono<RelayEnv>, config: RelayConfig, documents: DocumentCache = createDocumentCache()): void {
  const fallback = config.port ? `http://localhost:${config.port}` : 'http://localhost';
  const serverUrl = (c: Context<RelayEnv>) =>
    actionServerUrl(
      config.publicBaseUrl,
      { host: c.req.header('host'), 'x-forwarded-host': c.req.header('x-forwarded-host'), 'x-forwarded-proto': c.req.header('x-forwarded-proto') },
      fallback,
    );
  const send = (c: Context<RelayEnv>, body: string, contentType: string, extra: Record<string, string> = {}) =>
    c.body(body, 200, { ...commonHeaders(c, config), 'content-type': contentType, ...extra });

  app.get('/openapi.yaml', (c) => send(c, documents.action(serverUrl(c)).yaml, YAML_TYPE));
  app.get('/openapi.json', (c) => send(c, documents.action(serverUrl(c)).json, JSON_TYPE));
  app.get('/openapi.full.yaml', (c) => send(c, documents.full(serverUrl(c)).yaml, YAML_TYPE));
  app.get('/openapi.full.json', (c) => send(c, documents.full(serverUrl(c)).json, JSON_TYPE));

  app.get('/.well-known/ai-plugin.json', (c) => {
    const server = serverUrl(c);
    const manifest = {
      schema_version: 'v1',
      name_for_human: 'OpenAI Relay',
      name_for_model: 'openai_relay',
      description_for_human: "Use OpenAI models, images, files and conversations through your team's relay.",
      description_for_model: ACTION_INFO_DESCRIPTION,
      auth: { type: 'service_http', authorization_type: 'bearer', verification_tokens: {} },
      api: { type: 'openapi', url: `${server}/openapi.yaml`, is_user_authenticated: false },
      logo_url: `${server}/logo.svg`,
      contact_email: 'relay-admin@example.com',
      legal_info_url: `${server}/privacy`,
    };
    return send(c, `${JSON.stringify(manifest, null, 2)}\n`, JSON_TYPE);
  });

  const privacyPage = privacyHtml(config);
  app.get('/privacy', (c) =>
    send(c, privacyPage, HTML_TYPE, { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" }),
  );

  app.get('/logo.svg', (c) => send(c, LOGO_SVG, 'image/svg+xml; charset=utf-8', { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" }));

  registerApiReference(app, (c) => commonHeaders(c, config));
}

function commonHeaders(c: Context<RelayEnv>, config: RelayConfig): Record<string, string> {
  const headers: Record<string, string> = {
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  };
  // The documents name the server the request came through; caches must keep one copy per host.
  if (!config.publicBaseUrl) headers.vary = 'Host, X-Forwarded-Host, X-Forwarded-Proto';
  const requestId = c.get('requestId');
  if (requestId) headers['x-request-id'] = requestId;
  return headers;
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function describeDuration(ms: number): string {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes % 60 === 0) return minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

export function defaultPrivacyText(config: RelayConfig): string {
  const ttl = describeDuration(config.actions.blobTtlMs);
  return [
    'This relay lets ChatGPT GPT Actions, MCP clients and OpenAI SDKs use the OpenAI API with its operator\'s OpenAI account. ' +
      "What you send (prompts, files) is passed to OpenAI, which processes it under its own policies: https://openai.com/policies/.",
    'The relay itself stores nothing but:\n' +
      `- files it prepares for you to download (generated images, large file downloads), kept at most ${ttl} so that the short-lived links it returns work, then deleted;\n` +
      '- request logs (time, operation, status, duration, request id), without the content of prompts, answers or files.',
    'It sets no cookies, builds no profiles, and neither sells nor shares data with anyone but OpenAI. ' +
      'For questions or deletion requests, contact the operator of this relay (the person who gave you access to it).',
  ].join('\n\n');
}

/** A plain HTML page; the text is escaped, paragraphs split on blank lines, line breaks kept. */
export function privacyHtml(config: RelayConfig): string {
  const text = config.actions.privacyPolicyText?.trim() || defaultPrivacyText(config);
  const paragraphs = text
    .split(/\r?\n\s*\r?\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => `    <p>${escapeHtml(p).replace(/\r?\n/g, '<br>\n')}</p>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Privacy policy · OpenAI Relay</title>
    <style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}</style>
  </head>
  <body>
    <h1>Privacy policy</h1>
${paragraphs}
  </body>
</html>
`;
}

const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" viewBox="0 0 64 64" role="img" aria-label="OpenAI Relay">
  <rect width="64" height="64" rx="14" fill="#10a37f"/>
  <path d="M16 22h24l-6-6M48 42H24l6 6" fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/>
</svg>
`;
