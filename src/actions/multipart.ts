import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * A multipart/form-data body built as a stream, so files fetched from openaiFileIdRefs flow straight into
 * the upstream upload without being held in memory.
 */
export type Part =
  | { name: string; value: string }
  | { name: string; filename: string; contentType: string; stream: Readable };

const quote = (s: string) => s.replace(/["\\\r\n]/g, (c) => (c === '"' ? '%22' : c === '\\' ? '\\\\' : ''));

export function multipartBody(parts: Part[]): { body: Readable; boundary: string } {
  const boundary = `----relay${randomBytes(12).toString('hex')}`;
  async function* generate() {
    for (const part of parts) {
      if ('value' in part) {
        yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(part.name)}"\r\n\r\n${part.value}\r\n`);
      } else {
        yield Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${quote(part.name)}"; filename="${quote(part.filename)}"\r\nContent-Type: ${part.contentType}\r\n\r\n`,
        );
        for await (const chunk of part.stream) yield chunk as Buffer;
        yield Buffer.from('\r\n');
      }
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  return { body: Readable.from(generate(), { objectMode: false }), boundary };
}
