import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { freePort, isAlive, REPO_ROOT } from './helpers/child-relay.ts';
import { startLocalUpstream, type LocalUpstream } from './helpers/local-upstream.ts';

/**
 * What a new user meets: the README's quick start, run as written in two separate shells; the links of
 * the README and docs/; the Render blueprint started as Render starts it; the production dependencies.
 */
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const TEST_OPENAI_KEY = 'sk-first-run-test-0123456789abcdef';

/** The fenced blocks of one `## ` section of a Markdown text. */
function blocksOf(markdown: string, heading: string, lang = 'sh'): string[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  expect(start, `README has a "## ${heading}" section`).toBeGreaterThan(-1);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

/** A copy of what a clone holds for running the relay, with the installed node_modules linked in. */
function scratchClone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'relay-first-run-'));
  for (const name of ['package.json', 'package-lock.json', 'src', 'generated', 'schemas']) cpSync(join(REPO_ROOT, name), join(dir, name), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** Runs `script` in bash in its own process group, ended with the test; `output()` is what it printed so far. */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv, onFinished: (fn: () => void) => void) {
  const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  onFinished(() => {
    if (child.pid && isAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
  });
  let output = '';
  let stdout = '';
  child.stdout!.on('data', (d) => {
    output += d;
    stdout += d;
  });
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  return { child, exited, output: () => output, stdout: () => stdout };
}

async function waitForHealth(url: string, run: { exited: Promise<unknown>; output: () => string }): Promise<void> {
  let gone = false;
  void run.exited.then(() => (gone = true));
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${url}/health`).then((r) => r.ok, () => false))) {
    if (gone) throw new Error(`exited before serving: ${run.output()}`);
    if (Date.now() > deadline) throw new Error(`not serving after 30 s: ${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a user's shell has: a PATH (npm's Node 24 is found through npm itself), HOME, nothing of the relay's. */
const userEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: (process.env.PATH ?? '').split(':').filter((p) => !p.includes('node_modules')).join(':'),
  HOME: process.env.HOME ?? tmpdir(),
  ...extra,
});

describe.concurrent('README quick start', () => {
  test('run as written — the server block in one shell, the curl block in another — the curl gets the answer', async ({ onTestFinished }) => {
    const upstream: LocalUpstream = await startLocalUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'resp_first_run', object: 'response', saw: `${req.method} ${req.url} ${req.headers.authorization}` }));
    });
    onTestFinished(() => upstream.close());
    const [server, client] = blocksOf(README, 'Quick start');
    expect(server).toContain('npm start');
    const dir = scratchClone();
    const port = await freePort();
    // What the user does: npm ci is done (node_modules is linked), and they paste their key over sk-...
    const serverScript = server.replace(/^npm ci$/m, ':').replace('sk-...', TEST_OPENAI_KEY);
    expect(serverScript).toContain(TEST_OPENAI_KEY);
    // Only where it listens and what it calls differ from a user's machine.
    const run = bash(serverScript, dir, userEnv({ PORT: String(port), HOST: '127.0.0.1', OPENAI_BASE_URL: upstream.baseUrl }), onTestFinished);
    await waitForHealth(`http://127.0.0.1:${port}`, run);

    const curl = bash(client.replaceAll('localhost:8000', `127.0.0.1:${port}`), dir, userEnv(), onTestFinished);
    expect(await curl.exited, curl.output()).toBe(0);
    const answer = JSON.parse(curl.stdout());
    expect(answer.id).toBe('resp_first_run');
    expect(answer.saw).toBe(`POST /v1/responses Bearer ${TEST_OPENAI_KEY}`);
    process.kill(-run.child.pid!, 'SIGTERM');
    expect(await run.exited).toBe(0);
  });

  test('pasted without replacing sk-..., the relay refuses to start and says what to set', async ({ onTestFinished }) => {
    const [server] = blocksOf(README, 'Quick start');
    const run = bash(server.replace(/^npm ci$/m, ':'), scratchClone(), userEnv({ PORT: String(await freePort()) }), onTestFinished);
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('OPENAI_API_KEY is a placeholder');
    expect(run.output()).toContain('set it to your OpenAI API key');
  });
});

describe('the docs', () => {
  const docs = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

  test.each(docs)('every relative link of %s points at a file that exists', (file) => {
    const text = readFileSync(join(REPO_ROOT, file), 'utf8');
    const base = join(REPO_ROOT, file, '..');
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      expect(existsSync(join(base, target)), `${file} links to ${target}`).toBe(true);
    }
  });

  test('every npx command for the MCP Inspector asks for @latest (npx on Node 20 picks an old one without --header)', () => {
    const uses = [...README.matchAll(/npx (@modelcontextprotocol\/inspector[^\s`]*)/g)].map((m) => m[1]);
    expect(uses.length).toBeGreaterThan(0);
    for (const use of uses) expect(use).toBe('@modelcontextprotocol/inspector@latest');
  });

  test('"Updating to a new OpenAI spec" downloads the newest official spec and runs the drift report on that same file', () => {
    const [download] = blocksOf(README, 'Updating to a new OpenAI spec');
    const m = /curl -fsSL (https:\/\/raw\.githubusercontent\.com\/openai\/openai-openapi\/main\/openapi\.yaml) -o (\S+)/.exec(download);
    expect(m).not.toBeNull();
    expect(README).toContain(`npm run spec:drift -- ${m![2]}`);
  });

  test('the performance detail lives in docs/performance.md; the README keeps a short summary', () => {
    const start = README.indexOf('\n## Performance\n');
    const section = README.slice(start, README.indexOf('\n## ', start + 1));
    expect(section.split('\n').length).toBeLessThan(15);
    expect(section).toContain('docs/performance.md');
    expect(readFileSync(join(REPO_ROOT, 'docs/performance.md'), 'utf8')).toContain('What bought the most');
  });
});

describe('deployment files', () => {
  const blueprint = parse(readFileSync(join(REPO_ROOT, 'render.yaml'), 'utf8'));
  const service = blueprint.services[0];
  const envOf = (key: string) => service.envVars.find((v: { key: string }) => v.key === key);

  test('render.yaml: the ledger and the blobs on a persistent disk, production install, node started directly, a drain shorter than Render\'s 30 s', () => {
    const mount: string = service.disk.mountPath;
    expect(mount).toMatch(/^\/./);
    expect(envOf('USAGE_DB_PATH').value.startsWith(`${mount}/`)).toBe(true);
    expect(envOf('BLOB_DIR').value.startsWith(`${mount}/`)).toBe(true);
    expect(service.buildCommand).toMatch(/^npm ci --omit=dev\b/);
    expect(service.startCommand).toBe('node src/launch.js');
    expect(envOf('NODE_VERSION').value).toBe('24');
    const grace = loadConfig({ OPENAI_API_KEY: TEST_OPENAI_KEY, RELAY_AUTH: 'off', SHUTDOWN_GRACE_MS: envOf('SHUTDOWN_GRACE_MS')?.value }).shutdownGraceMs;
    expect(grace).toBeLessThanOrEqual(25_000);
  });

  test('render.yaml started as Render starts it (disk mounted elsewhere): it serves and keeps its ledger on the disk', async ({ onTestFinished }) => {
    const disk = mkdtempSync(join(tmpdir(), 'relay-render-disk-'));
    const env: Record<string, string> = {};
    for (const v of service.envVars) {
      if (v.value !== undefined) env[v.key] = String(v.value).replace(service.disk.mountPath, disk);
      else if (v.generateValue) env[v.key] = `generated-${v.key.toLowerCase()}-0123456789abcdef`;
    }
    env.OPENAI_API_KEY = TEST_OPENAI_KEY;
    const port = await freePort();
    // Render's Node is Node 24: here, the one npm ci installed.
    const run = bash(service.startCommand, scratchClone(), { ...userEnv(env), PATH: `${join(REPO_ROOT, 'node_modules/.bin')}:${userEnv().PATH}`, PORT: String(port), HOST: '127.0.0.1' }, onTestFinished);
    await waitForHealth(`http://127.0.0.1:${port}`, run);
    // Log lines reach stdout within a second.
    await expect.poll(run.output, { timeout: 3000 }).toContain(`"ledger":"sqlite ${disk}/usage.sqlite"`);
    expect(readdirSync(disk).sort()).toEqual(expect.arrayContaining(['blobs', 'usage.sqlite']));
  });

  test('Dockerfile: production install, node started directly through the launcher, uid 1000 and its bind-mount note', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toContain('CMD ["node", "src/launch.js"]');
    expect(dockerfile).toContain('USER node');
    expect(README + readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8')).toContain('chown -R 1000:1000');
  });

  test('everything src/ imports at run time is a production dependency (so --omit=dev installs run)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const files = readdirSync(join(REPO_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => /\.(ts|js)$/.test(f));
    const imported = new Set<string>();
    for (const file of [...files.map((f) => join('src', f)), ...readdirSync(join(REPO_ROOT, 'generated')).map((f) => join('generated', f))]) {
      const text = readFileSync(join(REPO_ROOT, file), 'utf8');
      for (const [, spec] of text.matchAll(/(?:^|\n)\s*(?:import|export)(?![^\n]*\btype\b\s*\{)[^'"\n]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|resolve\(\s*['"]([^'"]+)['"]/g)) {
        if (!spec || spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
    expect(imported.size).toBeGreaterThan(5);
    for (const name of imported) expect(pkg.dependencies, `${name} is imported by src/ or generated/`).toHaveProperty([name]);
  });
});
