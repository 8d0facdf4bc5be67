import { vi } from 'vitest';

/** The real timers, kept before any test fakes them. */
const realSetTimeout = globalThis.setTimeout;
const realDelay = (ms: number) => new Promise<void>((resolve) => realSetTimeout(resolve, ms));

/** Timers up to this long are hurried: the relay's poll sleeps (1 s for responses, 3 s for videos). */
const HURRIED_MS = 5_000;

/**
 * Runs `work` on a fake clock (setTimeout and Date, still moving with real time) on which every short
 * timer fires as soon as it is set: the relay's poll sleeps pass at once, while everything the relay
 * measures with Date sees those seconds go by. Longer timers (fetch's keep-alive, 63 s) keep real time,
 * and the action deadline is a native AbortSignal.timeout, which no fake clock touches.
 */
export async function withFastSleeps<T>(work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], shouldAdvanceTime: true, advanceTimeDelta: 5 });
  const fakeSetTimeout = globalThis.setTimeout;
  const dueTimes: number[] = [];
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms = 0, ...args: unknown[]) => {
    if (ms <= HURRIED_MS) dueTimes.push(Date.now() + ms);
    return fakeSetTimeout(fn, ms, ...args);
  }) as typeof setTimeout;
  try {
    let settled = false;
    const running = work().finally(() => (settled = true));
    while (!settled) {
      await realDelay(2);
      const now = Date.now();
      const next = Math.min(...dueTimes.filter((due) => due > now));
      if (!settled && Number.isFinite(next)) await vi.advanceTimersByTimeAsync(next - now);
    }
    return await running;
  } finally {
    vi.useRealTimers();
  }
}

/**
 * Runs `work` with a Date it can move forward (`skip(ms)`); timers keep real time. Start whatever reads
 * the clock inside `work`: code that keeps a reference to Date.now (the blob links do) keeps the one it
 * found.
 */
export async function withSkippableDate<T>(work: (skip: (ms: number) => void) => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  try {
    return await work((ms) => vi.setSystemTime(Date.now() + ms));
  } finally {
    vi.useRealTimers();
  }
}
