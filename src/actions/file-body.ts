import type { ClientRequest, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { RelayError } from '../core/errors.ts';
import { FILE_REFS_PARAM as PARAM } from './file-refs.ts';
import { SNIFF_BYTES } from './sniff.ts';

/** A downloaded file's body under its limits: its head read for sniffing, the rest streamed with the caps still enforced. */

export interface BodyLimits {
  maxBytes: number;
  /** Longest silence of the host while the body is awaited. */
  timeoutMs: number;
  /** The 413 for a file over maxBytes (its size when known). */
  tooLarge(name: string, bytes?: number): RelayError;
}

const MB = 1024 * 1024;
export const fmtBytes = (n: number) => (n >= MB ? `${Math.round((n / MB) * 10) / 10} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} bytes`);
export const fmtSeconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

export const cutOff = (name: string) =>
  new RelayError(502, `The download of "${name}" was cut off by the file host. Try again in a moment; if it keeps failing, ask the user to attach the file again.`, {
    code: 'file_download_failed',
  });

/** Reads until SNIFF_BYTES (or the end), then leaves the response paused for capturedBody. */
export function readHead(res: IncomingMessage, name: string, limits: BodyLimits): Promise<{ head: Buffer; ended: boolean }> {
const { maxBytes, tooLarge } = limits;
  return new Promise((resolveHead, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = () => {
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('error', onFail);
      res.off('close', onFail);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        res.destroy();
        reject(tooLarge(name));
      } else if (total >= SNIFF_BYTES) {
        res.pause();
        cleanup();
        resolveHead({ head: Buffer.concat(chunks), ended: false });
      }
    };
    const onEnd = () => {
      cleanup();
      resolveHead({ head: Buffer.concat(chunks), ended: true });
    };
    const onFail = () => {
      cleanup();
      reject(cutOff(name));
    };
    res.on('data', onData);
    res.once('end', onEnd);
    res.once('error', onFail);
    res.once('close', onFail);
  });
}

/**
 * The rest of the body as a stream that still enforces the limits: destroyed with a RelayError 413 past
 * maxBytes, 408 when the host stops sending for timeoutMs (only while the stream waits on the host: a slow
 * reader is not a stall), 502 when the download is cut off.
 */
export function capturedBody(res: IncomingMessage, req: ClientRequest, head: Buffer, ended: boolean, name: string, limits: BodyLimits): Readable {
const { maxBytes, timeoutMs, tooLarge } = limits;
  let received = head.length;
  let stallTimer: NodeJS.Timeout | undefined;
  const disarm = () => {
    if (stallTimer) clearTimeout(stallTimer);
    stallTimer = undefined;
  };
  const arm = () => {
    disarm();
    stallTimer = setTimeout(
      () =>
        out.destroy(
          new RelayError(408, `The file host stopped sending "${name}" for ${fmtSeconds(timeoutMs)}. Try again in a moment; if it keeps failing, ask the user to attach the file again.`, {
            code: 'file_download_timeout',
            type: 'timeout_error',
            param: PARAM,
          }),
        ),
      timeoutMs,
    );
  };
  const detach = () => {
    res.off('data', onData);
    res.off('end', onEnd);
    res.off('error', onError);
    res.off('close', onClose);
  };
  const out = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (ended || res.readableEnded) return;
      arm(); // waiting for the host from now on
      res.resume();
    },
    destroy(err, callback) {
      disarm();
      detach();
      if (!res.destroyed) res.destroy();
      if (!req.destroyed) req.destroy();
      callback(err);
    },
  });
  // An unread stream that fails must not crash the process; readers still get the error.
  out.on('error', () => {});

  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBytes) {
      out.destroy(tooLarge(name));
      return;
    }
    if (out.push(chunk)) arm();
    else {
      disarm(); // the reader is behind: not the host's fault
      res.pause();
    }
  };
  const onEnd = () => {
    disarm();
    detach();
    out.push(null);
  };
  const onError = () => out.destroy(cutOff(name));
  const onClose = () => {
    if (!res.complete) out.destroy(cutOff(name));
  };

  if (head.length > 0) out.push(head);
  // The response may have finished (or failed) between readHead and now, with nobody listening.
  if (!ended && res.readableEnded) ended = res.complete;
  if (ended) {
    out.push(null);
    return out;
  }
  if (res.destroyed || res.errored) {
    out.destroy(cutOff(name));
    return out;
  }
  res.on('data', onData);
  res.once('end', onEnd);
  res.on('error', onError);
  res.once('close', onClose);
  return out;
}
