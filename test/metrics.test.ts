import { register as globalRegistry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { createMetrics, DURATION_BUCKETS } from '../src/ops/metrics.ts';
import { sample } from './helpers/assertions.ts';

/** Prometheus metrics on a per-relay registry: names, labels, bounded cardinality, scrape-time gauges. */


describe('metrics', () => {
  test('requests: counter by operation, status and key label; duration histograms', async () => {
    const metrics = createMetrics();
    metrics.requestFinished({ operation: 'createChatCompletion', status: 200, keyLabel: 'alice' }, 0.42, 0.4);
    metrics.requestFinished({ operation: 'createChatCompletion', status: 200, keyLabel: 'alice' }, 1.5, 1.45);
    metrics.requestFinished({ operation: 'createChatCompletion', status: 429, keyLabel: 'bot' }, 0.002);
    const { contentType, body } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    expect(body).toContain('# TYPE relay_requests_total counter');
    expect(sample(body, 'relay_requests_total', { operation: 'createChatCompletion', status: '200', key: 'alice' })).toBe(2);
    expect(sample(body, 'relay_requests_total', { operation: 'createChatCompletion', status: '429', key: 'bot' })).toBe(1);

    expect(body).toContain('# TYPE relay_request_duration_seconds histogram');
    const ok = { operation: 'createChatCompletion', status: '200' };
    expect(sample(body, 'relay_request_duration_seconds_count', ok)).toBe(2);
    expect(sample(body, 'relay_request_duration_seconds_sum', ok)).toBeCloseTo(1.92);
    expect(sample(body, 'relay_request_duration_seconds_bucket', { ...ok, le: '0.5' })).toBe(1);
    expect(sample(body, 'relay_request_duration_seconds_bucket', { ...ok, le: '2.5' })).toBe(2);
    expect(sample(body, 'relay_request_duration_seconds_bucket', { ...ok, le: '0.001' })).toBe(0);
    expect(sample(body, 'relay_request_duration_seconds_bucket', { ...ok, le: '600' })).toBe(2);
    expect(sample(body, 'relay_request_duration_seconds_bucket', { operation: 'createChatCompletion', status: '429', le: '0.0025' })).toBe(1);
    expect(DURATION_BUCKETS[0]).toBe(0.001);
    expect(DURATION_BUCKETS.at(-1)).toBe(600);

    // upstream time: only for requests that reached upstream; labelled by operation alone
    expect(sample(body, 'relay_upstream_duration_seconds_count', { operation: 'createChatCompletion' })).toBe(2);
    expect(sample(body, 'relay_upstream_duration_seconds_sum', { operation: 'createChatCompletion' })).toBeCloseTo(1.85);
    // the duration histogram has no key label: cardinality stays operations × statuses
    expect(body).not.toMatch(/relay_request_duration_seconds_bucket\{[^}]*key=/);
  });

  test('upstream errors by operation and kind', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.upstreamError('createEmbedding', 'timeout');
    metrics.upstreamError('createEmbedding', 'timeout');
    metrics.upstreamError('listModels', 'connect');
    const { body } = await metrics.render();
    expect(body).toContain('# TYPE relay_upstream_errors_total counter');
    expect(sample(body, 'relay_upstream_errors_total', { operation: 'createEmbedding', kind: 'timeout' })).toBe(2);
    expect(sample(body, 'relay_upstream_errors_total', { operation: 'listModels', kind: 'connect' })).toBe(1);
  });

  test('in-flight requests and open streams go up and down; done callbacks count once', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const a = metrics.requestStarted('createResponse');
    const b = metrics.requestStarted('createResponse');
    const s1 = metrics.streamOpened();
    const s2 = metrics.streamOpened();
    let { body } = await metrics.render();
    expect(body).toContain('# TYPE relay_in_flight_requests gauge');
    expect(sample(body, 'relay_in_flight_requests', { operation: 'createResponse' })).toBe(2);
    expect(sample(body, 'relay_open_streams')).toBe(2);
    a();
    a();
    s1();
    s1();
    ({ body } = await metrics.render());
    expect(sample(body, 'relay_in_flight_requests', { operation: 'createResponse' })).toBe(1);
    expect(sample(body, 'relay_open_streams')).toBe(1);
    b();
    s2();
    ({ body } = await metrics.render());
    expect(sample(body, 'relay_in_flight_requests', { operation: 'createResponse' })).toBe(0);
    expect(sample(body, 'relay_open_streams')).toBe(0);
  });

  test('ledger queue depth is read at scrape time; a throwing callback does not break the scrape', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    let depth = 3;
    metrics.setLedgerQueueDepth(() => depth);
    expect(sample((await metrics.render()).body, 'relay_ledger_queue_depth')).toBe(3);
    depth = 17;
    expect(sample((await metrics.render()).body, 'relay_ledger_queue_depth')).toBe(17);
    metrics.setLedgerQueueDepth(() => {
      throw new Error('ledger gone');
    });
    const { body } = await metrics.render();
    expect(sample(body, 'relay_ledger_queue_depth')).toBe(17);
  });

  test('default process metrics are included', async () => {
    const { body } = await createMetrics().render();
    expect(body).toMatch(/^process_cpu_user_seconds_total /m);
    expect(body).toMatch(/^nodejs_heap_size_used_bytes /m);
    expect(body).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });

  test('each relay has its own registry; the global one is untouched', async () => {
    const one = createMetrics();
    const two = createMetrics();
    one.requestFinished({ operation: 'listModels', status: 200, keyLabel: 'alice' }, 0.01);
    expect(one.registry).not.toBe(two.registry);
    expect(sample((await one.render()).body, 'relay_requests_total', { operation: 'listModels', status: '200', key: 'alice' })).toBe(1);
    expect(sample((await two.render()).body, 'relay_requests_total', { operation: 'listModels', status: '200', key: 'alice' })).toBeUndefined();
    expect(globalRegistry.getSingleMetric('relay_requests_total')).toBeUndefined();
  });

  test('usage: tokens by key, model and kind; cost in dollars; unpriced calls by model', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const usage = { inputTokens: 1000, outputTokens: 300, details: { cachedInput: 600, reasoning: 200, audioOutput: 50 } };
    metrics.usageRecorded('alice', 'gpt-5', usage, 1234);
    metrics.usageRecorded('alice', 'gpt-5', { inputTokens: 10, outputTokens: 1 }, 16);
    metrics.usageRecorded('alice', 'gpt-9', { inputTokens: 5 }, undefined);
    metrics.unpricedUsage('gpt-9');
    metrics.unpricedUsage('gpt-9');
    const { body } = await metrics.render();
    const t = (kind: string, model = 'gpt-5') => sample(body, 'relay_tokens_total', { key: 'alice', model, kind });
    expect([t('input'), t('cached_input'), t('output'), t('reasoning'), t('audio_output')]).toEqual([1010, 600, 301, 200, 50]);
    expect(t('image_input')).toBeUndefined(); // kinds that never occurred are not exported
    expect(sample(body, 'relay_cost_usd_total', { key: 'alice', model: 'gpt-5' })).toBeCloseTo(0.00125, 12);
    expect(t('input', 'gpt-9')).toBe(5);
    expect(sample(body, 'relay_cost_usd_total', { key: 'alice', model: 'gpt-9' })).toBeUndefined();
    expect(sample(body, 'relay_unpriced_usage_total', { model: 'gpt-9' })).toBe(2);
  });

  test('usage metrics stay bounded too: models beyond the cap are "other"', async () => {
    const metrics = createMetrics({ defaultMetrics: false, maxLabelValues: 3 });
    for (let i = 0; i < 10; i++) metrics.usageRecorded('alice', `model-${i}`, { inputTokens: 1 }, 1);
    const { body } = await metrics.render();
    expect(sample(body, 'relay_tokens_total', { key: 'alice', model: 'other', kind: 'input' })).toBe(7);
    expect(sample(body, 'relay_cost_usd_total', { key: 'alice', model: 'other' })).toBeCloseTo(0.000007, 12);
  });

  test('label cardinality is bounded: odd statuses become 0, values beyond the cap become "other"', async () => {
    const metrics = createMetrics({ defaultMetrics: false, maxLabelValues: 3 });
    for (const op of ['a', 'b', 'c', 'd', 'e']) metrics.requestFinished({ operation: op, status: 200, keyLabel: 'k' }, 0.1);
    metrics.requestFinished({ operation: 'a', status: 9999, keyLabel: 'k' }, Number.NaN);
    const { body } = await metrics.render();
    expect(sample(body, 'relay_requests_total', { operation: 'c', status: '200', key: 'k' })).toBe(1);
    expect(sample(body, 'relay_requests_total', { operation: 'other', status: '200', key: 'k' })).toBe(2);
    expect(sample(body, 'relay_requests_total', { operation: 'a', status: '0', key: 'k' })).toBe(1);
    // a non-finite duration is not observed
    expect(sample(body, 'relay_request_duration_seconds_count', { operation: 'a', status: '0' })).toBeUndefined();
  });
});
