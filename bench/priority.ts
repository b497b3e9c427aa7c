/**
 * `npm run bench:priority [-- --wave N --live M --rate R --seconds S --llm-delay MS --no-server-priority]`
 * (needs DATABASE_URL = PostgreSQL)
 *
 * Issue 9's "live replies before background work": in the split topology (api/main.ts and
 * workers/main.ts as child processes, one in-memory Temporal dev server, PostgreSQL):
 *   setup     N wave leads and M live leads write once and are answered (open 24-hour windows);
 *   baseline  the M live leads write again and again (R messages/s in all, each lead every M/R s)
 *             for S seconds: webhook → reply latency;
 *   wave      each wave lead is enrolled (the `sequence` update) in a one-step AI sequence whose
 *             step falls due at the same instant T; the same live load runs from T − 3 s for S
 *             seconds: webhook → reply latency again, and how long the wave took to send.
 * The live p95 with the wave ÷ without it is the target (< 1.2). Histories of the live leads
 * give where the live turns waited (workflow-task and activity queue times).
 * Writes bench/results/priority-<timestamp>.json and priority-latest.json. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { temporal } from '@temporalio/proto';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import type { SequenceDef } from '../workflows/lead/policy/sequence';
import { errorText } from './open-loop';
import type { WebhookSend } from './protocol';
import { machineInfo, procCpuMs } from './resources';
import { setupAgent, setupTenant, type Tenant } from './setup';
import { startParleySplit, type ParleyStack } from './stack';
import { round, summarize, type LatencySummary } from './stats';
import { startWorld, type World } from './world-client';
import { logger, pool, QUEUEING_BENCH_ENV, signedLoad, sleep } from './util';

interface PriorityOptions {
  wave: number;
  live: number;
  rate: number;
  seconds: number;
  llmDelayMs: number;
  /** Run the dev server with `matching.useNewMatcher=false`: it ignores task priority. */
  serverPriority: boolean;
  label?: string;
  logLevel: string;
}

const USAGE = `usage: npm run bench:priority -- [--wave N] [--live M] [--rate R] [--seconds S] [--llm-delay MS] [--no-server-priority] [--label L]
  needs DATABASE_URL (PostgreSQL: a scratch database, it migrates); WORKER_* and LEAD_* variables are passed on to the worker`;

function parseOptions(argv: string[], env = process.env): PriorityOptions {
  const o: PriorityOptions = { wave: 300, live: 30, rate: 3, seconds: 75, llmDelayMs: 800, serverPriority: true, logLevel: env.LOG_LEVEL?.trim() || 'warn' };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--no-server-priority') {
      o.serverPriority = false;
      continue;
    }
    const [flag, inline] = arg.split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[(i += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--label') {
      o.label = value;
      continue;
    }
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: expected a number >= 0, got ${JSON.stringify(value)}\n${USAGE}`);
    if (flag === '--wave') o.wave = Math.round(n);
    else if (flag === '--live') o.live = Math.max(1, Math.round(n));
    else if (flag === '--rate') o.rate = n;
    else if (flag === '--seconds') o.seconds = n;
    else if (flag === '--llm-delay') o.llmDelayMs = Math.round(n);
    else throw new Error(`unknown argument ${JSON.stringify(flag)}\n${USAGE}`);
  }
  if (o.rate <= 0 || o.seconds <= 0) throw new Error(`--rate and --seconds must be > 0\n${USAGE}`);
  return o;
}

const log = logger('priority');



/** Wait until the worker's CPU stays under 5 % of a core for 3 s in a row (at most `maxS`). */
async function settle(pid: number | undefined, maxS = 60): Promise<number> {
  const t0 = Date.now();
  let quiet = 0;
  let last = procCpuMs(pid);
  while (quiet < 3 && Date.now() - t0 < maxS * 1000) {
    await sleep(1000);
    const now = procCpuMs(pid);
    quiet = now !== undefined && last !== undefined && now - last < 50 ? quiet + 1 : 0;
    last = now;
  }
  return round((Date.now() - t0) / 1000, 1);
}

const PREFIX = { wave: '71', live: '72' } as const;

interface Ctx {
  opts: PriorityOptions;
  world: World;
  stack: ParleyStack;
  tenant: Tenant;
  temporalPid?: number;
}

function webhooks(ctx: Ctx, load: { prefix: string; count: number; rate: number; leads?: number; t0?: number }) {
  return ctx.world.webhooks(signedLoad(ctx.stack.apiUrl, ctx.tenant.phoneNumberId, load));
}

function cpuNow(ctx: Ctx) {
  return { api: procCpuMs(ctx.stack.children.api?.pid) ?? 0, worker: procCpuMs(ctx.stack.children.worker?.pid) ?? 0, temporal: procCpuMs(ctx.temporalPid) ?? 0, at: Date.now() };
}

function cpuPct(a: ReturnType<typeof cpuNow>, b: ReturnType<typeof cpuNow>) {
  const s = (b.at - a.at) / 1000;
  const p = (x: number) => round((x / 1000 / s) * 100, 0);
  return { api: p(b.api - a.api), worker: p(b.worker - a.worker), temporal: p(b.temporal - a.temporal), machineLoadAvg1: round(os.loadavg()[0]!, 2) };
}

/**
 * Live load: M leads, R messages/s in all (request i from lead i mod M), open loop; latency is
 * the webhook's scheduled time → the first reply to that lead at or after it.
 */
async function liveLoad(ctx: Ctx, t0: number): Promise<{ sends: WebhookSend[]; count: number }> {
  const { opts } = ctx;
  const count = Math.max(1, Math.round(opts.rate * opts.seconds));
  const { sends } = await webhooks(ctx, { prefix: PREFIX.live, count, rate: opts.rate, leads: opts.live, t0 });
  return { sends, count };
}

async function liveLatency(ctx: Ctx, sends: WebhookSend[], timeoutMs = 60_000) {
  const ok = sends.filter((s) => s.ok);
  const lastDue = Math.max(...ok.map((s) => s.dueAt));
  // every lead's last message must be answered (or the timeout)
  const deadline = Date.now() + timeoutMs;
  let times: Record<string, number[]> = {};
  for (;;) {
    const r = await ctx.world.replies({ prefix: PREFIX.live, expected: 0, timeoutMs: 0, all: true });
    times = r.times ?? {};
    const pending = ok.filter((s) => !(times[s.waId] ?? []).some((t) => t >= s.dueAt));
    if (pending.length === 0 || Date.now() > deadline) break;
    await sleep(250);
  }
  const latencies: { dueAt: number; ms: number }[] = [];
  let missing = 0;
  for (const s of ok) {
    const at = (times[s.waId] ?? []).find((t) => t >= s.dueAt);
    if (at === undefined) missing += 1;
    else latencies.push({ dueAt: s.dueAt, ms: at - s.dueAt });
  }
  return { sent: sends.length, accepted: ok.length, missing, lastDue, latencies };
}

// ---- where the live turns waited: their histories ----

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const ms = (t: HistoryEvent['eventTime']) => (t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0);

/** Workflow-task and activity queue times (scheduled → started) of events scheduled in [from, to). */
async function queueTimes(ctx: Ctx, waIds: string[], from: number, to: number) {
  const wft: number[] = [];
  const act: Record<string, number[]> = {};
  const actRun: Record<string, number[]> = {};
  await pool(waIds, 8, async (waId) => {
    try {
      const h = ctx.stack.temporal.client.workflow.getHandle(ctx.stack.temporal.leadWorkflowId(ctx.tenant.channelId, waId));
      const events = (await h.fetchHistory()).events ?? [];
      const sched = new Map<string, { at: number; type?: string }>();
      for (const e of events) {
        const id = String(e.eventId);
        if (e.workflowTaskScheduledEventAttributes) sched.set(id, { at: ms(e.eventTime) });
        if (e.activityTaskScheduledEventAttributes) sched.set(id, { at: ms(e.eventTime), type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?' });
        const ws = e.workflowTaskStartedEventAttributes;
        if (ws) {
          const s = sched.get(String(ws.scheduledEventId));
          if (s && s.at >= from && s.at < to) wft.push(ms(e.eventTime) - s.at);
        }
        const as = e.activityTaskStartedEventAttributes;
        if (as) {
          const s = sched.get(String(as.scheduledEventId));
          if (s && s.at >= from && s.at < to) (act[s.type!] ??= []).push(ms(e.eventTime) - s.at);
        }
        const ac = e.activityTaskCompletedEventAttributes;
        if (ac) {
          const s = sched.get(String(ac.scheduledEventId));
          if (s && s.at >= from && s.at < to) (actRun[s.type!] ??= []).push(ms(e.eventTime) - s.at);
        }
      }
    } catch (err) {
      log(`history of ${waId}: ${errorText(err)}`);
    }
  });
  return {
    workflowTaskQueueMs: summarize(wft),
    activityQueueMs: Object.fromEntries(Object.entries(act).map(([k, v]) => [k, summarize(v)])),
    activityScheduledToClosedMs: Object.fromEntries(Object.entries(actRun).map(([k, v]) => [k, summarize(v)])),
  };
}

function liveSummary(l: Awaited<ReturnType<typeof liveLatency>>) {
  return { sent: l.sent, accepted: l.accepted, missing: l.missing, latencyMs: summarize(l.latencies.map((x) => x.ms)) };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (!process.env.DATABASE_URL) throw new Error(`bench:priority needs DATABASE_URL (PostgreSQL)\n${USAGE}`);
  const startedAt = new Date();
  let world: World | undefined;
  let dev: DevServer | undefined;
  let stack: ParleyStack | undefined;
  try {
    const dynamicConfig: Record<string, boolean> = opts.serverPriority ? {} : { 'matching.useNewMatcher': false };
    [world, dev] = await Promise.all([startWorld({ llmDelayMs: opts.llmDelayMs }), startDevServer({ uiPort: false, dynamicConfig })]);
    const passOn = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('LEAD_') || k.startsWith('WORKER_') || k.startsWith('WHATSAPP_')));
    stack = await startParleySplit({
      temporalAddress: dev.address,
      graphUrl: world.graphUrl,
      llmUrl: world.llmUrl,
      logLevel: opts.logLevel,
      env: { ...QUEUEING_BENCH_ENV, ...passOn },
    });
    const ctx: Ctx = { opts, world, stack, tenant: await setupTenant(stack.apiUrl, 100_000_000), temporalPid: dev.process?.pid };
    log(`temporal ${dev.address} (server priority ${opts.serverPriority ? 'on' : 'OFF: matching.useNewMatcher=false'}), ${stack.core.database.describe}, task queue ${stack.taskQueue}, fake LLM ${opts.llmDelayMs} ms`);

    // ---- setup: every lead writes once and is answered
    log(`setup: ${opts.wave} wave leads and ${opts.live} live leads write once`);
    const setupT0 = Date.now();
    const [waveSent, liveSent] = await Promise.all([webhooks(ctx, { prefix: PREFIX.wave, count: opts.wave, rate: 50 }), webhooks(ctx, { prefix: PREFIX.live, count: opts.live, rate: 10 })]);
    const waveLeads = waveSent.sends.filter((s) => s.ok).map((s) => s.waId);
    const liveLeads = liveSent.sends.filter((s) => s.ok).map((s) => s.waId);
    const [wr, lr] = await Promise.all([
      world.replies({ prefix: PREFIX.wave, expected: waveLeads.length, timeoutMs: 240_000 }),
      world.replies({ prefix: PREFIX.live, expected: liveLeads.length, timeoutMs: 240_000 }),
    ]);
    log(`setup: ${wr.replied}/${waveLeads.length} wave and ${lr.replied}/${liveLeads.length} live leads answered in ${round((Date.now() - setupT0) / 1000, 0)} s`);
    await settle(stack.children.worker?.pid);

    // ---- baseline: live load alone
    log(`baseline: ${opts.live} live leads, ${opts.rate} messages/s for ${opts.seconds} s, no wave`);
    const b0 = Date.now() + 500;
    const c0 = cpuNow(ctx);
    const baseSends = await liveLoad(ctx, b0);
    const baseLat = await liveLatency(ctx, baseSends.sends);
    const baseCpu = cpuPct(c0, cpuNow(ctx));
    const baseQueues = await queueTimes(ctx, liveLeads, b0, baseLat.lastDue + 1);
    const baseline = { ...liveSummary(baseLat), cpuPct: baseCpu, queues: baseQueues };
    log(`baseline: p50 ${baseline.latencyMs.p50} ms, p95 ${p95(baseLat)} ms, p99 ${baseline.latencyMs.p99} ms (${baseline.latencyMs.count}/${baseline.accepted}; cpu api ${baseCpu.api}%, worker ${baseCpu.worker}%, temporal ${baseCpu.temporal}%)`);
    await settle(stack.children.worker?.pid);

    // ---- the wave: every wave lead's step falls due at T
    const enrolMsPerLead = 40;
    const T = Date.now() + 10_000 + opts.wave * enrolMsPerLead;
    log(`wave: enrolling ${waveLeads.length} leads in a one-step AI sequence due at ${new Date(T).toISOString().slice(11, 23)}`);
    const temporalApi = stack.temporal;
    const e0 = Date.now();
    const enrolled = await pool(waveLeads, 8, async (waId) => {
      const seq: SequenceDef = {
        id: 'priority-wave',
        name: 'Morning wave',
        steps: [{ delayMs: Math.max(0, T - Date.now()), kind: 'ai', aiInstruction: 'Follow up on the lead’s question about the premium plan in one short sentence.' }],
        stopOn: ['lead_replied'],
      };
      try {
        const cursor = await temporalApi.sequence(ctx.stack.temporal.leadWorkflowId(ctx.tenant.channelId, waId), { action: 'enroll', sequence: seq });
        return cursor.status === 'active';
      } catch (err) {
        log(`enrol ${waId}: ${errorText(err)}`);
        return false;
      }
    });
    const enrolS = round((Date.now() - e0) / 1000, 1);
    const enrolledN = enrolled.filter(Boolean).length;
    if (Date.now() > T - 4000) log(`wave: enrolment took ${enrolS} s and ran into the live load's start (raise enrolMsPerLead)`);
    else await settle(stack.children.worker?.pid, Math.max(1, (T - 4000 - Date.now()) / 1000));
    const w0 = T - 3000;
    log(`wave: ${enrolledN} enrolled in ${enrolS} s; live load from T − 3 s for ${opts.seconds} s`);
    const c1 = cpuNow(ctx);
    const waveReplies = world.replies({ prefix: PREFIX.wave, after: T - 1000, expected: enrolledN, timeoutMs: Math.max(180_000, opts.seconds * 4000) });
    const waveSends = await liveLoad(ctx, w0);
    const waveLat = await liveLatency(ctx, waveSends.sends);
    const waveSent2 = await waveReplies;
    const waveCpu = cpuPct(c1, cpuNow(ctx));
    const sentTimes = Object.values(waveSent2.replyAt).sort((a, b) => a - b);
    const waveEnd = sentTimes[sentTimes.length - 1] ?? T;
    const during = waveLat.latencies.filter((x) => x.dueAt >= T - 1000 && x.dueAt <= waveEnd);
    const waveQueues = await queueTimes(ctx, liveLeads, w0, waveLat.lastDue + 1);
    const waveLeadQueues = await queueTimes(ctx, waveLeads.slice(0, 30), T - 1000, waveEnd + 1);
    const wave = {
      enrolled: enrolledN,
      enrolS,
      stepsSent: waveSent2.replied,
      /** T → each step's send at the fake Graph API. */
      stepSendMs: summarize(sentTimes.map((t) => t - T)),
      waveDurationS: round((waveEnd - T) / 1000, 1),
      live: liveSummary(waveLat),
      /** Live messages sent while the wave was still sending (T − 1 s … last step sent). */
      liveDuringWave: { count: during.length, latencyMs: summarize(during.map((x) => x.ms)), p95: pct(during.map((x) => x.ms), 95) },
      cpuPct: waveCpu,
      liveQueues: waveQueues,
      waveLeadQueues,
    };
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : Number.NaN);
    const baseP95 = p95(baseLat);
    const waveP95 = p95(waveLat);
    log(
      `wave: ${wave.stepsSent}/${enrolledN} steps sent, the last ${wave.waveDurationS} s after T; live p50 ${wave.live.latencyMs.p50} ms, p95 ${waveP95} ms ` +
        `(during the wave: ${during.length} messages, p95 ${wave.liveDuringWave.p95} ms); cpu api ${waveCpu.api}%, worker ${waveCpu.worker}%, temporal ${waveCpu.temporal}%`,
    );
    const summary = {
      baselineP50: baseline.latencyMs.p50,
      baselineP95: baseP95,
      waveP50: wave.live.latencyMs.p50,
      waveP95,
      p95Ratio: ratio(waveP95, baseP95),
      duringWaveP95: wave.liveDuringWave.p95,
      duringWaveP95Ratio: ratio(wave.liveDuringWave.p95, baseP95),
      target: 'live p95 with the wave < 1.2 × without',
      pass: waveP95 < 1.2 * baseP95,
    };

    const git = (args: string[]) => {
      try {
        return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      } catch {
        return undefined; // not a checkout (BENCH_COMMIT names the code)
      }
    };
    const commit = process.env.BENCH_COMMIT ?? git(['rev-parse', '--short', 'HEAD']);
    const status = git(['status', '--porcelain', '--untracked-files=no']);
    const result = {
      benchmark: 'parley-priority',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      git: { commit, dirty: status === undefined ? null : status !== '' },
      machine: { ...machineInfo(), loadAvg: os.loadavg().map((x) => round(x, 2)) },
      parameters: {
        ...opts,
        temporal: `temporal server start-dev (in memory)${opts.serverPriority ? '' : ', matching.useNewMatcher=false'}`,
        database: stack.core.database.describe,
        worker: { maxConcurrentActivityTaskExecutions: stack.config.WORKER_MAX_CONCURRENT_ACTIVITIES, maxConcurrentWorkflowTaskExecutions: stack.config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS },
        passedOn: passOn,
      },
      summary,
      baseline,
      wave,
    };
    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const file = path.join(dir, `priority-${opts.label ? `${opts.label}-` : ''}${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, json);
    writeFileSync(path.join(dir, 'priority-latest.json'), json);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    log(`results written to ${path.relative(process.cwd(), file)}`);
  } finally {
    log('stopping');
    await stack?.stop().catch((err: unknown) => console.error('stopping Parley failed:', err));
    await dev?.stop().catch(() => {});
    await world?.stop().catch(() => {});
    setupAgent.destroy();
  }
}

function pct(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!, 1);
}

function p95(l: { latencies: { ms: number }[] }): number {
  return pct(
    l.latencies.map((x) => x.ms),
    95,
  );
}

export type { LatencySummary };

main().then(
  () => setTimeout(() => process.exit(0), 15_000).unref(),
  (err: unknown) => {
    console.error('bench:priority failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 15_000).unref();
  },
);
