import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { killAllChildrenNow, log, stopAllChildren } from './lib.ts';
import type { Options } from './options.ts';

/**
 * Every child dies with the harness, its scratch directory goes with it, and a watchdog ends a run that
 * hangs: the run always stops by itself.
 */

let scratch = '';
let finishing = false;

/** Exit and signal handlers: kill the children, remove the scratch directory; a failure exits 2. */
export function installSafetyNet(): void {
  process.on('exit', () => {
    killAllChildrenNow();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping children`);
      finishing = true;
      killAllChildrenNow();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error('bench harness failed:', err);
    killAllChildrenNow();
    process.exit(2);
  });
  process.on('unhandledRejection', (err) => {
    console.error('bench harness failed:', err);
    killAllChildrenNow();
    process.exit(2);
  });
}

/** The run's scratch directory (relay working directories, child logs), removed when the harness exits. */
export function makeScratchDir(): string {
  scratch = mkdtempSync(join(os.tmpdir(), 'relay-bench-'));
  return scratch;
}

/** Whole-run watchdog: a generous bound computed from the options. Returns the bound in seconds. */
export function armWatchdog(opts: Options): number {
  const targetsPerRound = opts.infoLevel ? 3 : 2;
  const budgetS =
    120 +
    2 * (targetsPerRound * (opts.warmupS + opts.rounds * (opts.durationS + opts.roundWarmupS + 2)) + (opts.profile ? 2 * (opts.warmupS + opts.durationS + 15) : 0)) +
    (opts.uploadMiB * 2 + opts.downloadMiB * 2) / 20 + // ≥ 20 MiB/s worst case per transfer
    opts.startupRuns * 2 * 20 +
    2 * (30 + opts.streams / 20) + // open streams: relay and raw pipe, ≥ 20 streams/s worst case
    opts.waitQuietS;
  const watchdog = setTimeout(() => {
    console.error(`bench harness failed: still running after ${Math.round(budgetS)} s (watchdog); stopping everything`);
    killAllChildrenNow();
    process.exit(2);
  }, budgetS * 1000);
  watchdog.unref();
  return budgetS;
}

/** Stops the children once `run` settles and exits with its code, or 2 when it failed. */
export function exitWhenDone(run: Promise<number>): void {
  run.then(
    async (code) => {
      finishing = true;
      await stopAllChildren();
      process.exit(code);
    },
    async (err: Error) => {
      console.error(`bench harness failed: ${err.stack ?? err}`);
      if (!finishing) await stopAllChildren();
      process.exit(2);
    },
  );
}
