/** The chaos run's summary table. */
import type { ChaosEvent, Check, DuplicateSend, WorkflowSummary } from './checks';
import type { DeliveryStats } from './meta-sender';
import type { ChaosOptions } from './options';

interface WorkerRecord {
  n: number;
  pid: number;
  startupMs: number | null;
  upS: number | null;
  exit: { code: number | null; signal: string | null } | null;
  killedByChaos: boolean;
  lastLines?: string[];
}

export function printSummary(r: {
  result: {
    durationS: number;
    passed: boolean;
    machine: { cpus: number; node: string };
    delivery: DeliveryStats;
    drain: { drained: boolean; waitedS: number };
    chaos: { workers: WorkerRecord[] };
    workflows?: unknown;
  };
  checks: Check[];
  duplicates: DuplicateSend[];
  events: ChaosEvent[];
  sendStart: number;
  opts: ChaosOptions;
  commit?: string;
}): void {
  const { result, opts } = r;
  const out: string[] = [''];
  out.push(
    `Parley chaos — ${opts.messages} messages / ${opts.leads} leads at ${opts.rate}/s, ${opts.workerKills} worker SIGKILLs, ` +
      `${opts.serverRestarts} dev-server restarts (${opts.serverSignal})${opts.quick ? ' — QUICK' : ''}; ${result.machine.cpus} cpus, node ${result.machine.node}, ` +
      `commit ${r.commit ?? '?'}, seed ${opts.seed}, ${(result.durationS / 60).toFixed(1)} min`,
  );
  const w = [10, 46, 12, 12, 4];
  const row = (c: string[]) => c.map((x, i) => (i === 2 || i === 3 ? x.padStart(w[i]!) : x.padEnd(w[i]!))).join('  ');
  out.push(row(['group', 'check', 'expected', 'actual', '']));
  out.push('-'.repeat(w.reduce((a, b) => a + b + 2, -2)));
  for (const c of r.checks) out.push(row([c.group, c.name, c.expected, c.actual, c.pass ? '✓' : '✗ FAIL']));
  out.push('');

  const d = result.delivery;
  const answers = Object.entries(d.answers)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}×${v}`)
    .join(', ');
  out.push(
    `webhooks: ${d.posts} POSTs incl. statuses (${answers}); ${d.redeliveriesAfterFailure} redeliveries after a failure, ${d.duplicateDeliveries} duplicate deliveries; ` +
      `longest first-try → accepted ${(d.maxAcceptDelayMs / 1000).toFixed(1)} s; ` +
      `${d.statusWebhooks.accepted}/${d.statusWebhooks.scheduled} status webhooks (sent, delivered) accepted${opts.statusWebhooks ? '' : ' (--no-status-webhooks)'}; ` +
      `${d.failureWindows.length} window(s) of refusals` +
      (d.failureWindows.length ? ` at ${d.failureWindows.map(([a, b]) => `${((a - r.sendStart) / 1000).toFixed(0)}–${((b - r.sendStart) / 1000).toFixed(0)} s`).join(', ')}` : ''),
  );
  const workers = result.chaos.workers;
  const startups = workers.map((x) => x.startupMs).filter((x): x is number => x !== null);
  const selfExits = workers.filter((x) => x.exit && !x.killedByChaos);
  out.push(
    `chaos: ${r.events
      .map((e) => `${((e.at - r.sendStart) / 1000).toFixed(0)}s ${e.kind === 'worker-kill' ? 'kill' : e.kind === 'server-stop' ? 'server↓' : 'server↑'}`)
      .join(', ')}`,
  );
  out.push(
    `workers: ${workers.length} incarnations, start-up (workers/main.ts, bundles the workflows) ${startups.length ? `${(Math.min(...startups) / 1000).toFixed(1)}–${(Math.max(...startups) / 1000).toFixed(1)} s` : '?'}; ` +
      `${selfExits.length} exited by themselves${selfExits.length ? ` (${selfExits.map((x) => `#${x.n} code ${x.exit?.code}`).join(', ')})` : ''}`,
  );
  for (const x of selfExits.slice(0, 3)) {
    if (x.lastLines?.length) out.push(`  worker #${x.n} last words: ${x.lastLines.at(-1)!.slice(0, 300)}`);
  }
  out.push(`drain: ${result.drain.drained ? 'settled' : 'NOT settled'} after ${result.drain.waitedS} s`);
  const wf = result.workflows as (WorkflowSummary & { runsPerLeadTotal?: number }) | undefined;
  if (wf) {
    out.push(
      `temporal: ${wf.executions} lead executions (${Object.entries(wf.byStatus)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}); workflow task timeouts ${wf.workflowTaskTimeouts}; workflow task failures ${Object.values(wf.workflowTaskFailures).reduce((a, b) => a + b, 0)}`,
    );
    for (const [k, v] of Object.entries(wf.workflowTaskFailures)) out.push(`  workflow task failed ×${v}: ${k}`);
    const retried = Object.entries(wf.retriedActivities).sort((a, b) => b[1] - a[1]);
    if (retried.length) out.push(`  activities retried (completed on a later attempt): ${retried.map(([k, v]) => `${k} ×${v}`).join('; ')}`);
    const rs = wf.retriedSends;
    if (rs.alreadySent + rs.sentOnRetry > 0) {
      out.push(
        `  sends retried after their worker died: ${rs.alreadySent} found the stored wamid and sent nothing (alreadySent), ` +
          `${rs.sentOnRetry} sent on the retry (the first attempt died before the Graph API call — or after it but before storing the wamid: see duplicates)`,
      );
    }
    for (const [k, v] of Object.entries(wf.activityFailures)) out.push(`  activity failed for good ×${v}: ${k}`);
    for (const f of wf.failed) out.push(`  FAILED workflow ${f.workflowId} run ${f.runId}: ${f.status} ${f.failure ?? ''}`);
    for (const n of wf.nondeterminism) out.push(`  NON-DETERMINISM ${n.workflowId} run ${n.runId} event ${n.eventId}: ${n.message}`);
  }
  if (r.duplicates.length) {
    out.push('');
    out.push(`DUPLICATE SENDS (${r.duplicates.length}): the lead received the same reply more than once`);
    for (const dup of r.duplicates) {
      out.push(`  outbound ${dup.outboundMessageId} to ${dup.to} (${dup.workflowId ?? '?'}): sent ${dup.sends.length}× at ${dup.sends.map((s) => `${s.at} (${s.wamid})`).join(', ')}`);
      out.push(`    cause: ${dup.cause}`);
    }
  }
  out.push('');
  out.push(r.checks.every((c) => c.pass) ? 'PASSED: every check holds' : `FAILED: ${r.checks.filter((c) => !c.pass).map((c) => c.name).join('; ')}`);
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}
