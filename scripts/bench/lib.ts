import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Shared plumbing of the benchmark: child processes that never outlive the harness, sampling, statistics. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
export const MiB = 1024 * 1024;

// ---------------------------------------------------------------- children

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Killed as a whole process group (spawned detached), e.g. `npm start` → sh → node. */
  group: boolean;
  logFile?: string;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once it has exited. */
  stop(graceMs?: number): Promise<number | null>;
  /** The last bytes of what it printed (for error messages). */
  tail(bytes?: number): string;
}

const children = new Set<Child>();

function signal(child: Child, sig: NodeJS.Signals): void {
  try {
    if (child.group) process.kill(-child.pid, sig);
    else child.proc.kill(sig);
  } catch {
    // already gone
  }
}

/**
 * Spawns a child whose stdout+stderr go to `logFile` (a file, so a chatty child never blocks on a full
 * pipe nor costs the harness CPU) or are captured in memory when `capture` is set.
 */
export function startChild(
  name: string,
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; logFile?: string; group?: boolean; stdinPipe?: boolean; captureStdout?: boolean },
): Child {
  let fd: number | undefined;
  if (options.logFile) fd = openSync(options.logFile, 'a');
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd ?? ROOT,
    env: options.env,
    detached: options.group ?? false,
    stdio: [options.stdinPipe ? 'pipe' : 'ignore', options.captureStdout ? 'pipe' : (fd ?? 'ignore'), fd ?? 'ignore'],
  };
  const proc = spawn(command, args, spawnOptions);
  if (fd !== undefined) closeSync(fd);
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, sig) => resolve(code ?? (sig ? -1 : null)));
    proc.once('error', () => resolve(-1));
  });
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    group: options.group ?? false,
    logFile: options.logFile,
    exited,
    async stop(graceMs = 3000) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        children.delete(child);
        return proc.exitCode;
      }
      signal(child, 'SIGTERM');
      const timer = setTimeout(() => signal(child, 'SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      if (child.group) signal(child, 'SIGKILL'); // stragglers of the group (e.g. node under npm)
      children.delete(child);
      return code;
    },
    tail(bytes = 2000) {
      if (!options.logFile) return '';
      try {
        const text = readFileSync(options.logFile, 'utf8');
        return text.slice(-bytes);
      } catch {
        return '';
      }
    },
  };
  children.add(child);
  exited.then(() => {
    if (!child.group) children.delete(child);
  });
  return child;
}

/** Stops every child still running, gracefully and in parallel. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop()));
}

/** Last resort, synchronous (for `process.on('exit')`): SIGKILL whatever is left. */
export function killAllChildrenNow(): void {
  for (const child of children) signal(child, 'SIGKILL');
  children.clear();
}

/** Waits for a `{"port":N}` line on a child's stdout (our own mock and raw pipe print one). */
export function readPortLine(child: Child, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`${child.name} did not report its port within ${timeoutMs} ms`)), timeoutMs);
    child.proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString('utf8');
      const line = /\{"port":(\d+)\}\n/.exec(buffered);
      if (line) {
        clearTimeout(timer);
        resolve(Number(line[1]));
      }
    });
    child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited (${code}) before listening: ${buffered}`));
    });
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One GET with a fresh connection; resolves to the status (0 when not reachable). */
export function probe(url: string, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Polls `url` every `everyMs` until 200; returns ms since `since` (performance.now()). */
export async function waitFor200(url: string, child: Child, since: number, timeoutMs = 15_000, everyMs = 5): Promise<number> {
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}) before answering ${url}:\n${child.tail()}`);
    }
    if ((await probe(url)) === 200) return performance.now() - since;
    if (performance.now() - since > timeoutMs) throw new Error(`${child.name} did not answer 200 on ${url} within ${timeoutMs} ms:\n${child.tail()}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- memory

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

export interface RssSampler {
  stop(): { peak: number; samples: number; min: number; median: number };
}

/** Reads VmRSS every `everyMs` until stopped. */
export function sampleRss(pid: number, everyMs = 20): RssSampler {
  const values: number[] = [];
  const take = () => {
    try {
      values.push(rssBytes(pid));
    } catch {
      // process gone; the caller will notice
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peak: Math.max(...values), min: Math.min(...values), median: median(values), samples: values.length };
    },
  };
}

// ---------------------------------------------------------------- statistics

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile (q in 0..1) of an unsorted list (or typed array). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
