import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { matchOperation, methodsForPath } from '../generated/matcher.ts';
import { operations, type RelayOperation } from '../generated/routes.ts';
import { compileMatcher } from '../scripts/generate/emit-matcher.ts';
import { listOperations, loadSpec } from '../scripts/generate/spec.ts';

/**
 * generated/matcher.ts, the one operation matcher, against the simplest correct matcher: one anchored
 * regular expression per operation, tried in route-table order (literal segments first), as the doors
 * matched before there was one matcher.
 */

const reference = operations.map((operation) => ({
  operation,
  method: operation.method.toUpperCase(),
  pattern: new RegExp(`^${operation.path.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
}));

function referenceMatch(method: string, path: string): { operation: RelayOperation; params: Record<string, string> } | undefined {
  for (const { operation, method: m, pattern } of reference) {
    if (m !== method) continue;
    const found = pattern.exec(path);
    if (!found) continue;
    return { operation, params: Object.fromEntries(operation.pathParams.map((name, i) => [name, found[i + 1]])) };
  }
  return undefined;
}

const referenceMethods = (path: string) => [...new Set(reference.filter((r) => r.pattern.test(path)).map((r) => r.method))];

const METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'];
const literals = [...new Set(operations.flatMap((o) => o.path.split('/')).filter((s) => s && !s.startsWith('{')))];
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...literals) },
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:%-]{1,12}$/) },
  { weight: 1, arbitrary: fc.constantFrom('', 'constructor', '__proto__', 'toString', 'hasOwnProperty', '%41', '..') },
);
/** A spec path with its parameters filled in (and sometimes a segment added, dropped or emptied). */
const path = fc
  .tuple(fc.constantFrom(...operations.map((o) => o.path)), fc.array(segment, { minLength: 6, maxLength: 6 }), fc.nat(9), segment)
  .map(([template, fills, mutation, extra]) => {
    let i = 0;
    const segments = template.split('/').map((s) => (s.startsWith('{') ? fills[i++] : s));
    if (mutation === 0) segments.push(extra);
    if (mutation === 1) segments.splice(2 + (fills.length % Math.max(1, segments.length - 2)), 1);
    if (mutation === 2) segments[segments.length - 1] = extra;
    return segments.join('/');
  });

describe('matchOperation', () => {
  test('agrees with one regex per operation in route-table order, for any method and path', () => {
    fc.assert(
      fc.property(fc.constantFrom(...METHODS), fc.oneof(path, fc.string()), (method, p) => {
        const found = matchOperation(method, p);
        const expected = referenceMatch(method, p);
        expect(found?.operation).toBe(expected?.operation);
        if (expected) expect({ ...found!.params }).toEqual(expected.params);
        expect(methodsForPath(p)).toEqual(referenceMethods(p));
      }),
      { numRuns: 5_000 },
    );
  });

  test('every operation is found at its own path (parameters filled in)', () => {
    for (const op of operations) {
      const concrete = op.path.replace(/\{([^}]+)\}/g, 'id_$1');
      const found = matchOperation(op.method.toUpperCase(), concrete);
      expect(found?.operation.operationId, `${op.method} ${op.path}`).toBe(op.operationId);
      expect({ ...found!.params }).toEqual(Object.fromEntries(op.pathParams.map((name) => [name, `id_${name}`])));
    }
  });

  test('literal segments win: /v1/responses/compact and /v1/videos/characters/... are never taken for an id', () => {
    expect(matchOperation('POST', '/v1/responses/compact')?.operation.operationId).toBe('Compactconversation');
    // A GET of the same path is an id: nothing else answers GET there.
    expect(matchOperation('GET', '/v1/responses/compact')).toMatchObject({ operation: { operationId: 'getResponse' }, params: { response_id: 'compact' } });
    const character = matchOperation('GET', '/v1/videos/characters/content');
    expect(character?.operation.path).toBe('/v1/videos/characters/{character_id}');
    expect(character?.params).toEqual({ character_id: 'content' });
  });

  test('no match: unknown paths, empty segments, a trailing slash, a query string, prototype names', () => {
    for (const p of ['/v1/nothing', '/v1/files/', '/v1//files', '/v1/files?limit=1', 'v1/models', '', '/', '/v1/constructor', '/v1/__proto__']) {
      expect(matchOperation('GET', p), p).toBeUndefined();
    }
    expect(methodsForPath('/v1/models')).toEqual(['GET']);
    expect(methodsForPath('/v1/nothing')).toEqual([]);
  });
});

describe('compileMatcher', () => {
  const ops = listOperations(loadSpec());
  const withPath = (o: (typeof ops)[number], path: string) => ({ ...o, path, pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]) });

  test('refuses two operations that would answer the same requests', () => {
    const getFile = ops.find((o) => o.operationId === 'retrieveFile')!;
    expect(() => compileMatcher([...ops, { ...withPath(getFile, '/v1/files/{other_id}'), operationId: 'shadow' }])).toThrow(
      /GET \/v1\/files\/\{other_id\} matches exactly the requests of retrieveFile/,
    );
    const listModels = ops.find((o) => o.operationId === 'listModels')!;
    expect(() => compileMatcher([...ops, { ...listModels, operationId: 'again' }])).toThrow(/GET \/v1\/models is declared twice/);
  });

  test('refuses a segment that is neither a literal nor one whole parameter', () => {
    const getFile = ops.find((o) => o.operationId === 'retrieveFile')!;
    expect(() => compileMatcher([withPath(getFile, '/v1/files/file-{id}')])).toThrow(/every segment must be a literal or one whole \{parameter\}/);
  });
});
