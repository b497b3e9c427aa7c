/** Production API entry point: `node dist/api/main.js`. */
import { loadConfig } from '../config';
import { createLogger } from '../lib/logger';
import { startDefaultMetrics } from '../lib/metrics';
import { createParleyTemporal } from '../temporal/client';
import { connectTemporalClient } from '../temporal/connect';
import { buildCore, keyPreparer } from '../composition/core';
import { createApp } from './app';
import { createTracing, resolveTracingSettings } from '../lib/tracing';

async function main(): Promise<void> {
  startDefaultMetrics();
  const config = loadConfig(process.env, { reader: 'api' });
  const log = createLogger({ level: config.LOG_LEVEL, name: 'parley-api' });
  // request ids always; spans exported only with OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (README, "Request ids and traces")
  const tracing = createTracing(resolveTracingSettings(config, 'api'));
  if (tracing.exporting) log.info({ serviceName: tracing.settings.serviceName }, 'exporting traces (OTLP/HTTP)');
  if (!config.TEMPORAL_ADDRESS) throw new Error('TEMPORAL_ADDRESS (or the address of the Temporal profile) is required for the API (npm run dev starts a dev server for you)');
  const core = await buildCore(config, { log });
  const { database, services, payloadCodec } = core;
  log.info({ temporal: config.temporal.describe() }, 'connecting to Temporal');
  const { client, connection } = await connectTemporalClient(config.temporal, { payloadCodec, tracer: tracing.tracer });
  const temporal = createParleyTemporal(client, { taskQueue: config.TEMPORAL_TASK_QUEUE, leadIds: core.leadIds, prepareKey: keyPreparer(core) });
  const app = createApp({ config, log, database, services, temporal, tracer: tracing.tracer });
  const server = app.listen(config.PORT, () => log.info({ port: config.PORT }, 'api listening'));
  const stop = () => {
    log.info('api stopping');
    server.close(() => {
      void tracing
        .shutdown()
        .catch(() => undefined)
        .finally(() => connection.close().finally(() => database.close().finally(() => process.exit(0))));
    });
    // open web chat streams (SSE) would otherwise hold the close for their whole lifetime
    server.closeAllConnections();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
