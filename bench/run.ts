/**
 * `npm run bench [-- --quick | --rate N --seconds N --leads N ...]`
 *
 * Starts a fresh in-memory Temporal dev server, Parley's API + worker in this process (embedded
 * in-memory PGlite unless DATABASE_URL is set), and an "outside world" child process with the
 * fake Meta Graph API, the fake LLM and the webhook load generator. Then measures:
 *   (c) end to end: inbound webhook → reply accepted by the fake Graph API, over a burst of
 *       leads, on an idle system (so it runs first);
 *   (a) webhook acceptance: signed WhatsApp webhooks over real HTTP, open loop, fixed rate;
 *   (b) the ceiling: bare client.workflow.signalWithStart at the same rate (same workflow
 *       type, task queue and arguments as the webhook's);
 *   (a) and (b) take turns in one-second slices on one clock, so both meet the same worker
 *   backlog and the same machine load.
 * Writes bench/results/<timestamp>.json and bench/results/latest.json and prints a table.
 * See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TypedSearchAttributes } from '@temporalio/common';
import { findTemporalBinary } from '../temporal/binaries';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { SA } from '../temporal/search-attributes';
import { inboundSignal, LEAD_WORKFLOW_TYPE, type InboundMessage, type LeadWorkflowInput } from '../workflows/lead/definitions';
import { leadSummary } from '../workflows/lead/policy/summary';
import { turnAnatomy, type TurnAnatomy, type TurnSample } from './anatomy';
import { errorText, runOpenLoop, summarizeRun, type OpenLoopSummary } from './open-loop';
import { parseOptions, type BenchOptions } from './options';
import { waIdFor } from './protocol';
import { machineBusyNow, machineInfo, startProbe, type ResourceProbe, type ResourceUsage } from './resources';
import { setupAgent, setupTenant, type Tenant } from './setup';
import { startParleyTopology, type ParleyStack } from './stack';
import { nowMs, round, summarize, type LatencySummary } from './stats';
import { startWorld, type World } from './world-client';
import { signedLoad } from './util';

/** wa_id prefixes: one lead per request, and each phase's replies are told apart by prefix. */
const PREFIX = { warmupWebhook: '91', warmupBare: '92', webhook: '93', bare: '94', e2e: '95', idle: '96', sweepWebhook: '97', sweepBare: '98', all: '9' } as const;
/** Leads sent one at a time (each after the previous one's reply) to time a turn nobody queues behind. */
const IDLE_LEADS = 5;
/** Length of one slice when (a) and (b) take turns. */
const SLICE_MS = 1000;
/** How many end-to-end leads' histories are read back for the turn anatomy. */
const ANATOMY_SAMPLE = 30;
/** Bare signalWithStart p99 under which a rate of the sweep counts as "kept up". */
const SWEEP_P99_MS = 50;
/** The sweep gives up after a rate whose bare p99 exceeds this (saturated: higher rates only add backlog). */
const SWEEP_GIVE_UP_MS = 1000;
/** Pause between the rates of the sweep (the worker catches up a little). */
const SWEEP_PAUSE_MS = 3000;
/** Wait after the last reply before reading histories or writing again (the turn's bookkeeping after the send). */
const SETTLE_MS = 3000;
/** (d): the idle window before it, to learn each process's CPU with nothing to do. */
const IDLE_WINDOW_MS = 5000;


interface E2EPhase {
  /** Inbound → reply of single leads sent one at a time on an idle system (no queueing), ms. */
  idleLatencyMs: LatencySummary;
  leads: number;
  offeredRate: number;
  /** Acknowledgements of the lead webhooks themselves. */
  webhook: OpenLoopSummary;
  replied: number;
  missing: number;
  timedOut: boolean;
  /** Leads of earlier phases still waiting for a reply when this phase started (should be 0). */
  backlogAtStart: number;
  /** Inbound webhook scheduled → reply request reached the fake Graph API, ms. */
  latencyMs: LatencySummary;
  /**
   * Reply throughput: (replies − 1) / (last reply − first reply), per second. Fixed delays
   * every turn has (the workflow's burst debounce, the pipeline latency) shift all replies
   * alike and do not count; capped by the offered rate.
   */
  turnsPerS: number;
  /** replies / (last reply − first scheduled webhook): throughput with the first turn's latency included. */
  turnsPerSFromFirstSend: number;
  /** Last reply − first scheduled webhook, s. */
  spanS: number;
  resources: ResourceUsage;
  /**
   * CPU spent per answered lead during (c) (webhook + turn), ms, and the turns/s that cost
   * allows if Parley and Temporal had every core of the machine to themselves.
   */
  cpuPerTurn?: CpuPerTurn;
  /** The first turn of a new lead (WorkflowExecutionStarted → reply sent / idle). */
  anatomy?: TurnAnatomy;
}

/**
 * CPU per answered lead, ms. `parleyMs` is Parley's share: the bench process in the single
 * topology (API + worker), the API and worker processes in the split topology (then `apiMs` and
 * `workerMs` are its parts and `benchMs` is the bench process: bare loop, bookkeeping).
 */
interface CpuPerTurn {
  parleyMs: number;
  apiMs?: number;
  workerMs?: number;
  benchMs?: number;
  temporalMs: number;
  totalMs: number;
  turnsPerSOnAllCores: number;
}

/** (d) ordinary turns: leads of (c), answered once and idle, write again. */
interface OrdinaryTurnsPhase {
  leads: number;
  offeredRate: number;
  webhook: OpenLoopSummary;
  replied: number;
  /** Webhook scheduled → the second reply reached the fake Graph API, ms. */
  latencyMs: LatencySummary;
  resources: ResourceUsage;
  cpuPerTurn?: CpuPerTurn;
  /** Each process's CPU over IDLE_WINDOW_MS with nothing to do, just before (d). */
  idleResources?: ResourceUsage;
  /** cpuPerTurn counting only each process's CPU above its idle rate: the marginal cost of a turn. */
  cpuPerTurnAboveIdle?: CpuPerTurn;
  anatomy?: TurnAnatomy;
}

/** (e) rate sweep: (a)+(b) interleaved at ascending rates. */
interface SweepPhase {
  seconds: number;
  p99LimitMs: number;
  steps: { rate: number; webhook: OpenLoopSummary; bare: OpenLoopSummary; ratio: number; p99Ratio: number; resources: ResourceUsage }[];
  /** Highest offered rate at which the bare loop's p99 stayed under the limit (null: none). */
  highestRateBareP99Ok: number | null;
  /** Rates not run because a lower one saturated (bare p99 over SWEEP_GIVE_UP_MS). */
  skipped: number[];
}

interface AcceptancePhase {
  mode: 'interleaved';
  rate: number;
  sliceMs: number;
  backlogAtStart: number;
  webhook: OpenLoopSummary;
  bare: OpenLoopSummary;
  /** webhook.achievedRate / bare.achievedRate */
  ratio: number;
  /** webhook p99 / bare p99 */
  p99Ratio: number;
  resources: ResourceUsage;
  /** Replies the worker delivered while (a)+(b) ran: its throughput under this load. */
  workerWhileLoaded: { replies: number; windowS: number; turnsPerS: number };
  /** Leads from (a)+(b) still without a reply when the bench stopped (the worker's backlog). */
  unrepliedAtEnd: number;
}

interface Target {
  name: string;
  target: string;
  value: number;
  unit: string;
  pass: boolean;
}

// ---------------------------------------------------------------------------------------------
// (b) the ceiling: bare signalWithStart, exactly the call the webhook makes per message

async function bareSignalWithStart(
  stack: ParleyStack,
  tenant: Tenant,
  load: { rate: number; count: number; prefix: string; maxInFlight: number; t0?: number; slice?: { ms: number; parity: 0 | 1 } },
): Promise<OpenLoopSummary> {
  // In the split topology this runs in the bench process on its own client: the ceiling without the API.
  const client = stack.temporal.client;
  const { prefix } = load;
  const run = await runOpenLoop({
    rate: load.rate,
    count: load.count,
    t0: load.t0,
    slice: load.slice,
    maxInFlight: load.maxInFlight,
    fire: async (i) => {
      const contactId = waIdFor(prefix, i);
      const input: LeadWorkflowInput = {
        tenantId: tenant.tenantId,
        channelAccountId: tenant.channelId,
        channel: 'whatsapp',
        contactId,
        contactName: 'Bench Lead',
      };
      const message: InboundMessage = {
        providerMessageId: `wamid.BAREBENCH${prefix}${i}${Date.now()}`,
        channel: 'whatsapp',
        contactId,
        contactName: 'Bench Lead',
        sentAt: new Date().toISOString(),
        type: 'text',
        text: `Hi, I'm interested in the premium plan (bench ${i})`,
      };
      try {
        await client.workflow.signalWithStart(LEAD_WORKFLOW_TYPE, {
          workflowId: stack.temporal.leadWorkflowId(tenant.channelId, contactId),
          taskQueue: stack.taskQueue,
          args: [input],
          signal: inboundSignal,
          signalArgs: [message],
          staticSummary: leadSummary({ channel: 'whatsapp', contactId, contactName: 'Bench Lead' }),
          typedSearchAttributes: new TypedSearchAttributes([
            { key: SA.TenantId, value: tenant.tenantId },
            { key: SA.ChannelAccountId, value: tenant.channelId },
            { key: SA.Channel, value: 'whatsapp' },
            { key: SA.LeadStage, value: 'New' },
            { key: SA.LeadMode, value: 'ai' },
          ]),
        });
        return { ok: true };
      } catch (err) {
        return { ok: false, error: errorText(err) };
      }
    },
  });
  return summarizeRun(run);
}

// ---------------------------------------------------------------------------------------------

function log(msg: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function gitCommit(): string | undefined {
  if (process.env.BENCH_COMMIT?.trim()) return process.env.BENCH_COMMIT.trim(); // a tree that is not a git checkout
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.join(__dirname, '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function temporalCliVersion(): string | undefined {
  try {
    const cli = findTemporalBinary('cli');
    return cli ? execFileSync(cli.path, ['--version'], { encoding: 'utf8' }).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** What the phases share. */
interface Ctx {
  opts: BenchOptions;
  world: World;
  stack: ParleyStack;
  tenant: Tenant;
  temporalPid?: number;
  /** Requests accepted so far (all phases), to tell how many leads still wait for a reply. */
  acceptedTotal: number;
}

function webhookLoad(ctx: Ctx, load: { rate: number; count: number; prefix: string; t0?: number; slice?: { ms: number; parity: 0 | 1 } }) {
  return ctx.world.webhooks(signedLoad(ctx.stack.apiUrl, ctx.tenant.phoneNumberId, { ...load, maxSockets: ctx.opts.maxSockets }));
}

/** Leads accepted so far that have no reply yet. */
async function backlog(ctx: Ctx): Promise<number> {
  if (!ctx.stack.hasWorker) return 0;
  const r = await ctx.world.replies({ prefix: PREFIX.all, expected: Number.MAX_SAFE_INTEGER, timeoutMs: 0 });
  return Math.max(0, ctx.acceptedTotal - r.replied);
}

/** Warm-up: JIT, connections, the routing cache, the worker's workflow VM; then let it drain. */
async function warmUp(ctx: Ctx): Promise<void> {
  const { opts } = ctx;
  log(`warm-up: ${opts.warmup} webhooks + ${opts.warmup} bare signalWithStart${ctx.stack.hasWorker ? ', then their replies' : ''}`);
  const warmRate = Math.min(opts.rate, 50);
  const ws = await webhookLoad(ctx, { rate: warmRate, count: opts.warmup, prefix: PREFIX.warmupWebhook });
  const bs = await bareSignalWithStart(ctx.stack, ctx.tenant, { rate: warmRate, count: opts.warmup, prefix: PREFIX.warmupBare, maxInFlight: opts.maxSockets });
  ctx.acceptedTotal += ws.summary.ok + bs.ok;
  if (ctx.stack.hasWorker) await ctx.world.replies({ prefix: PREFIX.all, expected: ctx.acceptedTotal, timeoutMs: opts.drainTimeoutS * 1000 });
}

/** Inbound → reply for single leads, one at a time: the latency of a turn nobody queues behind. */
async function idleTurns(ctx: Ctx): Promise<LatencySummary> {
  const latencies: number[] = [];
  for (let i = 0; i < IDLE_LEADS; i += 1) {
    const prefix = `${PREFIX.idle}${i}`;
    const sent = await webhookLoad(ctx, { rate: 1, count: 1, prefix });
    const send = sent.sends[0];
    if (!send?.ok) continue;
    ctx.acceptedTotal += 1;
    const r = await ctx.world.replies({ prefix, expected: 1, timeoutMs: 10_000 });
    const at = r.replyAt[send.waId];
    if (at !== undefined) latencies.push(at - send.dueAt);
  }
  return summarize(latencies);
}

function probe(ctx: Ctx, worldCpuMs0: number): ResourceProbe {
  return startProbe({ temporalPid: ctx.temporalPid, worldCpuMs0, apiPid: ctx.stack.children.api?.pid, workerPid: ctx.stack.children.worker?.pid });
}

/** CPU per answered lead from a phase's resources: Parley (API + worker) + Temporal. */
function cpuPerTurnOf(resources: ResourceUsage, turns: number, idle?: ResourceUsage): CpuPerTurn | undefined {
  const c = resources.cpuPct;
  if (turns <= 0 || c.temporal === undefined) return undefined;
  // with `idle`: only the CPU above what each process burns when nothing happens (pollers, timers
  // of the dev server), i.e. the marginal cost of the turns; a process's idle rate comes from `idle`
  const baseline = (pct: number, key: keyof ResourceUsage['cpuPct']) => (idle ? Math.max(0, pct - (idle.cpuPct[key] ?? 0)) : pct);
  const perTurn = (pct: number, key: keyof ResourceUsage['cpuPct']) => ((baseline(pct, key) / 100) * resources.wallS * 1000) / turns;
  const split = c['parley-api'] !== undefined || c['parley-worker'] !== undefined;
  const apiMs = perTurn(c['parley-api'] ?? 0, 'parley-api');
  const workerMs = perTurn(c['parley-worker'] ?? 0, 'parley-worker');
  const parleyMs = split ? apiMs + workerMs : perTurn(c.parley, 'parley');
  const temporalMs = perTurn(c.temporal, 'temporal');
  return {
    parleyMs: round(parleyMs, 1),
    ...(split ? { apiMs: round(apiMs, 1), workerMs: round(workerMs, 1), benchMs: round(perTurn(c.parley, 'parley'), 1) } : {}),
    temporalMs: round(temporalMs, 1),
    totalMs: round(parleyMs + temporalMs, 1),
    turnsPerSOnAllCores: round((os.cpus().length * 1000) / (parleyMs + temporalMs), 1),
  };
}

/** The (c) leads whose histories are read for the anatomy: the first ones (they also take part in (d)). */
interface E2ELeads {
  sends: { waId: string; dueAt: number; ok: boolean }[];
  replyAt: Record<string, number>;
}

/** (c) end to end, on an otherwise idle system. */
async function endToEnd(ctx: Ctx): Promise<{ phase: E2EPhase; leads: E2ELeads }> {
  const { opts, world: w } = ctx;
  log(`(c) single leads one at a time (${IDLE_LEADS}), to time an unqueued turn`);
  const idleLatencyMs = await idleTurns(ctx);
  log(`(c) end to end: ${opts.leads} leads at ${opts.leadRate}/s, one message each; waiting up to ${opts.drainTimeoutS}s for the replies`);
  const backlogAtStart = await backlog(ctx);
  const p = probe(ctx, await w.cpuMs());
  const sent = await webhookLoad(ctx, { rate: opts.leadRate, count: opts.leads, prefix: PREFIX.e2e });
  ctx.acceptedTotal += sent.summary.ok;
  const accepted = sent.sends.filter((x) => x.ok);
  const replies = await w.replies({ prefix: PREFIX.e2e, expected: accepted.length, timeoutMs: opts.drainTimeoutS * 1000 });
  const resources = p.stop(await w.cpuMs());
  const latencies: number[] = [];
  let lastReply = 0;
  let firstReply = Number.POSITIVE_INFINITY;
  for (const x of accepted) {
    const at = replies.replyAt[x.waId];
    if (at === undefined) continue;
    latencies.push(at - x.dueAt);
    lastReply = Math.max(lastReply, at);
    firstReply = Math.min(firstReply, at);
  }
  const firstDue = sent.sends.reduce((m, x) => Math.min(m, x.dueAt), Number.POSITIVE_INFINITY);
  const spanS = lastReply > 0 ? (lastReply - firstDue) / 1000 : 0;
  const replySpanS = latencies.length > 1 ? (lastReply - firstReply) / 1000 : 0;
  const e2e: E2EPhase = {
    idleLatencyMs,
    leads: opts.leads,
    offeredRate: opts.leadRate,
    webhook: sent.summary,
    replied: latencies.length,
    missing: accepted.length - latencies.length,
    timedOut: replies.timedOut,
    backlogAtStart,
    latencyMs: summarize(latencies),
    turnsPerS: round(replySpanS > 0 ? (latencies.length - 1) / replySpanS : 0, 1),
    turnsPerSFromFirstSend: round(spanS > 0 ? latencies.length / spanS : 0, 1),
    spanS: round(spanS, 2),
    resources,
    cpuPerTurn: cpuPerTurnOf(resources, latencies.length),
  };
  log(`(c) end to end: ${e2e.replied}/${accepted.length} replied, ${e2e.turnsPerS} turns/s, p50 ${e2e.latencyMs.p50} ms`);
  return { phase: e2e, leads: { sends: sent.sends, replyAt: replies.replyAt } };
}

/**
 * (d) ordinary turns: the first `turns` leads of (c), answered once and idle by now, write a
 * second message. Then both anatomies are read: the first turn of those leads (start → reply)
 * and their ordinary turn (the new signal → reply).
 */
async function ordinaryTurns(ctx: Ctx, e2e: E2EPhase, first: E2ELeads): Promise<OrdinaryTurnsPhase> {
  const { opts, world: w } = ctx;
  const n = Math.min(opts.turns, first.sends.length);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  // what each process burns with nothing to do, so (d) can also give the CPU above it
  const idleProbe = probe(ctx, await w.cpuMs());
  await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
  const idle = idleProbe.stop(await w.cpuMs());
  log(`(d) ordinary turns: ${n} leads of (c), answered once and idle, write again at ${opts.leadRate}/s`);
  const p = probe(ctx, await w.cpuMs());
  const since = Date.now();
  const sent = await webhookLoad(ctx, { rate: opts.leadRate, count: n, prefix: PREFIX.e2e });
  const accepted = sent.sends.filter((x) => x.ok);
  const replies = await w.replies({ prefix: PREFIX.e2e, after: since, expected: accepted.length, timeoutMs: opts.drainTimeoutS * 1000 });
  const resources = p.stop(await w.cpuMs());
  const latencies: number[] = [];
  for (const x of accepted) {
    const at = replies.replyAt[x.waId];
    if (at !== undefined) latencies.push(at - x.dueAt);
  }
  const phase: OrdinaryTurnsPhase = {
    leads: n,
    offeredRate: opts.leadRate,
    webhook: sent.summary,
    replied: latencies.length,
    latencyMs: summarize(latencies),
    resources,
    cpuPerTurn: cpuPerTurnOf(resources, latencies.length),
    idleResources: idle,
    cpuPerTurnAboveIdle: cpuPerTurnOf(resources, latencies.length, idle),
  };
  log(`(d) ordinary turns: ${phase.replied}/${accepted.length} replied, p50 ${phase.latencyMs.p50} ms`);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const sample = accepted.slice(0, ANATOMY_SAMPLE);
  const firstDue = new Map(first.sends.map((x) => [x.waId, x.dueAt]));
  const wf = (waId: string) => ctx.stack.temporal.leadWorkflowId(ctx.tenant.channelId, waId);
  try {
    const firstTurns: TurnSample[] = sample.map((x) => ({ workflowId: wf(x.waId), dueAt: firstDue.get(x.waId) ?? x.dueAt, replyAt: first.replyAt[x.waId], first: true }));
    e2e.anatomy = await turnAnatomy(ctx.stack.temporal.client, firstTurns);
    const later: TurnSample[] = sample.map((x) => ({ workflowId: wf(x.waId), dueAt: x.dueAt, replyAt: replies.replyAt[x.waId], first: false }));
    phase.anatomy = await turnAnatomy(ctx.stack.temporal.client, later);
  } catch (err) {
    log(`turn anatomy skipped: ${errorText(err)}`);
  }
  return phase;
}

/** (a) + (b): the webhook and bare signalWithStart take turns in slices on one clock. */
async function acceptance(ctx: Ctx, load: { rate: number; count: number; webhookPrefix: string; barePrefix: string }): Promise<AcceptancePhase> {
  const { opts, world: w } = ctx;
  const { rate, count } = load;
  log(`(a) webhook over HTTP + (b) bare signalWithStart: ${count} each at ${rate}/s, alternating every ${SLICE_MS} ms`);
  const backlogAtStart = await backlog(ctx);
  const p = probe(ctx, await w.cpuMs());
  const t0 = nowMs() + 1500; // time for the child to build and sign its bodies
  const [webhookRun, bare] = await Promise.all([
    webhookLoad(ctx, { rate, count, prefix: load.webhookPrefix, t0, slice: { ms: SLICE_MS, parity: 0 } }),
    bareSignalWithStart(ctx.stack, ctx.tenant, { rate, count, prefix: load.barePrefix, maxInFlight: opts.maxSockets, t0, slice: { ms: SLICE_MS, parity: 1 } }),
  ]);
  const end = nowMs();
  const resources = p.stop(await w.cpuMs());
  const webhook = webhookRun.summary;
  ctx.acceptedTotal += webhook.ok + bare.ok;
  const all = await w.replies({ prefix: PREFIX.all, expected: Number.MAX_SAFE_INTEGER, timeoutMs: 0 });
  const inWindow = Object.values(all.replyAt).filter((at) => at >= t0 && at <= end).length;
  const replied = Object.keys(all.replyAt).filter((to) => to.startsWith(load.webhookPrefix) || to.startsWith(load.barePrefix)).length;
  const windowS = (end - t0) / 1000;
  const ratio = bare.achievedRate > 0 ? webhook.achievedRate / bare.achievedRate : 0;
  log(`(a) webhook ${webhook.achievedRate}/s, p99 ${webhook.latencyMs.p99} ms; (b) bare ${bare.achievedRate}/s, p99 ${bare.latencyMs.p99} ms`);
  return {
    mode: 'interleaved',
    rate,
    sliceMs: SLICE_MS,
    backlogAtStart,
    webhook,
    bare,
    ratio: round(ratio, 3),
    p99Ratio: round(bare.latencyMs.p99 > 0 ? webhook.latencyMs.p99 / bare.latencyMs.p99 : Number.NaN, 2),
    resources,
    workerWhileLoaded: { replies: inWindow, windowS: round(windowS, 2), turnsPerS: round(windowS > 0 ? inWindow / windowS : 0, 1) },
    unrepliedAtEnd: webhook.ok + bare.ok - replied,
  };
}

/**
 * (e) rate sweep: (a)+(b) interleaved at each rate, ascending, `rateSeconds` each. A rate that
 * misses the p99 limit does not end it (on a shared machine one slow second can), one whose bare
 * p99 passes SWEEP_GIVE_UP_MS does (saturated: higher rates would only add backlog).
 */
async function rateSweep(ctx: Ctx): Promise<SweepPhase> {
  const { opts } = ctx;
  const steps: SweepPhase['steps'] = [];
  const skipped: number[] = [];
  let highest: number | null = null;
  let stop = false;
  for (const [k, rate] of opts.rates.entries()) {
    if (stop) {
      skipped.push(rate);
      continue;
    }
    const count = Math.max(1, Math.round(rate * opts.rateSeconds));
    // wa_id prefixes 97<k> / 98<k>: each rate's leads apart (k < 10 rates; more share a prefix, harmlessly)
    const acc = await acceptance(ctx, { rate, count, webhookPrefix: `${PREFIX.sweepWebhook}${k % 10}`, barePrefix: `${PREFIX.sweepBare}${k % 10}` });
    steps.push({ rate, webhook: acc.webhook, bare: acc.bare, ratio: acc.ratio, p99Ratio: acc.p99Ratio, resources: acc.resources });
    if (acc.bare.latencyMs.p99 < SWEEP_P99_MS && acc.bare.failed === 0) highest = rate;
    if (acc.bare.latencyMs.p99 > SWEEP_GIVE_UP_MS) stop = true;
    await new Promise((r) => setTimeout(r, SWEEP_PAUSE_MS));
  }
  return { seconds: opts.rateSeconds, p99LimitMs: SWEEP_P99_MS, steps, highestRateBareP99Ok: highest, skipped };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = Date.now();
  const loadAvgAtStart = os.loadavg();
  const busyAtStartPct = await machineBusyNow();
  const count = Math.max(1, Math.round(opts.rate * opts.seconds));
  log(
    `parameters: (a)/(b) ${count} requests each at ${opts.rate}/s (${opts.seconds}s each, interleaved in ${SLICE_MS} ms slices); ` +
      (opts.noWorker ? 'NO WORKER (acceptance only); ' : `(c) ${opts.leads} leads at ${opts.leadRate}/s; `) +
      `max sockets ${opts.maxSockets}; warm-up ${opts.warmup}${opts.quick ? ' (quick)' : ''}`,
  );
  if (busyAtStartPct !== undefined && busyAtStartPct > 25) {
    log(`note: the machine is already ${busyAtStartPct}% busy before the bench starts; numbers will be noisy (see the "other" column)`);
  }

  let world: World | undefined;
  let dev: DevServer | undefined;
  let stack: ParleyStack | undefined;
  try {
    log('starting the outside world (fake Graph API + fake LLM + load generator) and the Temporal dev server');
    [world, dev] = await Promise.all([startWorld(), startDevServer({ uiPort: false })]);
    const temporalPid = dev.process?.pid; // absent when the SDK downloaded and runs the server itself
    const shape = opts.topology === 'split' ? 'API and worker processes (production entry points)' : 'one process';
    log(`temporal dev server at ${dev.address}; starting Parley (API${opts.noWorker ? ' only, no worker' : ` + worker, ${shape}`})`);
    stack = await startParleyTopology(opts.topology, {
      temporalAddress: dev.address,
      graphUrl: world.graphUrl,
      llmUrl: world.llmUrl,
      logLevel: opts.logLevel,
      worker: !opts.noWorker,
    });
    const sweepTurns = opts.rates.reduce((a, r) => a + 2 * r * opts.rateSeconds, 0);
    const totalTurns = 2 * opts.warmup + 2 * count + opts.leads + opts.turns + sweepTurns;
    const tenant = await setupTenant(stack.apiUrl, Math.min(100_000_000, totalTurns * 10 + 1000));
    log(`API at ${stack.apiUrl}, database ${stack.core.database.describe}, task queue ${stack.taskQueue}`);
    const ctx: Ctx = { opts, world, stack, tenant, temporalPid, acceptedTotal: 0 };

    if (opts.warmup > 0) await warmUp(ctx);
    const c = stack.hasWorker ? await endToEnd(ctx) : undefined;
    const e2e = c?.phase;
    const turns = c && opts.turns > 0 ? await ordinaryTurns(ctx, c.phase, c.leads) : undefined;
    const sweep = opts.rates.length > 0 ? await rateSweep(ctx) : undefined;
    const acc = await acceptance(ctx, { rate: opts.rate, count, webhookPrefix: PREFIX.webhook, barePrefix: PREFIX.bare });

    const ta = turns?.anatomy?.turn;
    const targets: Target[] = [
      ...(ta ? [{ name: 'history events per ordinary turn (to send)', target: '<= 20', value: ta.eventsToSend.p50, unit: '', pass: ta.eventsToSend.p50 <= 20 }] : []),
      ...(ta ? [{ name: 'workflow tasks per ordinary turn (to send)', target: '<= 3', value: ta.workflowTasksToSend.p50, unit: '', pass: ta.workflowTasksToSend.p50 <= 3 }] : []),
      ...(e2e
        ? [
            {
              name: 'end-to-end turns/s vs bare signalWithStart rate',
              target: '>= 40 %',
              value: round(acc.bare.achievedRate > 0 ? (e2e.turnsPerS / acc.bare.achievedRate) * 100 : 0, 1),
              unit: '%',
              pass: e2e.turnsPerS >= 0.4 * acc.bare.achievedRate,
            },
          ]
        : []),
      { name: 'webhook accepted rate vs bare signalWithStart', target: '>= 95 %', value: round(acc.ratio * 100, 1), unit: '%', pass: acc.ratio >= 0.95 },
      { name: `webhook ack p99 vs bare p99 at ${opts.rate} req/s`, target: '<= 1.2 x', value: acc.p99Ratio, unit: 'x', pass: acc.p99Ratio <= 1.2 },
    ];

    const commit = gitCommit();
    const result = {
      benchmark: 'parley',
      schema: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      durationS: round((Date.now() - t0) / 1000, 1),
      topology: opts.topology === 'split' ? (opts.noWorker ? 'split-api-only' : 'split') : opts.noWorker ? 'api-only' : 'single-process',
      topologyNote:
        (opts.topology === 'split'
          ? `API (api/main.ts) and ${opts.noWorker ? 'no worker' : 'worker (workers/main.ts)'} each in their own child process, as in production, on ${stack.core.database.describe}; the bench process runs the bare signalWithStart loop`
          : opts.noWorker
            ? 'API alone (diagnostic --no-worker run: nothing processes the workflows)'
            : 'API + worker + database client in one Node process (as npm run dev)') +
        '; Temporal dev server (in memory) as its own process; fake Graph API, fake LLM and the load generator in a separate child process; all on one machine',
      git: { commit },
      machine: {
        ...machineInfo(),
        loadAvgAtStart: loadAvgAtStart.map((x) => round(x, 2)),
        busyAtStartPct,
      },
      parameters: {
        ...opts,
        requestsPerLoadPhase: count,
        sliceMs: SLICE_MS,
        temporal: { server: 'temporal server start-dev (in memory, headless)', cli: temporalCliVersion() },
        database: stack.core.database.describe,
        worker: stack.hasWorker
          ? {
              maxConcurrentActivityTaskExecutions: stack.config.WORKER_MAX_CONCURRENT_ACTIVITIES,
              maxConcurrentWorkflowTaskExecutions: stack.config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
            }
          : null,
        loadGenerator:
          `open loop; latency from the scheduled send time; webhooks: node http.Agent keepAlive maxSockets ${opts.maxSockets}; ` +
          `bare signalWithStart: at most ${opts.maxSockets} in flight`,
      },
      results: { webhook: acc.webhook, bare: acc.bare, ratio: acc.ratio, e2e: e2e ?? null, ordinaryTurns: turns ?? null, sweep: sweep ?? null, acceptance: acc },
      targets,
    };

    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-${opts.topology}${opts.noWorker ? '-no-worker' : ''}.json`);
    const json = `${JSON.stringify(result, null, 2)}\n`;
    writeFileSync(file, json);
    writeFileSync(path.join(dir, 'latest.json'), json);
    printTable({ machine: result.machine, commit, opts, e2e, turns, sweep, acceptance: acc, targets });
    log(`results written to ${path.relative(process.cwd(), file)} and bench/results/latest.json`);
  } finally {
    log('stopping');
    await stack?.stop().catch((err: unknown) => console.error('stopping Parley failed:', err));
    await dev?.stop().catch((err: unknown) => console.error('stopping the Temporal dev server failed:', err));
    await world?.stop().catch((err: unknown) => console.error('stopping the bench world failed:', err));
    setupAgent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------

function printTable(r: {
  machine: { cpus: number; node: string; busyAtStartPct?: number };
  commit: string | undefined;
  opts: BenchOptions;
  e2e?: E2EPhase;
  turns?: OrdinaryTurnsPhase;
  sweep?: SweepPhase;
  acceptance: AcceptancePhase;
  targets: Target[];
}): void {
  const { e2e, turns, sweep, acceptance: acc } = r;
  const split = r.opts.topology === 'split';
  const f = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1)) : '—');
  const row = (cells: string[], widths: number[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const widths = [30, 9, 11, 11, 7, 7, 7, 7];
  const out: string[] = [''];
  const shape = r.opts.noWorker ? 'API only (--no-worker)' : split ? 'split (API and worker processes)' : 'single process (API + worker)';
  out.push(
    `Parley bench — ${shape}${split && r.opts.noWorker ? ', split' : ''}, ${r.machine.cpus} cpus, node ${r.machine.node}, commit ${r.commit ?? '?'}, ` +
      `machine ${r.machine.busyAtStartPct ?? '?'}% busy before start${r.opts.quick ? ' — QUICK' : ''}`,
  );
  out.push(row(['measurement', 'offered/s', 'achieved/s', 'ok/sent', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'], widths));
  out.push('-'.repeat(widths.reduce((a, b) => a + b + 2, -2)));
  const load = (name: string, p: OpenLoopSummary) =>
    row([name, f(p.offeredRate), f(p.achievedRate), `${p.ok}/${p.sent}`, f(p.latencyMs.p50), f(p.latencyMs.p90), f(p.latencyMs.p99), f(p.latencyMs.max)], widths);
  out.push(load('(a) webhook ack (HTTP)', acc.webhook));
  out.push(load('(b) bare signalWithStart', acc.bare));
  if (e2e) {
    const il = e2e.idleLatencyMs;
    out.push(row(['(c) one lead at a time (idle)', '—', '—', `${il.count}/${IDLE_LEADS}`, f(il.p50), f(il.p90), f(il.p99), f(il.max)], widths));
    out.push(
      row(
        ['(c) inbound → reply (e2e)', f(e2e.offeredRate), `${f(e2e.turnsPerS)} t/s`, `${e2e.replied}/${e2e.webhook.ok}`, f(e2e.latencyMs.p50), f(e2e.latencyMs.p90), f(e2e.latencyMs.p99), f(e2e.latencyMs.max)],
        widths,
      ),
    );
    out.push(load('(c) its webhook acks', e2e.webhook));
  } else {
    out.push('(c) not measured: --no-worker');
  }
  if (turns) {
    out.push(
      row(
        ['(d) ordinary turn → reply', f(turns.offeredRate), '—', `${turns.replied}/${turns.webhook.ok}`, f(turns.latencyMs.p50), f(turns.latencyMs.p90), f(turns.latencyMs.p99), f(turns.latencyMs.max)],
        widths,
      ),
    );
  }
  const errs = (p: OpenLoopSummary) => Object.entries(p.errors).map(([k, v]) => `${k} ×${v}`).join(', ');
  for (const [name, p] of [['(a)', acc.webhook], ['(b)', acc.bare], ['(c)', e2e?.webhook], ['(d)', turns?.webhook]] as const) {
    if (p && p.failed > 0) out.push(`  ${name} errors: ${errs(p)}`);
  }
  if (e2e && e2e.missing > 0) out.push(`  (c) ${e2e.missing} leads got no reply within ${r.opts.drainTimeoutS}s`);
  if (sweep) {
    out.push('');
    out.push(`(e) rate sweep: (a)+(b) interleaved, ${sweep.seconds} s each; bare p99 limit ${sweep.p99LimitMs} ms`);
    out.push(row(['  rate', 'webhook/s', 'bare/s', 'ratio', 'wh p50', 'wh p99', 'bare p50', 'bare p99'], [10, 10, 10, 8, 8, 8, 9, 9]));
    for (const st of sweep.steps) {
      out.push(
        row(
          [`  ${st.rate}/s`, f(st.webhook.achievedRate), f(st.bare.achievedRate), `${f(st.ratio * 100)}%`, f(st.webhook.latencyMs.p50), f(st.webhook.latencyMs.p99), f(st.bare.latencyMs.p50), f(st.bare.latencyMs.p99)],
          [10, 10, 10, 8, 8, 8, 9, 9],
        ),
      );
    }
    const top = sweep.steps.find((x) => x.rate === sweep.highestRateBareP99Ok);
    out.push(
      top
        ? `  highest rate with bare p99 < ${sweep.p99LimitMs} ms: ${top.rate}/s; there the webhook accepted ${f(top.ratio * 100)} % of bare, p99 ${f(top.webhook.latencyMs.p99)} ms (${f(top.p99Ratio)}x bare)`
        : `  no rate kept the bare p99 under ${sweep.p99LimitMs} ms`,
    );
    if (sweep.skipped.length) out.push(`  not run (a lower rate saturated, bare p99 > ${SWEEP_GIVE_UP_MS} ms): ${sweep.skipped.join(', ')}`);
  }
  out.push('');
  out.push('targets (issue 9)');
  for (const t of r.targets) out.push(`  ${t.pass ? '✓' : '✗'} ${t.name.padEnd(50)} ${`${f(t.value)} ${t.unit}`.padStart(10)}   target ${t.target}`);
  out.push('');
  out.push(`where the time goes — cpu in % of one core${split ? '' : ', event-loop delay of the Parley process'}`);
  const rw = split ? [28, 6, 7, 7, 9, 6, 6, 8] : [28, 7, 9, 6, 6, 8, 9, 9];
  if (split) out.push(row(['phase', 'api', 'worker', 'bench', 'temporal', 'world', 'other', 'machine'], rw));
  else out.push(row(['phase', 'parley', 'temporal', 'world', 'other', 'machine', 'loop p99', 'loop max'], rw));
  const res = (name: string, x: ResourceUsage) =>
    split
      ? row(
          [
            name,
            `${x.cpuPct['parley-api'] ?? '?'}%`,
            `${x.cpuPct['parley-worker'] ?? '—'}%`,
            `${x.cpuPct.parley}%`,
            `${x.cpuPct.temporal ?? '?'}%`,
            `${x.cpuPct.world ?? '?'}%`,
            `${x.cpuPct.other ?? '?'}%`,
            `${x.machineBusyPct ?? '?'}%`,
          ],
          rw,
        )
      : row(
          [
            name,
            `${x.cpuPct.parley}%`,
            `${x.cpuPct.temporal ?? '?'}%`,
            `${x.cpuPct.world ?? '?'}%`,
            `${x.cpuPct.other ?? '?'}%`,
            `${x.machineBusyPct ?? '?'}%`,
            `${x.eventLoopDelayMs.p99} ms`,
            `${x.eventLoopDelayMs.max} ms`,
          ],
          rw,
        );
  const cpuLine = (name: string, c: CpuPerTurn | undefined) => {
    if (!c) return;
    const parts = c.apiMs !== undefined ? `api ${f(c.apiMs)} + worker ${f(c.workerMs)} + temporal ${f(c.temporalMs)}` : `parley ${f(c.parleyMs)} + temporal ${f(c.temporalMs)}`;
    out.push(`  ${name} cpu per answered lead: ${parts} = ${f(c.totalMs)} ms → at most ~${f(c.turnsPerSOnAllCores)} turns/s with all ${r.machine.cpus} cores to themselves`);
  };
  if (e2e) out.push(res('(c) end to end', e2e.resources));
  cpuLine('(c)', e2e?.cpuPerTurn);
  if (turns) out.push(res('(d) ordinary turns', turns.resources));
  cpuLine('(d)', turns?.cpuPerTurn);
  if (turns?.idleResources) out.push(res('(d) idle window before it', turns.idleResources));
  cpuLine('(d) above idle,', turns?.cpuPerTurnAboveIdle);
  out.push(res(`(a)+(b) interleaved`, acc.resources));
  if (e2e) {
    out.push(
      `  worker while (a)+(b) ran: ${acc.workerWhileLoaded.replies} replies in ${f(acc.workerWhileLoaded.windowS)} s = ${f(acc.workerWhileLoaded.turnsPerS)} turns/s; ` +
        `${acc.unrepliedAtEnd} of their leads still unanswered at the end`,
    );
    if (e2e.backlogAtStart > 0 || acc.backlogAtStart > 0) {
      out.push(`  note: unanswered leads from earlier phases at the start of (c): ${e2e.backlogAtStart}, of (a)+(b): ${acc.backlogAtStart}`);
    }
  }
  const anatomy = (title: string, a: TurnAnatomy | undefined) => {
    if (!a) return;
    const t = a.turn;
    out.push('');
    out.push(
      `${title} (${t.found}/${a.sampled} leads; medians): to the reply's send ${f(t.eventsToSend.p50)} history events, ${f(t.workflowTasksToSend.p50)} workflow tasks; ` +
        `to idle ${f(t.eventsToIdle.p50)} events, ${f(t.workflowTasksToIdle.p50)} workflow tasks (queue ${f(a.workflowTasks.scheduleToStartMs.p50)} ms, run ${f(a.workflowTasks.startToCloseMs.p50)} ms); ` +
        `webhook→input ${f(a.acceptMs.p50)} ms, input→send done ${f(a.workflowMs.p50)} ms, of which timers ${f(a.timersMs.p50)} ms; whole history ${f(a.historyEvents.p50)} events`,
    );
    const aw = [28, 6, 13, 13, 13];
    out.push(row(['  activity', 'count', 'queue p50', 'queue p90', 'run p50'], aw));
    for (const [type, v] of Object.entries(a.activities)) {
      out.push(row([`  ${type}`, String(v.count), `${f(v.scheduleToStartMs.p50)} ms`, `${f(v.scheduleToStartMs.p90)} ms`, `${f(v.startToCloseMs.p50)} ms`], aw));
    }
    for (const [type, n] of Object.entries(t.localActivities)) out.push(row([`  ${type} (local)`, String(n), '—', '—', '—'], aw));
    const markers = Object.entries(t.otherMarkers).map(([k, n]) => `${k} ×${n}`);
    if (markers.length) out.push(`  other markers in the sample (count as events): ${markers.join(', ')}`);
    const pb = a.payloadBytes;
    out.push(
      `  payloads per turn ${f(pb.payloadsPerTurn.p50)}, their bytes per turn ${f(pb.perTurn.stored.p50)} as stored, ${f(pb.perTurn.plain.p50)} decoded (= codec off); ` +
        `per payload ${pb.perPayload.stored} stored, ${pb.perPayload.plain} decoded`,
    );
  };
  anatomy('anatomy of a first turn (new lead)', e2e?.anatomy);
  anatomy('anatomy of an ordinary turn (existing lead writes again)', turns?.anatomy);
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

main().then(
  () => {
    // Everything is closed; if a stray handle still holds the loop, don't hang the shell.
    setTimeout(() => {
      console.error('bench: something kept the process alive after shutdown; exiting');
      process.exit(0);
    }, 15_000).unref();
  },
  (err: unknown) => {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 15_000).unref();
  },
);
