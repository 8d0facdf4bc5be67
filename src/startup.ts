import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { RelayConfig } from './config.ts';

/**
 * What the relay checks and says once at start-up: that it can write where it must keep files (so a
 * bad volume stops it at once, not the first image action after OpenAI billed it), and a one-line
 * description of what it runs against, for the "relay listening" line. Nothing here names a secret.
 */

/** A start-up failure with a sentence for the operator (printed as it is, without a stack). */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** `node (uid 1000)`; only the uid when the process's uid has no passwd entry (e.g. `docker run --user 1234`). */
export function describeUser(): string {
  const uid = process.getuid?.();
  try {
    const { username } = userInfo();
    return uid === undefined ? username : `${username} (uid ${uid})`;
  } catch {
    return `uid ${uid ?? 'unknown'}`;
  }
}

function cannotWrite(variable: string, path: string, err: unknown): StartupError {
  const reason = (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
  return new StartupError(
    `${variable} is ${path}, and the relay's user ${describeUser()} cannot write there (${reason}). ` +
      `Make it writable for that user (for the Docker image's user: \`chown -R 1000:1000\` the mounted directory) or set ${variable} to a directory it can write.`,
  );
}

/** Creates `dir` if needed and writes and removes a small file in it; throws a StartupError naming `variable`. */
export function probeWritableDir(variable: string, dir: string): void {
  const path = resolve(dir);
  try {
    mkdirSync(path, { recursive: true });
    const probe = join(path, `.relay-write-probe-${randomBytes(6).toString('hex')}`);
    writeFileSync(probe, 'probe');
    rmSync(probe, { force: true });
  } catch (err) {
    throw cannotWrite(variable, path, err);
  }
}

/**
 * Every place the relay writes to, checked before anything opens: BLOB_DIR (unless the blobs live in
 * S3, whose bucket the blob store checks itself), and for the SQLite ledger
 * the file's directory (SQLite writes its -wal and -shm files beside it) and the file if it exists.
 */
export function checkStorage(config: RelayConfig): void {
  if (!config.actions.blobS3) probeWritableDir('BLOB_DIR', config.actions.blobDir);
  const { ops } = config;
  if (!ops.ledger || ops.databaseUrl || ops.usageDbPath === ':memory:') return;
  const file = resolve(ops.usageDbPath);
  probeWritableDir('USAGE_DB_PATH', dirname(file));
  try {
    closeSync(openSync(file, 'r+'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw cannotWrite('USAGE_DB_PATH', file, err);
  }
}

/** `host:port/path` of a URL, without user, password or query (where a password or token may sit). */
export function safeLocation(raw: string): string {
  const url = new URL(raw);
  return `${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

/** Fields of the "relay listening" line: where requests go, where usage is kept, how limits are counted. */
export function describeSetup(config: RelayConfig): Record<string, string> {
  const { ops } = config;
  return {
    upstream: safeLocation(config.upstreamBase.href),
    ledger: !ops.ledger
      ? 'off'
      : ops.databaseUrl
        ? `postgresql ${safeLocation(ops.databaseUrl)}`
        : `sqlite ${ops.usageDbPath === ':memory:' ? ':memory:' : resolve(ops.usageDbPath)}`,
    limiter: ops.redisUrl ? `redis ${safeLocation(ops.redisUrl)}` : 'memory',
    blobs: config.actions.blobS3 ? `s3 ${config.actions.blobS3.bucket}` : resolve(config.actions.blobDir),
    auth: config.relayAuth ? `${config.relayKeys.length} relay key(s)` : 'off',
  };
}
