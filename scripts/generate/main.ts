/**
 * `npm run generate`: schemas/openapi.yaml → generated/. The generator is the only reader of `x-relay`;
 * the relay reads only what it writes:
 *
 *   openapi-types.ts     types of every operation (openapi-typescript)
 *   upstream-client.ts   a typed openapi-fetch client for the calls the relay makes itself
 *   schemas.ts           zod schemas of components.schemas
 *   routes.ts            one @hono/zod-openapi route per operation + the relay's route table
 *   matcher.ts           the one operation matcher (method + path → operation, methods for a 405)
 *   websockets.ts        the WebSocket endpoints (GETs marked x-relay.kind websocket) and their matcher
 *   mcp-tools.ts         the MCP tool list and each tool's argument layout
 *   action-schema.json   the GPT Action schema, with a placeholder server URL
 *   openapi.full.json    the whole public contract (no x-relay), with the same placeholder
 *   documents.ts         the placeholder and the texts served beside the documents
 *   documented-secrets.ts  not from the spec: the example keys the docs print, which the relay refuses
 *
 * `npm run generate:check` writes nothing; it exits 1 when generated/ is not what the spec makes or when
 * the action schema breaks a GPT Action rule (scripts/lint-action).
 * Options: `--spec <file>` another spec, `--out <dir>` another output directory (tests use both).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lintServedActionSchema } from '../lint-action/served.ts';
import { emitDocuments } from './emit-documents.ts';
import { emitDocumentedSecrets } from './emit-documented-secrets.ts';
import { emitMatcher } from './emit-matcher.ts';
import { emitRoutes } from './emit-routes.ts';
import { emitTypes, UPSTREAM_CLIENT } from './emit-types.ts';
import { emitSchemas } from './emit-zod.ts';
import { buildTools, emitMcpTools } from './mcp-tools.ts';
import { listOperations, loadSpec, ROOT } from './spec.ts';
import { emitWebSockets } from './websockets.ts';

export const OUT_DIR = join(ROOT, 'generated');

/** Every file of generated/, by name, as `specPath` makes it. */
export async function generate(specPath?: string): Promise<Map<string, string>> {
  const spec = loadSpec(specPath);
  const ops = listOperations(spec);
  return new Map([
    ['openapi-types.ts', await emitTypes(spec)],
    ['upstream-client.ts', UPSTREAM_CLIENT],
    ['schemas.ts', emitSchemas(spec)],
    ['routes.ts', emitRoutes(spec, ops)],
    ['matcher.ts', emitMatcher(ops)],
    ['websockets.ts', emitWebSockets(spec)],
    ['mcp-tools.ts', emitMcpTools(buildTools(spec))],
    ...emitDocuments(spec),
    ['documented-secrets.ts', emitDocumentedSecrets(ROOT)],
  ]);
}

/** What is wrong with `outDir` for `files`: stale, missing or left-over files, and GPT Action lint violations. */
export function checkGenerated(outDir: string, files: Map<string, string>): string[] {
  const problems: string[] = [];
  let present: Set<string>;
  try {
    present = new Set(readdirSync(outDir));
  } catch {
    present = new Set();
  }
  for (const [name, content] of files) {
    if (!present.has(name)) problems.push(`generated/${name} is missing: run \`npm run generate\` and commit the result`);
    else if (readFileSync(join(outDir, name), 'utf8') !== content) problems.push(`generated/${name} is stale: run \`npm run generate\` and commit the result`);
  }
  for (const name of present) if (!files.has(name)) problems.push(`generated/${name} is not generated any more: delete it`);
  for (const v of lintServedActionSchema(files.get('action-schema.json')!)) {
    problems.push(`action schema ${v.pointer || '(document)'}  ${v.rule}: ${v.message}`);
  }
  return problems;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { check: { type: 'boolean' }, spec: { type: 'string' }, out: { type: 'string' } }, strict: true });
  const outDir = values.out ? resolve(values.out) : OUT_DIR;
  const files = await generate(values.spec);
  if (values.check) {
    const problems = checkGenerated(outDir, files);
    for (const problem of problems) console.error(problem);
    if (problems.length) return 1;
    console.log(`generated/ is fresh (${files.size} files) and the action schema passes every GPT Action rule.`);
    return 0;
  }
  mkdirSync(outDir, { recursive: true });
  for (const [name, content] of files) writeFileSync(join(outDir, name), content);
  console.log(`Wrote ${[...files.keys()].map((f) => `generated/${f}`).join(', ')}.`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
