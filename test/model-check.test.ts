import { Writable } from 'node:stream';
import { http, HttpResponse } from 'msw';
import type pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ACTION_MODEL_DEFAULTS } from '../src/config.ts';
import { createLogger } from '../src/core/logger.ts';
import { classify, configuredModels, startModelCheck, type ListedModel } from '../src/ops/model-check.ts';
import { OPENAI_BASE, useMockOpenAI } from './helpers/mock-openai.ts';
import { OPENAI_KEY, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * src/ops/model-check.ts: the configured models against GET /v1/models, at start-up and then on a timer
 * (fake timers and a fixed clock here), as log warnings and gauges; and, through a relay, the action
 * that names a model OpenAI no longer serves (src/actions/model-advice.ts).
 */

const DAY = 24 * 60 * 60 * 1000;
/** 2026-12-05 00:00 UTC: gpt-5-mini's announced shutdown (2026-12-11) is 6 days away. */
const NOW = Date.parse('2026-12-05T00:00:00Z');
const HOUR = 60 * 60 * 1000;

const configured = [
  { setting: 'ACTION_DEFAULT_MODEL', model: 'gpt-5-mini', suggestion: 'gpt-6.1-terra' },
  { setting: 'ACTION_IMAGE_MODEL', model: 'gpt-image-1', suggestion: 'gpt-image-2.6-sunburst' },
];
const listing: ListedModel[] = [
  { id: 'gpt-5-mini', shutdown_date: '2026-12-11' },
  { id: 'gpt-6.1-terra', shutdown_date: null },
  { id: 'gpt-image-2.6-sunburst' },
];

function capture() {
  const lines: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger('info', sink as unknown as pino.DestinationStream) };
}

async function gauges(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((l) => l.startsWith('relay_configured_model'));
}

describe('classify', () => {
  const byId = new Map(listing.map((m) => [m.id, m]));
  test('listed without a date → served; with a date within the window → retiring; far off → served; not listed → gone', () => {
    expect(classify({ setting: 'S', model: 'gpt-6.1-terra' }, byId, NOW, 30)).toEqual({ setting: 'S', model: 'gpt-6.1-terra', state: 'served' });
    expect(classify({ setting: 'S', model: 'gpt-5-mini' }, byId, NOW, 30)).toMatchObject({ state: 'retiring', shutdownDate: '2026-12-11', daysLeft: 6 });
    expect(classify({ setting: 'S', model: 'gpt-5-mini' }, byId, NOW, 5)).toMatchObject({ state: 'served', daysLeft: 6 });
    expect(classify({ setting: 'S', model: 'gpt-5-mini' }, byId, Date.parse('2026-12-11T08:00:00Z'), 30)).toMatchObject({ state: 'retiring', daysLeft: 0 });
    expect(classify({ setting: 'S', model: 'gpt-image-1' }, byId, NOW, 30)).toMatchObject({ state: 'gone' });
    expect(classify({ setting: 'S', model: 'x' }, new Map([['x', { id: 'x', shutdown_date: 'soon' }]]), NOW, 30)).toMatchObject({ state: 'served' });
  });
});

describe('startModelCheck', () => {
  afterEach(() => vi.useRealTimers());

  test('at start: warns about the retiring and the gone model, sets the gauges, and says what to configure', async () => {
    vi.useFakeTimers({ now: NOW });
    const { lines, logger } = capture();
    const registry = new Registry();
    const listModels = vi.fn(async () => listing);
    const check = startModelCheck({ models: configured, listModels, logger, registry, intervalMs: DAY, now: Date.now });
    await vi.advanceTimersByTimeAsync(0);
    expect(listModels).toHaveBeenCalledTimes(1);
    expect(await gauges(registry)).toEqual(
      expect.arrayContaining([
        'relay_configured_model_status{setting="ACTION_DEFAULT_MODEL",model="gpt-5-mini"} 1',
        'relay_configured_model_status{setting="ACTION_IMAGE_MODEL",model="gpt-image-1"} 2',
        'relay_configured_model_days_left{setting="ACTION_DEFAULT_MODEL",model="gpt-5-mini"} 6',
      ]),
    );
    const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toEqual([
      'ACTION_DEFAULT_MODEL=gpt-5-mini shuts down on 2026-12-11 (in 6 days). Set ACTION_DEFAULT_MODEL to a current model (OpenAI recommends e.g. gpt-6.1-terra); see https://developers.openai.com/api/docs/deprecations.',
      'ACTION_IMAGE_MODEL=gpt-image-1 is no longer listed by GET /v1/models: OpenAI has shut it down or this key cannot use it. Set ACTION_IMAGE_MODEL to a current model (OpenAI recommends e.g. gpt-image-2.6-sunburst); see https://developers.openai.com/api/docs/deprecations.',
    ]);
    expect(check.statusOf('gpt-5-mini')).toMatchObject({ state: 'retiring', shutdownDate: '2026-12-11' });
    check.stop();
  });

  test('daily: the next check a day later sees the new list; the gauges follow; stop() ends the timer', async () => {
    vi.useFakeTimers({ now: NOW });
    const { lines, logger } = capture();
    const registry = new Registry();
    let answer: ListedModel[] = listing;
    const listModels = vi.fn(async () => answer);
    const check = startModelCheck({ models: configured.slice(0, 1), listModels, logger, registry, intervalMs: DAY, now: Date.now });
    await vi.advanceTimersByTimeAsync(0);
    answer = [{ id: 'gpt-6.1-terra' }];
    await vi.advanceTimersByTimeAsync(DAY - 1);
    expect(listModels).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(listModels).toHaveBeenCalledTimes(2);
    expect(await gauges(registry)).toContain('relay_configured_model_status{setting="ACTION_DEFAULT_MODEL",model="gpt-5-mini"} 2');
    expect((await gauges(registry)).some((l) => l.startsWith('relay_configured_model_days_left{'))).toBe(false);
    check.stop();
    await vi.advanceTimersByTimeAsync(3 * DAY);
    expect(listModels).toHaveBeenCalledTimes(2);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(2);
  });

  test('all served: one info line, gauges 0', async () => {
    vi.useFakeTimers({ now: NOW });
    const { lines, logger } = capture();
    const registry = new Registry();
    const check = startModelCheck({ models: configuredModels({ defaultModel: 'gpt-6.1-terra', imageModel: 'gpt-image-2.6-sunburst' }), listModels: async () => listing, logger, registry, intervalMs: DAY });
    await vi.advanceTimersByTimeAsync(0);
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
    expect(lines.find((l) => l.msg === 'configured models are served by OpenAI')).toMatchObject({ models: ['gpt-6.1-terra', 'gpt-image-2.6-sunburst'] });
    expect(await gauges(registry)).toEqual(expect.arrayContaining(['relay_configured_model_status{setting="ACTION_IMAGE_MODEL",model="gpt-image-2.6-sunburst"} 0']));
    check.stop();
  });

  test('OpenAI unreachable: logged, tried again an hour later rather than a day', async () => {
    vi.useFakeTimers({ now: NOW });
    const { lines, logger } = capture();
    const listModels = vi.fn<(signal: AbortSignal) => Promise<ListedModel[]>>().mockRejectedValueOnce(new Error('Could not reach OpenAI.')).mockResolvedValue(listing);
    const check = startModelCheck({ models: configured, listModels, logger, registry: new Registry(), intervalMs: DAY });
    await vi.advanceTimersByTimeAsync(0);
    expect(lines.find((l) => l.level === 40)?.msg).toMatch(/could not check the configured models .*trying again in an hour/);
    expect(check.statusOf('gpt-5-mini')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(listModels).toHaveBeenCalledTimes(2);
    expect(check.statusOf('gpt-5-mini')?.state).toBe('retiring');
    check.stop();
  });

  test('the timer never keeps the process alive (unref), and stop() aborts a check in flight', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    let seen: AbortSignal | undefined;
    let answer: ((models: ListedModel[]) => void) | undefined;
    const check = startModelCheck({
      models: configured,
      listModels: (signal) => {
        seen = signal;
        return new Promise((resolve) => (answer = resolve));
      },
      logger: capture().logger,
      registry: new Registry(),
      intervalMs: DAY,
    });
    answer!(listing);
    await vi.waitFor(() => expect(check.statusOf('gpt-5-mini')).toBeDefined());
    const timers = spy.mock.results.map((r) => r.value as NodeJS.Timeout).filter((t) => typeof t?.hasRef === 'function');
    expect(timers.length).toBeGreaterThan(0);
    expect(timers.at(-1)!.hasRef()).toBe(false);
    spy.mockRestore();
    const again = check.run();
    check.stop();
    expect(seen?.aborted).toBe(true);
    answer!(listing);
    await again;
  });
});

describe('through a relay', () => {
  const { server, upstream } = useMockOpenAI();
  let relay: TestRelay | undefined;
  afterEach(async () => {
    await relay?.shutdown();
    relay = undefined;
  });
  const ADMIN = 'admin-key-0123456789abcdef';

  async function startChecked(env: Record<string, string>, models: ListedModel[]) {
    server.use(http.get(`${OPENAI_BASE}/v1/models`, () => HttpResponse.json({ object: 'list', data: models.map((m) => ({ object: 'model', owned_by: 'openai', created: 1, ...m })) })));
    relay = await startTestRelay({ RELAY_ADMIN_KEY: ADMIN, ...env }, { checkModels: true });
    for (let i = 0; i < 100 && !relay.logs.some((l) => l.includes('relay_configured') || l.includes('ACTION_') || l.includes('configured models')); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return relay;
  }

  test('start-up: GET /v1/models with the server key, recorded as listModels; warnings in the log and in /metrics', async () => {
    const r = await startChecked({ ACTION_DEFAULT_MODEL: 'gpt-5-mini', ACTION_IMAGE_MODEL: 'gpt-image-1' }, [{ id: 'gpt-5-mini', shutdown_date: '2026-12-11' }]);
    expect(upstream.map((u) => `${u.method} ${u.url.pathname}`)).toEqual(['GET /v1/models']);
    expect(upstream[0].headers.get('authorization')).toBe(`Bearer ${OPENAI_KEY}`);
    expect(r.logs.join('')).toContain('ACTION_IMAGE_MODEL=gpt-image-1 is no longer listed by GET /v1/models');
    const metrics = await (await fetch(`${r.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(metrics).toContain('relay_configured_model_status{setting="ACTION_IMAGE_MODEL",model="gpt-image-1"} 2');
    expect(metrics).toMatch(/relay_configured_model_status\{setting="ACTION_DEFAULT_MODEL",model="gpt-5-mini"\} [01]/);
    expect(metrics).toMatch(/relay_requests_total\{operation="listModels",status="200",key="relay-model-check"\} 1/);
  });

  test('MODEL_CHECK_HOURS=0: no check, no upstream call', async () => {
    relay = await startTestRelay({ MODEL_CHECK_HOURS: '0' }, { checkModels: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(upstream).toEqual([]);
  });

  const modelGone = () =>
    HttpResponse.json(
      { error: { message: 'The model `gpt-5-mini` does not exist or you do not have access to it.', type: 'invalid_request_error', param: 'model', code: 'model_not_found' } },
      { status: 404 },
    );

  test("an action on the relay's retired default model: a sentence naming the setting, what to set, and the shutdown date", async () => {
    const r = await startChecked({ ACTION_DEFAULT_MODEL: 'gpt-5-mini' }, [{ id: 'gpt-5-mini', shutdown_date: '2026-12-11' }]);
    server.use(http.post(`${OPENAI_BASE}/v1/responses`, modelGone));
    const res = await r.call('/v1/actions/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'hi' }) });
    expect(res.status).toBe(404);
    const { error } = (await res.json()) as { error: { message: string; code: string; param: string } };
    expect(error).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect(error.message).toBe(
      `OpenAI no longer serves gpt-5-mini, the model this relay's ACTION_DEFAULT_MODEL names (its shutdown date was 2026-12-11). The relay's operator should set ACTION_DEFAULT_MODEL to a current model, e.g. ${ACTION_MODEL_DEFAULTS.ACTION_DEFAULT_MODEL}; meanwhile, name a model in the request.`,
    );
  });

  test('an action naming a retired model itself: leave model out to use the default (named), or name a current one', async () => {
    relay = await startTestRelay();
    server.use(http.post(`${OPENAI_BASE}/v1/responses`, modelGone));
    const res = await relay.call('/v1/actions/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'hi', model: 'gpt-5-mini' }) });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      `OpenAI no longer serves the model gpt-5-mini: leave model out to use this relay's default (${ACTION_MODEL_DEFAULTS.ACTION_DEFAULT_MODEL}), or name a current model.`,
    );
  });

  test('the image actions too: a gone ACTION_IMAGE_MODEL names the setting and the model to set', async () => {
    relay = await startTestRelay({ ACTION_IMAGE_MODEL: 'gpt-image-1' });
    server.use(
      http.post(`${OPENAI_BASE}/v1/images/generations`, () =>
        HttpResponse.json({ error: { message: 'The model `gpt-image-1` has been deprecated.', type: 'invalid_request_error', param: null, code: 'model_not_found' } }, { status: 404 }),
      ),
    );
    const res = await relay.call('/v1/actions/images/generations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a lighthouse' }) });
    expect(res.status).toBe(404);
    const message = ((await res.json()) as { error: { message: string } }).error.message;
    expect(message).toContain("the model this relay's ACTION_IMAGE_MODEL names");
    expect(message).toContain(`e.g. ${ACTION_MODEL_DEFAULTS.ACTION_IMAGE_MODEL}`);
  });

  test('other upstream errors pass unchanged', async () => {
    relay = await startTestRelay();
    server.use(http.post(`${OPENAI_BASE}/v1/responses`, () => HttpResponse.json({ error: { message: 'Over quota.', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } }, { status: 429 })));
    const res = await relay.call('/v1/actions/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'hi' }) });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe('Over quota.');
  });
});
