/**
 * Just enough of JSON Schema to compare two OpenAPI documents: `$ref`s followed, the required fields
 * and properties of an object schema, the enum values a schema allows.
 */

export type Json = Record<string, any>;
export type EnumValue = string | number | boolean | null;

/** Follows `$ref`s (`#/...` JSON pointers within `doc`); a ref already in `seen` (a cycle) yields `{}`. */
export function deref(doc: Json, node: any, seen: ReadonlySet<string> = new Set()): { node: any; seen: ReadonlySet<string> } {
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
export function objectShape(doc: Json, schema: any, seen?: ReadonlySet<string>): { required: Set<string>; properties: Json } {
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
export function enumValues(doc: Json, schema: any, seen?: ReadonlySet<string>): Set<EnumValue> | undefined {
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
