/**
 * Named relay keys and per-name limits.
 *
 * `RELAY_KEY` is a comma-separated list. Each entry is either `key` or `label:key`.
 *
 * Splitting rule (the only one): an entry is split on its FIRST `:` when, and only when, the part before
 * it is a valid label (`^[a-z0-9][a-z0-9_.-]{0,63}$`, case-insensitive). Otherwise the whole entry is the
 * key. So `alice:0123…` is key `0123…` labelled `alice`, and `:abc…` or `a b:…` stay whole keys. A key
 * that itself contains `:` after a label-looking start (say `sk-team:XXXX…`) would therefore be split;
 * to keep such a key whole, give it an explicit label: `team:sk-team:XXXX…` → label `team`,
 * key `sk-team:XXXX…` (only the first `:` splits).
 *
 * An entry without a label is called `key-<n>`, n being its 1-based position in the list. Labels never
 * come from the key itself (not even a hash of it): they appear in logs, metrics and Redis key names.
 * Labels are case-insensitive and kept in lowercase, so `Alice` and `alice` are the same name.
 */

/** A relay key shorter than this is refused: it would be guessable by brute force against a public URL. */
export const MIN_RELAY_KEY_LENGTH = 16;

export const LABEL_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/i;

export interface NamedRelayKey {
  label: string;
  key: string;
}

export interface LabelPolicy {
  requestsPerMinute?: number;
  tokensPerDay?: number;
  /** Dollar budgets, in micro-dollars (USD 10⁻⁶) spent per UTC day and per UTC calendar month. */
  costPerDay?: number;
  costPerMonth?: number;
}

/** Thrown by the parsers below; `problems` holds every sentence at once (feed them to ConfigError or zod issues). */
export class KeyConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join(' '));
    this.name = 'KeyConfigError';
    this.problems = problems;
  }
}

const entries = (raw: string | undefined): string[] =>
  (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

/** `label:key` → label and key when the part before the first `:` is a valid label; otherwise no label. */
function splitEntry(entry: string): { label?: string; key: string } {
  const colon = entry.indexOf(':');
  if (colon > 0) {
    const prefix = entry.slice(0, colon);
    if (LABEL_PATTERN.test(prefix)) return { label: prefix.toLowerCase(), key: entry.slice(colon + 1) };
  }
  return { key: entry };
}

export function parseRelayKeys(raw: string): NamedRelayKey[] {
  const problems: string[] = [];
  const result: (NamedRelayKey & { explicit: boolean; position: number })[] = [];
  entries(raw).forEach((entry, i) => {
    const position = i + 1;
    const { label, key } = splitEntry(entry);
    const name = label ? `RELAY_KEY entry ${position} ("${label}")` : `RELAY_KEY entry ${position}`;
    if (key.length === 0) {
      problems.push(`${name} has a label but no key after the ":"; write it as label:key.`);
      return;
    }
    if (/\s/.test(key)) {
      problems.push(`${name} contains whitespace inside the key; keys are sent as a Bearer token and cannot contain spaces.`);
    }
    if (key.length < MIN_RELAY_KEY_LENGTH) {
      problems.push(
        `${name} has a key of ${key.length} characters${label ? ` (after the label "${label}:")` : ''}; every key must be at least ${MIN_RELAY_KEY_LENGTH} characters long. Generate one with \`openssl rand -hex 32\`.`,
      );
    }
    result.push({ label: label ?? `key-${position}`, key, explicit: label !== undefined, position });
  });

  const byLabel = new Map<string, (typeof result)[number]>();
  const byKey = new Map<string, (typeof result)[number]>();
  for (const item of result) {
    const earlier = byLabel.get(item.label);
    if (earlier) {
      const implicit = [earlier, item].find((x) => !x.explicit);
      problems.push(
        `RELAY_KEY entries ${earlier.position} and ${item.position} are both labelled "${item.label}"` +
          (implicit ? ` (entry ${implicit.position} gets "${item.label}" by default, from its position)` : '') +
          '; give every key a different label.',
      );
    } else {
      byLabel.set(item.label, item);
    }
    const sameKey = byKey.get(item.key);
    if (sameKey) {
      problems.push(
        `RELAY_KEY entries ${sameKey.position} ("${sameKey.label}") and ${item.position} ("${item.label}") have the same key; every label needs its own key, or usage could not be told apart.`,
      );
    } else {
      byKey.set(item.key, item);
    }
  }
  if (problems.length) throw new KeyConfigError(problems);
  return result.map(({ label, key }) => ({ label, key }));
}

const WILDCARD = '*';

/**
 * `RATE_LIMITS="alice=120/min:2000000/day:$5/day:$100/month,bot=10/min,*=60/min"`: per-label limits. `N/min`
 * is requests per minute, `N/day` is tokens per UTC day (input + output tokens from each response's usage),
 * `$N/day` and `$N/month` are dollars spent per UTC day and UTC calendar month (at the price table's prices,
 * up to 6 decimals). A limit left out is unlimited. `*` is the policy for every label without its own entry
 * (see policyFor). `knownLabels`, when given, makes a label that names no relay key an error (it is almost
 * always a typo).
 */
export function parseLimitOverrides(raw: string | undefined, knownLabels?: readonly string[]): Map<string, LabelPolicy> {
  const problems: string[] = [];
  const result = new Map<string, LabelPolicy>();
  const known = knownLabels ? new Set(knownLabels.map((l) => l.toLowerCase())) : undefined;
  for (const entry of entries(raw)) {
    const eq = entry.indexOf('=');
    if (eq < 0) {
      problems.push(`RATE_LIMITS entry "${entry}" has no "="; write it as label=120/min:2000000/day.`);
      continue;
    }
    const label = entry.slice(0, eq).trim().toLowerCase();
    const spec = entry.slice(eq + 1).trim();
    if (label !== WILDCARD && !LABEL_PATTERN.test(label)) {
      problems.push(
        `RATE_LIMITS entry "${entry}" names "${label}", which is not a valid label (letters, digits, "_", "." and "-", starting with a letter or digit, at most 64 characters; or "*" for every other key).`,
      );
      continue;
    }
    if (result.has(label)) {
      problems.push(`RATE_LIMITS names "${label}" more than once; give each label one entry, e.g. ${label}=120/min:2000000/day.`);
      continue;
    }
    if (known && label !== WILDCARD && !known.has(label)) {
      problems.push(
        `RATE_LIMITS names "${label}", but no RELAY_KEY entry has that label (labels: ${[...known].join(', ') || 'none'}).`,
      );
      continue;
    }
    const policy: LabelPolicy = {};
    let ok = spec.length > 0;
    if (!ok) problems.push(`RATE_LIMITS entry for "${label}" is empty after "="; write e.g. ${label}=120/min or ${label}=2000000/day.`);
    for (const part of spec ? spec.split(':') : []) {
      const parsed = parseLimit(part.trim());
      if (typeof parsed === 'string') {
        problems.push(`RATE_LIMITS entry for "${label}" has "${part}"${parsed}`);
        ok = false;
        continue;
      }
      const [field, value] = parsed;
      if (policy[field] !== undefined) {
        problems.push(`RATE_LIMITS entry for "${label}" gives a ${FIELD_NAMES[field]} limit twice; give it once.`);
        ok = false;
        continue;
      }
      policy[field] = value;
    }
    if (ok) result.set(label, policy);
  }
  if (problems.length) throw new KeyConfigError(problems);
  return result;
}

const FIELD_NAMES: Record<keyof LabelPolicy, string> = {
  requestsPerMinute: '/min',
  tokensPerDay: '/day',
  costPerDay: '$/day',
  costPerMonth: '$/month',
};

/** Dollar budgets above this are refused as typos (and stay far inside exact integer micro-dollars). */
const MAX_BUDGET_USD = 1_000_000_000;

/** One `:`-separated limit: its field and value, or the end of the sentence saying why it is not one. */
function parseLimit(part: string): [keyof LabelPolicy, number] | string {
  const dollars = /^\$\s*(\d+)(?:\.(\d{1,6}))?\s*\/\s*(day|month)$/i.exec(part);
  if (dollars) {
    const micros = Number(dollars[1]) * 1_000_000 + Number((dollars[2] ?? '').padEnd(6, '0'));
    if (micros <= 0 || Number(dollars[1]) > MAX_BUDGET_USD) {
      return `; a dollar budget must be above $0 and at most $${MAX_BUDGET_USD} (leave it out for no budget).`;
    }
    return [dollars[3].toLowerCase() === 'day' ? 'costPerDay' : 'costPerMonth', micros];
  }
  const count = /^(\d+)\s*\/\s*(min|day)$/i.exec(part);
  if (!count) {
    return ', which is not a limit; use N/min (requests per minute), N/day (tokens per UTC day), $N/day or $N/month (dollars per UTC day or calendar month), joined by ":".';
  }
  const value = Number(count[1]);
  if (!Number.isSafeInteger(value) || value <= 0) return '; a limit must be a whole number above 0 (leave it out for no limit).';
  return [count[2].toLowerCase() === 'min' ? 'requestsPerMinute' : 'tokensPerDay', value];
}

/** The policy for `label`: its own entry, else the `*` entry, else unlimited (`{}`). */
export function policyFor(overrides: ReadonlyMap<string, LabelPolicy>, label: string): LabelPolicy {
  return overrides.get(label.toLowerCase()) ?? overrides.get(WILDCARD) ?? {};
}
