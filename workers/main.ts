/** Production worker entry point: `node dist/workers/main.js`. */
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../config';
import { connectTemporalWorker, TemporalConnectError } from '../temporal/connect';
import type { TemporalSettings } from '../temporal/connection-config';
import { createLogger } from '../lib/logger';
import { installTemporalRuntime } from '../temporal/runtime';
import { startWorkerMetricsServer, type WorkerMetricsServer } from '../temporal/metrics-server';
import { startDefaultMetrics } from '../lib/metrics';
import { buildCore } from '../composition/core';
import { activityDepsFrom, ensureSchedules } from '../composition/worker';
import { parleyDataConverter } from '../temporal/data-converter';
import { createParleyWorker } from './worker';
import { createTracing, resolveTracingSettings } from '../lib/tracing';

/**
 * Temporal may still be starting (or restarting): retry the first connection with backoff for a
 * few minutes; a TLS or credentials failure is not retried (the same settings cannot succeed).
 */
async function connectWithRetry(settings: TemporalSettings, log: ReturnType<typeof createLogger>): Promise<NativeConnection> {
  const deadline = Date.now() + 5 * 60_000;
  for (let delay = 500; ; delay = Math.min(delay * 2, 15_000)) {
    try {
      return await connectTemporalWorker(settings);
    } catch (err) {
      if ((err instanceof TemporalConnectError && !err.retryable) || Date.now() + delay > deadline) throw err;
      log.warn({ temporal: settings.describe(), retryInMs: delay, err: (err as Error).message }, 'Temporal not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

async function main(): Promise<void> {
  const config = loadConfig(process.env, { reader: 'worker' });
  const log = createLogger({ level: config.LOG_LEVEL, name: 'parley-worker' });
  // METRICS_PORT: one endpoint with the SDK core's metrics (on 127.0.0.1:METRICS_CORE_PORT) and Parley's (temporal/metrics-server.ts)
  const corePort = config.METRICS_PORT ? (config.METRICS_CORE_PORT ?? (config.METRICS_PORT < 65535 ? config.METRICS_PORT + 1 : config.METRICS_PORT - 1)) : undefined;
  installTemporalRuntime({ log, metricsBindAddress: corePort ? `127.0.0.1:${corePort}` : undefined });
  let metricsServer: WorkerMetricsServer | undefined;
  if (config.METRICS_PORT) {
    startDefaultMetrics();
    metricsServer = await startWorkerMetricsServer({ port: config.METRICS_PORT, coreUrl: `http://127.0.0.1:${corePort}/metrics`, log });
    log.info({ port: metricsServer.port }, 'worker metrics listening');
  }
  // trace context always; spans exported only with OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (README, "Request ids and traces")
  const tracing = createTracing(resolveTracingSettings(config, 'worker'));
  if (tracing.exporting) log.info({ serviceName: tracing.settings.serviceName }, 'exporting traces (OTLP/HTTP)');
  if (!config.TEMPORAL_ADDRESS) throw new Error('TEMPORAL_ADDRESS (or the address of the Temporal profile) is required for the worker (npm run dev starts a dev server for you)');
  const { database, services, payloadCodec } = await buildCore(config, { log });
  log.info({ temporal: config.temporal.describe() }, 'connecting to Temporal');
  const connection = await connectWithRetry(config.temporal, log);
  const worker = await createParleyWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    deps: activityDepsFrom(config, services, log),
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    maxConcurrentBackgroundActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES,
    maxConcurrentWebhookActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    payloadCodec,
    tracing,
  });
  await ensureSchedules(new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter: parleyDataConverter(payloadCodec) }), config, log);
  log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, database: database.describe }, 'worker started');
  try {
    await worker.run(); // returns after SIGINT/SIGTERM once in-flight tasks finish
  } finally {
    await connection.close();
    await database.close();
    await metricsServer?.close();
    await tracing.shutdown().catch(() => undefined);
    log.info('worker stopped');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
