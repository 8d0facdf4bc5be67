import type { ManagedKeyStore } from './store.ts';

/**
 * When each key was last used, noted in memory on the request path (a Map or array write, with the
 * poll's coarse clock) and written to the database every FLUSH_MS, for the key list. RELAY_KEY keys are
 * noted by position and written under their key id (a slow hash, worked out once, at the first write).
 */

export const FLUSH_MS = 10_000;

export interface LastUse {
  managed(id: string, at: number): void;
  config(index: number, at: number): void;
  /** Writes what was noted since the last write (every FLUSH_MS at most, unless `force`). */
  flush(force?: boolean): Promise<void>;
}

export function lastUseRecorder(store: ManagedKeyStore, configIds: () => Promise<string[]>, configCount: number, now: () => number = Date.now): LastUse {
  let managed = new Map<string, number>();
  const config = new Float64Array(configCount);
  let lastFlush = now();
  let writing: Promise<void> | undefined;

  async function write(): Promise<void> {
    const uses = managed;
    managed = new Map();
    if (config.some((at) => at > 0)) {
      const ids = await configIds();
      config.forEach((at, i) => {
        if (at > 0) uses.set(ids[i]!, at);
      });
      config.fill(0);
    }
    try {
      await store.recordUse(uses);
    } catch (err) {
      // Kept for the next write (a newer use of the same key wins).
      for (const [id, at] of uses) if ((managed.get(id) ?? 0) < at) managed.set(id, at);
      throw err;
    }
  }

  return {
    managed(id, at) {
      managed.set(id, at);
    },
    config(index, at) {
      config[index] = at;
    },
    flush(force = false) {
      if (writing || (!force && now() - lastFlush < FLUSH_MS)) return writing ?? Promise.resolve();
      lastFlush = now();
      return (writing = write().finally(() => (writing = undefined)));
    },
  };
}
