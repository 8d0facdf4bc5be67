import type { Acknowledgement } from '../generate/marks.ts';
import type { ContentTypeChange, DriftKind, EnumChange, OperationRef, RequiredFieldChange } from './report.ts';

/**
 * Whether an acknowledged difference (an `x-relay.acknowledged` mark, scripts/generate/marks.ts) covers a
 * difference the report found. A mark pins its difference exactly (the official media types, the field,
 * the enum values), so a further change on the same operation is new drift again.
 */

/** The report's kind of difference each acknowledgement kind stands for. */
export const KIND_OF_MARK: Record<Acknowledgement['kind'], DriftKind> = {
  'content-type': 'contentTypeChanges',
  required: 'newRequiredFields',
  enum: 'enumChanges',
  removed: 'removedOperations',
  missing: 'missingOperations',
};

const sameSet = (a: readonly unknown[] = [], b: readonly unknown[] = []) => a.length === b.length && a.every((x) => b.includes(x));

/** `METHOD /v1/path` with path parameter names ignored, as operations are matched across specs. */
export const operationKey = (method: string, path: string) => `${method.toUpperCase()} ${path.replace(/\{[^}]*\}/g, '{}')}`;

export function covers(mark: Acknowledgement, kind: DriftKind, difference: OperationRef): boolean {
  if (KIND_OF_MARK[mark.kind] !== kind) return false;
  switch (mark.kind) {
    case 'content-type': {
      const c = difference as ContentTypeChange;
      return mark.where === c.where && sameSet(mark.official, c.official);
    }
    case 'required':
      return mark.field === (difference as RequiredFieldChange).field;
    case 'enum': {
      const e = difference as EnumChange;
      return mark.name === e.name && sameSet(mark.added, e.added) && sameSet(mark.removed, e.removed);
    }
    case 'removed':
      return true;
    case 'missing': {
      const [method = '', path = ''] = (mark.operation ?? '').trim().split(/\s+/);
      return operationKey(method, path) === operationKey(difference.method, difference.path);
    }
  }
}
