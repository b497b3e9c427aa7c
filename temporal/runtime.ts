import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel, type LogMetadata } from '@temporalio/worker';
import type { Logger } from '../lib/logger';

let installed = false;

/**
 * Install the Temporal worker runtime once per process, before any Worker or
 * NativeConnection: SDK logs go to our pino logger, metrics to Prometheus if a port is given.
 */
export function installTemporalRuntime(opts: { log: Logger; level?: LogLevel; metricsBindAddress?: string }): void {
  if (installed) return;
  installed = true;
  const log = opts.log.child({ module: 'temporal-sdk' });
  const logger = new DefaultLogger(opts.level ?? 'WARN', (entry) => {
    const meta: LogMetadata = errorNamed(entry.meta ?? {});
    const level = entry.level === 'TRACE' ? 'trace' : entry.level === 'DEBUG' ? 'debug' : entry.level === 'INFO' ? 'info' : entry.level === 'WARN' ? 'warn' : 'error';
    log[level](meta, entry.message);
  });
  Runtime.install({
    logger,
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN' }) },
      ...(opts.metricsBindAddress ? { metrics: { prometheus: { bindAddress: opts.metricsBindAddress } } } : {}),
    },
  });
}

/**
 * The SDK logs a failed activity's error under `error`: an Error, which pino writes as `{}` (its
 * fields are not enumerable). Log what names the failure (class, failure type, retryable); not
 * its message, which may quote a provider's text about the contact (the history keeps it,
 * encrypted).
 */
export function errorNamed(meta: LogMetadata): LogMetadata {
  const err = meta.error;
  if (!(err instanceof Error)) return meta;
  const failure = err as Error & { type?: unknown; nonRetryable?: unknown; cause?: unknown };
  const cause = failure.cause instanceof Error ? (failure.cause as Error & { type?: unknown }) : undefined;
  return {
    ...meta,
    error: {
      name: err.name,
      ...(typeof failure.type === 'string' ? { type: failure.type } : {}),
      ...(typeof failure.nonRetryable === 'boolean' ? { nonRetryable: failure.nonRetryable } : {}),
      ...(cause ? { cause: { name: cause.name, ...(typeof cause.type === 'string' ? { type: cause.type } : {}) } } : {}),
    },
  };
}
