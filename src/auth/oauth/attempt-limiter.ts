/**
 * Counts attempts in a sliding window, per source and in all: the consent form checks relay keys and
 * the registration endpoint is open to anyone, so both cap how often they can be tried. In memory, per
 * process (each replica counts its own).
 */
export interface AttemptLimiter {
  /** True when `source`, or everyone together, has used up the window. */
  blocked(source: string): boolean;
  /** Records one attempt by `source`. */
  hit(source: string): void;
}

const GLOBAL = '\0all';
const MAX_SOURCES = 10_000;

export function attemptLimiter(opts: { perSource: number; total: number; windowMs: number; now?: () => number }): AttemptLimiter {
  const now = opts.now ?? Date.now;
  const hits = new Map<string, number[]>();
  const recent = (key: string) => {
    const list = hits.get(key);
    if (!list) return 0;
    const since = now() - opts.windowMs;
    while (list.length && list[0] <= since) list.shift();
    if (list.length === 0) hits.delete(key);
    return list.length;
  };
  return {
    blocked: (source) => recent(GLOBAL) >= opts.total || recent(source) >= opts.perSource,
    hit(source) {
      if (hits.size >= MAX_SOURCES) hits.clear();
      for (const key of [GLOBAL, source]) {
        const list = hits.get(key) ?? [];
        list.push(now());
        hits.set(key, list);
      }
    },
  };
}
