/**
 * `npm run lint:action`: checks the GPT Action schema against every rule of gpt-actions.md.
 *
 *   node scripts/lint-action.ts                      the schema the relay serves, built from schemas/openapi.yaml
 *                                                    exactly as the server does (server https://relay.example.com)
 *   node scripts/lint-action.ts --spec <contract>    the same, from another contract file
 *   node scripts/lint-action.ts --url <relay URL>    fetch a running relay's /openapi.json (or the given .json/.yaml URL)
 *   node scripts/lint-action.ts --file <document>    an already built action schema (JSON or YAML)
 *
 * Prints `<pointer>  <rule>: <message>` per violation and exits 1, or one OK line and exits 0.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { ActionSchemaError, createDocumentCache, isObj, loadContract } from '../src/actions/action-schema.ts';
import { lintActionSchema } from '../src/actions/lint-action.ts';

const DEFAULT_SERVER_URL = 'https://relay.example.com';

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
  } else {
    const serverUrl = values['server-url'] ?? DEFAULT_SERVER_URL;
    try {
      // The server's own path: the document cache builds with buildActionSchema and swaps in the server URL.
      const contract = values.spec ? loadContract(values.spec) : loadContract();
      doc = createDocumentCache(contract).action(serverUrl).doc;
    } catch (err) {
      if (err instanceof ActionSchemaError) {
        for (const problem of err.problems) console.log(`(build)  build: ${problem}`);
        return 1;
      }
      throw err;
    }
    source = `${values.spec ?? 'schemas/openapi.yaml'} served at ${serverUrl}`;
  }

  const violations = lintActionSchema(doc);
  for (const v of violations) console.log(`${v.pointer || '(document)'}  ${v.rule}: ${v.message}`);
  if (violations.length) {
    console.log(`${violations.length} violation${violations.length === 1 ? '' : 's'} of the GPT Action rules in ${source}`);
    return 1;
  }
  let operations = 0;
  for (const item of Object.values(isObj(doc) && isObj(doc.paths) ? doc.paths : {})) {
    operations += Object.keys(isObj(item) ? item : {}).filter((k) => ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(k)).length;
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
