/**
 * What the workflow bundle is made of. With reuseV8Context every workflow instance evaluates
 * the bundle's modules into its own module cache, so each package in the bundle costs CPU at
 * every new or re-cached workflow and memory for every cached one (zod alone was 37 % of the
 * bundle's code before it was kept out). Workflow code may use the SDK and its own modules;
 * a new package needs a reason and a place in this list.
 */
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../temporal/data-converter';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/tracing';

jest.setTimeout(120_000);

// no OpenTelemetry package: the tracing interceptors in the bundle are Parley's own (workflows/tracing-interceptors.ts says why)
const ALLOWED_PACKAGES = ['@temporalio/common', '@temporalio/workflow', 'long', 'ms', 'nexus-rpc'];

test('the workflow bundle (with the tracing interceptors) holds only the SDK and our workflow code (no zod, no OpenTelemetry)', async () => {
  const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '../../workflows/index.ts'), ...WORKFLOW_BUNDLE_CONVERTERS, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: silent });
  const modules = [...code.matchAll(/^\/\*\*\*\/ "([^"]+)"/gm)].map((m) => m[1]!);
  expect(modules.length).toBeGreaterThan(20);
  const packages = new Set(modules.filter((m) => m.includes('node_modules/')).map((m) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m)![1]!));
  expect([...packages].sort()).toEqual(expect.arrayContaining(['@temporalio/workflow']));
  expect(modules).toContain('./workflows/tracing-interceptors.ts');
  expect([...packages].filter((p) => !ALLOWED_PACKAGES.includes(p))).toEqual([]);
  // and our own modules are workflow code, not services or activities
  const ours = modules.filter((m) => !m.includes('node_modules/'));
  expect(ours.filter((m) => /^\.\/(activities|services|api|db|lib|composition)\//.test(m))).toEqual([]);
  // the bundle converts failures as the worker does (message and stack trace in an encoded payload)
  expect(ours).toContain('./temporal/failure-converter.ts');
});
