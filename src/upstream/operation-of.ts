import { operations, type RelayOperation } from '../../generated/routes.ts';

/**
 * The route-table operation a call of the relay's own client is for (its method and its `/v1/...` path): for its deadline class, its usage rules and its metric labels.
 */
const byTemplate = operations.map((op) => ({
  op,
  method: op.method.toUpperCase(),
  pattern: new RegExp(`^${op.path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

export function operationOf(method: string, pathname: string): RelayOperation | undefined {
  for (const entry of byTemplate) if (entry.method === method && entry.pattern.test(pathname)) return entry.op;
  return undefined;
}
