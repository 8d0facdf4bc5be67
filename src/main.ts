import { ConfigError, loadConfig, loadDotEnv } from './config.ts';
import { createLogger } from './core/logger.ts';
import { startRelay } from './server.ts';

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

const logger = createLogger(config.logLevel);
if (!config.relayAuth) {
  logger.warn(
    'RELAY_AUTH=off: this relay accepts requests WITHOUT a relay key. Anyone who can reach it can spend your OpenAI key. Never expose it like this beyond a trusted network.',
  );
}

let relay;
try {
  relay = await startRelay(config, logger, { checkModels: true });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === 'EADDRINUSE'
      ? `port ${config.port} on ${config.host} is already in use: stop the other process or set PORT.`
      : e.code === 'EACCES'
        ? `no permission to listen on port ${config.port}: use a port above 1023 or set PORT.`
        : `${e.message} (check DATABASE_URL, USAGE_DB_PATH, BLOB_DIR and REDIS_URL).`;
  console.error(`The relay cannot start: ${hint}`);
  logger.flush();
  process.exit(1);
}
logger.info({ url: `http://${config.host}:${relay.server.address() && (relay.server.address() as { port: number }).port}` }, 'relay listening');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    logger.info({ signal }, 'signal received');
    await relay.shutdown();
    logger.flush();
    process.exit(0);
  });
}
