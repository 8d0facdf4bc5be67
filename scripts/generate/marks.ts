import { deref, isObj, type Json } from './walk.ts';

/**
 * The `x-relay` marks that say how the relay's contract stands to OpenAI's, rather than how a request
 * travels: a retirement (OpenAI shut the operation down), the response headers an operation declares
 * (they cross the answer-header allowlist), and acknowledged differences from the official spec (read by
 * `npm run spec:drift`). Each is parsed and checked here, once; spec.ts attaches them to operations.
 */

/** OpenAI shut an operation down: the relay answers 410 with `message` and never calls upstream. */
export interface Retirement {
  /** The shutdown date, YYYY-MM-DD. */
  date: string;
  /** Where OpenAI says so (an https URL). */
  source: string;
  /** What to use instead, in words or as `METHOD /v1/path`; null when OpenAI names nothing. */
  replacement: string | null;
  /** The sentence the caller reads, made from the fields above. */
  message: string;
}

/** Kinds of difference `spec:drift` reports per operation, and the fields that pin one. */
export const ACKNOWLEDGED_KINDS = {
  /** Request or success-answer media types differ: pinned by `where` and the official list. */
  'content-type': ['where', 'official'],
  /** A request body field the official schema requires and the relay's does not. */
  required: ['field'],
  /** Enum values added (`added`) or dropped (`removed`) on a field the relay types. */
  enum: ['name', 'added', 'removed'],
  /** A relay operation the official spec does not have. */
  removed: [],
  /** (Document level only) an official operation of a served family the relay leaves out: `operation: "GET /v1/..."`. */
  missing: ['operation'],
} as const;
export type AcknowledgedKind = keyof typeof ACKNOWLEDGED_KINDS;

/** A deliberate difference from the official spec, with the reason it is kept. */
export interface Acknowledgement {
  kind: AcknowledgedKind;
  reason: string;
  where?: 'request' | 'response';
  official?: string[];
  field?: string;
  name?: string;
  added?: (string | number | boolean | null)[];
  removed?: (string | number | boolean | null)[];
  operation?: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** An operation's retirement mark, null when it has none; problems go to `problems`. */
export function retirementOf(relay: Json, label: string, problems: string[]): Retirement | null {
  const mark = relay.retired;
  if (mark === undefined || mark === null) return null;
  const where = `${label}: x-relay.retired`;
  if (!isObj(mark)) {
    problems.push(`${where} must be {date, source, replacement, product}`);
    return null;
  }
  const date = String(mark.date ?? '');
  if (!DATE.test(date) || Number.isNaN(Date.parse(date))) problems.push(`${where}.date must be a YYYY-MM-DD date (got ${JSON.stringify(mark.date)})`);
  if (typeof mark.source !== 'string' || !/^https:\/\/\S+$/.test(mark.source)) problems.push(`${where}.source must be the https URL where OpenAI says so`);
  if (mark.replacement !== null && (typeof mark.replacement !== 'string' || !mark.replacement.trim())) {
    problems.push(`${where}.replacement must be what to use instead, or null when OpenAI names nothing (say so on purpose)`);
  }
  const what = typeof mark.product === 'string' ? mark.product.trim() : '';
  if (!what) problems.push(`${where}.product must name what OpenAI shut down (e.g. "the Videos API")`);
  const replacement = typeof mark.replacement === 'string' ? mark.replacement.trim() : null;
  const message =
    `${label} is retired: OpenAI shut down ${what} on ${date} (${mark.source}), so this relay no longer forwards it. ` +
    (replacement ? `Use ${replacement} instead.` : 'OpenAI names no replacement.');
  return { date, source: String(mark.source), replacement, message };
}

/** Acknowledged differences in `marks` (an `x-relay.acknowledged` list) at `level`; problems go to `problems`. */
export function acknowledgementsOf(marks: unknown, level: 'operation' | 'document', where: string, problems: string[]): Acknowledgement[] {
  if (marks === undefined) return [];
  if (!Array.isArray(marks)) {
    problems.push(`${where}: x-relay.acknowledged must be a list of {kind, ..., reason}`);
    return [];
  }
  const out: Acknowledgement[] = [];
  marks.forEach((mark, i) => {
    const at = `${where}: x-relay.acknowledged[${i}]`;
    if (!isObj(mark) || !(mark.kind in ACKNOWLEDGED_KINDS)) {
      problems.push(`${at}.kind must be one of ${Object.keys(ACKNOWLEDGED_KINDS).join(', ')}`);
      return;
    }
    const kind = mark.kind as AcknowledgedKind;
    if ((kind === 'missing') !== (level === 'document')) {
      problems.push(`${at}: ${kind === 'missing' ? 'a missing operation is acknowledged at the document level' : `${kind} is acknowledged on its operation`}`);
      return;
    }
    if (typeof mark.reason !== 'string' || mark.reason.trim().length < 10) problems.push(`${at}.reason must say why the difference is kept`);
    for (const field of ACKNOWLEDGED_KINDS[kind]) if (mark[field] === undefined) problems.push(`${at}.${field} is missing`);
    if (kind === 'content-type' && (!['request', 'response'].includes(mark.where) || !isStringList(mark.official))) {
      problems.push(`${at}: where must be request or response, official a list of media types`);
    }
    if (kind === 'enum' && (!Array.isArray(mark.added) || !Array.isArray(mark.removed))) problems.push(`${at}: added and removed must be lists`);
    out.push({ ...(mark as Acknowledgement), reason: String(mark.reason ?? '') });
  });
  return out;
}

const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');

/**
 * The response headers an operation declares (`responses.<2xx>.headers`), lowercased: they reach the
 * caller besides the fixed answer-header allowlist (e.g. the `Location` of a created realtime call).
 */
export function declaredResponseHeaders(spec: Json, op: Json, problems: string[], where: string): string[] {
  const names = new Set<string>();
  for (const [status, raw] of Object.entries<Json>(isObj(op.responses) ? op.responses : {})) {
    if (!/^2\d\d$/.test(status)) continue;
    const response = deref(spec, raw, problems, `${where} response ${status}`);
    for (const name of Object.keys(isObj(response?.headers) ? response.headers : {})) {
      const lower = name.toLowerCase();
      // Hop-by-hop and cookie headers never cross, whatever a spec says (the relay frames its own answer).
      if (['set-cookie', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'trailer', 'te'].includes(lower)) continue;
      if (!/^[a-z0-9-]+$/.test(lower)) problems.push(`${where}: response header ${JSON.stringify(name)} is not a header name`);
      else names.add(lower);
    }
  }
  return [...names].sort();
}
