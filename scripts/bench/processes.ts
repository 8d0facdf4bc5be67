import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, type Child, freePort, readPortLine, ROOT, startChild, waitFor200 } from './lib.ts';
import { extraRelayEnv, opts } from './options.ts';
import { pinnedCommand } from './pin.ts';
import { relayBaseEnv } from './workload.ts';

/** The processes under test (mock upstream, raw pipe, relay), each a child writing its log into the scratch directory. */

function relayEnv(upstream: string, port: number, logLevel: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...relayBaseEnv(upstream, port, logLevel), ...extra, ...extraRelayEnv };
}

export class Processes {
  /** The run's scratch directory. */
  readonly tmp: string;

  constructor(tmp: string) {
    this.tmp = tmp;
  }

  private nodeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? this.tmp,
      NODE_OPTIONS: '',
      ...extra,
    };
  }

  /** A bench script (mock or raw pipe) that prints its port and exits when our pipe to its stdin closes. */
  private async startScript(name: string, nodeFlags: string[], script: string, args: string[]): Promise<{ child: Child; url: string }> {
    const [command, argv] = pinnedCommand(opts.pin, script === 'raw-pipe.ts' ? 'proxy' : 'other', process.execPath, [...nodeFlags, join(BENCH_DIR, script), '--exit-with-stdin', '--port', '0', ...args]);
    const child = startChild(name, command, argv, {
      env: this.nodeEnv({}),
      stdinPipe: true,
      captureStdout: true,
      logFile: join(this.tmp, `${name}.log`),
    });
    const port = await readPortLine(child);
    return { child, url: `http://127.0.0.1:${port}` };
  }

  startMock(name = 'mock-upstream', sse = ['--sse-gap-ms', String(opts.sseGapMs)]): Promise<{ child: Child; url: string }> {
    return this.startScript(name, [], 'mock-upstream.ts', sse);
  }

  startRawPipe(upstream: string, name = 'raw-pipe', nodeFlags: string[] = []): Promise<{ child: Child; url: string }> {
    return this.startScript(name, nodeFlags, 'raw-pipe.ts', ['--upstream', upstream]);
  }

  /**
   * `node src/main.ts`, its stdout (one JSON line per request at info) going to a file, as a container's
   * log driver would take it. Each relay runs in a scratch directory of its own, as a deployment would:
   * a developer's .env cannot change the setup, and what the relay writes relative to its working
   * directory (data/usage.sqlite, data/blobs) is its own — two relays sharing one SQLite ledger would
   * contend for its write lock and checkpoints, and measure that instead.
   */
  async startRelay(upstream: string, logLevel: string, name: string, nodeFlags: string[] = [], env: Record<string, string> = {}, root = ROOT): Promise<{ child: Child; url: string; startupMs: number }> {
    const port = await freePort();
    const cwd = join(this.tmp, name);
    mkdirSync(cwd, { recursive: true });
    const started = performance.now();
    const [command, argv] = pinnedCommand(opts.pin, 'proxy', process.execPath, [...nodeFlags, join(root, 'src', 'main.ts')]);
    const child = startChild(name, command, argv, {
      env: this.nodeEnv(relayEnv(upstream, port, logLevel, env)),
      cwd,
      logFile: join(this.tmp, `${name}.log`),
    });
    const url = `http://127.0.0.1:${port}`;
    const startupMs = await waitFor200(`${url}/health`, child, started);
    return { child, url, startupMs };
  }

  /** Milliseconds from spawning `npm start` (or plain node) to the first 200 from /health. */
  async timeStartup(kind: 'npm start' | 'node src/main.ts', upstream: string, i: number): Promise<number> {
    const port = await freePort();
    // npm runs the script in the project directory: keep the relay's files (the usage ledger) out of it.
    const env = { ...process.env, NODE_OPTIONS: '', USAGE_DB_PATH: join(this.tmp, 'startup-usage.sqlite'), ...relayEnv(upstream, port, 'warn') };
    const started = performance.now();
    const child =
      kind === 'npm start'
        ? startChild(`npm-start-${i}`, 'npm', ['start', '--silent'], { env, cwd: ROOT, group: true, logFile: join(this.tmp, `npm-start-${i}.log`) })
        : startChild(`node-start-${i}`, process.execPath, [join(ROOT, 'src', 'main.ts')], { env, cwd: ROOT, group: true, logFile: join(this.tmp, `node-start-${i}.log`) });
    try {
      return await waitFor200(`http://127.0.0.1:${port}/health`, child, started, 20_000, 2);
    } finally {
      await child.stop();
    }
  }
}
