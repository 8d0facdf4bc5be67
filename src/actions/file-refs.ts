import dns from 'node:dns';
import type { ClientRequest, IncomingMessage } from 'node:http';
import https from 'node:https';
import net, { BlockList, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { RelayError } from '../core/errors.ts';
import { safeFilename } from './blob-store.ts';
import { describeMime, mimeAccepted, SNIFF_BYTES, sniffMime } from './sniff.ts';

/**
 * Safe fetching of the files a GPT Action receives as `openaiFileIdRefs`: `{name, id, mime_type,
 * download_link}` entries whose links live five minutes on OpenAI's file hosts. Everything in an entry is
 * untrusted (the model can write any of it), so a link is only followed when it is https on port 443 to an
 * allowlisted host whose every DNS answer is a public address, and the connection is pinned to the
 * address that was checked. Redirects pass the same checks; the type is sniffed from the bytes; the size
 * cap holds while the body flows. Every refusal is a 4xx whose message tells the model what to do next.
 */

export interface FileRef {
  name?: string;
  id?: string;
  mime_type?: string;
  download_link: string;
}

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

const PARAM = 'openaiFileIdRefs';
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const GONE_STATUS = new Set([403, 404, 410]);
const MAX_LINK_LENGTH = 8192;
const MB = 1024 * 1024;

const fmtBytes = (n: number) => (n >= MB ? `${Math.round((n / MB) * 10) / 10} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} bytes`);
const fmtSeconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const clip = (text: string, max = 120) => (text.length > max ? text.slice(0, max) + '…' : text);

// ---------------------------------------------------------------------------------------------------
// Shape check

/** Checks the `openaiFileIdRefs` array ChatGPT sends (at most `max` entries); RelayError 400 otherwise. */
export function checkFileRefs(refs: unknown, max = 10): FileRef[] {
  if (!Array.isArray(refs)) {
    throw new RelayError(
      400,
      `${PARAM} must be an array of the files the user attached, each {name, id, mime_type, download_link} as ChatGPT provides them. Ask the user to attach the file in the chat, then call again.`,
      { code: 'invalid_file_refs', param: PARAM },
    );
  }
  if (refs.length > max) {
    throw new RelayError(400, `${PARAM} has ${refs.length} files, but at most ${max} can be sent in one call. Send at most ${max} and the rest in another call.`, {
      code: 'too_many_files',
      param: PARAM,
    });
  }
  return refs.map((entry, i) => {
    const where = `${PARAM}[${i}]`;
    if (typeof entry === 'string' && /^https:\/\//i.test(entry) && entry.length <= MAX_LINK_LENGTH) {
      return { download_link: entry };
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new RelayError(
        400,
        `${where} must be an object {name, id, mime_type, download_link} as ChatGPT provides it for an attached file; a file id or name alone cannot be downloaded. Ask the user to attach the file in the chat, then pass ${PARAM} unchanged.`,
        { code: 'invalid_file_refs', param: where },
      );
    }
    const record = entry as Record<string, unknown>;
    const link = record.download_link;
    if (typeof link !== 'string' || link.trim() === '' || link.length > MAX_LINK_LENGTH) {
      throw new RelayError(
        400,
        `${where}.download_link is missing or not a link. Pass ${PARAM} exactly as ChatGPT provided it; if the user has not attached a file, ask them to attach it.`,
        { code: 'invalid_file_refs', param: `${where}.download_link` },
      );
    }
    const ref: FileRef = { download_link: link.trim() };
    for (const key of ['name', 'id', 'mime_type'] as const) {
      const value = record[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== 'string' || value.length > 1024) {
        throw new RelayError(400, `${where}.${key} must be a string (as ChatGPT provides it).`, { code: 'invalid_file_refs', param: `${where}.${key}` });
      }
      ref[key] = value;
    }
    return ref;
  });
}

// ---------------------------------------------------------------------------------------------------
// Host and address checks

/** A matcher for an allowlist of exact host names and `*.suffix` patterns (lowercased, no trailing dot). */
export function hostMatcher(patterns: readonly string[]): (host: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of patterns) {
    const p = raw.trim().toLowerCase().replace(/\.$/, '');
    if (p.startsWith('*.') && p.length > 2 && !p.slice(2).includes('*')) suffixes.push(p.slice(1));
    else if (p && !p.includes('*')) exact.add(p);
  }
  return (host) => {
    const h = host.toLowerCase();
    if (h.endsWith('.') || h.length === 0) return false;
    return exact.has(h) || suffixes.some((s) => h.length > s.length && h.endsWith(s));
  };
}

const forbidden = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  forbidden.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['fc00::', 7], // unique-local
  ['ff00::', 8], // multicast
  ['100::', 64], // discard
  ['64:ff9b:1::', 48], // local-use NAT64
  ['2001::', 32], // Teredo (hides an IPv4 address)
  ['2001:2::', 48], // benchmarking
  ['2001:10::', 28], // ORCHID
  ['2001:20::', 28], // ORCHIDv2
] as const) {
  forbidden.addSubnet(network, prefix, 'ipv6');
}

/** The 16 bytes of an IPv6 address (zone id dropped), or undefined when it is not one. */
export function ipv6Bytes(input: string): Uint8Array | undefined {
  let s = input;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (!net.isIPv6(s)) return undefined;
  const bytes = new Uint8Array(16);
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const quad = tail.split('.').map(Number);
    bytes.set(quad, 12);
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.split('::');
  const headGroups = head ? head.split(':') : [];
  const restGroups = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  if (groups.length !== 8) return undefined;
  const v4 = tail.includes('.') ? bytes.slice(12) : undefined;
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  });
  if (v4) bytes.set(v4, 12);
  return bytes;
}

const v4String = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** True when the address is private, loopback, link-local, unique-local, CGNAT, multicast, unspecified or otherwise not public (IPv4-mapped and other IPv6 forms that embed an IPv4 address included). */
export function isForbiddenAddress(address: string): boolean {
  const family = net.isIP(address.split('%')[0]);
  if (family === 4) return forbidden.check(address, 'ipv4');
  if (family !== 6) return true; // not an IP address at all: refuse
  const b = ipv6Bytes(address);
  if (!b) return true;
  const plain = address.split('%')[0];
  if (forbidden.check(plain, 'ipv6')) return true;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64), ::ffff:0:a.b.c.d (translated)
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return forbidden.check(v4String(b, 12), 'ipv4');
  if (zeros(0, 12)) return forbidden.check(v4String(b, 12), 'ipv4');
  if (zeros(0, 8) && b[8] === 0xff && b[9] === 0xff && zeros(10, 12)) return forbidden.check(v4String(b, 12), 'ipv4');
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return forbidden.check(v4String(b, 12), 'ipv4');
  // 2002:a.b.c.d::/48 (6to4)
  if (b[0] === 0x20 && b[1] === 0x02) return forbidden.check(v4String(b, 2), 'ipv4');
  return false;
}

/**
 * A `lookup` for https.request that answers only with the addresses already checked, so a second DNS
 * answer (rebinding) cannot move the connection; TLS still verifies the certificate for the host name.
 */
export function pinnedLookup(hostname: string, addresses: readonly string[]): LookupFunction {
  return (name, options, callback) => {
    const want = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    const list = addresses.map((address) => ({ address, family: net.isIP(address) })).filter((a) => a.family !== 0 && (want === 0 || a.family === want));
    if (name.toLowerCase() !== hostname || list.length === 0) {
      const err = Object.assign(new Error(`no checked address for ${name}`), { code: 'ENOTFOUND', hostname: name }) as NodeJS.ErrnoException;
      callback(err, '', 0);
      return;
    }
    if (options.all) callback(null, list);
    else callback(null, list[0].address, list[0].family);
  };
}

/**
 * A GET of `url` (https, port 443) over a fresh connection pinned to `addresses`, already checked: a
 * pooled socket could be bound to an address this request did not check. TLS still verifies the host.
 */
export function pinnedGet(url: URL, addresses: readonly string[], headers: Record<string, string>): ClientRequest {
  const host = url.hostname.toLowerCase();
  return https.request({
    protocol: 'https:',
    hostname: host,
    servername: host,
    port: 443,
    method: 'GET',
    path: url.pathname + url.search,
    headers,
    lookup: pinnedLookup(host, addresses),
    agent: false,
    maxHeaderSize: 32 * 1024,
  });
}

const defaultResolve = async (hostname: string): Promise<string[]> =>
  (await dns.promises.lookup(hostname, { all: true, order: 'verbatim' })).map((a) => a.address);

// ---------------------------------------------------------------------------------------------------
// Fetching

interface Attempt {
  req?: ClientRequest;
  res?: IncomingMessage;
  timedOut: boolean;
}

export function createFileRefFetcher(opts: FileRefFetcherOptions): FileRefFetcher {
  const { maxBytes, timeoutMs, maxRedirects } = opts;
  const allowed = hostMatcher(opts.allowedHosts);
  const resolve = opts.resolve ?? defaultResolve;
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

      const { head, ended } = await readHead(res, name);
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
      return { name, mimeType, size: declared ?? (ended ? head.length : undefined), stream: bodyStream(res, state.req!, head, ended, name) };
    }
  }

  function tooLarge(name: string, bytes?: number): RelayError {
    const size = bytes === undefined ? 'larger than' : `${fmtBytes(bytes)}, over`;
    return new RelayError(413, `"${name}" is ${size} the ${fmtBytes(maxBytes)} limit for files this action reads. Ask the user for a smaller file (fewer pages, a lower resolution or a shorter clip).`, {
      code: 'file_too_large',
      param: PARAM,
    });
  }

  const cutOff = (name: string) =>
    new RelayError(502, `The download of "${name}" was cut off by the file host. Try again in a moment; if it keeps failing, ask the user to attach the file again.`, {
      code: 'file_download_failed',
    });

  /** Reads until SNIFF_BYTES (or the end), then leaves the response paused for bodyStream. */
  function readHead(res: IncomingMessage, name: string): Promise<{ head: Buffer; ended: boolean }> {
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

  function bodyStream(res: IncomingMessage, req: ClientRequest, head: Buffer, ended: boolean, name: string): Readable {
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
