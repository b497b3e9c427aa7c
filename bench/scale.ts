/**
 * `npm run bench:scale [-- --leads N --messages M --phases a,b,c]` (needs DATABASE_URL = PostgreSQL)
 *
 * Issue 9's "Scale", on the production entry points as child processes (workers/main.ts,
 * api/main.ts) against one Temporal dev server whose SQLite file lives in a temp dir (so its size
 * can be read) and one PostgreSQL database:
 *  (a) N open leads, each with a pending sequence timer (enrolled through the `sequence`
 *      update), an open window (the lead wrote and was answered) and a pending extraction
 *      (LEAD_EXTRACTION_IDLE_MS = 1 day): worker RSS, dev-server database size and PostgreSQL
 *      size once they settle; then the worker process is restarted and every lead is queried
 *      (replayed on the new worker) and a sample writes again and must be answered;
 *  (b) one lead with M messages (bursts of 1–5 and a running sequence): per run of the
 *      continue-as-new chain its history length and size, the replies it sent, and the size of
 *      the state it carried in (the run's input payload);
 *  (c) webhook-driven turns/s with 1 API + 1 worker process and with 2 + 2.
 * Writes bench/results/scale-<timestamp>.json and scale-latest.json. See bench/README.md.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../config';
import { createLogger } from '../lib/logger';
import { connectClient, createParleyTemporal } from '../temporal/client';
import { readableHistory } from '../temporal/readable-history';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import type { SequenceDef } from '../workflows/lead/policy/sequence';
import { buildCore, type Core } from '../composition/core';
import { leadSettingsFrom } from '../composition/worker';
import { markerActivityType, SEND_ACTIVITY } from './anatomy';
import { errorText } from './open-loop';
import { startApiProcess, startWorkerProcess, type ParleyChild } from './processes';
import { waIdFor } from './protocol';
import { machineInfo, procCpuMs, procRssMB } from './resources';
import { setupAgent, setupTenant, type Tenant } from './setup';
import { benchEnv } from './stack';
import { round, summarize } from './stats';
import { startWorld, type World } from './world-client';
import { logger, pool, QUEUEING_BENCH_ENV, signedLoad, sleep } from './util';

interface ScaleOptions {
  leads: number;
  messages: number;
  leadRate: number;
  throughputLeads: number;
  phases: Set<'a' | 'b' | 'c'>;
  /** (c) on a fresh in-memory dev server (default) or on the file-backed one of (a) and (b). */
  throughputServer: 'memory' | 'file';
  logLevel: string;
}

const USAGE = `usage: npm run bench:scale -- [--leads N] [--messages M] [--lead-rate N] [--throughput-leads N] [--phases a,b,c] [--c-server memory|file]
  needs DATABASE_URL (PostgreSQL: a scratch database, it migrates); env BENCH_SCALE_LEADS, BENCH_SCALE_MESSAGES;
  LEAD_* and WHATSAPP_* variables in the environment are passed on to the Parley processes`;

function parseOptions(argv: string[], env = process.env): ScaleOptions {
  const o: ScaleOptions = {
    leads: Number(env.BENCH_SCALE_LEADS ?? 10_000),
    messages: Number(env.BENCH_SCALE_MESSAGES ?? 5000),
    leadRate: 50,
    throughputLeads: 200,
    phases: new Set(['a', 'b', 'c']),
    throughputServer: 'memory',
    logLevel: env.LOG_LEVEL?.trim() || 'warn',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = (argv[i] ?? '').split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[(i += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    const n = Number(value);
    const int = () => {
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected an integer >= 1, got ${JSON.stringify(value)}\n${USAGE}`);
      return n;
    };
    if (flag === '--leads') o.leads = int();
    else if (flag === '--messages') o.messages = int();
    else if (flag === '--lead-rate') o.leadRate = int();
    else if (flag === '--throughput-leads') o.throughputLeads = int();
    else if (flag === '--c-server') {
      if (value !== 'memory' && value !== 'file') throw new Error(`--c-server: memory or file\n${USAGE}`);
      o.throughputServer = value;
    } else if (flag === '--phases') {
      const ps = value.split(',').map((x) => x.trim());
      if (ps.some((p) => p !== 'a' && p !== 'b' && p !== 'c')) throw new Error(`--phases: a, b and/or c\n${USAGE}`);
      o.phases = new Set(ps as ('a' | 'b' | 'c')[]);
    } else throw new Error(`unknown argument ${JSON.stringify(flag)}\n${USAGE}`);
  }
  if (![o.leads, o.messages].every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`BENCH_SCALE_LEADS / BENCH_SCALE_MESSAGES: integers >= 1\n${USAGE}`);
  return o;
}

const log = logger('scale');



/** Size of the dev server's SQLite file with its -wal / -shm companions, MB. */
function sqliteSizeMB(file: string): number {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let bytes = 0;
  for (const f of readdirSync(dir)) if (f.startsWith(base)) bytes += statSync(path.join(dir, f)).size;
  return round(bytes / 2 ** 20, 1);
}

async function postgresSizeMB(core: Core): Promise<number | undefined> {
  try {
    const r = (await core.database.db.execute(sql`select pg_database_size(current_database()) as size`)) as unknown;
    const rows = (Array.isArray(r) ? r : (r as { rows?: unknown[] }).rows ?? []) as { size?: unknown }[];
    return round(Number(rows[0]?.size) / 2 ** 20, 1);
  } catch {
    return undefined;
  }
}

/** Wait until a process's CPU stays under `pct` % of a core for `quietS` seconds in a row (at most `maxS`). */
async function settle(pid: number | undefined, opts: { pct?: number; quietS?: number; maxS?: number } = {}): Promise<number> {
  const { pct = 5, quietS = 3, maxS = 120 } = opts;
  const t0 = Date.now();
  let quiet = 0;
  let last = procCpuMs(pid);
  while (quiet < quietS && Date.now() - t0 < maxS * 1000) {
    await sleep(1000);
    const now = procCpuMs(pid);
    quiet = now !== undefined && last !== undefined && now - last < pct * 10 ? quiet + 1 : 0;
    last = now;
  }
  return round((Date.now() - t0) / 1000, 1);
}

interface Ctx {
  opts: ScaleOptions;
  world: World;
  client: Client;
  env: Record<string, string | undefined>;
  tenant: Tenant;
  apis: { child: ParleyChild; url: string }[];
  workers: ParleyChild[];
  dbFile: string;
  core: Core;
  temporalPid?: number;
  /** False once (c) moved to an in-memory dev server (no file to measure). */
  fileServer: boolean;
  /** Run at the end (extra dev servers, connections). */
  cleanup: (() => Promise<void>)[];
}

function webhooks(ctx: Ctx, load: { prefix: string; count: number; rate: number; sameLead?: boolean; api?: number }) {
  const { api, ...rest } = load;
  return ctx.world.webhooks(signedLoad(ctx.apis[api ?? 0]!.url, ctx.tenant.phoneNumberId, rest));
}

const wfId = (ctx: Ctx, waId: string) => ctx.core.leadIds.workflowId(ctx.tenant.channelId, waId);

function footprint(ctx: Ctx) {
  return {
    workerRssMB: ctx.workers.map((w) => procRssMB(w.pid)),
    apiRssMB: ctx.apis.map((a) => procRssMB(a.child.pid)),
    temporalRssMB: procRssMB(ctx.temporalPid),
    temporalDbMB: ctx.fileServer ? sqliteSizeMB(ctx.dbFile) : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// (a) N open leads

const FAR_SEQUENCE: SequenceDef = {
  id: 'scale-follow-up',
  name: 'Scale follow-up (a week later)',
  steps: [{ delayMs: 7 * 24 * 3_600_000, kind: 'text', text: 'Just following up on your question.' }],
  stopOn: ['lead_replied'],
};

async function openLeads(ctx: Ctx) {
  const { opts } = ctx;
  const n = opts.leads;
  const prefix = '81';
  const temporalApi = createParleyTemporal(ctx.client, { taskQueue: ctx.env.TEMPORAL_TASK_QUEUE!, leadIds: ctx.core.leadIds });
  const t0 = Date.now();
  log(`(a) ${n} leads write (${opts.leadRate}/s) and are answered`);
  const sent = await webhooks(ctx, { prefix, count: n, rate: opts.leadRate });
  const accepted = sent.sends.filter((x) => x.ok);
  const replies = await ctx.world.replies({ prefix, expected: accepted.length, timeoutMs: Math.max(120_000, n * 600) });
  const answerS = round((Date.now() - t0) / 1000, 1);
  log(`(a) ${replies.replied}/${accepted.length} answered in ${round(answerS, 0)} s; enrolling each in a sequence (step due in 7 days)`);
  const e0 = Date.now();
  const enrolled = await pool(accepted, 16, async (x) => {
    try {
      const cursor = await temporalApi.sequence(wfId(ctx, x.waId), { action: 'enroll', sequence: FAR_SEQUENCE });
      return cursor.status === 'active';
    } catch {
      return false;
    }
  });
  const enrolS = round((Date.now() - e0) / 1000, 1);
  const settleS = await settle(ctx.workers[0]?.pid);
  const settled = { ...footprint(ctx), postgresMB: await postgresSizeMB(ctx.core), settleS };
  log(`(a) settled: worker RSS ${settled.workerRssMB.join(', ')} MB, temporal db ${settled.temporalDbMB} MB, postgres ${settled.postgresMB} MB`);

  log('(a) restarting the worker process');
  const old = ctx.workers.shift()!;
  const r0 = Date.now();
  await old.stop();
  ctx.workers.unshift(await startWorkerProcess('parley-worker', ctx.env, ctx.client));
  const restartS = round((Date.now() - r0) / 1000, 1);
  const afterRestart = footprint(ctx);
  log(`(a) worker back in ${restartS} s (RSS ${afterRestart.workerRssMB[0]} MB); querying every lead (each replays on the new worker)`);
  const q0 = Date.now();
  const states = await pool(accepted, 16, async (x) => {
    try {
      const s = await temporalApi.leadState(wfId(ctx, x.waId));
      return s?.sequence?.cursor.status === 'active' ? 'active' : s ? 'no-sequence' : 'missing';
    } catch (err) {
      return `error: ${errorText(err)}`;
    }
  });
  const queryS = round((Date.now() - q0) / 1000, 1);
  const byState: Record<string, number> = {};
  for (const s of states) byState[s] = (byState[s] ?? 0) + 1;
  await settle(ctx.workers[0]?.pid, { maxS: 30 });
  const afterResume = { ...footprint(ctx), postgresMB: await postgresSizeMB(ctx.core) };
  const sampleN = Math.min(accepted.length, 50);
  const since = Date.now();
  await webhooks(ctx, { prefix, count: sampleN, rate: 10 });
  const later = await ctx.world.replies({ prefix, after: since, expected: sampleN, timeoutMs: 120_000 });
  log(`(a) after restart: ${byState.active ?? 0}/${accepted.length} leads answer the query with an active sequence; ${later.replied}/${sampleN} sampled leads answered a new message`);
  return {
    leads: n,
    accepted: accepted.length,
    answered: replies.replied,
    enrolled: enrolled.filter(Boolean).length,
    /** Seconds from the first webhook until every accepted lead was answered, and answered leads per second over it. */
    answerS,
    leadsPerS: round(replies.replied / Math.max(answerS, 0.001), 2),
    /** Seconds the enrolments (the `sequence` update, 16 at a time) took. */
    enrolS,
    settled,
    restart: { restartS, afterRestart, queryS, queried: byState, afterResume, laterMessage: { sent: sampleN, answered: later.replied } },
    everyLeadResumes: (byState.active ?? 0) === accepted.length && later.replied === sampleN,
  };
}

// ---------------------------------------------------------------------------------------------
// (b) one lead, M messages

/** Burst sizes, cycled: 1–5 messages closer together than the debounce gap. */
const BURSTS = [1, 3, 1, 2, 5, 1, 1, 4];

async function longConversation(ctx: Ctx) {
  const { opts } = ctx;
  const prefix = '82';
  const waId = waIdFor(prefix, 0);
  const workflowId = wfId(ctx, waId);
  const temporalApi = createParleyTemporal(ctx.client, { taskQueue: ctx.env.TEMPORAL_TASK_QUEUE!, leadIds: ctx.core.leadIds });
  log(`(b) one lead, ${opts.messages} messages in bursts of ${BURSTS.join('/')}, with a 40-step sequence (a text every 5 s, never stopped)`);
  let sentMessages = 0;
  let bursts = 0;
  let answered = 0;
  const replyWaitMs: number[] = [];
  let enrolled = false;
  const t0 = Date.now();
  while (sentMessages < opts.messages) {
    const size = Math.min(BURSTS[bursts % BURSTS.length]!, opts.messages - sentMessages);
    const since = Date.now();
    const r = await webhooks(ctx, { prefix, count: size, rate: 20, sameLead: true });
    sentMessages += r.summary.ok;
    bursts += 1;
    const got = await ctx.world.replies({ prefix, after: since, expected: 1, timeoutMs: 30_000 });
    if (got.replied > 0) {
      answered += 1;
      replyWaitMs.push((got.replyAt[waId] ?? since) - since);
    }
    if (!enrolled) {
      const seq: SequenceDef = { id: 'scale-steps', name: 'Scale steps', steps: Array.from({ length: 40 }, () => ({ delayMs: 5000, kind: 'text' as const, text: 'A sequence step.' })), stopOn: [] };
      await temporalApi.sequence(workflowId, { action: 'enroll', sequence: seq }).catch((err: unknown) => log(`(b) enrol failed: ${errorText(err)}`));
      enrolled = true;
    }
    if (bursts % 50 === 0) log(`(b) ${sentMessages}/${opts.messages} messages, ${answered}/${bursts} bursts answered`);
  }
  const durationS = round((Date.now() - t0) / 1000, 0);
  await settle(ctx.workers[0]?.pid, { maxS: 30 });
  // the run chain, oldest first
  const runs: { runId: string; startedAt: string; status: string; historyLength: number; historySizeKB: number; sends: number; inputKB: number; carriedKB: number; inboxCarried: number }[] = [];
  for await (const wf of ctx.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const h = ctx.client.workflow.getHandle(workflowId, wf.runId);
    const d = await h.describe();
    const history = await h.fetchHistory();
    const events = history.events ?? [];
    // inputKB as stored (encrypted when the payload codec is on); the carried state read from the decoded input
    const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    const [decoded] = events[0] ? ((await readableHistory({ events: [events[0]] }, ctx.client.options.loadedDataConverter.payloadCodecs)).events ?? []) : [];
    const plain = decoded?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    let carriedKB = 0;
    let inboxCarried = 0;
    if (plain) {
      try {
        const input = JSON.parse(Buffer.from(plain).toString('utf8')) as { carried?: { inbox?: unknown[] } };
        carriedKB = input.carried ? round(Buffer.byteLength(JSON.stringify(input.carried)) / 1024, 2) : 0;
        inboxCarried = input.carried?.inbox?.length ?? 0;
      } catch {
        /* not JSON: leave 0 */
      }
    }
    const scheduled = new Map<string, string>();
    let sends = 0;
    for (const e of events) {
      if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
      const done = e.activityTaskCompletedEventAttributes;
      if (done && SEND_ACTIVITY.test(scheduled.get(String(done.scheduledEventId)) ?? '')) sends += 1;
      const local = markerActivityType(e);
      if (local && SEND_ACTIVITY.test(local)) sends += 1;
    }
    runs.push({
      runId: wf.runId,
      startedAt: wf.startTime.toISOString(),
      status: d.status.name,
      historyLength: Number(d.raw.workflowExecutionInfo?.historyLength ?? events.length),
      historySizeKB: round(Number(d.raw.workflowExecutionInfo?.historySizeBytes ?? 0) / 1024, 1),
      sends,
      inputKB: round((payload?.length ?? 0) / 1024, 2),
      carriedKB,
      inboxCarried,
    });
  }
  runs.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const maxEvents = Math.max(0, ...runs.map((r) => r.historyLength));
  const maxSizeKB = Math.max(0, ...runs.map((r) => r.historySizeKB));
  log(`(b) ${bursts} bursts, ${answered} answered within 30 s; ${runs.length} runs, longest ${maxEvents} events / ${maxSizeKB} KB; carried state up to ${Math.max(0, ...runs.map((r) => r.carriedKB))} KB`);
  return {
    messages: sentMessages,
    bursts,
    burstsAnswered: answered,
    replyWaitMs: summarize(replyWaitMs),
    durationS,
    runs,
    maxRunEvents: maxEvents,
    maxRunSizeKB: maxSizeKB,
    underLimits: maxEvents < 10_000 && maxSizeKB < 10 * 1024,
    everyRunReplied: runs.every((r) => r.sends > 0 || r.status === 'RUNNING'),
  };
}

// ---------------------------------------------------------------------------------------------
// (c) 1 vs 2 API and worker processes

async function processCount(ctx: Ctx, apis: number, workers: number): Promise<void> {
  while (ctx.apis.length > apis) await ctx.apis.pop()!.child.stop();
  while (ctx.workers.length > workers) await ctx.workers.pop()!.stop();
  while (ctx.apis.length < apis) ctx.apis.push(await startApiProcess(`parley-api-${ctx.apis.length + 1}`, ctx.env));
  while (ctx.workers.length < workers) ctx.workers.push(await startWorkerProcess(`parley-worker-${ctx.workers.length + 1}`, ctx.env, ctx.client));
}

/** Move every Parley process to a fresh in-memory dev server (new task queue, same database). */
async function toMemoryServer(ctx: Ctx): Promise<void> {
  const mem = await startDevServer({ uiPort: false });
  ctx.cleanup.push(() => mem.stop());
  const apis = ctx.apis.length;
  const workers = ctx.workers.length;
  await processCount(ctx, 0, 0);
  const { client, connection } = await connectClient({ address: mem.address, namespace: ctx.client.options.namespace, payloadCodec: ctx.core.payloadCodec });
  ctx.cleanup.unshift(() => connection.close());
  ctx.client = client;
  ctx.env = { ...ctx.env, TEMPORAL_ADDRESS: mem.address, TEMPORAL_TASK_QUEUE: `scale-c-${randomBytes(4).toString('hex')}` };
  ctx.temporalPid = mem.process?.pid;
  ctx.fileServer = false;
  await processCount(ctx, apis, workers);
}

async function throughput(ctx: Ctx) {
  const out: Record<string, unknown>[] = [];
  if (ctx.opts.throughputServer === 'memory') {
    log('(c) on a fresh in-memory dev server: the file-backed one is bound by its disk writes here');
    await toMemoryServer(ctx);
  }
  for (const [k, n] of [1, 2].entries()) {
    await processCount(ctx, n, n);
    await sleep(2000);
    const count = ctx.opts.throughputLeads;
    const rate = 50;
    log(`(c) ${n} API + ${n} worker processes: ${count} new leads at ${rate}/s over ${n} API(s)`);
    const pids = [...ctx.apis.map((a) => a.child.pid), ...ctx.workers.map((w) => w.pid), ctx.temporalPid];
    const cpu0 = pids.map((p) => procCpuMs(p) ?? 0);
    const w0 = Date.now();
    const prefix = `83${k}`;
    const sent = await Promise.all(
      ctx.apis.map((_, i) => webhooks(ctx, { prefix: `${prefix}${i}`, count: Math.round(count / n), rate: rate / n, api: i })),
    );
    const accepted = sent.flatMap((s) => s.sends.filter((x) => x.ok));
    const replies = await ctx.world.replies({ prefix, expected: accepted.length, timeoutMs: 180_000 });
    const wallS = (Date.now() - w0) / 1000;
    const cpu = pids.map((p, i) => ((procCpuMs(p) ?? 0) - cpu0[i]!) / 1000);
    const times = Object.values(replies.replyAt).sort((a, b) => a - b);
    const span = times.length > 1 ? (times[times.length - 1]! - times[0]!) / 1000 : 0;
    const row = {
      apis: n,
      workers: n,
      leads: accepted.length,
      replied: replies.replied,
      turnsPerS: round(span > 0 ? (times.length - 1) / span : 0, 1),
      cpuPct: {
        api: round((cpu.slice(0, n).reduce((a, b) => a + b, 0) / wallS) * 100, 0),
        worker: round((cpu.slice(n, 2 * n).reduce((a, b) => a + b, 0) / wallS) * 100, 0),
        temporal: round(((cpu[2 * n] ?? 0) / wallS) * 100, 0),
      },
      footprint: footprint(ctx),
    };
    log(`(c) ${n}+${n}: ${row.replied}/${row.leads} answered, ${row.turnsPerS} turns/s; cpu api ${row.cpuPct.api}%, worker ${row.cpuPct.worker}%, temporal ${row.cpuPct.temporal}%`);
    out.push(row);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** The machine's 1-minute load average every `everyMs` (other people's jobs share the cores). */
function sampleLoad(everyMs = 15_000) {
  const t0 = Date.now();
  const samples: { s: number; load1: number }[] = [];
  const take = () => samples.push({ s: round((Date.now() - t0) / 1000, 0), load1: round(os.loadavg()[0] ?? 0, 2) });
  take();
  const timer = setInterval(take, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      take();
      const xs = samples.map((x) => x.load1).sort((a, b) => a - b);
      return { min: xs[0], median: xs[Math.floor(xs.length / 2)], max: xs[xs.length - 1], everyS: everyMs / 1000, samples };
    },
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const load = sampleLoad();
  if (!process.env.DATABASE_URL) throw new Error(`bench:scale needs DATABASE_URL (PostgreSQL): the API and worker processes share one database\n${USAGE}`);
  const startedAt = new Date();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'parley-scale-'));
  const dbFile = path.join(tmp, 'temporal.db');
  let world: World | undefined;
  let dev: DevServer | undefined;
  let ctx: Ctx | undefined;
  let closeClient: (() => Promise<void>) | undefined;
  let core: Core | undefined;
  try {
    [world, dev] = await Promise.all([startWorld(), startDevServer({ uiPort: false, dbFilename: dbFile })]);
    const taskQueue = `scale-${randomBytes(4).toString('hex')}`;
    const leadEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('LEAD_') || k.startsWith('WHATSAPP_') || k.startsWith('WORKER_')));
    const env = benchEnv(
      {
        temporalAddress: dev.address,
        graphUrl: world.graphUrl,
        llmUrl: world.llmUrl,
        logLevel: opts.logLevel,
        env: {
          // pending extraction for the whole run, (b) not 3 s per burst, no pacing: bench/util.ts
          ...QUEUEING_BENCH_ENV,
          // (b)'s sequence steps every 5 s, not up to a minute later (the spread of a wave's wake-ups)
          LEAD_BACKGROUND_SPREAD_MS: '0',
          ...leadEnv,
        },
      },
      taskQueue,
    );
    const config = loadConfig(env);
    core = await buildCore(config, { log: createLogger({ level: opts.logLevel, name: 'parley-scale' }), migrate: true });
    const { client, connection } = await connectClient({ address: dev.address, namespace: config.TEMPORAL_NAMESPACE, payloadCodec: core.payloadCodec });
    closeClient = () => connection.close();
    const api = await startApiProcess('parley-api', env);
    const worker = await startWorkerProcess('parley-worker', env, client);
    const tenant = await setupTenant(api.url, 100_000_000);
    ctx = { opts, world, client, env, tenant, apis: [api], workers: [worker], dbFile, core, temporalPid: dev.process?.pid, fileServer: true, cleanup: [] };
    log(`temporal dev server at ${dev.address} (db ${dbFile}), ${core.database.describe}, task queue ${taskQueue}`);
    const baseline = { ...footprint(ctx), postgresMB: await postgresSizeMB(core) };
    const a = opts.phases.has('a') ? await openLeads(ctx) : undefined;
    const b = opts.phases.has('b') ? await longConversation(ctx) : undefined;
    const c = opts.phases.has('c') ? await throughput(ctx) : undefined;
    const result = {
      benchmark: 'parley-scale',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      git: { commit: (await import('node:child_process')).execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() },
      machine: { ...machineInfo(), loadAvg: os.loadavg().map((x) => round(x, 2)), loadAvgDuring: load.stop() },
      parameters: { ...opts, phases: [...opts.phases], settings: leadSettingsFrom(config), workerMaxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS, database: core.database.describe, temporal: 'temporal server start-dev --db-filename (SQLite file)' },
      baseline,
      openLeads: a ?? null,
      longConversation: b ?? null,
      processes: c ?? null,
    };
    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const file = path.join(dir, `scale-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, json);
    writeFileSync(path.join(dir, 'scale-latest.json'), json);
    process.stdout.write(`${JSON.stringify({ openLeads: a && { ...a, settled: a.settled, restart: a.restart }, longConversation: b && { ...b, runs: b.runs.length }, processes: c }, null, 2)}\n`);
    log(`results written to ${path.relative(process.cwd(), file)}`);
  } finally {
    log('stopping');
    for (const a of ctx?.apis ?? []) await a.child.stop().catch(() => {});
    for (const w of ctx?.workers ?? []) await w.stop().catch(() => {});
    for (const f of ctx?.cleanup ?? []) await f().catch(() => {});
    await closeClient?.().catch(() => {});
    await core?.database.close().catch(() => {});
    await dev?.stop().catch((err: unknown) => console.error('stopping the Temporal dev server failed:', err));
    await world?.stop().catch(() => {});
    setupAgent.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => setTimeout(() => process.exit(0), 15_000).unref(),
  (err: unknown) => {
    console.error('bench:scale failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 15_000).unref();
  },
);
