import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { freePort, REPO_ROOT } from './helpers/child-relay.ts';
import { StartupError } from '../src/startup.ts';
import { OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, startTestRelay, type TestRelay } from './helpers/relay.ts';

/**
 * Start-up: every place the relay writes is probed before it listens, and a refusal names the variable,
 * the absolute path and the user; an unreachable Redis is said at once; the "relay listening" line says
 * what the relay runs against and never a secret.
 */

const scratch = mkdtempSync(join(tmpdir(), 'relay-startup-'));
/** A regular file: no directory can be made below it, whoever the user is (tests run as root in CI). */
const aFile = join(scratch, 'a-file');
writeFileSync(aFile, 'not a directory');
const USER = `${userInfo().username} (uid ${process.getuid!()})`;

/** `node src/main.ts` with only these variables; resolves with its exit code and output once it exits or serves. */
async function startMain(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'src/main.ts')], {
    cwd: scratch,
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), OPENAI_API_KEY: OPENAI_KEY, RELAY_KEY, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r((code = c))));
  // Until it exits, serves, or 30 s pass; a relay still running then is ended.
  const deadline = Date.now() + 30_000;
  while (code === undefined && Date.now() < deadline) {
    if ((await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (code !== undefined) return { code, output };
  child.kill('SIGKILL');
  await exited;
  return { code: null, output };
}

describe('storage is probed before the relay listens', () => {
  test('node src/main.ts with an unwritable (relative) BLOB_DIR exits 1 with the variable, the absolute path and the user', async () => {
    const { code, output } = await startMain({ BLOB_DIR: 'a-file/blobs', USAGE_DB_PATH: join(scratch, 'usage.sqlite') });
    expect(code, output).toBe(1);
    expect(output).toContain(`The relay cannot start: BLOB_DIR is ${join(scratch, 'a-file/blobs')}, and the relay's user ${USER} cannot write there (ENOTDIR).`);
    expect(output).toContain('chown -R 1000:1000');
    expect(output).not.toMatch(/^\s+at /m);
  });

  test.each([
    ['an unwritable ledger directory', join(aFile, 'ledger/usage.sqlite'), join(aFile, 'ledger'), 'ENOTDIR'],
    // A directory where the file should be: writable parent, unwritable "file", even for root.
    ['an existing ledger file it cannot write', mkdtempSync(join(scratch, 'ledger-')), undefined, 'EISDIR'],
  ])('%s: USAGE_DB_PATH is refused by name, path and user', async (_case, dbPath, named, code) => {
    await expect(startTestRelay({ BLOB_DIR: join(scratch, 'blobs'), USAGE_DB_PATH: dbPath })).rejects.toThrow(
      new StartupError(
        `USAGE_DB_PATH is ${named ?? dbPath}, and the relay's user ${USER} cannot write there (${code}). ` +
          'Make it writable for that user (for the Docker image\'s user: `chown -R 1000:1000` the mounted directory) or set USAGE_DB_PATH to a directory it can write.',
      ),
    );
  });
});

describe('the start-up lines', () => {
  const relays: TestRelay[] = [];
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.shutdown()));
  });
  const ADMIN = 'admin-key-startup-0123456789';
  const LINK_SECRET = 'blob-link-secret-startup-0123';
  const REDIS_PASSWORD = 'redis-password-startup-0123';
  const SECRETS = [OPENAI_KEY, RELAY_KEY, RELAY_KEY_2, ADMIN, LINK_SECRET, REDIS_PASSWORD];

  const listeningLine = (relay: TestRelay) => {
    const line = relay.logs.find((l) => l.includes('"relay listening"'));
    expect(line).toBeDefined();
    return JSON.parse(line!);
  };

  test('"relay listening" names the upstream host, the SQLite ledger and the memory limiter; no secret in any line', async () => {
    const dbPath = join(mkdtempSync(join(scratch, 'db-')), 'usage.sqlite');
    const relay = await startTestRelay({ USAGE_DB_PATH: dbPath, RELAY_ADMIN_KEY: ADMIN, BLOB_LINK_SECRET: LINK_SECRET, OPENAI_BASE_URL: 'https://upstream.example:8443/v1' });
    relays.push(relay);
    expect(listeningLine(relay)).toMatchObject({ url: relay.url, upstream: 'upstream.example:8443', ledger: `sqlite ${dbPath}`, limiter: 'memory' });
    for (const secret of SECRETS) expect(relay.logs.join('')).not.toContain(secret);
  });

  test('an unreachable REDIS_URL is warned about at start-up, named by host only; PostgreSQL likewise by host', async () => {
    const port = await freePort();
    const relay = await startTestRelay({
      REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${port}/0`,
      RATE_LIMITS: '*=10/min',
      RELAY_ADMIN_KEY: ADMIN,
      USAGE_LEDGER: 'off',
    });
    relays.push(relay);
    const warning = relay.logs.map((l) => JSON.parse(l)).find((l) => l.level === 40 && /REDIS_URL is unreachable at start-up/.test(l.msg));
    expect(warning?.msg).toContain('rate limits are not enforced (RATE_LIMIT_FAIL_MODE=open)');
    expect(listeningLine(relay)).toMatchObject({ limiter: `redis 127.0.0.1:${port}/0`, ledger: 'off' });
    for (const secret of SECRETS) expect(relay.logs.join('')).not.toContain(secret);
  });

  test.skipIf(!process.env.TEST_DATABASE_URL)('with DATABASE_URL the line names PostgreSQL by host and database, never the password', async () => {
    const url = new URL(process.env.TEST_DATABASE_URL!);
    const relay = await startTestRelay({ DATABASE_URL: url.href });
    relays.push(relay);
    expect(listeningLine(relay).ledger).toBe(`postgresql ${url.host}${url.pathname}`);
    if (url.password) expect(relay.logs.join('')).not.toContain(url.password);
  });
});

describe('Node versions', () => {
  /** The first `node` on PATH outside node_modules (the host's own: Node 20 on the CI machine), if older than 22.18. */
  const hostNode = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes('node_modules'))
    .map((dir) => join(dir, 'node'))
    .find(existsSync);
  const hostVersion = hostNode ? execFileSync(hostNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim() : undefined;
  const [major, minor] = (hostVersion ?? '0.0').split('.').map(Number);
  const old = hostVersion !== undefined && (major < 22 || (major === 22 && minor < 18));
  if (!old) console.warn(`startup.test.ts: no Node older than 22.18 on PATH (found ${hostVersion ?? 'none'}): the unsupported-Node case is SKIPPED.`);

  test.skipIf(!old)('src/launch.js on a Node without type stripping exits 1 with one sentence naming the Node to install', () => {
    const run = spawnSync(hostNode!, [join(REPO_ROOT, 'src/launch.js')], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^The relay needs Node\\.js 22\\.18 or later and this is Node ${hostVersion}: install Node 24 .*\\.$`))]);
  });

  test('package.json: npm start execs the launcher (signals reach node), engines names the Nodes that strip types', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe('exec node src/launch.js');
    expect(pkg.engines.node).toBe('^22.18.0 || >=23.6.0');
  });
});
