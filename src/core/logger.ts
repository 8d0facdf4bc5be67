import pino from 'pino';

/**
 * One JSON line per event on stdout. The serializers never see secrets: request logs carry the request
 * id, operation, status and timing only, and `redact` strips any authorization-like field passed by mistake.
 */
export type Logger = pino.Logger;

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination({ sync: false })): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['authorization', 'headers.authorization', 'headers["x-relay-key"]', 'apiKey', 'openaiApiKey', 'relayKeys'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
