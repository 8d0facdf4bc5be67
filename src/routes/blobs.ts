import { Readable } from 'node:stream';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { RelayEnv } from '../core/env.ts';
import type { BlobLinks } from '../actions/blob-links.ts';
import type { BlobStore } from '../actions/blob-store.ts';
import { errorResponse, RelayError } from '../core/errors.ts';

/**
 * `GET /v1/relay/blobs/:blob_id?expires=…&signature=…`: public (no relay key; the signed link is the
 * credential), because ChatGPT and users' browsers fetch these links as they are. Bytes are served as a
 * download (attachment, nosniff, sandboxed) so a stored file can never run as a page on the relay's origin.
 */
export function registerBlobRoutes(app: OpenAPIHono<RelayEnv>, store: BlobStore, links: BlobLinks): void {
  app.get('/v1/relay/blobs/:blob_id', async (c) => {
    const requestId = c.get('requestId');
    const id = c.req.param('blob_id');
    const expires = c.req.query('expires');
    const signature = c.req.query('signature');

    const check = links.verify(id, expires, signature);
    if (check === 'invalid') {
      return errorResponse(
        new RelayError(403, 'This file link is not valid: its signature is missing or does not match (the link was changed or cut short). Use the complete link exactly as the relay gave it, or ask the assistant for a new one.', {
          code: 'invalid_blob_link',
        }),
        requestId,
      );
    }
    if (check === 'expired') {
      return errorResponse(
        new RelayError(410, 'This file link has expired. Ask the assistant for a fresh link, or to make the file again if it has been deleted.', {
          code: 'blob_link_expired',
        }),
        requestId,
      );
    }

    const blob = await store.open(id);
    if (!blob) {
      return errorResponse(
        new RelayError(404, 'This file no longer exists: the relay deletes files a while after making them. Ask the assistant to make it again.', {
          code: 'blob_not_found',
        }),
        requestId,
      );
    }

    const { meta, stream } = blob;
    const headers = new Headers({
      'content-type': meta.contentType,
      'content-length': String(meta.size),
      'content-disposition': contentDisposition(meta.filename),
      'cache-control': `private, max-age=${links.remainingSeconds(expires)}`,
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'x-request-id': requestId,
    });
    if (c.req.method === 'HEAD') {
      stream.destroy();
      return new Response(null, { status: 200, headers });
    }
    return new Response(Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>, { status: 200, headers });
  });
}

/** `attachment; filename="<ASCII fallback>"` plus RFC 5987 `filename*` when the name is not plain ASCII. */
export function contentDisposition(filename: string): string {
  const name =
    filename
      .replace(/[\u0000-\u001f\u007f]/g, '')
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD') || 'file';
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  if (fallback === name) return `attachment; filename="${fallback}"`;
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
