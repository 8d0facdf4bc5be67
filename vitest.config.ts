import { defineConfig } from 'vitest/config';

/**
 * Two projects, neither isolated per file: a worker keeps its imported modules (the relay, zod, msw) from
 * one test file to the next instead of loading them again for each, which had been a third of the
 * suite's CPU. `unit`: files that open no socket and start no process, in worker threads (a new file
 * lands in `relay`, the safe default, until it is listed here). `relay`: files
 * that start relays, mock servers, child processes or a browser, in forked processes; test/helpers/leaks.ts
 * checks that each of them leaves no MSW interception and no fake clock behind for the next file.
 *
 * Workers: vitest's default on two cores is one, so every wait (a child process starting, a relay
 * draining, chromium rendering) stood alone; most test time is such waiting, so three overlap it (four
 * starting child processes at once only fought over the two cores).
 */
const UNIT = [
  'test/ci-services.test.ts',
  'test/cost.test.ts',
  'test/generated.test.ts',
  'test/histogram.test.ts',
  'test/keys.test.ts',
  'test/ledger-rows.test.ts',
  'test/ledger.test.ts',
  'test/logger.test.ts',
  'test/matcher.test.ts',
  'test/metrics.test.ts',
  'test/oauth-policy.test.ts',
  'test/stream-memory.test.ts',
  'test/stream-usage.test.ts',
  'test/usage-tap.test.ts',
];

export default defineConfig({
  test: {
    // Generous: on a machine shared with other busy processes a child relay can take 10 s to start.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 3,
    isolate: false,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT, pool: 'threads' } },
      { extends: true, test: { name: 'relay', include: ['test/**/*.test.ts'], exclude: UNIT, pool: 'forks', setupFiles: ['test/helpers/leaks.ts'] } },
    ],
  },
});
