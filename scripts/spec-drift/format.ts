import type { Acknowledgement } from '../generate/marks.ts';
import { KINDS, type ContentTypeChange, type DriftKind, type DriftReport, type EnumChange, type FamilyDrift, type OperationRef, type RequiredFieldChange } from './report.ts';
import type { EnumValue } from './schema.ts';

/** The drift report as text: new differences per family, what is kept on purpose, and what is not served. */

const show = (values: readonly EnumValue[] = []) => values.map((v) => JSON.stringify(v)).join(', ');
const opLabel = (o: OperationRef) => `${o.method} ${o.path} (${o.operationId || 'no operationId'})`;

function line(kind: DriftKind, d: OperationRef, mark: string): string {
  switch (kind) {
    case 'missingOperations':
      return `  ${mark} missing    ${opLabel(d)}`;
    case 'removedOperations':
      return `  ${mark} removed    ${opLabel(d)}`;
    case 'contentTypeChanges': {
      const c = d as ContentTypeChange;
      return `  ${mark} ${c.where.padEnd(10)} ${opLabel(c)}: relay [${c.relay.join(', ')}], official [${c.official.join(', ')}]`;
    }
    case 'newRequiredFields': {
      const f = d as RequiredFieldChange;
      return `  ${mark} required   ${opLabel(f)} ${f.contentType}: ${f.field}`;
    }
    case 'enumChanges': {
      const e = d as EnumChange;
      const where = e.location === 'query' ? `query ${e.name}` : `body ${e.name} (${e.contentType})`;
      const parts = [e.added.length && `new ${show(e.added)}`, e.removed.length && `gone ${show(e.removed)}`].filter(Boolean);
      return `  ${mark} enum       ${opLabel(e)} ${where}: ${parts.join('; ')}`;
    }
  }
}

/** New differences use the old markers: + missing, - removed, ~ changed, ! required. */
const NEW_MARK: Record<DriftKind, string> = { missingOperations: '+', removedOperations: '-', contentTypeChanges: '~', newRequiredFields: '!', enumChanges: '~' };

function markText(m: Acknowledgement): string {
  const pinned = { where: m.where, official: m.official, field: m.field, name: m.name, added: m.added, removed: m.removed, operation: m.operation };
  const fields = Object.entries(pinned)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? `[${show(v as EnumValue[])}]` : v}`);
  return [m.kind, ...fields].join(', ');
}

const byCount = (groups: Record<string, readonly unknown[]>) => Object.entries(groups).sort(([a, x], [b, y]) => y.length - x.length || a.localeCompare(b));

export function formatReport(report: DriftReport, options: { all?: boolean } = {}): string {
  const lines: string[] = [];
  for (const [family, d] of Object.entries<FamilyDrift>(report.families)) {
    if (KINDS.every((k) => d[k].length === 0)) continue;
    lines.push(family);
    for (const kind of KINDS) for (const difference of d[kind]) lines.push(line(kind, difference, NEW_MARK[kind]));
  }
  if (report.acknowledged.length) {
    lines.push('acknowledged (kept on purpose: x-relay.acknowledged)');
    for (const a of report.acknowledged) lines.push(line(a.kind, a.difference, '='), `      because ${a.reason}`);
  }
  if (report.stale.length) {
    lines.push('stale acknowledgements (the difference is gone: remove the mark)');
    for (const s of report.stale) lines.push(`  ? ${s.at}: ${markText(s.mark)}`);
  }
  const s = report.summary;
  if (report.retired.length) {
    lines.push(`retired: ${s.retired} operation${s.retired === 1 ? '' : 's'} OpenAI shut down answer 410 and ${s.retired === 1 ? 'is' : 'are'} not compared.`);
  }
  lines.push(
    `${s.total || s.stale ? 'Drift' : 'No new drift'} across ${s.families} served families: ${s.missingOperations} missing, ${s.removedOperations} removed, ` +
      `${s.contentTypeChanges} content type changes, ${s.newRequiredFields} new required fields, ${s.enumChanges} enum changes; ` +
      `${s.acknowledged} acknowledged, ${s.stale} stale acknowledgements.`,
  );
  const unserved = byCount(report.unserved);
  if (options.all) {
    for (const [family, ops] of unserved) {
      lines.push(`not served: ${family}`);
      for (const o of ops as OperationRef[]) lines.push(`  . ${opLabel(o)}`);
    }
  }
  lines.push(
    unserved.length
      ? `Not served: ${s.unserved} official operations in ${unserved.length} families: ${unserved.map(([f, ops]) => `${f} ${ops.length}`).join(', ')}${options.all ? '.' : ' (--all lists them).'}`
      : 'Not served: none; the relay serves every family of the official spec.',
  );
  return lines.join('\n');
}
