import { Gauge, type Registry } from 'prom-client';
import { ACTION_MODEL_DEFAULTS, type ActionConfig } from '../config.ts';
import type { Logger } from '../core/logger.ts';
import { nextRequestId } from '../core/request-id.ts';
import type { OpenAIClients } from '../upstream/client.ts';
import { createUsageAccount } from '../upstream/usage-account.ts';
import type { RequestRecord } from './index.ts';

/**
 * Models die too: OpenAI shuts models down on dates it announces on its deprecations page and in the
 * `shutdown_date` of GET /v1/models. The relay's configured models (ACTION_DEFAULT_MODEL,
 * ACTION_IMAGE_MODEL) are checked against that list at start-up and then every `intervalMs`: one gone
 * from the list, or shutting down within `warnDays`, is a warning in the log and in
 *
 *   relay_configured_model_status{setting,model}     0 served, 1 shuts down within the warning window, 2 gone
 *   relay_configured_model_days_left{setting,model}  days until the announced shutdown date (only when one is)
 *
 * and the action that names it answers with a sentence saying what to configure (actions/model-advice.ts).
 */

/** DEPRECATIONS_URL is where an operator reads the replacements OpenAI recommends. */
export const DEPRECATIONS_URL = 'https://developers.openai.com/api/docs/deprecations';
const DAY_MS = 24 * 60 * 60 * 1000;
/** After a failed check (OpenAI unreachable at start-up), try again this soon rather than a day later. */
const RETRY_AFTER_FAILURE_MS = 60 * 60 * 1000;

export interface ConfiguredModel {
  /** The setting that names it, e.g. ACTION_DEFAULT_MODEL. */
  setting: string;
  model: string;
  /** What to configure instead when it goes (the relay's built-in default for the setting). */
  suggestion?: string;
}

/** A model as GET /v1/models lists it. */
export interface ListedModel {
  id: string;
  shutdown_date?: string | null;
}

export type ModelState = 'served' | 'retiring' | 'gone';

export interface ModelStatus extends ConfiguredModel {
  state: ModelState;
  /** The announced shutdown date (YYYY-MM-DD), when there is one. */
  shutdownDate?: string;
  /** Whole days from now until that date (0 or less: the date has come). */
  daysLeft?: number;
}

export interface ModelCheckOptions {
  models: readonly ConfiguredModel[];
  /** GET /v1/models through the upstream policy. */
  listModels: (signal: AbortSignal) => Promise<readonly ListedModel[]>;
  logger: Logger;
  registry: Registry;
  /** Time between checks. */
  intervalMs: number;
  /** How near a shutdown date must be to warn. */
  warnDays?: number;
  /** The clock (tests pass their own). */
  now?: () => number;
}

export interface ModelCheck {
  /** Checks now; resolves to what it found, or undefined when GET /v1/models failed. */
  run(): Promise<readonly ModelStatus[] | undefined>;
  /** The last check's finding about a configured model, if it was found out. */
  statusOf(model: string): ModelStatus | undefined;
  /** Stops the timer and any check in flight. */
  stop(): void;
}

/** How one configured model stands against the listed models on day `now`. */
export function classify(configured: ConfiguredModel, listed: ReadonlyMap<string, ListedModel>, now: number, warnDays: number): ModelStatus {
  const found = listed.get(configured.model);
  if (!found) return { ...configured, state: 'gone' };
  const date = typeof found.shutdown_date === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(found.shutdown_date) ? found.shutdown_date : undefined;
  if (!date) return { ...configured, state: 'served' };
  // `+ 0` turns the -0 of a date later today into 0.
  const daysLeft = Math.ceil((Date.parse(`${date}T00:00:00Z`) - now) / DAY_MS) + 0;
  return { ...configured, state: daysLeft <= warnDays ? 'retiring' : 'served', shutdownDate: date, daysLeft };
}

/** The sentence an operator reads about a model that is going or gone. */
export function modelWarning(s: ModelStatus): string {
  const instead = s.suggestion && s.suggestion !== s.model ? ` (OpenAI recommends e.g. ${s.suggestion})` : '';
  const what =
    s.state === 'gone'
      ? `is no longer listed by GET /v1/models: OpenAI has shut it down or this key cannot use it`
      : s.daysLeft !== undefined && s.daysLeft <= 0
        ? `reached its shutdown date ${s.shutdownDate}`
        : `shuts down on ${s.shutdownDate} (in ${s.daysLeft} day${s.daysLeft === 1 ? '' : 's'})`;
  return `${s.setting}=${s.model} ${what}. Set ${s.setting} to a current model${instead}; see ${DEPRECATIONS_URL}.`;
}

const STATE_VALUE: Record<ModelState, number> = { served: 0, retiring: 1, gone: 2 };

export function startModelCheck(options: ModelCheckOptions): ModelCheck {
  const { models, logger, intervalMs } = options;
  const warnDays = options.warnDays ?? 30;
  const now = options.now ?? Date.now;
  let latest = new Map<string, ModelStatus>();
  let timer: NodeJS.Timeout | undefined;
  let inFlight: AbortController | undefined;
  let stopped = false;

  const status = new Gauge({
    name: 'relay_configured_model_status',
    help: 'A configured model against GET /v1/models: 0 served, 1 shuts down within the warning window, 2 gone.',
    labelNames: ['setting', 'model'] as const,
    registers: [options.registry],
  });
  const daysLeft = new Gauge({
    name: 'relay_configured_model_days_left',
    help: "Days until a configured model's announced shutdown date.",
    labelNames: ['setting', 'model'] as const,
    registers: [options.registry],
  });

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void run(), ms);
    // The check never keeps the process alive on its own.
    timer.unref();
  };

  async function run(): Promise<readonly ModelStatus[] | undefined> {
    clearTimeout(timer);
    inFlight?.abort();
    const controller = (inFlight = new AbortController());
    let listed: readonly ListedModel[];
    try {
      listed = await options.listModels(controller.signal);
    } catch (err) {
      if (!controller.signal.aborted) {
        logger.warn({ err: { message: (err as Error)?.message } }, 'could not check the configured models against GET /v1/models; trying again in an hour');
        schedule(Math.min(intervalMs, RETRY_AFTER_FAILURE_MS));
      }
      return undefined;
    } finally {
      if (inFlight === controller) inFlight = undefined;
    }
    const byId = new Map(listed.map((m) => [m.id, m]));
    const found = models.map((m) => classify(m, byId, now(), warnDays));
    latest = new Map(found.map((s) => [s.model, s]));
    status.reset();
    daysLeft.reset();
    for (const s of found) {
      const labels = { setting: s.setting, model: s.model };
      status.set(labels, STATE_VALUE[s.state]);
      if (s.daysLeft !== undefined) daysLeft.set(labels, s.daysLeft);
      if (s.state !== 'served') logger.warn({ setting: s.setting, model: s.model, shutdownDate: s.shutdownDate }, modelWarning(s));
    }
    if (found.every((s) => s.state === 'served')) logger.info({ models: found.map((s) => s.model) }, 'configured models are served by OpenAI');
    schedule(intervalMs);
    return found;
  }

  void run();
  return {
    run,
    statusOf: (model) => latest.get(model),
    stop() {
      stopped = true;
      clearTimeout(timer);
      inFlight?.abort();
    },
  };
}

/** The models the relay's own settings name, each with what to configure instead when it goes. */
export function configuredModels(actions: Pick<ActionConfig, 'defaultModel' | 'imageModel'>): ConfiguredModel[] {
  return [
    { setting: 'ACTION_DEFAULT_MODEL', model: actions.defaultModel, suggestion: ACTION_MODEL_DEFAULTS.ACTION_DEFAULT_MODEL },
    { setting: 'ACTION_IMAGE_MODEL', model: actions.imageModel, suggestion: ACTION_MODEL_DEFAULTS.ACTION_IMAGE_MODEL },
  ];
}

/** The key label the relay's own calls are recorded under (metrics, log line, ledger). */
export const MODEL_CHECK_LABEL = 'relay-model-check';

/**
 * GET /v1/models as the relay's own call: the typed client under the upstream policy (server key,
 * deadline, retries, redaction), recorded like any request (listModels, under MODEL_CHECK_LABEL).
 */
export function listModelsUpstream(clients: OpenAIClients, record: (r: RequestRecord) => void) {
  return async (signal: AbortSignal): Promise<readonly ListedModel[]> => {
    const account = createUsageAccount();
    const client = clients.forCall(account);
    const startedAt = Date.now();
    const started = performance.now();
    let status = 502;
    try {
      const result = await client.api.GET('/v1/models', { signal });
      status = result.response.status;
      return client.unwrap(result).data ?? [];
    } finally {
      record({
        requestId: nextRequestId(),
        operation: 'listModels',
        keyLabel: MODEL_CHECK_LABEL,
        status,
        startedAt,
        ms: Math.round(performance.now() - started),
        upstreamMs: account.upstreamMs,
        upstreamRequestId: account.upstreamRequestId,
        attempts: account.attempts,
      });
    }
  };
}
