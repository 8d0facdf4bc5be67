// First, before any file of this worker starts a server with @hono/node-server (which swaps the global
// Response for its own): RESPONSE_ALREADY_SENT is made with whatever Response is global when this module
// is first evaluated, and made with the adapter's, the adapter would write headers for an answer the
// relay already sent ("Cannot write headers after they are sent"). The relay itself loads it first.
import '@hono/node-server/utils/response';
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
