import path from 'node:path';
import { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { bundleWorkflowCode, type NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { parleyDataConverter, WORKFLOW_BUNDLE_CONVERTERS } from '../temporal/data-converter';
import { backgroundTaskQueue } from '../workflows/lead/lanes';
import { webhookTaskQueue } from '../workflows/webhook-delivery';
import { startWebhookRelay } from './webhook-relay';
import { tracingClientInterceptors } from '../temporal/connect';
import type { Tracing } from '../lib/tracing';
import { workerTracing, WORKFLOW_INTERCEPTOR_MODULES } from './tracing';

export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index');

/** Activity slots of the background lane when nothing is configured (WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES). */
export const DEFAULT_BACKGROUND_ACTIVITIES = 4;

/** Activity slots of the webhook lane when nothing is configured (WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES): deliveries in flight at once. */
export const DEFAULT_WEBHOOK_ACTIVITIES = 10;
/** Workflow-task slots of the webhook lane: a delivery workflow's task is a few milliseconds (start, one result, the end). */
export const WEBHOOK_WORKFLOW_TASKS = 10;
/** Delivery workflows the webhook lane keeps in memory between tasks; an evicted one replays its few events when it wakes. */
export const WEBHOOK_CACHED_WORKFLOWS = 100;

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
  /** Activity slots of the webhook lane (outbound webhook delivery attempts), on their own task queue. */
  maxConcurrentWebhookActivityTaskExecutions?: number;
  /** Workflows kept in memory between tasks; the SDK's default grows with the heap (~600 per GB), which 10,000 open leads overran. */
  maxCachedWorkflows?: number;
  /** Parley's payload encryption (temporal/payload-codec.ts, `core.payloadCodec`); none: payloads in clear. */
  payloadCodec?: PayloadCodec;
  /** The worker's tracer and span processor (lib/tracing.ts); absent: the global tracer, workflow spans dropped. */
  tracing?: Tracing;
}

/**
 * Parley's worker: three SDK workers in one process on one connection, one per lane.
 *  - `main` on `taskQueue`: the lead workflow and the live lane's activities (replies, manual
 *    messages, replays), which it dispatches to itself eagerly; also the other short operational
 *    workflows (media fetch, circuit resume, credit sweep, channel delete, knowledge documents);
 *  - `background` on `<taskQueue>-background`: the same activities, for the background lane
 *    (workflows/lead/lanes.ts), with its own few slots. A wave of due sequence steps waits in that
 *    queue, paced by those slots, instead of filling the live lane's slots and, through their
 *    completions, the workflow-task queue that live replies share (bench/README.md, "Priority").
 *    It polls no workflow tasks: the lead workflows stay on `taskQueue`;
 *  - `webhooks` on `<taskQueue>-webhooks` (workflows/webhook-delivery.ts `webhookTaskQueue`): the
 *    outbound webhook deliveries, workflow and activities, started there by the relay
 *    (workers/webhook-relay.ts). A delivery attempt is a POST to a tenant's server that may hang
 *    for WEBHOOK_TIMEOUT_MS and be retried for days; on `taskQueue` a burst of them, or one slow
 *    endpoint, held the live lane's activity slots and put their workflow tasks (start, each
 *    result, the end) in the queue live replies wait in, first in, first out.
 *
 * Why the webhooks have a lane of their own rather than the background one: the background lane's
 * slots are few on purpose, because each of its activity results is a workflow task of a lead on
 * `taskQueue`: its slot count paces the wave's pressure on the live lane. A delivery's result is a
 * workflow task of the delivery workflow on its own queue, so the webhook lane's slots put no load
 * on the live lane's queues, and they are spent waiting on the network, not on the LLM or the
 * CPU: it wants more of them. Sharing the 4 background slots, four hanging POSTs (10 s each, then
 * retried) would stop every tenant's sequence steps, bump-ups, extractions and deferred sends, and
 * a wave of steps would hold every tenant's webhooks; raising the 4 would undo the wave's pacing.
 * The background worker would have had to poll workflow tasks as well, so the price is the same:
 * one more SDK worker running workflows (its own workflow thread and small cache, the same bundle).
 *
 * Deliveries started on `taskQueue` before this lane existed (in flight at deploy, or waiting for
 * a retry: WEBHOOK_RETRY_MAX_DURATION_MS, 3 days by default, at most 30) keep their workflow tasks
 * and their activities (scheduled on the workflow's own queue) on `taskQueue`: `main` keeps
 * `webhookDeliveryWorkflow` (workflows/index.ts, one bundle for every lane) and the webhook
 * activities (`createActivities`) registered, so they finish there and nothing is stranded. Keep
 * both registered on `main` for good: they cost nothing, and a worker of the older version still
 * running during a rolling deploy starts deliveries on `taskQueue` until it stops. A worker with
 * WEBHOOK_RELAY=false still polls the webhook lane (any worker may run a delivery).
 */
export interface ParleyWorker {
  main: Worker;
  background: Worker;
  webhooks: Worker;
  /** Runs all three until shutdown (or until one fails, which stops the others). */
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
  // two of the lanes run workflows: bundle once for both (as Worker.create would from workflowsPath)
  const workflowBundle =
    opts.workflowBundle ??
    (await bundleWorkflowCode({ workflowsPath: require.resolve(WORKFLOWS_PATH), ...WORKFLOW_BUNDLE_CONVERTERS, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: Runtime.instance().logger }));
  const main = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    dataConverter,
    workflowBundle,
    activities,
    interceptors: traced.interceptors,
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
  const webhookLane = await Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: webhookTaskQueue(opts.taskQueue),
    dataConverter,
    workflowBundle,
    activities,
    interceptors: traced.interceptors,
    sinks: traced.sinks,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentWebhookActivityTaskExecutions ?? DEFAULT_WEBHOOK_ACTIVITIES,
    maxConcurrentWorkflowTaskExecutions: WEBHOOK_WORKFLOW_TASKS,
    maxCachedWorkflows: WEBHOOK_CACHED_WORKFLOWS,
  });
  const lanes = [main, background, webhookLane];
  return {
    main,
    background,
    webhooks: webhookLane,
    async run() {
      const running = lanes.map((w) => w.run());
      // outbound webhooks: the outbox relay runs while the worker does, and starts each delivery on the webhook lane (workers/webhook-relay.ts)
      const { webhookEndpoints, webhooks } = opts.deps;
      const relay =
        webhookEndpoints && webhooks && webhooks.relay !== false
          ? startWebhookRelay({ endpoints: webhookEndpoints, client, taskQueue: webhookTaskQueue(opts.taskQueue), settings: webhooks, log: opts.deps.log })
          : undefined;
      try {
        await Promise.race(running);
      } finally {
        await relay?.stop();
        // one stopped (shutdown or failure): stop the others too, then report the first failure
        for (const w of lanes) if (w.getState() === 'RUNNING') w.shutdown();
      }
      await Promise.all(running);
    },
    shutdown() {
      for (const w of lanes) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
