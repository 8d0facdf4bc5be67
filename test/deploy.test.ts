import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { envFields } from '../src/config/env-fields.ts';

/**
 * docker-compose.yaml and its load balancer (docs/deploy/nginx.conf) cannot be run here (no Docker engine),
 * so what can be checked is: the relays' environment names only settings src/config/env-fields.ts defines and loads as the
 * sharing test/two-replicas.test.ts exercises; the services they point at exist; the balancer reaches both
 * relays with limits no smaller than the relay's own; and `nginx -t` accepts the config where nginx exists.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string>; build?: string; image?: string; depends_on?: Record<string, unknown> }>;
};
const nginxConf = readFileSync(join(ROOT, 'docs/deploy/nginx.conf'), 'utf8');
const RELAYS = ['relay1', 'relay2'];

/** `${NAME:-default}` → default (or a sample when empty); `${NAME:?message}` → a sample value; `$$` → `$`. */
function interpolate(value: string): string {
  return value
    .replace(/\$\{([A-Z0-9_]+):\?[^}]*\}/g, (_, name: string) => `sample-${name.toLowerCase().replaceAll('_', '-')}-0123456789`)
    .replace(/\$\{([A-Z0-9_]+):-([^}]*)\}/g, (_, _name: string, fallback: string) => fallback)
    .replaceAll('$$', '$');
}

describe('docker-compose.yaml', () => {
  test('two relays built from this repository, a balancer, PostgreSQL, Redis and an S3-compatible store', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['lb', 'postgres', 'redis', 'relay1', 'relay2', 's3', 's3-bucket']);
    for (const name of RELAYS) {
      expect(compose.services[name]!.build).toBe('.');
      expect(Object.keys(compose.services[name]!.depends_on ?? {}).sort()).toEqual(['postgres', 'redis', 's3-bucket']);
    }
    expect(compose.services.relay1!.environment).toEqual(compose.services.relay2!.environment);
  });

  test('the relays name only settings the relay reads (src/config/env-fields.ts), and those load into the shared setup the two-replica test runs', () => {
    const known = new Set(Object.keys(envFields.shape));
    const env = Object.fromEntries(Object.entries(compose.services.relay1!.environment!).map(([k, v]) => [k, interpolate(String(v))]));
    for (const name of Object.keys(env)) expect(known, `${name} is not a setting of src/config/env-fields.ts`).toContain(name);

    const config = loadConfig(env);
    const host = (url: string | undefined) => new URL(url!).hostname;
    expect(host(config.ops.databaseUrl)).toBe('postgres');
    expect(host(config.ops.redisUrl)).toBe('redis');
    expect(config.actions.blobS3).toMatchObject({ bucket: 'relay-blobs', endpoint: 'http://s3:8333', credentials: { accessKeyId: expect.any(String) } });
    expect(host(config.actions.blobS3!.endpoint)).toBe('s3');
    expect(config.publicBaseUrl?.href).toBe('http://localhost:8080/');
    // The bucket the init container creates is the one the relays use, with the same keys.
    const init = compose.services['s3-bucket']!;
    expect(JSON.stringify(init)).toContain(`--bucket ${config.actions.blobS3!.bucket}`);
    expect(init.environment!.AWS_ENDPOINT_URL).toBe(config.actions.blobS3!.endpoint);
    expect(init.environment!.AWS_ACCESS_KEY_ID).toBe(compose.services.relay1!.environment!.AWS_ACCESS_KEY_ID);
  });
});

describe('docs/deploy/nginx.conf', () => {
  const directive = (name: string) => new RegExp(`^\\s*${name}\\s+([^;]+);`, 'm').exec(nginxConf)?.[1];
  const defaults = loadConfig({ OPENAI_API_KEY: 'sk-deploy-test-0123456789abcdef', RELAY_AUTH: 'off' });

  test('round-robin over both relays on the port the image listens on', () => {
    const servers = [...nginxConf.matchAll(/^\s*server\s+([\w.-]+):(\d+)\b/gm)].map((m) => `${m[1]}:${m[2]}`);
    const imagePort = /PORT=(\d+)/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1];
    expect(servers).toEqual(RELAYS.map((r) => `${r}:${imagePort}`));
    expect(nginxConf).toMatch(/proxy_pass http:\/\/relays;/);
  });

  test('streams both ways, with body and time limits no smaller than the relay defaults', () => {
    expect(directive('proxy_buffering')).toBe('off');
    expect(directive('proxy_request_buffering')).toBe('off');
    expect(Number(/^(\d+)m$/.exec(directive('client_max_body_size')!)![1]) * 1024 * 1024).toBeGreaterThanOrEqual(defaults.maxUploadBytes);
    expect(Number(/^(\d+)s$/.exec(directive('proxy_read_timeout')!)![1]) * 1000).toBeGreaterThanOrEqual(defaults.timeouts.long);
    // A POST that reached a relay is never sent again to the other.
    expect(directive('proxy_next_upstream')).not.toMatch(/non_idempotent/);
  });

  const nginx = spawnSync('nginx', ['-v']).error ? undefined : 'nginx';
  if (!nginx) console.warn('deploy.test.ts: nginx is not installed — `nginx -t` of docs/deploy/nginx.conf is SKIPPED (.ci/services.sh installs it).');
  test.skipIf(!nginx)('nginx -t accepts it (relay host names mapped to loopback)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-nginx-'));
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf.replace(/\brelay(\d):/g, '127.0.0.$1:'));
    const run = spawnSync('nginx', ['-t', '-c', conf, '-g', `pid ${join(dir, 'nginx.pid')}; error_log stderr;`], { encoding: 'utf8' });
    expect(run.stderr).toMatch(/syntax is ok/);
    expect(run.status).toBe(0);
  });
});
