/**
 * `npm run spec:drift -- <official-openapi.yaml|json> [--relay schemas/openapi.yaml] [--json]`
 *
 * Compares the relay's spec with a (newer) official OpenAI spec and lists, per family:
 *   1. missingOperations    official operations of a served family that the relay lacks
 *   2. removedOperations    relay operations the official spec no longer has
 *   3. contentTypeChanges   request content types, and success (2xx) response content types, that differ
 *   4. newRequiredFields    request body fields the official schema requires and the relay's does not
 *   5. enumChanges          official enum values missing from, or dropped since, an enum the relay declares
 *                           (top-level request body properties and query parameters)
 * Exit 0: nothing changed; 1: something did; 2: usage or parse error (message on stderr).
 *
 * Matching: both specs are reduced to wire paths (server URL path + path, so the official `/files` is
 * `/v1/files`), and operations match on method + path with `{param}` names ignored.
 *
 * Scope rule (families): a family is the first path segment after `/v1` (`files`, `chat`, `vector_stores`),
 * except under the NAMESPACES below, where OpenAI hosts unrelated products side by side (audio/voices next
 * to audio/speech, realtime/calls next to realtime/sessions): there it is the first two segments. The
 * in-scope families are those of the relay's own pass-through operations, so adding a family to
 * schemas/openapi.yaml widens the report by itself. Official operations outside them (organization,
 * fine_tuning, assistants, ...) are never reported. Operations with `x-relay.kind: relay` are the relay's own
 * (e.g. POST /v1/proxy) and are ignored, as are WebSocket endpoints (`x-relay.kind: websocket`: OpenAPI, and
 * so the official spec, has no WebSocket operations to compare them with).
 *
 * Official paths containing `?` (e.g. `/responses?beta=true`) are ignored: they are SDK variants of their
 * base path, which is on the wire the same route and is compared on its own.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

type Json = Record<string, any>;
type EnumValue = string | number | boolean | null;

export const NAMESPACES = new Set(['audio', 'realtime']);
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface OperationRef { method: string; path: string; operationId: string }
export interface ContentTypeChange extends OperationRef {
  where: 'request' | 'response';
  relay: string[];
  official: string[];
}
export interface RequiredFieldChange extends OperationRef { contentType: string; field: string }
export interface EnumChange extends OperationRef {
  location: 'body' | 'query';
  name: string;
  contentType?: string;
  added: EnumValue[];
  removed: EnumValue[];
}
export interface FamilyDrift {
  missingOperations: OperationRef[];
  removedOperations: OperationRef[];
  contentTypeChanges: ContentTypeChange[];
  newRequiredFields: RequiredFieldChange[];
  enumChanges: EnumChange[];
}
export type DriftKind = keyof FamilyDrift;
export interface DriftReport {
  summary: Record<DriftKind, number> & { families: number; total: number };
  families: Record<string, FamilyDrift>;
}

const KINDS: DriftKind[] = ['missingOperations', 'removedOperations', 'contentTypeChanges', 'newRequiredFields', 'enumChanges'];

// ---------------------------------------------------------------------------------------------- $ref

/** Follows `$ref`s (`#/...` JSON pointers within `doc`); a ref already in `seen` (a cycle) yields `{}`. */
function deref(doc: Json, node: any, seen: ReadonlySet<string> = new Set()): { node: any; seen: ReadonlySet<string> } {
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    const ref: string = node.$ref;
    if (seen.has(ref) || !ref.startsWith('#/')) return { node: {}, seen };
    seen = new Set([...seen, ref]);
    node = ref
      .slice(2)
      .split('/')
      .map((part) => decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((at: any, key) => (at && typeof at === 'object' ? at[key] : undefined), doc);
  }
  return { node: node ?? {}, seen };
}

/** Required fields and properties of an object schema: allOf merged; anyOf/oneOf add what every branch requires. */
function objectShape(doc: Json, schema: any, seen?: ReadonlySet<string>): { required: Set<string>; properties: Json } {
  const d = deref(doc, schema, seen);
  const s = d.node;
  const required = new Set<string>(Array.isArray(s.required) ? s.required : []);
  const properties: Json = { ...(s.properties ?? {}) };
  for (const part of s.allOf ?? []) {
    const sub = objectShape(doc, part, d.seen);
    sub.required.forEach((f) => required.add(f));
    Object.assign(properties, sub.properties);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = (s[key] ?? []).map((b: any) => objectShape(doc, b, d.seen));
    if (!branches.length) continue;
    for (const field of branches[0].required) if (branches.every((b: any) => b.required.has(field))) required.add(field);
    for (const b of branches) for (const [k, v] of Object.entries(b.properties)) properties[k] ??= v;
  }
  return { required, properties };
}

/** Every enum/const value a schema allows (through $ref, allOf/anyOf/oneOf and array items); undefined if none. */
function enumValues(doc: Json, schema: any, seen?: ReadonlySet<string>): Set<EnumValue> | undefined {
  const d = deref(doc, schema, seen);
  const s = d.node;
  let out: Set<EnumValue> | undefined;
  const add = (values: Iterable<EnumValue> | undefined) => {
    if (values) for (const v of values) (out ??= new Set()).add(v);
  };
  if (Array.isArray(s.enum)) add(s.enum);
  if ('const' in s) add([s.const]);
  for (const key of ['allOf', 'anyOf', 'oneOf'] as const) for (const b of s[key] ?? []) add(enumValues(doc, b, d.seen));
  if (s.items) add(enumValues(doc, s.items, d.seen));
  return out;
}

// ---------------------------------------------------------------------------------------- operations

interface Operation extends OperationRef { key: string; family: string; op: Json; item: Json }

/** The path segment after `/v1` (or the first two under a NAMESPACE): `/v1/audio/speech` → `audio/speech`. */
export function familyOf(wirePath: string): string {
  const segs = wirePath.split('/').filter(Boolean);
  if (/^v\d+$/.test(segs[0] ?? '')) segs.shift();
  const [first = '', second] = segs;
  return NAMESPACES.has(first) && second && !second.startsWith('{') ? `${first}/${second}` : first;
}

function serverBasePath(doc: Json): string {
  const url = doc.servers?.[0]?.url;
  if (typeof url !== 'string') return '';
  try {
    return new URL(url, 'http://relative.invalid').pathname.replace(/\/+$/, '');
  } catch {
    return '';
  }
}

/** Every operation of a spec on its wire path, minus `?` variants and the relay's own (`x-relay.kind: relay`). */
function operations(doc: Json): Operation[] {
  const base = serverBasePath(doc);
  const out: Operation[] = [];
  for (const [rawPath, rawItem] of Object.entries<any>(doc.paths ?? {})) {
    if (rawPath.includes('?')) continue; // SDK variant (e.g. ?beta=true) of its base path: see the header.
    const item = deref(doc, rawItem).node;
    for (const method of METHODS) {
      const op = item[method];
      if (!op || op['x-relay']?.kind === 'relay' || op['x-relay']?.kind === 'websocket') continue;
      const path = base + rawPath;
      const key = `${method.toUpperCase()} ${path.replace(/\{[^}]*\}/g, '{}')}`;
      out.push({ method: method.toUpperCase(), path, operationId: op.operationId ?? '', key, family: familyOf(path), op, item });
    }
  }
  return out;
}

const ref = (o: Operation): OperationRef => ({ method: o.method, path: o.path, operationId: o.operationId });

function requestContent(doc: Json, o: Operation): Json {
  return deref(doc, o.op.requestBody).node.content ?? {};
}

function successContentTypes(doc: Json, o: Operation): string[] {
  const types = new Set<string>();
  for (const [status, response] of Object.entries(o.op.responses ?? {})) {
    if (!/^2/.test(status)) continue;
    Object.keys(deref(doc, response).node.content ?? {}).forEach((t) => types.add(t));
  }
  return [...types].sort();
}

/** Path-level and operation-level query parameters by name (the operation's win). */
function queryParams(doc: Json, o: Operation): Map<string, Json> {
  const params = new Map<string, Json>();
  for (const p of [...(o.item.parameters ?? []), ...(o.op.parameters ?? [])]) {
    const param = deref(doc, p).node;
    if (param.in === 'query' && param.name) params.set(param.name, param);
  }
  return params;
}

function enumChange(doc: { relay: Json; official: Json }, relaySchema: any, officialSchema: any) {
  const relayValues = enumValues(doc.relay, relaySchema);
  if (!relayValues) return undefined; // the relay does not constrain this field: nothing to keep in step
  const officialValues = enumValues(doc.official, officialSchema);
  if (!officialValues) return undefined; // the official spec no longer constrains it: nothing the relay rejects
  const added = [...officialValues].filter((v) => !relayValues.has(v));
  const removed = [...relayValues].filter((v) => !officialValues.has(v));
  return added.length || removed.length ? { added, removed } : undefined;
}

// -------------------------------------------------------------------------------------------- report

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The drift between the relay's spec and an official OpenAI spec (both parsed documents). */
export function specDrift(relaySpec: Json, officialSpec: Json): DriftReport {
  const docs = { relay: relaySpec, official: officialSpec };
  const relayOps = operations(relaySpec);
  const officialOps = operations(officialSpec);
  const families: Record<string, FamilyDrift> = {};
  for (const f of [...new Set(relayOps.map((o) => o.family))].sort()) {
    families[f] = { missingOperations: [], removedOperations: [], contentTypeChanges: [], newRequiredFields: [], enumChanges: [] };
  }
  const relayByKey = new Map(relayOps.map((o) => [o.key, o]));
  const officialByKey = new Map(officialOps.map((o) => [o.key, o]));

  for (const o of officialOps) {
    if (families[o.family] && !relayByKey.has(o.key)) families[o.family].missingOperations.push(ref(o));
  }
  for (const r of relayOps) {
    const drift = families[r.family];
    const o = officialByKey.get(r.key);
    if (!o) {
      drift.removedOperations.push(ref(r));
      continue;
    }
    const relayBody = requestContent(relaySpec, r);
    const officialBody = requestContent(officialSpec, o);
    const requestTypes = { relay: Object.keys(relayBody).sort(), official: Object.keys(officialBody).sort() };
    if (!sameList(requestTypes.relay, requestTypes.official)) drift.contentTypeChanges.push({ ...ref(r), where: 'request', ...requestTypes });
    // An official success response without content documents no body at all: nothing to compare against.
    const responseTypes = { relay: successContentTypes(relaySpec, r), official: successContentTypes(officialSpec, o) };
    if (responseTypes.official.length && !sameList(responseTypes.relay, responseTypes.official)) {
      drift.contentTypeChanges.push({ ...ref(r), where: 'response', ...responseTypes });
    }

    // Body fields, per content type both sides accept (a type only one side has is a content type change above).
    for (const [contentType, media] of Object.entries<any>(officialBody)) {
      if (!relayBody[contentType]) continue;
      const official = objectShape(officialSpec, media.schema);
      const relay = objectShape(relaySpec, relayBody[contentType].schema);
      for (const field of [...official.required].sort()) {
        if (!relay.required.has(field)) drift.newRequiredFields.push({ ...ref(r), contentType, field });
      }
      for (const [name, schema] of Object.entries(relay.properties)) {
        const change = enumChange(docs, schema, official.properties[name]);
        if (change) drift.enumChanges.push({ ...ref(r), location: 'body', name, contentType, ...change });
      }
    }
    const officialParams = queryParams(officialSpec, o);
    for (const [name, param] of queryParams(relaySpec, r)) {
      const change = enumChange(docs, param.schema, officialParams.get(name)?.schema);
      if (change) drift.enumChanges.push({ ...ref(r), location: 'query', name, ...change });
    }
  }

  const count = (kind: DriftKind) => Object.values(families).reduce((n, f) => n + f[kind].length, 0);
  const summary = Object.fromEntries(KINDS.map((kind) => [kind, count(kind)])) as DriftReport['summary'];
  summary.families = Object.keys(families).length;
  summary.total = KINDS.reduce((n, kind) => n + summary[kind], 0);
  return { summary, families };
}

// ----------------------------------------------------------------------------------------------- CLI

/** Reads a spec as JSON (`.json`, or text starting with `{`) or YAML; throws on unreadable or non-OpenAPI input. */
export function loadSpec(file: string): Json {
  const text = readFileSync(file, 'utf8');
  let doc: any;
  try {
    doc = extname(file) === '.json' || text.trimStart().startsWith('{') ? JSON.parse(text) : parse(text);
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!doc || typeof doc !== 'object' || typeof doc.paths !== 'object' || doc.paths === null) {
    throw new Error(`${file} is not an OpenAPI document (no paths)`);
  }
  return doc;
}

const show = (values: EnumValue[]) => values.map((v) => JSON.stringify(v)).join(', ');
const opLabel = (o: OperationRef) => `${o.method} ${o.path} (${o.operationId || 'no operationId'})`;

export function formatReport(report: DriftReport): string {
  const lines: string[] = [];
  for (const [family, d] of Object.entries(report.families)) {
    if (KINDS.every((k) => d[k].length === 0)) continue;
    lines.push(`${family}`);
    for (const o of d.missingOperations) lines.push(`  + missing    ${opLabel(o)}`);
    for (const o of d.removedOperations) lines.push(`  - removed    ${opLabel(o)}`);
    for (const c of d.contentTypeChanges) {
      lines.push(`  ~ ${c.where.padEnd(10)} ${opLabel(c)}: relay [${c.relay.join(', ')}], official [${c.official.join(', ')}]`);
    }
    for (const f of d.newRequiredFields) lines.push(`  ! required   ${opLabel(f)} ${f.contentType}: ${f.field}`);
    for (const e of d.enumChanges) {
      const where = e.location === 'query' ? `query ${e.name}` : `body ${e.name} (${e.contentType})`;
      const parts = [e.added.length && `new ${show(e.added)}`, e.removed.length && `gone ${show(e.removed)}`].filter(Boolean);
      lines.push(`  ~ enum       ${opLabel(e)} ${where}: ${parts.join('; ')}`);
    }
  }
  const s = report.summary;
  lines.push(
    `${s.total ? 'Drift' : 'No drift'} across ${s.families} families: ${s.missingOperations} missing, ${s.removedOperations} removed, ` +
      `${s.contentTypeChanges} content type changes, ${s.newRequiredFields} new required fields, ${s.enumChanges} enum changes.`,
  );
  return lines.join('\n');
}

const USAGE = 'usage: spec-drift <official-spec.yaml|json> [--relay <relay-spec.yaml>] [--json]';

export function main(argv: string[]): number {
  let official: string | undefined;
  let relay = join(ROOT, 'schemas/openapi.yaml');
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--relay' && argv[i + 1]) relay = argv[++i];
    else if (arg.startsWith('--relay=')) relay = arg.slice('--relay='.length);
    else if (!arg.startsWith('-') && official === undefined) official = arg;
    else {
      process.stderr.write(`spec-drift: unexpected argument ${JSON.stringify(arg)}\n${USAGE}\n`);
      return 2;
    }
  }
  if (!official) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  // Under `npm run`, the cwd is the package root; resolve relative paths from where npm was invoked.
  const cwd = process.env.npm_lifecycle_event === 'spec:drift' ? (process.env.INIT_CWD ?? process.cwd()) : process.cwd();
  let report: DriftReport;
  try {
    report = specDrift(loadSpec(resolve(cwd, relay)), loadSpec(resolve(cwd, official)));
  } catch (err) {
    process.stderr.write(`spec-drift: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
  return report.summary.total ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
