import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { familyOf, formatReport, loadSpec, main, specDrift, type DriftReport } from '../scripts/spec-drift/main.ts';

/**
 * scripts/spec-drift/ against the small specs in test/fixtures/drift/: relay.yaml (files, models,
 * audio/speech, and the relay's own POST /v1/proxy), relay-acknowledged.yaml (the same with every
 * difference from official-drift.yaml acknowledged), official-same.yaml (no relevant drift, but refs,
 * allOf/anyOf, cycles, a ?beta=true variant and families the relay does not serve), official-drift.yaml
 * (one drift of each kind) and official-drift.json (the same document as JSON).
 */

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/drift/${name}`, import.meta.url));
const SCRIPT = fileURLToPath(new URL('../scripts/spec-drift/main.ts', import.meta.url));
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

/** The script as a program: `node scripts/spec-drift/main.ts ...args`. */
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
      acknowledged: 0,
      stale: 0,
      retired: 0,
      unserved: 4,
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

  test('families the relay does not serve are never drift, only counted; adding a family to the relay spec widens the report', () => {
    const { unserved, ...rest } = drift;
    const all = JSON.stringify(rest);
    for (const outside of ['fine_tuning', 'organization', 'audio/voices', 'realtime', 'beta']) expect(all).not.toContain(outside);
    expect(Object.keys(unserved)).toEqual(['audio/voices', 'fine_tuning']);

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

describe('acknowledged differences, retirements and what is not served', () => {
  const acknowledged = loadSpec(fixture('relay-acknowledged.yaml'));
  const official = loadSpec(fixture('official-drift.yaml'));

  test('every difference acknowledged: no new drift, each listed apart with its reason', () => {
    const report = specDrift(acknowledged, official);
    expect(report.summary).toMatchObject({ total: 0, acknowledged: 8, stale: 0 });
    expect(report.acknowledged.map((a) => `${a.kind} ${a.difference.operationId}`)).toEqual([
      'missingOperations deleteFile',
      'enumChanges listFiles',
      'enumChanges createFile',
      'contentTypeChanges downloadFile',
      'removedOperations listModels',
      'contentTypeChanges createSpeech',
      'newRequiredFields createSpeech',
      'enumChanges createSpeech',
    ]);
    expect(report.acknowledged[3].reason).toMatch(/file's bytes/);
  });

  test('a mark pins its difference: a further change on the same field is new drift, and the mark turns stale', () => {
    const changed = structuredClone(official);
    changed.paths['/files'].get.parameters[0].schema.enum.push('size');
    const report = specDrift(acknowledged, changed);
    expect(report.families.files.enumChanges).toEqual([
      { method: 'GET', path: '/v1/files', operationId: 'listFiles', location: 'query', name: 'order', added: ['relevance', 'size'], removed: [] },
    ]);
    expect(report.stale).toEqual([{ at: 'GET /v1/files (listFiles)', mark: expect.objectContaining({ kind: 'enum', name: 'order' }) }]);
    expect(report.summary).toMatchObject({ total: 1, acknowledged: 7, stale: 1 });
  });

  test('a mark whose difference is gone is stale (the report fails until it is removed)', () => {
    const same = loadSpec(fixture('official-same.yaml'));
    const report = specDrift(acknowledged, same);
    expect(report.summary.total).toBe(0);
    expect(report.stale.map((s) => `${s.at}: ${s.mark.kind}`)).toEqual([
      'document: missing',
      'GET /v1/files (listFiles): enum',
      'POST /v1/files (createFile): enum',
      'GET /v1/files/{file_id}/content (downloadFile): content-type',
      'GET /v1/models (listModels): removed',
      'POST /v1/audio/speech (createSpeech): content-type',
      'POST /v1/audio/speech (createSpeech): required',
      'POST /v1/audio/speech (createSpeech): enum',
    ]);
  });

  test('a malformed mark is an error, not a silent pass', () => {
    const broken = structuredClone(acknowledged);
    broken.paths['/v1/models'].get['x-relay'].acknowledged = [{ kind: 'removed' }];
    expect(() => specDrift(broken, official)).toThrow(/reason must say why/);
    broken.paths['/v1/models'].get['x-relay'].acknowledged = [{ kind: 'missing', operation: 'GET /v1/x', reason: 'a reason long enough' }];
    expect(() => specDrift(broken, official)).toThrow(/missing operation is acknowledged at the document level/);
  });

  test('a retired operation is not compared (neither removed nor changed) and is counted', () => {
    const retired = structuredClone(relay);
    retired.paths['/v1/models'].get['x-relay'].retired = { date: '2026-09-24', source: 'https://example.com/deprecations', replacement: null, product: 'the model list' };
    retired.paths['/v1/files/{file_id}/content'].get['x-relay'].retired = { date: '2026-09-24', source: 'https://example.com/deprecations', replacement: null, product: 'downloads' };
    const report = specDrift(retired, official);
    expect(report.retired.map((o) => o.operationId)).toEqual(['downloadFile', 'listModels']);
    expect(report.families.models.removedOperations).toEqual([]);
    expect(report.families.files.contentTypeChanges).toEqual([]);
    expect(report.summary).toMatchObject({ retired: 2, total: 6 });
  });

  test('the text ends with one line counting what is not served, by family; --all lists the operations', () => {
    const text = formatReport(specDrift(relay, official));
    expect(text.split('\n').at(-1)).toBe('Not served: 2 official operations in 2 families: audio/voices 1, fine_tuning 1 (--all lists them).');
    const all = formatReport(specDrift(relay, official), { all: true });
    expect(all).toContain('not served: fine_tuning\n  . POST /v1/fine_tuning/jobs (createFineTuningJob)');
    expect(all.split('\n').at(-1)).toBe('Not served: 2 official operations in 2 families: audio/voices 1, fine_tuning 1.');
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
    expect(stdout).toMatch(/^No new drift across 3 served families/);
    expect(code).toBe(0);
  });

  test('drift: exit 1; --json prints the report as one JSON object', async () => {
    const { code, stdout } = await run(fixture('official-drift.json'), '--relay', fixture('relay.yaml'), '--json');
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as DriftReport;
    expect(report).toEqual(drift);
    expect(report.summary.total).toBe(8);
  });

  test('every difference acknowledged: exit 0, the acknowledged ones listed with their reasons', async () => {
    const { code, stdout } = await run(fixture('official-drift.yaml'), '--relay', fixture('relay-acknowledged.yaml'));
    expect(stdout).toContain('acknowledged (kept on purpose: x-relay.acknowledged)\n  = missing    DELETE /v1/files/{file_id} (deleteFile)\n      because Deleting files');
    expect(stdout).toMatch(/No new drift across 3 served families: .*; 8 acknowledged, 0 stale acknowledgements\.\nNot served: /);
    expect(code).toBe(0);
  });

  test('--all lists the operations of the families the relay does not serve', async () => {
    const { code, stdout } = await run(fixture('official-same.yaml'), '--relay', fixture('relay.yaml'), '--all');
    expect(stdout).toContain('not served: organization\n  . GET /v1/organization/users');
    expect(stdout.trimEnd().split('\n').at(-1)).toMatch(/^Not served: 4 official operations in 4 families: /);
    expect(code).toBe(0);
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
test.skipIf(!existsSync(REFERENCE))('against the official snapshot, schemas/openapi.yaml has no unacknowledged drift and serves the new families', () => {
  const report = specDrift(loadSpec(RELAY_SPEC), loadSpec(REFERENCE));
  expect(report.families).toHaveProperty('files');
  expect(report.summary).toMatchObject({ total: 0, stale: 0 });
  expect(report.summary.acknowledged).toBeGreaterThan(0);
  for (const family of ['chatkit', 'skills', 'realtime/calls', 'realtime/translations', 'audio/voices', 'audio/voice_consents']) {
    expect(report.families, family).toHaveProperty([family]);
    expect(report.unserved, family).not.toHaveProperty([family]);
  }
  expect(report.retired.map((o) => o.path)).toContain('/v1/videos');
}, 30_000);

test('the weekly check documented in docs/ci/spec-drift.yml runs this report, and README points to it', () => {
  const workflow = parse(readFileSync(fileURLToPath(new URL('../docs/ci/spec-drift.yml', import.meta.url)), 'utf8'));
  expect(workflow.on.schedule[0].cron).toMatch(/^\S+ \S+ \* \* [0-6]$/);
  const steps: { run?: string }[] = workflow.jobs.drift.steps;
  expect(steps.some((s) => /npm run --silent spec:drift -- "\$RUNNER_TEMP\/openai-openapi\.yaml"/.test(s.run ?? '') && /pipefail/.test(s.run ?? ''))).toBe(true);
  expect(steps.some((s) => s.run === 'npm ci --no-audit --no-fund')).toBe(true);
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
  expect(pkg.scripts['spec:drift']).toBe('node scripts/spec-drift/main.ts');
  expect(readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')).toContain('docs/ci/spec-drift.yml');
});
