import path from 'node:path';
import { Client } from '@temporalio/client';
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';

export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index');

/** Evaluated once per worker, shared by every cached workflow (see workflow-preload.ts); pass to every bundleWorkflowCode. */
export const WORKFLOW_PRELOAD_MODULES = [require.resolve('./workflow-preload')];

export interface ParleyWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A prebuilt bundle (tests, production; bundle it with WORKFLOW_PRELOAD_MODULES); otherwise the worker bundles workflows/ at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivityTaskExecutions?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  /** Workflows kept in memory between tasks; the SDK's default grows with the heap (~600 per GB), which 10,000 open leads overran. */
  maxCachedWorkflows?: number;
}

/** One worker: the lead workflow plus every activity, on one task queue. */
export async function createParleyWorker(opts: ParleyWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: require.resolve(WORKFLOWS_PATH), bundlerOptions: { preloadModules: WORKFLOW_PRELOAD_MODULES } }),
    // the operational activities (circuit fan-out, credit sweep) talk to Temporal over the worker's own connection
    activities: createActivities({ ...opts.deps, temporalClient: opts.deps.temporalClient ?? new Client({ connection: opts.connection, namespace: opts.namespace }) }),
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions,
    maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTaskExecutions,
    ...(opts.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: opts.maxCachedWorkflows } : {}),
  });
}
