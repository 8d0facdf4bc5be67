import http from 'node:http';
import { MiB, round } from './lib.ts';
import { AUTH } from './workload.ts';

/** Big transfers: a multipart upload generated on the fly and a download drained as it arrives, byte counts checked. */

export interface Transfer {
  status: number;
  bytes: number;
  expectedBytes: number;
  ok: boolean;
  ms: number;
  mibPerS: number;
}

/** A transfer is ok when answered 200 with every byte accounted for. */
function transferOf(status: number, bytes: number, expectedBytes: number, ms: number): Transfer {
  return { status, bytes, expectedBytes, ok: status === 200 && bytes === expectedBytes, ms: round(ms, 0), mibPerS: round(expectedBytes / MiB / (ms / 1000), 0) };
}

/** A multipart upload of `fileBytes`, generated on the fly and written with backpressure. */
export function upload(url: string, totalBytes: number): Promise<Transfer> {
  const boundary = '----relay-bench-7d3f0c9a2b';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const fileBytes = totalBytes - head.length - tail.length;
  const line = Buffer.from('{"custom_id":"bench","method":"POST","url":"/v1/embeddings","body":{"input":"x"}}\n');
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i += line.length) line.copy(block, i);
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const req = http.request(`${url}/v1/files`, {
      method: 'POST',
      agent: false,
      timeout: 300_000,
      headers: { authorization: AUTH, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': totalBytes },
    });
    req.on('timeout', () => req.destroy(new Error(`upload to ${url} stalled`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => {
        const ms = performance.now() - started;
        let echoed = -1;
        try {
          echoed = Number((JSON.parse(body) as { bytes?: number }).bytes ?? -1);
        } catch {
          // not JSON: reported below as a failed transfer
        }
        resolvePromise(transferOf(res.statusCode ?? 0, echoed, totalBytes, ms));
      });
      res.on('error', reject);
    });
    req.write(head);
    let left = fileBytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!req.write(n === block.length ? block : block.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end(tail);
    };
    pump();
  });
}

/** Downloads `bytes` of generated file content and throws every byte away. */
export function download(url: string, bytes: number): Promise<Transfer> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const req = http.get(`${url}/v1/files/file-${bytes}/content`, { agent: false, timeout: 300_000, headers: { authorization: AUTH } }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('end', () => {
        const ms = performance.now() - started;
        resolvePromise(transferOf(res.statusCode ?? 0, received, bytes, ms));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`download from ${url} stalled`)));
    req.on('error', reject);
  });
}
