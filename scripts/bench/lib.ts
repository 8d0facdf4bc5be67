import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Shared plumbing of the benchmark: child processes that never outlive the harness, sampling, statistics. */

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
export const MiB = 1024 * 1024;

/** A progress line on stderr (stdout carries only the report). */
export const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

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

// ---------------------------------------------------------------- CPU accounting

let clockTicks = 0;
function ticksPerSecond(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User+system CPU time a process has used so far, in ms (from /proc/<pid>/stat; 0 when it is gone). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
  } catch {
    return 0;
  }
}

/** Busy CPU time of the whole machine so far, all cores, in ms (from /proc/stat). */
export function machineBusyMs(): number {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/);
  // user nice system idle iowait irq softirq steal …: busy is everything but idle and iowait
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
  return ((user + nice + system + irq + softirq + (steal || 0)) * 1000) / ticksPerSecond();
}

/**
 * How much CPU *other* processes (not the harness nor its children) took while `run` ran, as a share of
 * the machine: a number well above 0 means the results are noisy.
 */
export async function withCpuAccounting<T>(ownPids: number[], run: () => Promise<T>): Promise<{ result: T; elapsedMs: number; ownMs: Record<number, number>; harnessMs: number; foreignShare: number }> {
  const cores = availableParallelism();
  const machine0 = machineBusyMs();
  const own0 = ownPids.map(cpuMs);
  const harness0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await run();
  const elapsedMs = performance.now() - t0;
  const harness = process.cpuUsage(harness0);
  const harnessMs = (harness.user + harness.system) / 1000;
  const ownMs: Record<number, number> = {};
  let ownTotal = harnessMs;
  ownPids.forEach((pid, i) => {
    ownMs[pid] = cpuMs(pid) - own0[i];
    ownTotal += ownMs[pid];
  });
  const foreign = Math.max(0, machineBusyMs() - machine0 - ownTotal);
  return { result, elapsedMs, ownMs, harnessMs, foreignShare: foreign / (elapsedMs * cores) };
}

/**
 * Waits (at most `maxMs`) until the whole machine has been quiet — busy share of all cores below
 * `threshold` — for `quietS` consecutive seconds. Returns how long it waited and the last busy share.
 */
export async function waitForQuietMachine(maxMs: number, threshold = 0.15, quietS = 3): Promise<{ waitedMs: number; busyShare: number; quiet: boolean }> {
  const cores = availableParallelism();
  const started = performance.now();
  let quietFor = 0;
  let share = 0;
  while (performance.now() - started < maxMs) {
    const before = machineBusyMs();
    const t0 = performance.now();
    await sleep(1000);
    share = (machineBusyMs() - before) / ((performance.now() - t0) * cores);
    quietFor = share < threshold ? quietFor + 1 : 0;
    if (quietFor >= quietS) return { waitedMs: performance.now() - started, busyShare: share, quiet: true };
  }
  return { waitedMs: performance.now() - started, busyShare: share, quiet: false };
}

/**
 * How a helper process (mock upstream, raw pipe) serves for the harness: on 127.0.0.1, printing
 * `{"port":N}` once listening, and never outliving the harness (with `exitWithStdin`, the harness holds
 * our stdin open; when it goes, so do we).
 */
export function listenAsBenchChild(server: http.Server, port: number, exitWithStdin: boolean): void {
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
  if (exitWithStdin) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
}
