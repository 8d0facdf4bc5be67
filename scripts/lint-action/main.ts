/**
 * `npm run lint:action`: checks the GPT Action schema against every GPT Action rule (LINT_RULES).
 *
 *   node scripts/lint-action/main.ts                      generated/action-schema.json as the relay serves it
 *                                                         (server https://relay.example.com, or --server-url)
 *   node scripts/lint-action/main.ts --spec <contract>    the action schema another spec makes
 *   node scripts/lint-action/main.ts --url <relay URL>    a running relay's /openapi.json (or the given .json/.yaml URL)
 *   node scripts/lint-action/main.ts --file <document>    an already built action schema (JSON or YAML)
 *
 * Prints `<pointer>  <rule>: <message>` per violation and exits 1, or one OK line and exits 0.
 * `npm run generate:check` runs the same lint on the schema the spec makes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { ActionSchemaError, buildActionSchema } from '../generate/action-schema.ts';
import { HTTP_METHODS, loadSpec, ROOT } from '../generate/spec.ts';
import { isObj } from '../generate/walk.ts';
import { lintActionSchema } from './lint.ts';
import { DEFAULT_SERVER_URL, servedActionSchema } from './served.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      file: { type: 'string' },
      spec: { type: 'string' },
      'server-url': { type: 'string' },
    },
    strict: true,
  });

  let doc: unknown;
  let source: string;
  const serverUrl = values['server-url'] ?? DEFAULT_SERVER_URL;
  if (values.url) {
    const url = new URL(values.url);
    if (!/\.(json|ya?ml)$/.test(url.pathname)) url.pathname = `${url.pathname.replace(/\/+$/, '')}/openapi.json`;
    const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
    if (!res.ok) {
      console.error(`GET ${url} answered ${res.status}`);
      return 1;
    }
    doc = parse(await res.text());
    source = url.href;
  } else if (values.file) {
    doc = parse(readFileSync(values.file, 'utf8'));
    source = values.file;
  } else if (values.spec) {
    try {
      doc = buildActionSchema(loadSpec(values.spec), { serverUrl });
    } catch (err) {
      if (err instanceof ActionSchemaError) {
        for (const problem of err.problems) console.log(`(build)  build: ${problem}`);
        return 1;
      }
      throw err;
    }
    source = `${values.spec} served at ${serverUrl}`;
  } else {
    doc = servedActionSchema(readFileSync(join(ROOT, 'generated/action-schema.json'), 'utf8'), serverUrl);
    source = `generated/action-schema.json served at ${serverUrl}`;
  }

  const violations = lintActionSchema(doc);
  for (const v of violations) console.log(`${v.pointer || '(document)'}  ${v.rule}: ${v.message}`);
  if (violations.length) {
    console.log(`${violations.length} violation${violations.length === 1 ? '' : 's'} of the GPT Action rules in ${source}`);
    return 1;
  }
  let operations = 0;
  for (const item of Object.values(isObj(doc) && isObj(doc.paths) ? doc.paths : {})) {
    operations += Object.keys(isObj(item) ? item : {}).filter((k) => (HTTP_METHODS as readonly string[]).includes(k)).length;
  }
  console.log(`OK: ${source} passes every GPT Action rule (${operations} operations)`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
