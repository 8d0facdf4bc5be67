import { ConfigError, loadConfig, loadDotEnv } from './config.ts';
import { createLogger } from './core/logger.ts';
import { startRelay, type RunningRelay } from './server.ts';
import { StartupError } from './startup.ts';

/** `npm start`: read .env and the environment, refuse bad config with a clear sentence, serve. */
loadDotEnv();
let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

const logger = createLogger(config.logLevel, undefined, [config.openaiApiKey]);
if (!config.relayAuth) {
  logger.warn(
    'RELAY_AUTH=off: this relay accepts requests WITHOUT a relay key. Anyone who can reach it can spend your OpenAI key. Never expose it like this beyond a trusted network.',
  );
}

let relay: RunningRelay;
try {
  relay = await startRelay(config, logger, { checkModels: true });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  const hint =
    err instanceof StartupError
      ? e.message
      : e.code === 'EADDRINUSE'
        ? `port ${config.port} on ${config.host} is already in use: stop the other process or set PORT.`
        : e.code === 'EACCES'
          ? `no permission to listen on port ${config.port}: use a port above 1023 or set PORT.`
          : `${e.message} (check DATABASE_URL, USAGE_DB_PATH, BLOB_DIR and REDIS_URL).`;
  console.error(`The relay cannot start: ${hint}`);
  await exitAfterLog(1);
}

// The first SIGTERM/SIGINT drains (see RunningRelay.shutdown); a second one ends the drain at once, and
// the relay still writes its queued usage rows before it exits: a signal never stops it mid-write.
let first: { signal: NodeJS.Signals; at: number } | undefined;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (first === undefined) {
      first = { signal, at: Date.now() };
      logger.info({ signal }, 'signal received');
      relay.shutdown().then(
        () => {
          logger.info('relay stopped');
          void exitAfterLog(0);
        },
        (err: unknown) => {
          logger.error({ err: { message: (err as Error)?.message } }, 'shutdown failed');
          void exitAfterLog(1);
        },
      );
      return;
    }
    // Ctrl-C in a terminal signals both npm and node, and npm passes its copy on: one keypress, two SIGINTs.
    if (signal === first.signal && Date.now() - first.at < 500) return;
    logger.warn({ signal }, 'second signal: closing the remaining connections now, then writing the queued usage rows');
    relay.endDrain();
  });
}

/** Exits once the log lines are written (process.exit would drop a write still in flight), at most 2 s on. */
function exitAfterLog(code: number): Promise<never> {
  setTimeout(() => process.exit(code), 2000);
  logger.flush(() => process.exit(code));
  return new Promise<never>(() => {});
}
