import { describe, expect, test } from 'vitest';
import { KeyConfigError, parseLimitOverrides, parseRelayKeys, policyFor } from '../src/ops/keys.ts';

/** Named relay keys (`label:key`) and per-label limits (RATE_LIMITS), with every refusal as a sentence. */

const K1 = '0123456789abcdef0123';
const K2 = 'fedcba9876543210fedc';
const K3 = 'aaaaaaaaaaaaaaaaaaaa';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KeyConfigError);
    const problems = (err as KeyConfigError).problems;
    for (const p of problems) expect(p).toMatch(/^[A-Z].*[.)]$/); // sentences
    return problems;
  }
  throw new Error('expected a KeyConfigError');
}

describe('parseRelayKeys', () => {
  test('labels, default labels by position, whitespace and empty entries ignored', () => {
    expect(parseRelayKeys(` alice:${K1} , ${K2},, bot.v2:${K3} `)).toEqual([
      { label: 'alice', key: K1 },
      { label: 'key-2', key: K2 },
      { label: 'bot.v2', key: K3 },
    ]);
    expect(parseRelayKeys('')).toEqual([]);
  });

  test('labels are case-insensitive and kept in lowercase', () => {
    expect(parseRelayKeys(`Alice:${K1}`)).toEqual([{ label: 'alice', key: K1 }]);
    expect(problemsOf(() => parseRelayKeys(`Alice:${K1},alice:${K2}`))[0]).toMatch(/both labelled "alice"/);
  });

  test('default label never comes from the key', () => {
    const [entry] = parseRelayKeys(K1);
    expect(entry.label).toBe('key-1');
    expect(entry.label).not.toContain(K1.slice(0, 4));
  });

  test('splits on the first ":" only, and only when the part before it is a valid label', () => {
    // explicit label keeps a key with ':' whole
    expect(parseRelayKeys(`team:sk-team:${K1}`)).toEqual([{ label: 'team', key: `sk-team:${K1}` }]);
    // a label-looking start of a key containing ':' is taken as a label (documented rule)
    expect(parseRelayKeys(`sk-team:${K1}`)).toEqual([{ label: 'sk-team', key: K1 }]);
    // not a valid label before ':' → the whole entry is the key
    expect(parseRelayKeys(`:${K1}`)).toEqual([{ label: 'key-1', key: `:${K1}` }]);
    expect(parseRelayKeys(`-x:${K1}`)).toEqual([{ label: 'key-1', key: `-x:${K1}` }]);
    expect(parseRelayKeys(`${'a'.repeat(65)}:${K1}`)).toEqual([{ label: 'key-1', key: `${'a'.repeat(65)}:${K1}` }]);
    expect(parseRelayKeys(`a+b:${K1}`)).toEqual([{ label: 'key-1', key: `a+b:${K1}` }]);
  });

  test('label with no key', () => {
    expect(problemsOf(() => parseRelayKeys('alice:'))).toEqual([
      'RELAY_KEY entry 1 ("alice") has a label but no key after the ":"; write it as label:key.',
    ]);
  });

  test('key shorter than 16 characters (counted after the label)', () => {
    expect(problemsOf(() => parseRelayKeys('short'))).toEqual([
      'RELAY_KEY entry 1 has a key of 5 characters; every key must be at least 16 characters long. Generate one with `openssl rand -hex 32`.',
    ]);
    // 6 + 1 + 10 = 17 characters in all, but the key itself has 10
    expect(problemsOf(() => parseRelayKeys('alice:0123456789'))).toEqual([
      'RELAY_KEY entry 1 ("alice") has a key of 10 characters (after the label "alice:"); every key must be at least 16 characters long. Generate one with `openssl rand -hex 32`.',
    ]);
  });

  test('whitespace inside a key', () => {
    expect(problemsOf(() => parseRelayKeys(`alice:${K1} x`))).toEqual([
      'RELAY_KEY entry 1 ("alice") contains whitespace inside the key; keys are sent as a Bearer token and cannot contain spaces.',
    ]);
  });

  test('duplicate labels, including an explicit label equal to a default one', () => {
    expect(problemsOf(() => parseRelayKeys(`a:${K1},a:${K2}`))).toEqual([
      'RELAY_KEY entries 1 and 2 are both labelled "a"; give every key a different label.',
    ]);
    expect(problemsOf(() => parseRelayKeys(`key-2:${K1},${K2}`))).toEqual([
      'RELAY_KEY entries 1 and 2 are both labelled "key-2" (entry 2 gets "key-2" by default, from its position); give every key a different label.',
    ]);
  });

  test('duplicate keys, without printing the key', () => {
    const problems = problemsOf(() => parseRelayKeys(`alice:${K1},bob:${K1}`));
    expect(problems).toEqual([
      'RELAY_KEY entries 1 ("alice") and 2 ("bob") have the same key; every label needs its own key, or usage could not be told apart.',
    ]);
    expect(problems.join(' ')).not.toContain(K1);
    expect(problemsOf(() => parseRelayKeys(`${K1},${K1}`))[0]).toMatch(/entries 1 \("key-1"\) and 2 \("key-2"\) have the same key/);
  });

  test('every problem is reported at once, and no key appears in any message', () => {
    const problems = problemsOf(() => parseRelayKeys(`a:${K1},a:shortkey,${K1}`));
    expect(problems).toHaveLength(3);
    expect(problems.join(' ')).not.toContain(K1);
    expect(problems.join(' ')).not.toContain('shortkey');
  });
});

describe('parseLimitOverrides', () => {
  test('per-label requests/min and tokens/day', () => {
    const limits = parseLimitOverrides('alice=120/min:2000000/day, bot=10/min ,carol=5000/DAY,*=60/min');
    expect([...limits]).toEqual([
      ['alice', { requestsPerMinute: 120, tokensPerDay: 2_000_000 }],
      ['bot', { requestsPerMinute: 10 }],
      ['carol', { tokensPerDay: 5000 }],
      ['*', { requestsPerMinute: 60 }],
    ]);
    expect(policyFor(limits, 'Alice')).toEqual({ requestsPerMinute: 120, tokensPerDay: 2_000_000 });
    expect(policyFor(limits, 'dave')).toEqual({ requestsPerMinute: 60 });
    expect(policyFor(parseLimitOverrides('bot=1/min'), 'dave')).toEqual({});
  });

  test('dollar budgets per UTC day and month, in micro-dollars, beside the other limits', () => {
    const limits = parseLimitOverrides('alice=120/min:$5/day:$100/month,bot=$0.125/day, carol=$ 12.5 / MONTH:2000/day,*=$1000000000/month');
    expect([...limits]).toEqual([
      ['alice', { requestsPerMinute: 120, costPerDay: 5_000_000, costPerMonth: 100_000_000 }],
      ['bot', { costPerDay: 125_000 }],
      ['carol', { costPerMonth: 12_500_000, tokensPerDay: 2000 }],
      ['*', { costPerMonth: 1e15 }],
    ]);
    expect(parseLimitOverrides('a=$0.000001/day').get('a')).toEqual({ costPerDay: 1 });
    const problems = (raw: string) => problemsOf(() => parseLimitOverrides(raw));
    expect(problems('a=$0/day')).toEqual(['RATE_LIMITS entry for "a" has "$0/day"; a dollar budget must be above $0 and at most $1000000000 (leave it out for no budget).']);
    expect(problems('a=$1000000001/month')[0]).toMatch(/at most \$1000000000/);
    expect(problems('a=$0.0000001/day')[0]).toMatch(/"\$0\.0000001\/day", which is not a limit/); // 7 decimals: below a micro-dollar
    expect(problems('a=$5/min')[0]).toMatch(/which is not a limit/);
    expect(problems('a=5$/day')[0]).toMatch(/which is not a limit/);
    expect(problems('a=$-1/day')[0]).toMatch(/which is not a limit/);
    expect(problems('a=$5/day:$6/day')).toEqual(['RATE_LIMITS entry for "a" gives a $/day limit twice; give it once.']);
    // A token budget per day and a dollar budget per day are different limits.
    expect(parseLimitOverrides('a=5/day:$5/day').get('a')).toEqual({ tokensPerDay: 5, costPerDay: 5_000_000 });
  });

  test('unset or empty → no overrides', () => {
    expect(parseLimitOverrides(undefined).size).toBe(0);
    expect(parseLimitOverrides(' ').size).toBe(0);
  });

  test('known labels are checked when given', () => {
    expect(parseLimitOverrides('alice=1/min,*=2/min', ['alice', 'key-2']).size).toBe(2);
    expect(problemsOf(() => parseLimitOverrides('alcie=1/min', ['alice', 'key-2']))).toEqual([
      'RATE_LIMITS names "alcie", but no RELAY_KEY entry has that label (labels: alice, key-2).',
    ]);
  });

  test('every error sentence', () => {
    expect(problemsOf(() => parseLimitOverrides('alice'))).toEqual([
      'RATE_LIMITS entry "alice" has no "="; write it as label=120/min:2000000/day.',
    ]);
    expect(problemsOf(() => parseLimitOverrides('a b=1/min'))).toEqual([
      'RATE_LIMITS entry "a b=1/min" names "a b", which is not a valid label (letters, digits, "_", "." and "-", starting with a letter or digit, at most 64 characters; or "*" for every other key).',
    ]);
    expect(problemsOf(() => parseLimitOverrides('a=1/min,A=2/min'))).toEqual([
      'RATE_LIMITS names "a" more than once; give each label one entry, e.g. a=120/min:2000000/day.',
    ]);
    expect(problemsOf(() => parseLimitOverrides('a='))).toEqual([
      'RATE_LIMITS entry for "a" is empty after "="; write e.g. a=120/min or a=2000000/day.',
    ]);
    expect(problemsOf(() => parseLimitOverrides('a=10/hour'))).toEqual([
      'RATE_LIMITS entry for "a" has "10/hour", which is not a limit; use N/min (requests per minute), N/day (tokens per UTC day), $N/day or $N/month (dollars per UTC day or calendar month), joined by ":".',
    ]);
    expect(problemsOf(() => parseLimitOverrides('a=1.5/min'))[0]).toMatch(/"1\.5\/min", which is not a limit/);
    expect(problemsOf(() => parseLimitOverrides('a=-1/min'))[0]).toMatch(/"-1\/min", which is not a limit/);
    expect(problemsOf(() => parseLimitOverrides('a=0/min'))).toEqual([
      'RATE_LIMITS entry for "a" has "0/min"; a limit must be a whole number above 0 (leave it out for no limit).',
    ]);
    expect(problemsOf(() => parseLimitOverrides('a=99999999999999999999/day'))[0]).toMatch(/whole number above 0/);
    expect(problemsOf(() => parseLimitOverrides('a=1/min:2/min'))).toEqual([
      'RATE_LIMITS entry for "a" gives a /min limit twice; give it once.',
    ]);
  });

  test('all problems at once', () => {
    expect(problemsOf(() => parseLimitOverrides('x,y=1/hour,z=0/day'))).toHaveLength(3);
  });
});
