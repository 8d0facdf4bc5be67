import { matchOperation } from '../../generated/matcher.ts';
import type { RelayOperation } from '../../generated/routes.ts';

/**
 * The route-table operation a call of the relay's own client is for (its method and its `/v1/...` path):
 * for its deadline class, its usage rules and its metric labels.
 */
export function operationOf(method: string, pathname: string): RelayOperation | undefined {
  return matchOperation(method, pathname)?.operation;
}
