import { acknowledgementsOf, type Acknowledgement } from '../generate/marks.ts';
import { covers, operationKey } from './acknowledge.ts';
import { KINDS, type ContentTypeChange, type DriftKind, type DriftReport, type EnumChange, type FamilyDrift, type OperationRef, type RequiredFieldChange, type StaleAcknowledgement } from './report.ts';
import { deref, enumValues, objectShape, type Json } from './schema.ts';

/**
 * The comparison itself: both specs reduced to wire paths (server URL path + path, so the official
 * `/files` is `/v1/files`), operations matched on method + path with `{param}` names ignored, and every
 * difference checked against the relay's acknowledgements.
 */

export const NAMESPACES = new Set(['audio', 'realtime']);
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

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

/**
 * Every operation of a spec on its wire path, minus `?` variants, the relay's own (`x-relay.kind: relay`) and
 * its WebSocket endpoints (`x-relay.kind: websocket`: OpenAPI, so the official spec, has no WebSocket operations).
 */
function operations(doc: Json): Operation[] {
  const base = serverBasePath(doc);
  const out: Operation[] = [];
  for (const [rawPath, rawItem] of Object.entries<any>(doc.paths ?? {})) {
    if (rawPath.includes('?')) continue; // SDK variant (e.g. ?beta=true) of its base path: see main.ts.
    const item = deref(doc, rawItem).node;
    for (const method of METHODS) {
      const op = item[method];
      if (!op || op['x-relay']?.kind === 'relay' || op['x-relay']?.kind === 'websocket') continue;
      const path = base + rawPath;
      out.push({ method: method.toUpperCase(), path, operationId: op.operationId ?? '', key: operationKey(method, path), family: familyOf(path), op, item });
    }
  }
  return out;
}

const ref = (o: Operation): OperationRef => ({ method: o.method, path: o.path, operationId: o.operationId });
const label = (o: OperationRef) => `${o.method} ${o.path} (${o.operationId || 'no operationId'})`;
const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

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

/** The differences of one relay operation from its official twin, by kind (none when it has no twin: removed). */
type Difference = ContentTypeChange | RequiredFieldChange | EnumChange;

function operationDifferences(docs: { relay: Json; official: Json }, r: Operation, o: Operation): [DriftKind, Difference][] {
  const out: [DriftKind, Difference][] = [];
  const relayBody = requestContent(docs.relay, r);
  const officialBody = requestContent(docs.official, o);
  const requestTypes = { relay: Object.keys(relayBody).sort(), official: Object.keys(officialBody).sort() };
  if (!sameList(requestTypes.relay, requestTypes.official)) out.push(['contentTypeChanges', { ...ref(r), where: 'request', ...requestTypes }]);
  // An official success response without content documents no body at all: nothing to compare against.
  const responseTypes = { relay: successContentTypes(docs.relay, r), official: successContentTypes(docs.official, o) };
  if (responseTypes.official.length && !sameList(responseTypes.relay, responseTypes.official)) {
    out.push(['contentTypeChanges', { ...ref(r), where: 'response', ...responseTypes }]);
  }
  // Body fields, per content type both sides accept (a type only one side has is a content type change above).
  for (const [contentType, media] of Object.entries<any>(officialBody)) {
    if (!relayBody[contentType]) continue;
    const official = objectShape(docs.official, media.schema);
    const relay = objectShape(docs.relay, relayBody[contentType].schema);
    for (const field of [...official.required].sort()) {
      if (!relay.required.has(field)) out.push(['newRequiredFields', { ...ref(r), contentType, field }]);
    }
    for (const [name, schema] of Object.entries(relay.properties)) {
      const change = enumChange(docs, schema, official.properties[name]);
      if (change) out.push(['enumChanges', { ...ref(r), location: 'body', name, contentType, ...change }]);
    }
  }
  const officialParams = queryParams(docs.official, o);
  for (const [name, param] of queryParams(docs.relay, r)) {
    const change = enumChange(docs, param.schema, officialParams.get(name)?.schema);
    if (change) out.push(['enumChanges', { ...ref(r), location: 'query', name, ...change }]);
  }
  return out;
}

/** The drift between the relay's spec and an official OpenAI spec (both parsed documents). */
export function specDrift(relaySpec: Json, officialSpec: Json): DriftReport {
  const docs = { relay: relaySpec, official: officialSpec };
  const problems: string[] = [];
  const relayOps = operations(relaySpec);
  const officialOps = operations(officialSpec);
  const families: Record<string, FamilyDrift> = {};
  for (const f of [...new Set(relayOps.map((o) => o.family))].sort()) {
    families[f] = { missingOperations: [], removedOperations: [], contentTypeChanges: [], newRequiredFields: [], enumChanges: [] };
  }
  const report: DriftReport = { summary: {} as DriftReport['summary'], families, acknowledged: [], stale: [], retired: [], unserved: {} };
  const relayByKey = new Map(relayOps.map((o) => [o.key, o]));
  const officialByKey = new Map(officialOps.map((o) => [o.key, o]));

  /** Files a difference as acknowledged (by the first mark that covers it) or as new drift. */
  const file = (family: string, kind: DriftKind, difference: OperationRef, marks: Acknowledgement[], used: Set<Acknowledgement>) => {
    const mark = marks.find((m) => covers(m, kind, difference));
    if (mark) {
      used.add(mark);
      report.acknowledged.push({ family, kind, difference, reason: mark.reason });
    } else {
      (families[family][kind] as OperationRef[]).push(difference);
    }
  };
  const staleOf = (at: string, marks: Acknowledgement[], used: Set<Acknowledgement>): StaleAcknowledgement[] =>
    marks.filter((m) => !used.has(m)).map((mark) => ({ at, mark }));

  const documentMarks = acknowledgementsOf(relaySpec['x-relay']?.acknowledged, 'document', 'document', problems);
  const usedDocumentMarks = new Set<Acknowledgement>();
  for (const o of officialOps) {
    if (!families[o.family]) (report.unserved[o.family] ??= []).push(ref(o));
    else if (!relayByKey.has(o.key)) file(o.family, 'missingOperations', ref(o), documentMarks, usedDocumentMarks);
  }
  report.stale.push(...staleOf('document', documentMarks, usedDocumentMarks));

  for (const r of relayOps) {
    const relay = r.op['x-relay'] ?? {};
    if (relay.retired) {
      // OpenAI shut it down: the relay answers 410, so how the official spec still describes it does not matter.
      report.retired.push(ref(r));
      continue;
    }
    const marks = acknowledgementsOf(relay.acknowledged, 'operation', label(r), problems);
    const used = new Set<Acknowledgement>();
    const o = officialByKey.get(r.key);
    if (!o) file(r.family, 'removedOperations', ref(r), marks, used);
    else for (const [kind, difference] of operationDifferences(docs, r, o)) file(r.family, kind, difference, marks, used);
    report.stale.push(...staleOf(label(r), marks, used));
  }
  if (problems.length) throw new Error(`the relay spec's acknowledgements are malformed:\n  - ${problems.join('\n  - ')}`);

  const count = (kind: DriftKind) => Object.values(families).reduce((n, f) => n + f[kind].length, 0);
  const summary = Object.fromEntries(KINDS.map((kind) => [kind, count(kind)])) as DriftReport['summary'];
  summary.families = Object.keys(families).length;
  summary.total = KINDS.reduce((n, kind) => n + summary[kind], 0);
  summary.acknowledged = report.acknowledged.length;
  summary.stale = report.stale.length;
  summary.retired = report.retired.length;
  summary.unserved = Object.values(report.unserved).reduce((n, ops) => n + ops.length, 0);
  report.unserved = Object.fromEntries(Object.entries(report.unserved).sort(([a], [b]) => a.localeCompare(b)));
  return { ...report, summary };
}
