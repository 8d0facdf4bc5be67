import dns from 'node:dns';
import type { ClientRequest } from 'node:http';
import https from 'node:https';
import net, { BlockList, type LookupFunction } from 'node:net';

/**
 * Where the relay may connect on behalf of untrusted input (a file link a model wrote, a client id that is
 * a URL): host allowlists, public addresses only (every IPv4 and IPv6 form of a private, loopback,
 * link-local or reserved address refused), and connections pinned to the addresses that were checked, so
 * a second DNS answer cannot move them.
 */

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

/** Every address DNS gives for `hostname`, in its order. */
export const resolveAll = async (hostname: string): Promise<string[]> =>
  (await dns.promises.lookup(hostname, { all: true, order: 'verbatim' })).map((a) => a.address);
