/**
 * `npx tsx --expose-gc bench/workflow-memory.ts [N]`
 *
 * What one lead workflow costs in the worker's reusable V8 context before it has run. The SDK
 * (reuseV8Context, its default) gives every workflow its own webpack module cache, so every module
 * the workflow bundle imports is evaluated once per cached workflow (zod was, until the workflow
 * code stopped importing it; test/unit/workflow-bundle.test.ts keeps it out). This creates N lead
 * workflows in one ReusableVMWorkflowCreator (as the worker's workflow thread does when N leads
 * are cached) and prints the heap growth per workflow (after a full GC), the modules each
 * workflow evaluated for itself, and the bundle size.
 * With `--out FILE` it also writes the result as JSON.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { bundleWorkflowCode } from '@temporalio/worker';
import { parseWorkflowCode } from '@temporalio/worker/lib/worker';
import { ReusableVMWorkflowCreator } from '@temporalio/worker/lib/workflow/reusable-vm';
import type { WorkflowInfo } from '@temporalio/workflow';
import { WORKFLOWS_PATH } from '../workers/worker';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../temporal/data-converter';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../workers/tracing';
import { LEAD_WORKFLOW_TYPE } from '../workflows/lead/definitions';

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export interface WorkflowModuleCost {
  workflows: number;
  preloadModules: string[];
  bundleKB: number;
  /** Modules the last workflow evaluated into its own module cache. */
  perWorkflowModules: string[];
  /** Packages of those modules (`./workflows`, `zod`, …). */
  perWorkflowPackages: string[];
  /** Heap growth per workflow after a full GC (only with --expose-gc). */
  perWorkflowKB?: number;
  /** Workflow interceptor modules in the bundle (workers/tracing.ts WORKFLOW_INTERCEPTOR_MODULES, or none). */
  interceptorModules: number;
  /** Wall time to create one workflow (module evaluation, interceptors), averaged over the n. */
  perWorkflowCreateMs: number;
}

function leadInfo(i: number): WorkflowInfo {
  const now = new Date(0);
  return {
    workflowId: `memory-${i}`,
    runId: `memory-run-${i}`,
    workflowType: LEAD_WORKFLOW_TYPE,
    taskQueue: 'memory',
    namespace: 'default',
    firstExecutionRunId: `memory-run-${i}`,
    attempt: 1,
    historyLength: 3,
    historySize: 1000,
    continueAsNewSuggested: false,
    startTime: now,
    runStartTime: now,
    searchAttributes: {},
    memo: {},
    unsafe: { isReplaying: false, now: () => 0 },
    priority: {},
  } as unknown as WorkflowInfo;
}

const packageOf = (moduleId: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(moduleId)?.[1] ?? moduleId.split('/').slice(0, 2).join('/');

/** Create `n` lead workflows (no activation) from a bundle with `preloadModules`; see the file comment. */
export async function workflowModuleCost(preloadModules: string[], n: number, workflowInterceptorModules: string[] = WORKFLOW_INTERCEPTOR_MODULES): Promise<WorkflowModuleCost> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const heapUsed = () => {
    gc?.();
    gc?.();
    return v8.getHeapStatistics().used_heap_size;
  };
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve(WORKFLOWS_PATH), preloadModules, ...WORKFLOW_BUNDLE_CONVERTERS, workflowInterceptorModules, logger: quiet });
  const parsed = parseWorkflowCode(bundle.code, `/tmp/parley-workflow-memory-${preloadModules.length}-${workflowInterceptorModules.length}.js`);
  const creator = await ReusableVMWorkflowCreator.create(parsed, 5000, new Set());
  try {
    const base = heapUsed();
    const workflows = [];
    const started = performance.now();
    for (let i = 0; i < n; i += 1) workflows.push(await creator.createWorkflow({ info: leadInfo(i), randomnessSeed: [i], now: 0, showStackTraceSources: false }));
    const createMs = performance.now() - started;
    const after = heapUsed();
    const context = (creator as unknown as { _context: { __TEMPORAL_ACTIVATOR__?: { moduleCache: Map<string, unknown> } } })._context;
    const perWorkflowModules = [...(context.__TEMPORAL_ACTIVATOR__?.moduleCache.keys() ?? [])];
    for (const w of workflows) await w.dispose();
    return {
      workflows: n,
      preloadModules,
      bundleKB: Math.round(parsed.code.slice(0, parsed.code.lastIndexOf('//# sourceMappingURL=')).length / 1024),
      perWorkflowModules,
      perWorkflowPackages: [...new Set(perWorkflowModules.map(packageOf))].sort(),
      ...(gc ? { perWorkflowKB: Math.round((after - base) / n / 1024) } : {}),
      interceptorModules: workflowInterceptorModules.length,
      perWorkflowCreateMs: Math.round((createMs / n) * 100) / 100,
    };
  } finally {
    await creator.destroy();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 200);
  const outAt = args.indexOf('--out');
  if (!(globalThis as { gc?: unknown }).gc) throw new Error('run with --expose-gc: npx tsx --expose-gc bench/workflow-memory.ts [N]');
  const variants = [];
  // with and without the tracing interceptors (request ids and traces), back to back
  for (const [preload, interceptors] of [
    [[], []],
    [[], WORKFLOW_INTERCEPTOR_MODULES],
  ] as [string[], string[]][]) {
    const r = await workflowModuleCost(preload, n, interceptors);
    variants.push({ ...r, preloadModules: r.preloadModules.map((m) => path.relative(process.cwd(), m)), perWorkflowModules: r.perWorkflowModules.length });
  }
  const result = { benchmark: 'parley-workflow-memory', at: new Date().toISOString(), node: process.version, variants };
  console.log(JSON.stringify(result, null, 2));
  if (outAt >= 0 && args[outAt + 1]) writeFileSync(args[outAt + 1]!, `${JSON.stringify(result, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
