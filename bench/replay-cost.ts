/**
 * The workflow code's own CPU cost, without a server or a database: replay every history in
 * test/replay/histories/baseline/ `--rounds` times in one replay worker and report CPU ms per
 * history event and per workflow task. Deterministic input, so two commits (or two settings)
 * compare well even on a busy machine.
 *
 *   npx tsx bench/replay-cost.ts [--rounds 5] [--no-source-maps]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Runtime, Worker } from '@temporalio/worker';
import { parleyDataConverter, WORKFLOW_BUNDLE_CONVERTERS } from '../temporal/data-converter';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

async function main() {
  if (process.argv.includes('--no-source-maps')) process.setSourceMapsEnabled(false);
  Runtime.install({ logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never });
  const rounds = arg('rounds', 5);
  const dir = path.join(__dirname, '..', 'test', 'replay', 'histories', 'baseline');
  const histories = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ workflowId: f, history: historyFromJSON(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))) }));
  const events = histories.reduce((n, h) => n + (h.history.events?.length ?? 0), 0);
  const tasks = histories.reduce((n, h) => n + (h.history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).length, 0);
  const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '..', 'workflows', 'index.ts'), ...WORKFLOW_BUNDLE_CONVERTERS, logger: silent });
  // one warm-up round, then the measured ones
  const run = async () => {
    for await (const r of Worker.runReplayHistories({ workflowBundle, dataConverter: parleyDataConverter() }, histories)) if (r.error) throw r.error;
  };
  await run();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) await run();
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const result = {
    histories: histories.length,
    rounds,
    events,
    workflowTasks: tasks,
    sourceMaps: !process.argv.includes('--no-source-maps'),
    cpuMs: Math.round(cpuMs),
    wallMs: Math.round(performance.now() - t0),
    cpuMsPerEvent: +(cpuMs / (events * rounds)).toFixed(3),
    cpuMsPerWorkflowTask: +(cpuMs / (tasks * rounds)).toFixed(3),
    cpuMsPerHistory: +(cpuMs / (histories.length * rounds)).toFixed(2),
  };
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
