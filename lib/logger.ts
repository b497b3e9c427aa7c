import pino, { type Logger } from 'pino';
import { logContext } from './trace-context';

export type { Logger };

/**
 * Paths whose values never reach a log line: tokens, secrets, keys and auth headers,
 * wherever they appear in a logged object.
 */
export const REDACT_PATHS = [
  'authorization',
  'Authorization',
  'accessToken',
  'access_token',
  'appSecret',
  'app_secret',
  'apiKey',
  'api_key',
  'token',
  'visitorToken',
  'verifyToken',
  'password',
  'secret',
  '*.authorization',
  '*.Authorization',
  '*.accessToken',
  '*.access_token',
  '*.appSecret',
  '*.app_secret',
  '*.apiKey',
  '*.api_key',
  '*.token',
  '*.verifyToken',
  '*.password',
  '*.secret',
  'req.headers.authorization',
  'req.headers["x-hub-signature-256"]',
  'headers.authorization',
  'config.PARLEY_ADMIN_TOKEN',
  'config.PARLEY_ENCRYPTION_KEY',
  'config.META_APP_SECRET',
  'config.OPENAI_API_KEY',
  'config.TEMPORAL_API_KEY',
  'config.TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  '*.TEMPORAL_API_KEY',
  '*.TEMPORAL_TLS_CLIENT_KEY_DATA',
  'clientCertPair',
  '*.clientCertPair',
  'tls.clientCertPair',
  '*.tls.clientCertPair',
];

/** The one pino root of a process; modules take `root.child({ module })`. */
export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'parley',
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      // requestId, trace_id and span_id of the request or traced activity the line is written in (lib/trace-context.ts)
      mixin: logContext,
    },
    opts.destination,
  );
}
