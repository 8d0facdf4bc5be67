import type { Autocannon } from './autocannon.ts';
import { quantile, round } from './lib.ts';
import { opts } from './options.ts';
import { AUTH, EMBEDDINGS_BODY } from './workload.ts';

/** Embeddings load from autocannon (a devDependency), with latencies taken from every 200 answer. */

export interface LoadRun {
  target: string;
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** autocannon's own (whole-millisecond) percentiles, for reference. */
  autocannonP50Ms: number;
  autocannonP99Ms: number;
  total2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU (user+system) the proxy process under test used per answered request, µs. */
  cpuUsPerReq?: number;
  /** CPU of the mock upstream and of the harness (autocannon) per request, µs — for context. */
  mockCpuUsPerReq?: number;
  harnessCpuUsPerReq?: number;
  /** Share of the machine's CPU taken by processes outside this benchmark during the round (noise). */
  foreignCpuShare?: number;
}

export function load(autocannon: Autocannon, url: string, durationS: number, target: string, roundNo: number): Promise<LoadRun> {
  return new Promise((resolvePromise, reject) => {
    const latencies: number[] = [];
    const instance = autocannon(
      {
        url: `${url}/v1/embeddings`,
        method: 'POST',
        connections: opts.connections,
        pipelining: 1,
        duration: durationS,
        timeout: 10,
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: EMBEDDINGS_BODY,
      },
      (err, result) => {
        if (err) return reject(err);
        const ok = result.statusCodeStats['200']?.count ?? 0;
        resolvePromise({
          target,
          round: roundNo,
          rps: round(result.requests.average, 1),
          p50Ms: round(quantile(latencies, 0.5), 3),
          p99Ms: round(quantile(latencies, 0.99), 3),
          meanMs: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length), 3),
          autocannonP50Ms: result.latency.p50,
          autocannonP99Ms: result.latency.p99,
          total2xx: Number(ok),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
        });
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      if (statusCode === 200) latencies.push(responseTimeMs);
    });
  });
}
