import path from 'node:path';
import { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { parleyDataConverter } from '../temporal/data-converter';
import { backgroundTaskQueue } from '../workflows/lead/lanes';
import { startWebhookRelay } from './webhook-relay';
import { tracingClientInterceptors } from '../temporal/connect';
import type { Tracing } from '../lib/tracing';
import { workerTracing, WORKFLOW_INTERCEPTOR_MODULES } from './tracing';

export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index');

/** Activity slots of the background lane when nothing is configured (WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES). */
export const DEFAULT_BACKGROUND_ACTIVITIES = 4;

export interface ParleyWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A prebuilt bundle (tests, production); otherwise the worker bundles workflows/ at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivityTaskExecutions?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  /** Activity slots of the background lane (sequence steps, bump-ups, extraction, deferred sends), on their own task queue. */
  maxConcurrentBackgroundActivityTaskExecutions?: number;
  /** Workflows kept in memory between tasks; the SDK's default grows with the heap (~600 per GB), which 10,000 open leads overran. */
  maxCachedWorkflows?: number;
  /** Parley's payload encryption (temporal/payload-codec.ts, `core.payloadCodec`); none: payloads in clear. */
  payloadCodec?: PayloadCodec;
  /** The worker's tracer and span processor (lib/tracing.ts); absent: the global tracer, workflow spans dropped. */
  tracing?: Tracing;
}

/**
 * Parley's worker: two SDK workers in one process on one connection.
 *  - `main` on `taskQueue`: the lead workflow and the live lane's activities (replies, manual
 *    messages, replays), which it dispatches to itself eagerly;
 *  - `background` on `<taskQueue>-background`: the same activities, for the background lane
 *    (workflows/lead/lanes.ts), with its own few slots. A wave of due sequence steps waits in that
 *    queue, paced by those slots, instead of filling the live lane's slots and, through their
 *    completions, the workflow-task queue that live replies share (bench/README.md, "Priority").
 */
export interface ParleyWorker {
  main: Worker;
  background: Worker;
  /** Runs both until shutdown (or until either fails, which stops the other). */
  run(): Promise<void>;
  shutdown(): void;
}

export async function createParleyWorker(opts: ParleyWorkerOptions): Promise<ParleyWorker> {
  // the operational activities (circuit fan-out, credit sweep) talk to Temporal over the worker's own connection
  const dataConverter = parleyDataConverter(opts.payloadCodec);
  const client = opts.deps.temporalClient ?? new Client({ connection: opts.connection, namespace: opts.namespace, interceptors: tracingClientInterceptors(opts.tracing?.tracer), dataConverter });
  const activities = createActivities({ ...opts.deps, temporalClient: client });
  // request ids and traces (workers/tracing.ts): activity spans and log context, workflow spans' sink;
  // a prebuilt bundle must hold WORKFLOW_INTERCEPTOR_MODULES (test/support/stack.ts, bench/stack.ts)
  const traced = workerTracing(opts.tracing);
  const main = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    dataConverter,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: require.resolve(WORKFLOWS_PATH) }),
    activities,
    interceptors: { ...traced.interceptors, ...(opts.workflowBundle ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }) },
    sinks: traced.sinks,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions,
    maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTaskExecutions,
    ...(opts.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: opts.maxCachedWorkflows } : {}),
  });
  const background = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: backgroundTaskQueue(opts.taskQueue),
    dataConverter,
    activities,
    interceptors: traced.interceptors,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentBackgroundActivityTaskExecutions ?? DEFAULT_BACKGROUND_ACTIVITIES,
  });
  return {
    main,
    background,
    async run() {
      const both = [main.run(), background.run()];
      // outbound webhooks: the outbox relay runs while the worker does (workers/webhook-relay.ts)
      const { webhookEndpoints, webhooks } = opts.deps;
      const relay = webhookEndpoints && webhooks && webhooks.relay !== false ? startWebhookRelay({ endpoints: webhookEndpoints, client, taskQueue: opts.taskQueue, settings: webhooks, log: opts.deps.log }) : undefined;
      try {
        await Promise.race(both);
      } finally {
        await relay?.stop();
        // one stopped (shutdown or failure): stop the other too, then report the first failure
        for (const w of [main, background]) if (w.getState() === 'RUNNING') w.shutdown();
      }
      await Promise.all(both);
    },
    shutdown() {
      for (const w of [main, background]) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
