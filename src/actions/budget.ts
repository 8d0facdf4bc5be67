/**
 * The limits a GPT Action lives within: 45 s per call (the relay answers within ACTION_DEADLINE_MS, 40 s
 * by default) and fewer than 100,000 characters per answer.
 */
export const MAX_ACTION_ANSWER_CHARS = 100_000;
/** Room left under the limit for the envelope ChatGPT wraps around an answer. */
const TARGET_CHARS = 95_000;

/** A deadline for one action call: its own budget, cut short when the caller goes away. */
export function actionSignal(deadlineMs: number, callerSignal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(deadlineMs);
  return callerSignal ? AbortSignal.any([timeout, callerSignal]) : timeout;
}

/** Milliseconds left before `deadlineAt`, minus a safety margin for answering. */
export function timeLeft(deadlineAt: number, marginMs = 1_500): number {
  return Math.max(0, deadlineAt - Date.now() - marginMs);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });

const size = (value: unknown) => JSON.stringify(value).length;

/**
 * Shortens an answer until it fits: first drops trailing items of its longest array (a page gets
 * shorter; `has_more`/`next_after` tell the model how to continue), then cuts its longest strings.
 * Returns whether anything was cut, so the answer can say so (`truncated: true`).
 */
export function fitActionAnswer<T>(value: T, limit = TARGET_CHARS): { value: T; truncated: boolean } {
  if (size(value) <= limit) return { value, truncated: false };
  const copy = structuredClone(value) as unknown;
  for (let guard = 0; guard < 10_000 && size(copy) > limit; guard++) {
    const longestArray = findLongest(copy, (v) => Array.isArray(v) && v.length > 1, (v) => size(v));
    if (longestArray && size(longestArray.value) > (size(copy) - limit)) {
      const array = longestArray.value as unknown[];
      const over = size(copy) - limit;
      // Drop roughly enough items in one go, at least one.
      const perItem = size(array) / array.length;
      array.splice(Math.max(1, array.length - Math.max(1, Math.ceil(over / perItem))));
      continue;
    }
    const longestString = findLongest(copy, (v) => typeof v === 'string' && v.length > 200, (v) => (v as string).length);
    if (!longestString) break;
    const text = longestString.value as string;
    const cut = Math.max(100, text.length - (size(copy) - limit) - 50);
    longestString.set(`${text.slice(0, cut)}… [truncated]`);
  }
  return { value: copy as T, truncated: true };
}

interface Found {
  value: unknown;
  set(v: unknown): void;
}

function findLongest(root: unknown, accept: (v: unknown) => boolean, measure: (v: unknown) => number): Found | undefined {
  let best: Found | undefined;
  let bestSize = -1;
  const visit = (value: unknown, set: (v: unknown) => void) => {
    if (accept(value)) {
      const m = measure(value);
      if (m > bestSize) {
        bestSize = m;
        best = { value, set };
      }
    }
    if (Array.isArray(value)) value.forEach((item, i) => visit(item, (v) => (value[i] = v)));
    else if (value && typeof value === 'object') {
      const obj = value as Record<string, unknown>;
      for (const key of Object.keys(obj)) visit(obj[key], (v) => (obj[key] = v));
    }
  };
  visit(root, () => {});
  return best;
}

/**
 * A page of a list, cut to fit the answer budget before its cursor is worked out: when items had to be
 * dropped, `has_more` is true and `next_after` is the last item kept, so paging on loses nothing.
 */
export function fitPage<T extends { id: string }>(items: T[], upstreamHasMore: boolean) {
  const fitted = fitActionAnswer({ data: items });
  const data = fitted.value.data;
  const hasMore = upstreamHasMore || data.length < items.length;
  return {
    data,
    has_more: hasMore,
    ...(hasMore && data.length ? { next_after: data[data.length - 1].id } : {}),
    ...(fitted.truncated ? { truncated: true } : {}),
  };
}
