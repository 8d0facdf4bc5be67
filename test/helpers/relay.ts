import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/core/logger.ts';
import { startRelay, type RelayOverrides, type RunningRelay } from '../../src/server.ts';

export const OPENAI_KEY = 'sk-test-server-key-0123456789abcdef';
export const RELAY_KEY = 'relay-key-one-0123456789';
export const RELAY_KEY_2 = 'relay-key-two-9876543210';

export interface TestRelay extends RunningRelay {
  /** Every log line the relay wrote, raw. */
  logs: string[];
  /** `fetch` against the relay with the first relay key. */
  call(path: string, init?: RequestInit): Promise<Response>;
}

/** A fixed public DNS answer for file hosts (openaiFileIdRefs downloads are mocked, DNS is not). */
export const PUBLIC_FILE_HOST_DNS: RelayOverrides = { resolveFileHost: async () => ['203.0.113.10'] };

/** Starts a relay on 127.0.0.1:<random port> in this process, with log lines captured. */
export async function startTestRelay(env: Record<string, string> = {}, overrides: RelayOverrides = {}): Promise<TestRelay> {
  const config = loadConfig({
    OPENAI_API_KEY: OPENAI_KEY,
    RELAY_KEY: `${RELAY_KEY},${RELAY_KEY_2}`,
    PORT: '1',
    HOST: '127.0.0.1',
    // Each relay keeps its files and usage rows to itself (test files run in parallel processes).
    BLOB_DIR: mkdtempSync(join(tmpdir(), 'relay-blobs-')),
    USAGE_DB_PATH: ':memory:',
    ...env,
  });
  // A fixed PORT only when the relay must know its own URL beforehand (PUBLIC_BASE_URL for OAuth).
  if (!env.PORT) config.port = 0;
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = createLogger(env.LOG_LEVEL ?? 'info', sink as unknown as pino.DestinationStream, [config.openaiApiKey]);
  const relay = await startRelay(config, logger, overrides);
  return {
    ...relay,
    logs,
    call(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization') && !headers.has('x-relay-key')) headers.set('authorization', `Bearer ${RELAY_KEY}`);
      return fetch(relay.url + path, { ...init, headers });
    },
  };
}

/** A relay for the whole file, shut down after it. */
export function useRelay(env: Record<string, string> = {}) {
  const holder = {} as { relay: TestRelay };
  let started: TestRelay | undefined;
  const ready = startTestRelay(env).then((r) => {
    started = r;
    holder.relay = r;
    return r;
  });
  afterAll(async () => {
    await (started ?? (await ready)).shutdown();
  });
  return { ready, get relay() { return holder.relay; } };
}
