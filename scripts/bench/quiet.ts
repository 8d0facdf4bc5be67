import { log, round, waitForQuietMachine } from './lib.ts';

/** A shared machine: with --wait-quiet, let other people's work finish before a phase starts. */

export interface QuietWait {
  phase: string;
  waitedMs: number;
  busyShare: number;
  quiet: boolean;
}

export interface Settler {
  /** Waits (from a budget of `waitQuietS` for the whole run) until the machine is quiet; no-op without one. */
  settle(phase: string): Promise<void>;
  /** Every wait so far, for the JSON results. */
  waits: QuietWait[];
}

export function quietWaiter(waitQuietS: number): Settler {
  let quietBudgetMs = waitQuietS * 1000;
  const waits: QuietWait[] = [];
  return {
    waits,
    async settle(phase: string): Promise<void> {
      if (quietBudgetMs <= 0) return;
      const wait = await waitForQuietMachine(quietBudgetMs);
      quietBudgetMs -= wait.waitedMs;
      waits.push({ phase, waitedMs: Math.round(wait.waitedMs), busyShare: round(wait.busyShare, 3), quiet: wait.quiet });
      log(`${phase}: ${wait.quiet ? 'machine quiet' : 'machine still busy'} after ${(wait.waitedMs / 1000).toFixed(0)} s (CPU ${Math.round(wait.busyShare * 100)}% busy)`);
    },
  };
}
