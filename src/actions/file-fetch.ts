import type { ClientRequest, IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { RelayError } from '../core/errors.ts';
import { hostMatcher, isForbiddenAddress, pinnedGet, resolveAll } from '../core/net-policy.ts';
import { safeFilename } from './blob-store.ts';
import { capturedBody, fmtBytes, fmtSeconds, readHead, type BodyLimits } from './file-body.ts';
import { FILE_REFS_PARAM as PARAM, type FileRef } from './file-refs.ts';
import { describeMime, mimeAccepted, sniffMime } from './sniff.ts';

/**
 * Safe fetching of `openaiFileIdRefs` links: a link is only followed when it is https on port 443 to an
 * allowlisted host whose every DNS answer is a public address, and the connection is pinned to the
 * address that was checked. Redirects pass the same checks; the type is sniffed from the bytes; the size
 * cap holds while the body flows (file-body.ts). Every refusal is a 4xx whose message tells the model what
 * to do next.
 */

export interface FetchedFile {
  name: string;
  /** Sniffed from the first bytes (the ref's `mime_type` only picks a text subtype). */
  mimeType: string;
  /** From Content-Length (or the whole body when it fitted in the sniffed head); absent when unknown. */
  size?: number;
  /**
   * The body, still capped: destroyed with a RelayError 413 past maxBytes, 408 when the host stops sending
   * for timeoutMs, 502 when the download is cut off. Consume it or destroy it. (Waiting on a slow reader is
   * not a stall: the timer only runs while the stream is waiting for the host.)
   */
  stream: Readable;
}

export interface FileRefFetcher {
  /**
   * Checks a link (scheme, host allowlist, DNS answers) without downloading: lets an operation that
   * handles several files refuse a bad one before it has sent any of them upstream.
   */
  check(ref: FileRef): Promise<void>;
  /** Opens one file: checks the link, connects, follows allowed redirects, sniffs the first bytes, then hands back a stream that still enforces the size cap while it flows (destroyed with a RelayError 413 when it passes maxBytes). */
  open(ref: FileRef, accept: readonly string[]): Promise<FetchedFile>;
}

export interface FileRefFetcherOptions {
  /** Exact host names, or `*.example.com` for subdomains of example.com (not example.com itself). */
  allowedHosts: string[];
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  /** Every address the host resolves to; defaults to `dns.promises.lookup(host, {all: true})`. */
  resolve?: (hostname: string) => Promise<string[]>;
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const GONE_STATUS = new Set([403, 404, 410]);
const clip = (text: string, max = 120) => (text.length > max ? text.slice(0, max) + '…' : text);

interface Attempt {
  req?: ClientRequest;
  res?: IncomingMessage;
  timedOut: boolean;
}

export function createFileRefFetcher(opts: FileRefFetcherOptions): FileRefFetcher {
  const { maxBytes, timeoutMs, maxRedirects } = opts;
  const allowed = hostMatcher(opts.allowedHosts);
  const resolve = opts.resolve ?? resolveAll;
  const hostList = opts.allowedHosts.join(', ');

  function checkUrl(raw: string, redirectedFrom?: URL): URL {
    const via = redirectedFrom ? `The file host ${redirectedFrom.hostname} redirected the download to a link that` : 'The download_link';
    const refuse = (what: string, code: string) =>
      new RelayError(
        400,
        `${via} ${what}, so the relay will not fetch it. Only files the user attaches in ChatGPT (links on ${hostList}) can be read: pass ${PARAM} exactly as ChatGPT provided it, or ask the user to attach the file again.`,
        { code, param: PARAM },
      );
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw refuse('is not a valid URL', 'invalid_file_link');
    }
    if (url.protocol !== 'https:') throw refuse(`uses ${clip(url.protocol, 20)} instead of https:`, 'file_link_not_https');
    if (url.username || url.password) throw refuse('carries a user name or password', 'file_host_not_allowed');
    if (url.port !== '') throw refuse(`uses port ${url.port} instead of 443`, 'file_host_not_allowed');
    const host = url.hostname.toLowerCase();
    if (host.startsWith('[') || net.isIP(host) !== 0) throw refuse('names an IP address instead of a file host', 'file_host_not_allowed');
    if (host.endsWith('.') || !allowed(host)) throw refuse(`points at ${clip(host)}, which is not an allowed file host`, 'file_host_not_allowed');
    return url;
  }

  async function resolveChecked(host: string): Promise<string[]> {
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'lookup failed';
      throw new RelayError(502, `The relay could not look up the file host ${host} (${code}). Try again in a moment.`, { code: 'file_host_unresolvable' });
    }
    if (!Array.isArray(addresses) || addresses.length === 0) {
      throw new RelayError(502, `The relay could not look up the file host ${host} (no addresses). Try again in a moment.`, { code: 'file_host_unresolvable' });
    }
    if (addresses.some((a) => typeof a !== 'string' || isForbiddenAddress(a))) {
      throw new RelayError(
        400,
        `The file host ${host} resolves to a private or internal network address, so the relay will not download from it. Only files the user attaches in ChatGPT can be read: ask the user to attach the file again.`,
        { code: 'file_host_forbidden', param: PARAM },
      );
    }
    return addresses;
  }

  function request(url: URL, addresses: string[], state: Attempt): Promise<IncomingMessage> {
    return new Promise((resolveRes, reject) => {
      const host = url.hostname.toLowerCase();
      const req = pinnedGet(url, addresses, { accept: '*/*', 'accept-encoding': 'identity', 'user-agent': 'openai-relay (file fetch)' });
      state.req = req;
      req.once('response', resolveRes);
      req.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new RelayError(502, `The relay could not download the file from ${host} (${err.code ?? err.message}). Try again in a moment; if it keeps failing, ask the user to attach the file again.`, {
            code: 'file_download_failed',
          }),
        );
      });
      req.end();
    });
  }

  async function attempt(ref: FileRef, accept: readonly string[], state: Attempt): Promise<FetchedFile> {
    if (typeof ref?.download_link !== 'string') {
      throw new RelayError(400, `Each ${PARAM} entry needs a download_link. Pass ${PARAM} exactly as ChatGPT provided it.`, { code: 'invalid_file_refs', param: PARAM });
    }
    let url = checkUrl(ref.download_link);
    const name = safeFilename(ref.name || decodeSegment(url.pathname.split('/').pop()), 'file');
    for (let hop = 0; ; hop++) {
      const addresses = await resolveChecked(url.hostname.toLowerCase());
      if (state.timedOut) throw new RelayError(408, 'timed out');
      const res = await request(url, addresses, state);
      state.res = res;
      const status = res.statusCode ?? 0;

      if (REDIRECT_STATUS.has(status)) {
        res.destroy();
        if (hop >= maxRedirects) {
          throw new RelayError(400, `The file host redirected the download of "${name}" more than ${maxRedirects} times, so the relay gave up. Ask the user to attach the file again.`, {
            code: 'file_too_many_redirects',
            param: PARAM,
          });
        }
        const location = res.headers.location;
        let next: URL;
        try {
          next = new URL(location ?? '', url);
        } catch {
          throw new RelayError(502, `The file host answered ${status} for "${name}" without a usable Location. Try again in a moment.`, { code: 'file_download_failed' });
        }
        if (!location) throw new RelayError(502, `The file host answered ${status} for "${name}" without a Location. Try again in a moment.`, { code: 'file_download_failed' });
        url = checkUrl(next.href, url);
        continue;
      }
      if (GONE_STATUS.has(status)) {
        res.destroy();
        throw new RelayError(
          400,
          `The download link for "${name}" has expired or is invalid (the file host answered ${status}); ChatGPT's file links work for only 5 minutes. Ask the user to attach the file again, then call this action again.`,
          { code: 'file_link_expired', param: PARAM },
        );
      }
      if (status < 200 || status > 299) {
        res.destroy();
        throw new RelayError(502, `The file host answered ${status} when downloading "${name}". Try again in a moment; if it keeps failing, ask the user to attach the file again.`, {
          code: 'file_download_failed',
        });
      }
      const encoding = String(res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== '') {
        res.destroy();
        throw new RelayError(502, `The file host sent "${name}" compressed (${clip(encoding, 20)}), which the relay does not unpack. Try again in a moment.`, {
          code: 'file_download_failed',
        });
      }
      const declared = parseLength(res.headers['content-length']);
      if (declared !== undefined && declared > maxBytes) {
        res.destroy();
        throw tooLarge(name, declared);
      }

      const { head, ended } = await readHead(res, name, limits);
      if (head.length === 0 && ended) {
        throw new RelayError(400, `"${name}" is empty (0 bytes). Ask the user to check the file and attach it again.`, { code: 'file_empty', param: PARAM });
      }
      const mimeType = sniffMime(head, { name, mimeType: ref.mime_type, complete: ended });
      if (!mimeAccepted(mimeType, accept)) {
        res.destroy();
        throw new RelayError(
          415,
          `"${name}" is ${describeMime(mimeType)} (judged from its contents, not its name), but this action accepts only ${accept.map(describeMime).join(', ')}. Ask the user for a file of an accepted type.`,
          { code: 'unsupported_file_type', param: PARAM },
        );
      }
      return { name, mimeType, size: declared ?? (ended ? head.length : undefined), stream: capturedBody(res, state.req!, head, ended, name, limits) };
    }
  }

  function tooLarge(name: string, bytes?: number): RelayError {
    const size = bytes === undefined ? 'larger than' : `${fmtBytes(bytes)}, over`;
    return new RelayError(413, `"${name}" is ${size} the ${fmtBytes(maxBytes)} limit for files this action reads. Ask the user for a smaller file (fewer pages, a lower resolution or a shorter clip).`, {
      code: 'file_too_large',
      param: PARAM,
    });
  }

  const limits: BodyLimits = { maxBytes, timeoutMs, tooLarge };

  return {
    async check(ref) {
      const url = checkUrl(ref.download_link);
      await resolveChecked(url.hostname.toLowerCase());
    },
    async open(ref, accept) {
      const state: Attempt = { timedOut: false };
      let timer: NodeJS.Timeout | undefined;
      const label = typeof ref?.name === 'string' && ref.name ? `"${safeFilename(ref.name)}"` : 'the file';
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          state.timedOut = true;
          state.req?.destroy();
          state.res?.destroy();
          reject(
            new RelayError(408, `Downloading ${label} from the file host took longer than ${fmtSeconds(timeoutMs)}, so the relay gave up. Try again in a moment; if it keeps failing, ask the user to attach the file again.`, {
              code: 'file_download_timeout',
              type: 'timeout_error',
              param: PARAM,
            }),
          );
        }, timeoutMs);
      });
      const work = attempt(ref, accept, state);
      // A result that arrives after the deadline is thrown away.
      work.then(
        (file) => {
          if (state.timedOut) file.stream.destroy();
        },
        () => {},
      );
      try {
        return await Promise.race([work, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function parseLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,16}\s*$/.test(value)) return undefined;
  return Number(value);
}

function decodeSegment(segment: string | undefined): string | undefined {
  if (!segment) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
