import { log, median, round } from './lib.ts';
import { opts } from './options.ts';
import type { Processes } from './processes.ts';
import type { Settler } from './quiet.ts';

/** Start-up to the first /health 200: `npm start`, and plain node for the npm overhead, alternating. */

export interface Startup {
  npmStartMs: number;
  nodeMs: number;
  npmRunsMs: number[];
  nodeRunsMs: number[];
}

export async function startupPhase(procs: Processes, quiet: Settler, mockUrl: string): Promise<Startup> {
  await quiet.settle('startup');
  log(`start-up: ${opts.startupRuns} x npm start, ${opts.startupRuns} x node src/main.ts`);
  const startNpm: number[] = [];
  const startNode: number[] = [];
  for (let i = 0; i < opts.startupRuns; i++) {
    startNpm.push(round(await procs.timeStartup('npm start', mockUrl, i), 1));
    startNode.push(round(await procs.timeStartup('node src/main.ts', mockUrl, i), 1));
  }
  const startup = { npmStartMs: round(median(startNpm), 1), nodeMs: round(median(startNode), 1), npmRunsMs: startNpm, nodeRunsMs: startNode };
  log(`start-up: npm start ${startup.npmStartMs} ms, node ${startup.nodeMs} ms`);
  return startup;
}
