import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';

/** The relay in a process of its own, so its memory and signals can be measured alone. */
export interface ChildRelay {
  url: string;
  /** The process the test started: node itself, or npm when started `via: 'npm start'`. */
  child: ChildProcess;
  output: () => string;
  rssBytes(): number;
  /** Sends `signal` to the child and resolves with its exit code (null when a signal ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The rows of the relay's SQLite ledger, read from the file (the relay may still be running). */
  ledgerRows(): { operation: string; status: number }[];
  /** Every process under the child (for `npm start`: sh or node), read from /proc. */
  descendants(): number[];
}

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(REPO_ROOT, 'src/main.ts');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return [];
  const out: number[] = [];
  for (const task of readdirSync(dir)) {
    try {
      out.push(...readFileSync(`${dir}/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the task ended meanwhile
    }
  }
  return out;
}

/** The rows of a SQLite ledger file, read while its relay may still be writing it. */
export function ledgerRowsOf(path: string): { operation: string; status: number }[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare('SELECT operation, status FROM usage_log ORDER BY id').all() as { operation: string; status: number }[];
  } finally {
    db.close();
  }
}

export interface ChildRelayOptions {
  via?: 'node' | 'npm start';
  /** The relay's open-file limit (`ulimit -n`), to show what a flood does when descriptors run out. */
  fdLimit?: number;
}

/** `env.PORT` picks the port (when the relay must know its own URL beforehand, e.g. PUBLIC_BASE_URL). */
export async function startChildRelay(env: Record<string, string>, opts: ChildRelayOptions = {}): Promise<ChildRelay> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const usageDbPath = join(mkdtempSync(join(tmpdir(), 'relay-usage-')), 'usage.sqlite');
  const fullEnv = {
    // npm needs HOME and its own settings; node needs nothing but PATH.
    ...(opts.via === 'npm start' ? process.env : { PATH: process.env.PATH ?? '' }),
    NODE_OPTIONS: '',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    // The start-up model check would be one more upstream request than a test expects.
    MODEL_CHECK_HOURS: '0',
    BLOB_DIR: mkdtempSync(join(tmpdir(), 'relay-blobs-')),
    USAGE_DB_PATH: usageDbPath,
    ...env,
  };
  const child =
    opts.via === 'npm start'
      ? // Its own process group, so a failed test can still end npm, sh and node together.
        spawn('npm', ['start'], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : opts.fdLimit
        ? // A shell sets the limit, then becomes node (exec): the child's pid is the relay's.
          spawn('/bin/sh', ['-c', `ulimit -n ${opts.fdLimit} && exec "$0" "$@"`, process.execPath, MAIN], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(process.execPath, [MAIN], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`relay exited with ${child.exitCode}: ${output}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      // Not left running once the test has given up on it (npm's whole group, for `npm start`).
      if (opts.via === 'npm start') process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
      throw new Error(`relay did not start within 30 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    url,
    child,
    output: () => output,
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    ledgerRows: () => ledgerRowsOf(usageDbPath),
    descendants() {
      const all: number[] = [];
      const walk = (pid: number) => {
        for (const c of childrenOf(pid)) {
          all.push(c);
          walk(c);
        }
      };
      walk(child.pid!);
      return all;
    },
  };
}
