import { expect } from 'vitest';
import { RelayError } from '../../src/core/errors.ts';

/** The RelayError a promise rejects with (fails the test if it resolves or rejects with anything else). */
export async function refusal(promise: Promise<unknown>): Promise<RelayError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

/** The value of one Prometheus sample line `name{labels} value` whose labels are exactly `labels`. */
export function sample(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(/,(?=[a-zA-Z_]+=")/) : [];
    if (have.length === wanted.length && wanted.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

export interface OpenAIErrorFields {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** An error body in OpenAI's shape: exactly `{error: {code, message, param, type}}`, a message, param and code each a string or null. */
export function expectOpenAIErrorBody(body: unknown): OpenAIErrorFields {
  expect(body).toBeTypeOf('object');
  expect(Object.keys(body as object)).toEqual(['error']);
  const error = (body as { error: OpenAIErrorFields }).error;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(error.message).toBeTypeOf('string');
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.type).toBeTypeOf('string');
  expect(error.param === null || typeof error.param === 'string', `param ${JSON.stringify(error.param)}`).toBe(true);
  expect(error.code === null || typeof error.code === 'string', `code ${JSON.stringify(error.code)}`).toBe(true);
  return error;
}

export interface ExpectedError {
  type?: string;
  code?: string | null;
  param?: string | null;
  message?: RegExp;
  /** The message is a sentence, not a word or two. */
  minMessageLength?: number;
}

/** `res` is an error answer in OpenAI's shape with `status` (the body is shown when the status differs), and the fields given. */
export async function expectOpenAIError(res: Response, status: number, expected: ExpectedError = {}): Promise<OpenAIErrorFields> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const error = expectOpenAIErrorBody(JSON.parse(text));
  if (expected.type !== undefined) expect(error.type).toBe(expected.type);
  if (expected.code !== undefined) expect(error.code).toBe(expected.code);
  if (expected.param !== undefined) expect(error.param).toBe(expected.param);
  if (expected.message !== undefined) expect(error.message).toMatch(expected.message);
  if (expected.minMessageLength !== undefined) expect(error.message.length).toBeGreaterThanOrEqual(expected.minMessageLength);
  return error;
}
