/**
 * Parley for the benchmark, in one of two topologies:
 *  - `single`: API and worker in this one process (as `npm run dev` runs them), wired like
 *    test/support/stack.ts, but the API listens on a real port;
 *  - `split`: the production entry points (api/main.ts, workers/main.ts) as child processes,
 *    configured through the environment as in production, on PostgreSQL (DATABASE_URL). This
 *    process keeps a Temporal client (the bare signalWithStart loop, histories).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import { createApp } from '../api/app';
import { loadConfig, type Config } from '../config';
import { createLogger } from '../lib/logger';
import { connectClient, createParleyTemporal, type ParleyTemporal } from '../temporal/client';
import { installTemporalRuntime } from '../temporal/runtime';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../temporal/data-converter';
import { buildCore, keyPreparer, type Core } from '../composition/core';
import { activityDepsFrom } from '../composition/worker';
import { createParleyWorker, WORKFLOWS_PATH, type ParleyWorker } from '../workers/worker';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../workers/tracing';
import { createTracing, resolveTracingSettings } from '../lib/tracing';
import { startApiProcess, startWorkerProcess, type ParleyChild } from './processes';

export const BENCH_ADMIN_TOKEN = `bench-admin-${randomBytes(12).toString('hex')}`;
export const BENCH_APP_SECRET = `bench-app-secret-${randomBytes(12).toString('hex')}`;
const BENCH_ENCRYPTION_KEY = randomBytes(32).toString('base64');
const BENCH_VERIFY_TOKEN = `bench-verify-${randomBytes(6).toString('hex')}`;

export type Topology = 'single' | 'split';

export interface ParleyStack {
  topology: Topology;
  config: Config;
  /** The database as this process sees it (single: the only one; split: used for migrations). */
  core: Core;
  temporal: ParleyTemporal;
  apiUrl: string;
  taskQueue: string;
  /** False with `worker: false` (acceptance-only runs). */
  hasWorker: boolean;
  /** Split topology: the child processes (their CPU is read from /proc). */
  children: { api?: ParleyChild; worker?: ParleyChild };
  stop(): Promise<void>;
}

export interface ParleyStackOptions {
  temporalAddress: string;
  graphUrl: string;
  llmUrl: string;
  logLevel: string;
  /** Start the worker (default true). */
  worker?: boolean;
  /** Extra environment (LEAD_* settings, worker slots), for both this process and the children. */
  env?: Record<string, string | undefined>;
}

/** The environment Parley is configured from, in this process and in the split children alike. */
export function benchEnv(opts: ParleyStackOptions, taskQueue: string): Record<string, string | undefined> {
  return {
    NODE_ENV: 'development',
    LOG_LEVEL: opts.logLevel,
    DATABASE_URL: process.env.DATABASE_URL,
    PGLITE_DATA_DIR: 'memory://',
    TEMPORAL_ADDRESS: opts.temporalAddress,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PARLEY_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    PARLEY_ENCRYPTION_KEY: BENCH_ENCRYPTION_KEY,
    META_APP_SECRET: BENCH_APP_SECRET,
    META_VERIFY_TOKEN: BENCH_VERIFY_TOKEN,
    GRAPH_API_URL: opts.graphUrl,
    OPENAI_BASE_URL: opts.llmUrl,
    OPENAI_API_KEY: 'sk-bench-fake-openai-key',
    WORKER_MAX_CONCURRENT_ACTIVITIES: process.env.WORKER_MAX_CONCURRENT_ACTIVITIES,
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: process.env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES: process.env.WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES,
    // PARLEY_PAYLOAD_CODEC=false npm run bench: the same run without the payload codec (its cost, by difference)
    PARLEY_PAYLOAD_CODEC: process.env.PARLEY_PAYLOAD_CODEC,
    // OTEL_EXPORTER_OTLP_ENDPOINT=http://… npm run bench: the same run with spans exported (its cost, by difference)
    OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    ...opts.env,
  };
}

/** API and worker as production runs them: separate processes, one PostgreSQL. */
export async function startParleySplit(opts: ParleyStackOptions): Promise<ParleyStack> {
  if (!process.env.DATABASE_URL) {
    throw new Error('--topology split needs DATABASE_URL (PostgreSQL): the API and worker processes must share one database');
  }
  const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
  const env = benchEnv(opts, taskQueue);
  const config = loadConfig(env);
  const log = createLogger({ level: config.LOG_LEVEL, name: 'parley-bench' });
  const core = await buildCore(config, { log, migrate: true });
  const { client, connection } = await connectClient({ address: opts.temporalAddress, namespace: config.TEMPORAL_NAMESPACE, payloadCodec: core.payloadCodec });
  const temporal = createParleyTemporal(client, { taskQueue, leadIds: core.leadIds });
  const children: ParleyStack['children'] = {};
  const stopAll = async () => {
    await children.api?.stop();
    await children.worker?.stop();
    await connection.close();
    await core.database.close();
  };
  try {
    const [api, worker] = await Promise.all([
      startApiProcess('parley-api', env),
      opts.worker !== false ? startWorkerProcess('parley-worker', env, client) : Promise.resolve(undefined),
    ]);
    children.api = api.child;
    children.worker = worker;
    return { topology: 'split', config, core, temporal, apiUrl: api.url, taskQueue, hasWorker: worker !== undefined, children, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export function startParleyTopology(topology: Topology, opts: ParleyStackOptions): Promise<ParleyStack> {
  return topology === 'split' ? startParleySplit(opts) : startParley(opts);
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (m: string, meta?: unknown) => console.error(m, meta),
};

/** API and worker in this one process (as `npm run dev`). */
export async function startParley(opts: ParleyStackOptions): Promise<ParleyStack> {
  const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
  const config = loadConfig(benchEnv(opts, taskQueue));
  const log = createLogger({ level: config.LOG_LEVEL, name: 'parley-bench' });
  // The SDK's native runtime lives until its last worker/connection closes; without a worker
  // nothing would ever close it, so it is installed only with one.
  if (opts.worker !== false) installTemporalRuntime({ log });
  const core = await buildCore(config, { log, migrate: true });
  const tracing = { api: createTracing(resolveTracingSettings(config, 'api')), worker: createTracing(resolveTracingSettings(config, 'worker')) };
  let worker: ParleyWorker | undefined;
  let workerConnection: NativeConnection | undefined;
  let running: Promise<void> | undefined;
  if (opts.worker !== false) {
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve(WORKFLOWS_PATH), ...WORKFLOW_BUNDLE_CONVERTERS, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: quietBundlerLogger });
    workerConnection = await NativeConnection.connect({ address: opts.temporalAddress });
    worker = await createParleyWorker({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue,
      deps: activityDepsFrom(config, core.services, log),
      workflowBundle,
      maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
      maxConcurrentBackgroundActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES,
      maxConcurrentWebhookActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES,
      maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
      payloadCodec: core.payloadCodec,
      tracing: tracing.worker,
    });
    running = worker.run();
  }
  const { client, connection: clientConnection } = await connectClient({ address: opts.temporalAddress, namespace: config.TEMPORAL_NAMESPACE, payloadCodec: core.payloadCodec, tracer: tracing.api.tracer });
  const temporal = createParleyTemporal(client, { taskQueue, leadIds: core.leadIds, prepareKey: keyPreparer(core) });
  const app = createApp({ config, log, database: core.database, services: core.services, temporal, tracer: tracing.api.tracer });
  const server = await new Promise<http.Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  // Keep-alive sockets from the load generator must outlive short pauses between phases.
  server.keepAliveTimeout = 60_000;
  const { port } = server.address() as AddressInfo;
  return {
    topology: 'single',
    config,
    core,
    temporal,
    apiUrl: `http://127.0.0.1:${port}`,
    taskQueue,
    hasWorker: worker !== undefined,
    children: {},
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      worker?.shutdown();
      await running;
      await workerConnection?.close();
      await clientConnection.close();
      await core.database.close();
      await Promise.all([tracing.api.shutdown(), tracing.worker.shutdown()]).catch(() => undefined);
    },
  };
}
