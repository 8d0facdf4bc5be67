import { Histogram, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { createHistogram } from '../src/ops/histogram.ts';
import { DURATION_BUCKETS } from '../src/ops/metrics.ts';

/** The request-path histogram exports exactly what prom-client's Histogram would for the same observations. */
describe('histogram', () => {
  test('same exposition text as prom-client: buckets (le inclusive), +Inf, _sum, _count, per label set', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const help = 'Time from receiving a request to finishing its answer.';
    const fast = createHistogram(ours, { name: 'relay_test_seconds', help, buckets: DURATION_BUCKETS });
    const reference = new Histogram({ name: 'relay_test_seconds', help, labelNames: ['operation', 'status'], buckets: DURATION_BUCKETS, registers: [theirs] });
    const values = [0, 0.001, 0.0011, 0.0025, 0.3, 1, 59.9, 600, 601, 1e6, 0.004999];
    const labelSets = [
      { operation: 'createEmbedding', status: '200' },
      { operation: 'createResponse', status: '429' },
    ];
    for (const [i, labels] of labelSets.entries()) {
      const series = fast.series(labels);
      for (const v of values.slice(i)) {
        series.observe(v);
        reference.observe(labels, v);
      }
    }
    // looking a series up again gives the same one (no duplicate series in the export)
    fast.series({ status: '200', operation: 'createEmbedding' }).observe(0.02);
    reference.observe({ operation: 'createEmbedding', status: '200' }, 0.02);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  test('a label set never observed is not exported', async () => {
    const registry = new Registry();
    const fast = createHistogram(registry, { name: 'relay_idle_seconds', help: 'h', buckets: [1] });
    fast.series({ operation: 'x' });
    expect(await registry.metrics()).not.toContain('relay_idle_seconds_count');
  });

  test('registry.resetMetrics() zeroes it, as it does prom-client metrics', async () => {
    const registry = new Registry();
    const fast = createHistogram(registry, { name: 'relay_reset_seconds', help: 'h', buckets: [1] });
    fast.series({ operation: 'x' }).observe(0.5);
    registry.resetMetrics();
    expect(await registry.metrics()).toContain('relay_reset_seconds_count{operation="x"} 0');
  });
});
