import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { opts } from './options.ts';

/**
 * `--pin`: the processes under test (raw pipe, relays) on the last CPU, everything else (mock, load
 * generator, this harness) on the others, with taskset. On a shared 2-core machine a proxy otherwise
 * competes with the load it serves, and its CPU per request swings with the scheduler; pinned, the
 * comparison of two relays (`--against`) is steadier. Throughput then means something else (one core
 * each), so the targets are judged on unpinned runs.
 */

const cpus = availableParallelism();
const enabled = opts.pin && cpus >= 2;
const proxyCpu = String(cpus - 1);
const otherCpus = cpus === 2 ? '0' : `0-${cpus - 2}`;

/** The command and arguments that start `args` with `command`, pinned as `role` when --pin is on. */
export function pinnedCommand(role: 'proxy' | 'other', command: string, args: string[]): [string, string[]] {
  if (!enabled) return [command, args];
  return ['taskset', ['-c', role === 'proxy' ? proxyCpu : otherCpus, command, ...args]];
}

/** Pins this harness (and the load generator in it) off the proxies' CPU; says why not when it cannot. */
export function pinHarness(log: (message: string) => void): void {
  if (!opts.pin) return;
  if (!enabled) return log(`--pin needs at least 2 CPUs (this machine has ${cpus}): not pinned`);
  execFileSync('taskset', ['-cp', otherCpus, String(process.pid)], { stdio: 'ignore' });
  log(`pinned: raw pipe and relays on CPU ${proxyCpu}, mock and load on CPU ${otherCpus}`);
}
