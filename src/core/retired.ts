import type { RelayOperation } from '../../generated/routes.ts';
import { RelayError } from './errors.ts';

/**
 * What a retired operation answers (the route table's `retired`: OpenAI shut it down): 410 Gone with the
 * spec's sentence (when, where OpenAI says so, what to use instead), on every door, without calling OpenAI.
 */
export function retiredError(operation: RelayOperation): RelayError | undefined {
  const { retired } = operation;
  if (!retired) return undefined;
  return new RelayError(410, retired.message, { code: 'operation_retired' });
}
