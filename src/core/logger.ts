import pino from 'pino';

/**
 * One JSON line per event on stdout (pretty-printed when stdout is a terminal). Request lines carry the
 * request id, key label, operation, status and timing only; `redact` strips any authorization-like field
 * passed by mistake.
 */
export type Logger = pino.Logger;

const REDACT = {
  paths: ['authorization', 'headers.authorization', 'headers["x-relay-key"]', 'apiKey', 'openaiApiKey', 'relayKeys', 'adminKey'],
  censor: '[redacted]',
};

function defaultDestination(): pino.DestinationStream {
  if (process.stdout.isTTY) {
    // Interactive runs: readable lines. Loaded only here, so production never pays for it.
    return pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } });
  }
  // Buffered, asynchronous writes keep logging off the request path; flushed on shutdown.
  return pino.destination({ sync: false, minLength: 4096 });
}

export function createLogger(level: string, destination: pino.DestinationStream = defaultDestination()): Logger {
  return pino({ level, base: undefined, redact: REDACT }, destination);
}
