import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import { findDocumentedSecrets } from '../scripts/generate/emit-documented-secrets.ts';
import { ConfigError, loadConfig, normalizeUpstreamBase } from '../src/config.ts';

/** Start-up configuration: every mistake refused with a sentence a person can act on. */

const OPENAI = 'sk-config-test-key-0123456789abcdef';
const KEY_A = 'relay-config-key-aaaaaaaaaaaa';
const KEY_B = 'relay-config-key-bbbbbbbbbbbb';
const base = { OPENAI_API_KEY: OPENAI, RELAY_KEY: KEY_A };

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/\.\s*$|\)$|`$/); // whole sentences, not zod codes
    // The message lists every problem, so printing it alone is enough.
    for (const p of problems) expect((err as ConfigError).message).toContain(p);
    return problems;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('required settings', () => {
  test('no OPENAI_API_KEY: the message names it and says what to do', () => {
    const problems = problemsOf({ RELAY_KEY: KEY_A });
    const text = problems.join('\n');
    expect(text).toContain('OPENAI_API_KEY');
    expect(text).toMatch(/\bset\b/i);
  });

  test('an empty or blank OPENAI_API_KEY is refused the same way', () => {
    for (const value of ['', '   ']) {
      const text = problemsOf({ OPENAI_API_KEY: value, RELAY_KEY: KEY_A }).join('\n');
      expect(text).toContain('OPENAI_API_KEY');
    }
  });

  test('no RELAY_KEY: refused with a sentence that mentions RELAY_AUTH=off', () => {
    for (const relayKey of [undefined, '', ' , ,']) {
      const text = problemsOf({ OPENAI_API_KEY: OPENAI, RELAY_KEY: relayKey }).join('\n');
      expect(text).toContain('RELAY_KEY');
      expect(text).toContain('RELAY_AUTH=off');
    }
  });

  test('with RELAY_ADMIN_KEY, keys may all be made at /admin: no RELAY_KEY needed, and RATE_LIMITS may name labels of keys to come', () => {
    const admin = 'admin-config-key-0123456789';
    const config = loadConfig({ OPENAI_API_KEY: OPENAI, RELAY_ADMIN_KEY: admin, RATE_LIMITS: 'support-gpt=10/min' });
    expect(config.relayAuth).toBe(true);
    expect(config.relayKeys).toEqual([]);
    expect(config.ops.limits.get('support-gpt')).toEqual({ requestsPerMinute: 10 });
    expect(problemsOf({ ...base, RATE_LIMITS: 'support-gpt=10/min' }).join('\n')).toContain('no RELAY_KEY entry has that label');
    expect(problemsOf({ OPENAI_API_KEY: OPENAI }).join('\n')).toContain('RELAY_ADMIN_KEY and create keys at /admin');
  });

  test('RELAY_AUTH=off without RELAY_KEY is accepted, as an open relay', () => {
    const config = loadConfig({ OPENAI_API_KEY: OPENAI, RELAY_AUTH: 'off' });
    expect(config.relayAuth).toBe(false);
    expect(config.relayKeys).toEqual([]);
  });

  test('RELAY_AUTH defaults to on and takes only on/off', () => {
    expect(loadConfig(base).relayAuth).toBe(true);
    expect(loadConfig({ ...base, RELAY_AUTH: 'on' }).relayAuth).toBe(true);
    expect(problemsOf({ ...base, RELAY_AUTH: 'false' }).join('\n')).toContain('RELAY_AUTH');
  });
});

describe('relay keys', () => {
  test('a short relay key is refused with the minimum length', () => {
    const text = problemsOf({ OPENAI_API_KEY: OPENAI, RELAY_KEY: 'short' }).join('\n');
    expect(text).toContain('RELAY_KEY');
    expect(text).toMatch(/16/);
  });

  test('one short key among good ones is refused too', () => {
    problemsOf({ OPENAI_API_KEY: OPENAI, RELAY_KEY: `${KEY_A},tiny` });
  });

  test('a relay key equal to the OpenAI key is refused', () => {
    const text = problemsOf({ OPENAI_API_KEY: OPENAI, RELAY_KEY: `${KEY_A},${OPENAI}` }).join('\n');
    expect(text).toContain('OPENAI_API_KEY');
    expect(text).toContain('RELAY_KEY');
  });

  test('the refusal does not print the keys themselves', () => {
    try {
      loadConfig({ OPENAI_API_KEY: OPENAI, RELAY_KEY: OPENAI });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain(OPENAI);
    }
  });

  test('several comma-separated keys, with spaces and empty entries, are all kept trimmed', () => {
    const config = loadConfig({ OPENAI_API_KEY: OPENAI, RELAY_KEY: ` ${KEY_A} ,  ${KEY_B},, ` });
    expect(config.relayKeys).toEqual([
      { label: 'key-1', key: KEY_A },
      { label: 'key-2', key: KEY_B },
    ]);
  });
});

describe('secrets the documentation prints, and placeholders', () => {
  const ROOT = resolve(import.meta.dirname, '..');
  const example = parseEnv(readFileSync(join(ROOT, '.env.example'), 'utf8'));

  test('.env.example copied as it is: both its OpenAI key and its relay key are refused, each with a sentence', () => {
    const problems = problemsOf(example);
    expect(problems).toContainEqual(expect.stringMatching(/^OPENAI_API_KEY is the example value printed in \.env\.example, not a real key: set it to your OpenAI API key/));
    expect(problems).toContainEqual(expect.stringMatching(/^RELAY_KEY entry "team" is the example value printed in \.env\.example: .*openssl rand -hex 32/));
  });

  test('every literal key the docs show (README.md, docs/, .env.example, render.yaml, ...) is refused wherever a secret goes', () => {
    const documented = findDocumentedSecrets(ROOT);
    expect(documented.size).toBeGreaterThan(0);
    for (const [secret, file] of documented) {
      const asRelayKey = problemsOf({ OPENAI_API_KEY: OPENAI, RELAY_KEY: `ops:${secret}` }).join('\n');
      if (secret.length >= 16) expect(asRelayKey).toContain(`RELAY_KEY entry "ops" is the example value printed in ${file}`);
      expect(problemsOf({ OPENAI_API_KEY: secret, RELAY_KEY: KEY_A }).join('\n')).toContain(`OPENAI_API_KEY is the example value printed in ${file}`);
      expect(problemsOf({ ...base, RELAY_ADMIN_KEY: secret }).join('\n')).toContain('RELAY_ADMIN_KEY is the example value');
    }
  });

  test('placeholder-shaped keys are refused without echoing them; ordinary keys pass', () => {
    for (const placeholder of ['sk-...', 'sk-…', '<your-openai-key>', 'sk-proj-...abc']) {
      const text = problemsOf({ OPENAI_API_KEY: placeholder, RELAY_KEY: KEY_A }).join('\n');
      expect(text).toContain('OPENAI_API_KEY is a placeholder');
      expect(text).not.toContain(placeholder);
    }
    expect(problemsOf({ OPENAI_API_KEY: OPENAI, RELAY_KEY: 'alice:<a-long-relay-key-here>' }).join('\n')).toContain('RELAY_KEY entry "alice" is a placeholder');
    expect(loadConfig({ OPENAI_API_KEY: 'sk-proj-Abc_123-xyz', RELAY_KEY: 'team:your-own-key-0123456789' }).relayKeys).toHaveLength(1);
  });
});

describe('PORT and URLs', () => {
  test('bad PORT values are refused with the variable named', () => {
    for (const port of ['abc', '0', '-1', '80.5', '65536', '8000x']) {
      const text = problemsOf({ ...base, PORT: port }).join('\n');
      expect(text).toContain('PORT');
    }
  });

  test('a good PORT is used', () => {
    expect(loadConfig({ ...base, PORT: '3000' }).port).toBe(3000);
    expect(loadConfig({ ...base, PORT: '65535' }).port).toBe(65535);
  });

  test('a bad OPENAI_BASE_URL is refused with the variable named', () => {
    for (const url of ['not a url', 'api.openai.com/v1', 'ftp://api.openai.com/v1', 'https://u:p@api.openai.com/v1', 'https://api.openai.com/v1?x=1']) {
      let thrown: unknown;
      try {
        loadConfig({ ...base, OPENAI_BASE_URL: url });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, url).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).problems.join('\n')).toContain('OPENAI_BASE_URL');
    }
  });

  test('OPENAI_BASE_URL with or without /v1 and with a trailing slash names the same upstream', () => {
    const variants = [
      'https://api.openai.com/v1',
      'https://api.openai.com/v1/',
      'https://api.openai.com',
      'https://api.openai.com/',
      ' https://api.openai.com/v1 ',
    ];
    const bases = variants.map((v) => loadConfig({ ...base, OPENAI_BASE_URL: v }).upstreamBase.href);
    expect(new Set(bases).size).toBe(1);
    expect(new URL(bases[0]).origin).toBe('https://api.openai.com');
    expect(new URL(bases[0]).pathname.replace(/\/$/, '')).toBe('');
  });

  test('a path prefix before /v1 is kept', () => {
    const a = normalizeUpstreamBase('https://gw.example.com/openai/v1/');
    const b = normalizeUpstreamBase('https://gw.example.com/openai');
    expect(a.href).toBe(b.href);
    expect(a.pathname).toBe('/openai');
  });

  test('OPENAI_API_BASE is an alias of OPENAI_BASE_URL (and OPENAI_BASE_URL wins when both are set)', () => {
    expect(loadConfig({ ...base, OPENAI_API_BASE: 'http://127.0.0.1:9999/v1' }).upstreamBase.href).toBe(
      loadConfig({ ...base, OPENAI_BASE_URL: 'http://127.0.0.1:9999' }).upstreamBase.href,
    );
    const both = loadConfig({ ...base, OPENAI_API_BASE: 'http://old.example/v1', OPENAI_BASE_URL: 'http://new.example/v1' });
    expect(both.upstreamBase.hostname).toBe('new.example');
  });
});

describe('defaults', () => {
  test('port 8000, host 0.0.0.0, api.openai.com, ChatGPT origins, sane timeouts and caps', () => {
    const config = loadConfig(base);
    expect(config.port).toBe(8000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.upstreamBase.origin).toBe('https://api.openai.com');
    expect(config.openaiApiKey).toBe(OPENAI);
    expect(config.relayKeys).toEqual([{ label: 'key-1', key: KEY_A }]);
    expect(config.corsOrigins).toEqual(expect.arrayContaining(['https://chatgpt.com', 'https://chat.openai.com']));
    expect(config.openaiOrganization).toBeUndefined();
    expect(config.openaiProject).toBeUndefined();
    expect(config.timeouts).toEqual({ short: 30_000, standard: 600_000, long: 900_000 });
    // Metadata calls must answer within a GPT Action's ~45 s budget (seed fault 9).
    expect(config.timeouts.short).toBeLessThan(45_000);
    expect(config.connectTimeoutMs).toBe(10_000);
    expect(config.maxJsonBodyBytes).toBeGreaterThan(0);
    expect(config.maxUploadBytes).toBeGreaterThanOrEqual(config.maxJsonBodyBytes);
    expect(config.logLevel).toBe('info');
  });

  test('timeouts and caps can be set, and bad ones are refused', () => {
    const config = loadConfig({
      ...base,
      UPSTREAM_TIMEOUT_SHORT_MS: '1500',
      UPSTREAM_TIMEOUT_STANDARD_MS: '2500',
      UPSTREAM_TIMEOUT_LONG_MS: '3500',
      MAX_JSON_BODY_BYTES: '1000',
      OPENAI_ORGANIZATION: 'org-abc',
      OPENAI_PROJECT: 'proj_abc',
    });
    expect(config.timeouts).toEqual({ short: 1500, standard: 2500, long: 3500 });
    expect(config.maxJsonBodyBytes).toBe(1000);
    expect(config.openaiOrganization).toBe('org-abc');
    expect(config.openaiProject).toBe('proj_abc');
    expect(problemsOf({ ...base, UPSTREAM_TIMEOUT_SHORT_MS: 'soon' }).join('\n')).toContain('UPSTREAM_TIMEOUT_SHORT_MS');
    expect(problemsOf({ ...base, LOG_LEVEL: 'loud' }).join('\n')).toContain('LOG_LEVEL');
  });
});

// ---------------------------------------------------------------- the real entry point

const ROOT_DIR = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT_DIR, 'src/main.ts');
const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'relay-config-test-'));
  tempDirs.push(dir);
  return dir;
}

/** An environment with nothing of the relay's in it (not even what the test runner inherited). */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...extra };
}

function runMain(cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [MAIN], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

describe.concurrent('node src/main.ts', () => {
  test('without OPENAI_API_KEY it exits 1 with the sentence on stderr and no stack trace', async () => {
    const run = runMain(tempDir(), bareEnv({ RELAY_KEY: KEY_A }));
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.err()).toContain('OPENAI_API_KEY is not set');
    expect(run.err()).not.toMatch(/^\s+at /m);
    expect(run.err()).not.toMatch(/ZodError|Error:/);
  });

  test('without RELAY_KEY it exits 1 pointing at RELAY_AUTH=off', async () => {
    const run = runMain(tempDir(), bareEnv({ OPENAI_API_KEY: OPENAI }));
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.err()).toContain('RELAY_AUTH=off');
    expect(run.err()).not.toMatch(/^\s+at /m);
  });

  test('an install with only the files the Docker image holds (no docs) still refuses the documented keys', async () => {
    const dir = tempDir();
    for (const name of ['src', 'generated', 'schemas', 'package.json']) cpSync(join(ROOT_DIR, name), join(dir, name), { recursive: true });
    symlinkSync(join(ROOT_DIR, 'node_modules'), join(dir, 'node_modules'));
    const child = spawn(process.execPath, [join(dir, 'src/launch.js')], {
      cwd: dir,
      env: bareEnv({ OPENAI_API_KEY: OPENAI, RELAY_KEY: 'team:change-me-to-a-long-random-secret' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(1);
    expect(stderr).toContain('RELAY_KEY entry "team" is the example value printed in .env.example');
  });

  test('with a .env in its working directory it starts, serves /health, and exits 0 on SIGTERM', async () => {
    const dir = tempDir();
    const port = await freePort();
    writeFileSync(
      join(dir, '.env'),
      [`OPENAI_API_KEY=${OPENAI}`, `RELAY_KEY=${KEY_A}`, `PORT=${port}`, 'HOST=127.0.0.1', 'LOG_LEVEL=info', ''].join('\n'),
    );
    const run = runMain(dir, bareEnv());
    let exitedEarly: { code: number | null } | undefined;
    run.exited.then((e) => (exitedEarly = e));
    try {
      let res: Response | undefined;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !exitedEarly) {
        try {
          res = await fetch(`http://127.0.0.1:${port}/health`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      expect(exitedEarly, `relay exited early: ${run.err()}`).toBeUndefined();
      expect(res?.status).toBe(200);
      expect(await res!.json()).toMatchObject({ status: 'ok' });
      // The key from .env really is the relay key.
      const denied = await fetch(`http://127.0.0.1:${port}/v1/models`);
      expect(denied.status).toBe(401);
    } finally {
      run.child.kill('SIGTERM');
    }
    const { code, signal } = await run.exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(run.out() + run.err()).not.toContain(OPENAI);
    expect(run.out() + run.err()).not.toContain(KEY_A);
  });
});
