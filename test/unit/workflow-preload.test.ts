/**
 * The worker's bundle evaluates zod once in the shared workflow context, not once per cached lead
 * workflow (workers/workflow-preload.ts): per workflow that was ~0.6 MB of heap.
 */
import { workflowModuleCost } from '../../bench/workflow-memory';
import { WORKFLOW_PRELOAD_MODULES } from '../../workers/worker';

jest.setTimeout(120_000);

test('without the preload every lead workflow evaluates zod itself (what the preload is for)', async () => {
  const cost = await workflowModuleCost([], 2);
  expect(cost.perWorkflowPackages).toContain('zod');
});

test('with the worker preload a lead workflow evaluates its own modules but shares zod', async () => {
  const cost = await workflowModuleCost(WORKFLOW_PRELOAD_MODULES, 3);
  expect(cost.perWorkflowPackages).not.toContain('zod');
  // the workflow's own modules (and their module-level state) stay per workflow
  expect(cost.perWorkflowModules).toContain('./workflows/lead/workflow.ts');
  expect(cost.perWorkflowModules).toContain('./workflows/lead/policy/sequence.ts');
});
