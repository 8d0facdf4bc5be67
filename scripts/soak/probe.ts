import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * What the soak watches in the relay's process, from /proc (Linux): resident memory, open descriptors, and
 * its TCP sockets split by the other end — callers (on the relay's port), OpenAI (the mock's port), other.
 */
export interface ProcessSample {
  /** Seconds since the soak started. */
  t: number;
  rssMiB: number;
  fds: number;
  sockets: { callers: number; upstream: number; other: number };
}

export function sampleProcess(pid: number, relayPort: number, upstreamPort: number, t: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssMiB = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  const inodes = new Set<string>();
  let fds = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds++;
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed between the listing and the read
    }
  }
  const sockets = { callers: 0, upstream: 0, other: 0 };
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9])) continue;
      const localPort = parseInt(cols[1].split(':')[1], 16);
      const remotePort = parseInt(cols[2].split(':')[1], 16);
      // The listening socket has no peer (remote port 0): it is "other", as are Redis or PostgreSQL.
      if (localPort === relayPort && remotePort !== 0) sockets.callers++;
      else if (remotePort === upstreamPort) sockets.upstream++;
      else sockets.other++;
    }
  }
  return { t, rssMiB, fds, sockets };
}

/** Least-squares slope of `y` over `x` (per unit of x). */
export function slope(points: Array<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
