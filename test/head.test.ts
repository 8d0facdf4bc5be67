import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createBlobLinks } from '../src/actions/blob-links.ts';
import { createLocalBlobStore } from '../src/actions/blob-store-local.ts';
import { useRelay } from './helpers/relay.ts';

/**
 * HEAD is answered wherever the relay itself answers GET (uptime monitors probe with it): the same
 * status and headers, and not one byte of body on the wire. OpenAI operations still refuse it (405),
 * so a HEAD never becomes a full GET upstream.
 */
const BLOB_DIR = mkdtempSync(join(tmpdir(), 'relay-head-blobs-'));
const LINK_SECRET = 'head-test-link-secret-0123456789';
const ADMIN_KEY = 'head-test-admin-key-0123456789';
const relay = useRelay({ BLOB_DIR, BLOB_LINK_SECRET: LINK_SECRET, RELAY_ADMIN_KEY: ADMIN_KEY });

/** HEAD written on a socket; everything the relay sends back until it closes, split at the blank line. */
async function rawHead(path: string, headers = ''): Promise<{ status: number; head: string; body: string }> {
  const { hostname, port } = new URL((await relay.ready).url);
  const socket = net.connect(Number(port), hostname);
  // Written, not ended: the relay closes the connection after its answer (Connection: close).
  socket.write(`HEAD ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n${headers}Connection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return { status: Number(text.slice(9, 12)), head: text.slice(0, end).toLowerCase(), body: text.slice(end + 4) };
}

/** GET and HEAD of `path` agree on status and content type, and HEAD sends no body. */
async function expectHeadLikeGet(path: string, headers: Record<string, string> = {}): Promise<Response> {
  const get = await fetch((await relay.ready).url + path, { headers });
  const head = await rawHead(path, Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join(''));
  expect(head.status, `HEAD ${path}`).toBe(get.status);
  expect(head.head).toContain(`content-type: ${get.headers.get('content-type')?.toLowerCase()}`);
  expect(head.body, `HEAD ${path} sent a body`).toBe('');
  return get;
}

describe('HEAD where GET is answered', () => {
  test.each(['/health', '/v1/health'])('health: HEAD %s is 200 without a body', async (path) => {
    expect((await expectHeadLikeGet(path)).status).toBe(200);
  });

  test.each(['/openapi.yaml', '/openapi.json', '/openapi.full.yaml', '/openapi.full.json', '/.well-known/ai-plugin.json', '/privacy', '/logo.svg', '/docs', '/docs/init.js', '/docs/swagger-ui.css'])(
    'documents: HEAD %s is 200 without a body',
    async (path) => {
      expect((await expectHeadLikeGet(path)).status).toBe(200);
    },
  );

  test('signed file links: HEAD is 200 with the length and disposition and no body; a bad signature is 403', async () => {
    const store = createLocalBlobStore({ dir: BLOB_DIR, ttlMs: 3_600_000, quotaBytes: 1_000_000 });
    const meta = await store.put(Buffer.from('twelve bytes'), { contentType: 'text/plain', filename: 'a.txt' });
    store.close();
    const link = new URL(createBlobLinks({ secret: Buffer.from(LINK_SECRET), ttlMs: 3_600_000 }).url('http://relay.test', meta).url);
    const path = link.pathname + link.search;
    const get = await expectHeadLikeGet(path);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('twelve bytes');
    const head = await rawHead(path);
    expect(head.head).toContain('content-length: 12');
    expect(head.head).toContain('content-disposition: attachment; filename="a.txt"');
    expect((await rawHead(path.replace(/signature=[^&]+/, 'signature=AAAA'))).status).toBe(403);
  });

  test('admin reads: HEAD /metrics with the admin key is 200 without a body, and 401 without it', async () => {
    expect((await expectHeadLikeGet('/metrics', { authorization: `Bearer ${ADMIN_KEY}` })).status).toBe(200);
    expect((await rawHead('/metrics')).status).toBe(401);
  });
});

describe('HEAD elsewhere', () => {
  test.each(['/v1/models', '/v1/files/file-1/content', '/v1/actions/files'])('HEAD %s (upstream behind it) is 405 naming where HEAD works', async (path) => {
    const head = await rawHead(path, 'Authorization: Bearer relay-key-one-0123456789\r\n');
    expect(head.status).toBe(405);
    expect(head.head).toContain('allow: get, post, delete');
  });
});
