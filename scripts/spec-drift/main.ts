/**
 * `npm run spec:drift -- <official-openapi.yaml|json> [--relay schemas/openapi.yaml] [--json] [--all]`
 *
 * Compares the relay's spec with a (newer) official OpenAI spec and lists, per family the relay serves:
 *   1. missingOperations    official operations of a served family that the relay lacks
 *   2. removedOperations    relay operations the official spec no longer has
 *   3. contentTypeChanges   request content types, and success (2xx) response content types, that differ
 *   4. newRequiredFields    request body fields the official schema requires and the relay's does not
 *   5. enumChanges          official enum values missing from, or dropped since, an enum the relay declares
 *                           (top-level request body properties and query parameters)
 * A difference kept on purpose is acknowledged in the relay's spec (`x-relay.acknowledged`, with the reason;
 * a missing operation at the document's root): it is listed apart and does not fail the report. A mark that
 * covers nothing any more is stale and does fail it (the mark should go). Operations OpenAI shut down
 * (`x-relay.retired`) answer 410 and are not compared. The report ends with one line counting the official
 * operations in families the relay does not serve, by family; `--all` lists them.
 *
 * Exit 0: no new drift; 1: new drift or a stale acknowledgement; 2: usage, parse or mark error (on stderr).
 *
 * Scope rule (families): a family is the first path segment after `/v1` (`files`, `chat`, `vector_stores`),
 * except under the NAMESPACES of compare.ts, where OpenAI hosts unrelated products side by side
 * (audio/voices next to audio/speech, realtime/calls next to realtime/sessions): there it is the first two
 * segments. The served families are those of the relay's own pass-through operations, so adding a family to
 * schemas/openapi.yaml widens the report by itself. Operations with `x-relay.kind: relay` are the relay's
 * own (e.g. POST /v1/proxy) and are ignored, as are WebSocket endpoints (`x-relay.kind: websocket`). Official paths containing `?` (e.g. `/responses?beta=true`)
 * are SDK variants of their base path, which is on the wire the same route and is compared on its own.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { specDrift } from './compare.ts';
import { formatReport } from './format.ts';
import type { DriftReport } from './report.ts';
import type { Json } from './schema.ts';

export { familyOf, specDrift } from './compare.ts';
export { formatReport } from './format.ts';
export type * from './report.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

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

const USAGE = 'usage: spec-drift <official-spec.yaml|json> [--relay <relay-spec.yaml>] [--json] [--all]';

export function main(argv: string[]): number {
  let official: string | undefined;
  let relay = join(ROOT, 'schemas/openapi.yaml');
  let json = false;
  let all = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--all') all = true;
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
  process.stdout.write(`${json ? JSON.stringify(report, null, 2) : formatReport(report, { all })}\n`);
  return report.summary.total || report.summary.stale ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
