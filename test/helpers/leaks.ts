import { afterAll, expect, vi } from 'vitest';

/**
 * Run before every file of the `relay` project (vitest.config.ts), whose files share worker processes:
 * a file must hand the next one the process as it found it — fetch not intercepted (MSW closed), real
 * timers back.
 */
const ORIGINAL_FETCH = Symbol.for('relay-tests.original-fetch');
const holder = globalThis as typeof globalThis & { [ORIGINAL_FETCH]?: typeof fetch };
// The first file in this worker sees the real fetch; later ones compare against it.
holder[ORIGINAL_FETCH] ??= globalThis.fetch;

afterAll(() => {
  expect(vi.isFakeTimers(), 'a test left fake timers installed').toBe(false);
  expect(globalThis.fetch === holder[ORIGINAL_FETCH], 'a test left fetch intercepted (an MSW server not closed)').toBe(true);
});
