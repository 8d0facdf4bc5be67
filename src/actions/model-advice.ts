import { ACTION_MODEL_DEFAULTS } from '../config.ts';
import { RelayError } from '../core/errors.ts';
import { DEPRECATIONS_URL, type ModelCheck } from '../ops/model-check.ts';

/**
 * OpenAI answers a model it has shut down with a bare "model not found". An action says instead which
 * model to use: the caller who named the model is told to leave it out (the relay's default) or name a
 * current one; when the model came from the relay's own setting, the sentence names the setting and
 * what to configure (the built-in default), with the shutdown date when the model check saw one.
 */
export type ModelSetting = keyof typeof ACTION_MODEL_DEFAULTS;

export interface ModelChoice {
  model: string;
  /** The setting the model came from; undefined when the caller named it. */
  setting?: ModelSetting;
  /** The relay's configured model for this kind of action (what leaving `model` out gives). */
  configured: string;
}

/** The model a call uses: the caller's, else the one the relay's `setting` configures. */
export function modelChoice(named: string | undefined, setting: ModelSetting, configured: string): ModelChoice {
  return named ? { model: named, configured } : { model: configured, setting, configured };
}

/** Runs `call` with `choice.model`; a "model not found" from OpenAI becomes the sentence above. */
export async function withModelAdvice<T>(choice: ModelChoice, models: ModelCheck | undefined, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof RelayError && err.code === 'model_not_found') throw retiredModelError(choice, models, err);
    throw err;
  }
}

function retiredModelError(choice: ModelChoice, models: ModelCheck | undefined, upstream: RelayError): RelayError {
  const { model, setting, configured } = choice;
  const known = models?.statusOf(model);
  const when = known?.shutdownDate ? ` (its shutdown date was ${known.shutdownDate})` : '';
  let message: string;
  if (!setting) {
    const fallback = configured !== model ? `leave model out to use this relay's default (${configured})` : 'leave model out';
    message = `OpenAI no longer serves the model ${model}${when}: ${fallback}, or name a current model.`;
  } else {
    const builtIn = ACTION_MODEL_DEFAULTS[setting];
    const instead = builtIn !== model ? `, e.g. ${builtIn}` : ` listed by GET /v1/models (${DEPRECATIONS_URL} names the replacements)`;
    message = `OpenAI no longer serves ${model}, the model this relay's ${setting} names${when}. The relay's operator should set ${setting} to a current model${instead}; meanwhile, name a model in the request.`;
  }
  return new RelayError(upstream.status, message, { code: 'model_not_found', param: 'model', headers: upstream.headers });
}
