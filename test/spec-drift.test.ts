import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { familyOf, loadSpec, main, specDrift, type DriftReport } from '../scripts/spec-drift.ts';

/**
 * scripts/spec-drift.ts against the small specs in test/fixtures/drift/: relay.yaml (files, models,
 * audio/speech, and the relay's own POST /v1/proxy), official-same.yaml (no relevant drift, but refs,
 * allOf/anyOf, cycles, a ?beta=true variant and out-of-scope families), official-drift.yaml (one drift of
 * each kind) and official-drift.json (the same document as JSON).
 */

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/drift/${name}`, import.meta.url));
const SCRIPT = fileURLToPath(new URL('../scripts/spec-drift.ts', import.meta.url));
const REFERENCE = fileURLToPath(new URL('../../shared/reference/openai-openapi/openapi.yaml', import.meta.url));
const RELAY_SPEC = fileURLToPath(new URL('../schemas/openapi.yaml', import.meta.url));

const relay = loadSpec(fixture('relay.yaml'));
const drift = specDrift(relay, loadSpec(fixture('official-drift.yaml')));

/** The CLI's `main(args)` in this process, its output captured (it is synchronous: nothing else writes meanwhile). */
async function run(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string) => ((out.stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((out.stderr += chunk), true)) as typeof process.stderr.write;
  try {
    return { code: main(args), ...out };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
}

/** The script as a program: `node scripts/spec-drift.ts ...args`. */
function spawnScript(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { timeout: 15_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject).on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('specDrift', () => {
  test('no relevant drift: refs, allOf/anyOf, circular refs and renamed path params are seen through', () => {
    const report = specDrift(relay, loadSpec(fixture('official-same.yaml')));
    expect(report.summary).toEqual({
      missingOperations: 0,
      removedOperations: 0,
      contentTypeChanges: 0,
      newRequiredFields: 0,
      enumChanges: 0,
      families: 3,
      total: 0,
    });
  });

  test('families come from the relay spec: first segment after /v1, two under audio/ and realtime/', () => {
    expect(Object.keys(drift.families)).toEqual(['audio/speech', 'files', 'models']);
    expect(familyOf('/v1/vector_stores/{id}/files')).toBe('vector_stores');
    expect(familyOf('/v1/chat/completions')).toBe('chat');
    expect(familyOf('/v1/audio/speech')).toBe('audio/speech');
    expect(familyOf('/v1/realtime/client_secrets')).toBe('realtime/client_secrets');
    expect(familyOf('/files')).toBe('files');
  });

  test('missing operation: method, /v1 path and the official operationId', () => {
    expect(drift.families.files.missingOperations).toEqual([{ method: 'DELETE', path: '/v1/files/{file_id}', operationId: 'deleteFile' }]);
    expect(drift.summary.missingOperations).toBe(1);
  });

  test('removed operation: a relay operation the official spec no longer has', () => {
    expect(drift.families.models.removedOperations).toEqual([{ method: 'GET', path: '/v1/models', operationId: 'listModels' }]);
    expect(drift.summary.removedOperations).toBe(1);
  });

  test('content type changes, of the request and of the success response', () => {
    expect(drift.families['audio/speech'].contentTypeChanges).toEqual([
      {
        method: 'POST',
        path: '/v1/audio/speech',
        operationId: 'createSpeech',
        where: 'request',
        relay: ['application/json'],
        official: ['application/json', 'multipart/form-data'],
      },
    ]);
    expect(drift.families.files.contentTypeChanges).toEqual([
      {
        method: 'GET',
        path: '/v1/files/{file_id}/content',
        operationId: 'downloadFile',
        where: 'response',
        relay: ['application/octet-stream'],
        official: ['application/json'],
      },
    ]);
  });

  test('new required field, found through allOf, per content type the relay also accepts', () => {
    // The new multipart body's required reference_audio is not listed: the content type change covers it.
    expect(drift.families['audio/speech'].newRequiredFields).toEqual([
      { method: 'POST', path: '/v1/audio/speech', operationId: 'createSpeech', contentType: 'application/json', field: 'instructions' },
    ]);
    expect(drift.summary.newRequiredFields).toBe(1);
  });

  test('new enum values, in a request body property and in a query parameter', () => {
    const files = drift.families.files.enumChanges;
    expect(files.find((e) => e.location === 'query')).toEqual({
      method: 'GET', path: '/v1/files', operationId: 'listFiles', location: 'query', name: 'order', added: ['relevance'], removed: [],
    });
    expect(files.find((e) => e.name === 'purpose')?.added).toEqual(['vision']);
    expect(drift.families['audio/speech'].enumChanges).toEqual([
      {
        method: 'POST', path: '/v1/audio/speech', operationId: 'createSpeech',
        location: 'body', name: 'response_format', contentType: 'application/json', added: ['opus'], removed: [],
      },
    ]);
  });

  test('removed enum values: values the relay has that the official spec dropped', () => {
    expect(drift.families.files.enumChanges.find((e) => e.name === 'purpose')).toEqual({
      method: 'POST', path: '/v1/files', operationId: 'createFile',
      location: 'body', name: 'purpose', contentType: 'multipart/form-data', added: ['vision'], removed: ['fine-tune'],
    });
    expect(drift.summary.enumChanges).toBe(3);
  });

  test('out-of-scope families are never reported; adding a family to the relay spec widens the report', () => {
    const all = JSON.stringify(drift);
    for (const outside of ['fine_tuning', 'organization', 'audio/voices', 'realtime', 'beta']) expect(all).not.toContain(outside);

    const wider = structuredClone(relay);
    wider.paths['/v1/fine_tuning/jobs/{job_id}'] = {
      get: { operationId: 'retrieveJob', responses: { '200': { description: 'OK', content: { 'application/json': { schema: {} } } } } },
    };
    const report = specDrift(wider, loadSpec(fixture('official-drift.yaml')));
    expect(report.families.fine_tuning.missingOperations).toEqual([{ method: 'POST', path: '/v1/fine_tuning/jobs', operationId: 'createFineTuningJob' }]);
    expect(report.families.fine_tuning.removedOperations.map((o) => o.operationId)).toEqual(['retrieveJob']);
  });

  test('relay-kind operations are ignored: POST /v1/proxy is neither removed nor a family', () => {
    expect(drift.families).not.toHaveProperty('proxy');
    expect(JSON.stringify(drift)).not.toContain('relayProxy');
  });

  test('JSON input gives the same report as YAML', () => {
    expect(specDrift(relay, loadSpec(fixture('official-drift.json')))).toEqual(drift);
  });
});

describe('spec-drift CLI', () => {
  test('run as a program, its exit code and output are main\'s: 1 and the JSON report on drift', async () => {
    const { code, stdout } = await spawnScript(fixture('official-drift.json'), '--relay', fixture('relay.yaml'), '--json');
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toEqual(drift);
  });

  test('no drift: exit 0 and a one-line text summary', async () => {
    const { code, stdout } = await run(fixture('official-same.yaml'), '--relay', fixture('relay.yaml'));
    expect(stdout).toMatch(/^No drift across 3 families/);
    expect(code).toBe(0);
  });

  test('drift: exit 1; --json prints the report as one JSON object', async () => {
    const { code, stdout } = await run(fixture('official-drift.json'), '--relay', fixture('relay.yaml'), '--json');
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as DriftReport;
    expect(report).toEqual(drift);
    expect(report.summary.total).toBe(8);
  });

  test('drift as text: grouped per family', async () => {
    const { code, stdout } = await run(fixture('official-drift.yaml'), '--relay', fixture('relay.yaml'));
    expect(code).toBe(1);
    expect(stdout).toContain('files\n  + missing    DELETE /v1/files/{file_id} (deleteFile)');
    expect(stdout).toContain('models\n  - removed    GET /v1/models (listModels)');
  });

  test('usage and parse errors: exit 2 with a message on stderr', async () => {
    const [missing, broken, noArgs] = await Promise.all([
      run(fixture('does-not-exist.yaml'), '--relay', fixture('relay.yaml')),
      run(fixture('broken.yaml'), '--relay', fixture('relay.yaml')),
      run(),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does-not-exist\.yaml/);
    expect(missing.stdout).toBe('');

    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/broken\.yaml/);

    expect(noArgs.code).toBe(2);
    expect(noArgs.stderr).toMatch(/usage/);
  });
});

// Reference data only (../shared is not part of the repository): never required for CI.
test.skipIf(!existsSync(REFERENCE))('the real OpenAI spec parses and yields a report against schemas/openapi.yaml', () => {
  const report = specDrift(loadSpec(RELAY_SPEC), loadSpec(REFERENCE));
  expect(report.summary.families).toBeGreaterThan(0);
  expect(Object.keys(report.families)).toContain('files');
}, 30_000);
