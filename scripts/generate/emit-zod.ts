import { HEADER } from './header.ts';
import { collectRefs, type Json } from './walk.ts';

/**
 * generated/schemas.ts: one zod schema per components.schemas entry, in dependency order.
 *
 * The zod emitter is ours on purpose: request objects must stay open to fields the relay does not know
 * (`additionalProperties: true` → `z.looseObject`), and the off-the-shelf zod generators drop that flag
 * whenever an object also lists properties, which would strip new OpenAI fields.
 */

const SCHEMA_REF_PREFIX = '#/components/schemas/';

const ident = (name: string) => name.replace(/[^A-Za-z0-9_$]/g, '_').replace(/^(\d)/, '_$1');
/** `FileObject` → `FileObjectSchema`: never shadows a global such as `Error`. */
export const schemaIdent = (name: string) => `${ident(name)}Schema`;
export const str = (value: unknown) => JSON.stringify(value);

function refName(ref: string): string {
  if (!ref.startsWith(SCHEMA_REF_PREFIX)) throw new Error(`Only component schema $refs are supported, got ${ref}`);
  return schemaIdent(ref.slice(SCHEMA_REF_PREFIX.length));
}

export function zodOf(schema: Json | undefined, depth = 0): string {
  if (!schema || typeof schema !== 'object') return 'z.unknown()';
  let code = zodCore(schema, depth);
  if (schema.description && depth > 0) code += `.describe(${str(schema.description)})`;
  return code;
}

function zodCore(s: Json, depth: number): string {
  if (s.$ref) return refName(s.$ref);
  if (s.const !== undefined) return `z.literal(${str(s.const)})`;
  if (s.enum) {
    const values = s.enum.filter((v: unknown) => v !== null);
    if (values.every((v: unknown) => typeof v === 'string')) return `z.enum(${str(values)})`;
    return `z.union([${values.map((v: unknown) => `z.literal(${str(v)})`).join(', ')}])`;
  }
  const union = s.anyOf ?? s.oneOf;
  if (union) {
    const members = union.filter((m: Json) => m.type !== 'null').map((m: Json) => zodOf(m, depth + 1));
    return members.length === 1 ? members[0] : `z.union([${members.join(', ')}])`;
  }
  if (s.allOf) {
    return s.allOf.map((m: Json) => zodOf(m, depth + 1)).reduce((a: string, b: string) => `z.intersection(${a}, ${b})`);
  }
  const type = Array.isArray(s.type) ? s.type.filter((t: string) => t !== 'null') : s.type;
  if (Array.isArray(type)) {
    return type.length === 1 ? zodCore({ ...s, type: type[0] }, depth) : `z.union([${type.map((t: string) => zodCore({ ...s, type: t }, depth)).join(', ')}])`;
  }
  switch (type) {
    case 'string':
      if (s.format === 'binary') return `z.string().openapi({ format: 'binary' })`;
      return `z.string()${bounds(s.minLength, s.maxLength)}`;
    case 'integer':
      return `z.int()${bounds(s.minimum, s.maximum)}`;
    case 'number':
      return `z.number()${bounds(s.minimum, s.maximum)}`;
    case 'boolean':
      return 'z.boolean()';
    case 'array':
      return `z.array(${zodOf(s.items, depth + 1)})${bounds(s.minItems, s.maxItems)}`;
    case 'object':
    case undefined: {
      if (type === undefined && !s.properties) return 'z.unknown()';
      const props = Object.entries<Json>(s.properties ?? {});
      const required = new Set<string>(s.required ?? []);
      if (props.length === 0 && s.additionalProperties && typeof s.additionalProperties === 'object') {
        return `z.record(z.string(), ${zodOf(s.additionalProperties, depth + 1)})`;
      }
      const fields = props
        .map(([key, value]) => `${str(key)}: ${zodOf(value, depth + 1)}${required.has(key) ? '' : '.optional()'}`)
        .join(', ');
      // Open objects keep unknown fields (OpenAI adds fields monthly); closed ones (the relay's own
      // envelopes) refuse them rather than silently dropping them.
      return `${s.additionalProperties === false ? 'z.strictObject' : 'z.looseObject'}({ ${fields} })`;
    }
    default:
      return 'z.unknown()';
  }
}

const bounds = (min: number | undefined, max: number | undefined) =>
  `${min !== undefined ? `.min(${min})` : ''}${max !== undefined ? `.max(${max})` : ''}`;

/**
 * A query parameter arrives as text (or, repeated, as a list of texts): numbers and booleans are
 * coerced from their text, and a lone value of an array parameter becomes a one-item list.
 */
export function zodOfQuery(schema: Json | undefined): string {
  const type = schema?.type;
  if (type === 'integer') return `z.coerce.number().int()${bounds(schema!.minimum, schema!.maximum)}`;
  if (type === 'number') return `z.coerce.number()${bounds(schema!.minimum, schema!.maximum)}`;
  if (type === 'boolean') return 'z.stringbool()';
  if (type === 'array') return `z.preprocess((v) => (Array.isArray(v) ? v : [v]), ${zodOf(schema, 1)})`;
  return zodOf(schema, 1);
}

export function emitSchemas(spec: Json): string {
  const schemas: Json = spec.components?.schemas ?? {};
  const byIdent = new Map(Object.entries(schemas).map(([name, s]) => [schemaIdent(name), s as Json]));
  const specName = new Map(Object.keys(schemas).map((name) => [schemaIdent(name), name]));
  const ordered: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`Circular $ref: ${[...trail, name].join(' → ')}`);
    if (!byIdent.has(name)) throw new Error(`$ref to missing schema ${name}`);
    state.set(name, 'visiting');
    for (const { ref } of collectRefs(byIdent.get(name), '')) visit(refName(ref), [...trail, name]);
    state.set(name, 'done');
    ordered.push(name);
  };
  for (const name of byIdent.keys()) visit(name, []);
  const lines = ordered.map((name) => `export const ${name} = ${zodOf(byIdent.get(name), 0)}.openapi(${str(specName.get(name))});`);
  return `${HEADER}import { z } from '@hono/zod-openapi';\n\n${lines.join('\n\n')}\n`;
}
