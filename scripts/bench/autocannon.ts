import type { EventEmitter } from 'node:events';

/** autocannon (a devDependency), loaded on demand; both harnesses (run.ts and ab.ts) drive their load with it. */

interface AutocannonHistogram {
  average: number;
  p50: number;
  p99: number;
  max: number;
}
export interface AutocannonResult {
  requests: AutocannonHistogram & { total: number };
  latency: AutocannonHistogram;
  throughput: AutocannonHistogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
export type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AutocannonResult) => void) => EventEmitter;

export async function loadAutocannon(): Promise<Autocannon> {
  const specifier: string = 'autocannon'; // not a literal: typechecks before the devDependency is installed
  try {
    const mod = await import(specifier);
    return (mod.default ?? mod) as Autocannon;
  } catch (err) {
    throw new Error(`autocannon is not installed (npm install --save-dev autocannon@^8): ${(err as Error).message}`);
  }
}
