import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

/**
 * Pinning (`--pin`, and always in `ab.ts`): the processes under test (raw pipe, relays) on the last CPU,
 * everything else (mock, load generator, the harness) on the others, with taskset. On a shared 2-core
 * machine a proxy otherwise competes with the load it serves, and its CPU per request swings with the
 * scheduler; pinned, comparing two relays is steadier. Throughput then means something else (one core
 * each), so the bench's targets are judged on unpinned runs.
 */

const cpus = availableParallelism();
const proxyCpu = String(cpus - 1);
const otherCpus = cpus === 2 ? '0' : `0-${cpus - 2}`;

/** Whether this machine can pin at all (two CPUs or more). */
export const canPin = cpus >= 2;

/** The command and arguments that start `args` with `command`, pinned as `role` when `pin` is true. */
export function pinnedCommand(pin: boolean, role: 'proxy' | 'other', command: string, args: string[]): [string, string[]] {
  if (!pin || !canPin) return [command, args];
  return ['taskset', ['-c', role === 'proxy' ? proxyCpu : otherCpus, command, ...args]];
}

/** Pins this harness (and the load generator in it) off the proxies' CPU; says why not when it cannot. */
export function pinHarness(pin: boolean, log: (message: string) => void): void {
  if (!pin) return;
  if (!canPin) return log(`pinning needs at least 2 CPUs (this machine has ${cpus}): not pinned`);
  execFileSync('taskset', ['-cp', otherCpus, String(process.pid)], { stdio: 'ignore' });
  log(`pinned: the proxies on CPU ${proxyCpu}, mock and load on CPU ${otherCpus}`);
}
