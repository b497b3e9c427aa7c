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
    const meta: LogMetadata = entry.meta ?? {};
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
