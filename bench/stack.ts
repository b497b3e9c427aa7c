/**
 * Parley for the benchmark: API and worker in this one process (as `npm run dev` runs them),
 * wired like test/support/stack.ts, but the API listens on a real port.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleWorkflowCode, NativeConnection, type Worker } from '@temporalio/worker';
import { createApp } from '../api/app';
import { loadConfig, type Config } from '../config';
import { createLogger } from '../lib/logger';
import { connectClient, createParleyTemporal, type ParleyTemporal } from '../temporal/client';
import { installTemporalRuntime } from '../temporal/runtime';
import { buildCore, type Core } from '../composition/core';
import { activityDepsFrom } from '../composition/worker';
import { createParleyWorker, WORKFLOWS_PATH } from '../workers/worker';

export const BENCH_ADMIN_TOKEN = `bench-admin-${randomBytes(12).toString('hex')}`;
export const BENCH_APP_SECRET = `bench-app-secret-${randomBytes(12).toString('hex')}`;

export interface ParleyStack {
  config: Config;
  core: Core;
  temporal: ParleyTemporal;
  apiUrl: string;
  taskQueue: string;
  /** Absent with `worker: false` (acceptance-only runs). */
  worker?: Worker;
  stop(): Promise<void>;
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (m: string, meta?: unknown) => console.error(m, meta),
};

export async function startParley(opts: {
  temporalAddress: string;
  graphUrl: string;
  llmUrl: string;
  logLevel: string;
  /** Start the worker in this process (default true). */
  worker?: boolean;
}): Promise<ParleyStack> {
  const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    NODE_ENV: 'development',
    LOG_LEVEL: opts.logLevel,
    DATABASE_URL: process.env.DATABASE_URL,
    PGLITE_DATA_DIR: 'memory://',
    TEMPORAL_ADDRESS: opts.temporalAddress,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PARLEY_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    PARLEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    META_APP_SECRET: BENCH_APP_SECRET,
    META_VERIFY_TOKEN: `bench-verify-${randomBytes(6).toString('hex')}`,
    GRAPH_API_URL: opts.graphUrl,
    OPENAI_BASE_URL: opts.llmUrl,
    OPENAI_API_KEY: 'sk-bench-fake-openai-key',
    WORKER_MAX_CONCURRENT_ACTIVITIES: process.env.WORKER_MAX_CONCURRENT_ACTIVITIES,
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: process.env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
  });
  const log = createLogger({ level: config.LOG_LEVEL, name: 'parley-bench' });
  // The SDK's native runtime lives until its last worker/connection closes; without a worker
  // nothing would ever close it, so it is installed only with one.
  if (opts.worker !== false) installTemporalRuntime({ log });
  const core = await buildCore(config, { log, migrate: true });
  let worker: Worker | undefined;
  let workerConnection: NativeConnection | undefined;
  let running: Promise<void> | undefined;
  if (opts.worker !== false) {
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve(WORKFLOWS_PATH), logger: quietBundlerLogger });
    workerConnection = await NativeConnection.connect({ address: opts.temporalAddress });
    worker = await createParleyWorker({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue,
      deps: activityDepsFrom(config, core.services, log),
      workflowBundle,
      maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    });
    running = worker.run();
  }
  const { client, connection: clientConnection } = await connectClient({ address: opts.temporalAddress, namespace: config.TEMPORAL_NAMESPACE });
  const temporal = createParleyTemporal(client, { taskQueue });
  const app = createApp({ config, log, database: core.database, services: core.services, temporal });
  const server = await new Promise<http.Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  // Keep-alive sockets from the load generator must outlive short pauses between phases.
  server.keepAliveTimeout = 60_000;
  const { port } = server.address() as AddressInfo;
  return {
    config,
    core,
    temporal,
    apiUrl: `http://127.0.0.1:${port}`,
    taskQueue,
    worker,
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
    },
  };
}
