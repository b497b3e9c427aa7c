/**
 * `npm run chaos [-- --quick | --messages N --leads N --worker-kills N --server-restarts N ...]`
 *
 * The chaos test: thousands of inbound WhatsApp messages over hundreds of leads while the
 * worker is SIGKILLed at random and the Temporal dev server (file-backed, same port) is
 * stopped and started again. After draining it checks that every inbound message was recorded
 * exactly once, every reply was sent exactly once as the fake Graph API saw it (each duplicate
 * is traced to its cause), the credit ledger balances, and no workflow failed. Prints a
 * summary table, writes bench/results/chaos-<timestamp>.json, exits 1 when a check fails.
 *
 * Processes: this one runs "Meta" (the webhook sender), the fake Graph API, the fake LLM and
 * the API (createApp, real HTTP); the worker is the real entry point (workers/main.ts) in a
 * child process; Temporal is `temporal server start-dev --db-filename` in a temp dir.
 * The database is PostgreSQL: DATABASE_URL, or a fresh `parley_chaos_*` dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { createApp } from '../api/app';
import { loadConfig } from '../config';
import { startFakeGraphApi, type FakeGraphApi } from '../fakes/graph-api';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai';
import { createLogger } from '../lib/logger';
import { findTemporalBinary, PROJECT_ROOT } from '../temporal/binaries';
import { connectClient, createParleyTemporal } from '../temporal/client';
import { freePort } from '../temporal/dev-server';
import { buildCore } from '../composition/core';
import { leadSettingsFrom } from '../composition/worker';
import { LEAD_WORKFLOW_TYPE } from '../workflows/lead/definitions';
import {
  analyzeDuplicates,
  dbSnapshot,
  drain,
  leadStates,
  sendsByOutboundId,
  workflowSummary,
  type ChaosEvent,
  type Check,
  type DuplicateSend,
} from './chaos/checks';
import { machineInfo } from '../bench/resources';
import { snapshotSources } from './chaos/code-snapshot';
import { openChaosDatabase, type ChaosDatabase } from './chaos/database';
import { MetaSender, type PlannedMessage } from './chaos/meta-sender';
import { parseChaosOptions, seededRandom, type ChaosOptions } from './chaos/options';
import { printSummary } from './chaos/report';
import { RestartableDevServer } from './chaos/temporal-server';
import { WorkerSupervisor } from './chaos/worker-supervisor';

const t0 = Date.now();
function log(line: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[chaos ${s}s] ${line}\n`);
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The current commit, read from .git without running git. */
function gitCommit(): string | undefined {
  try {
    const gitDir = path.join(PROJECT_ROOT, '.git');
    const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 7);
    const ref = head.slice(5);
    const loose = path.join(gitDir, ref);
    if (existsSync(loose)) return readFileSync(loose, 'utf8').trim().slice(0, 7);
    const packed = readFileSync(path.join(gitDir, 'packed-refs'), 'utf8')
      .split('\n')
      .find((l) => l.endsWith(` ${ref}`));
    return packed?.slice(0, 7);
  } catch {
    return undefined;
  }
}

async function api(base: string, method: string, route: string, token: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${route} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Every lead gets messages/leads messages (±1), in a seeded random order. */
function planMessages(opts: ChaosOptions, random: () => number, runTag: string): { plan: PlannedMessage[]; waIds: string[] } {
  const waIds = Array.from({ length: opts.leads }, (_, i) => `1555${String(i).padStart(7, '0')}`);
  const plan: PlannedMessage[] = [];
  const topics = ['pricing', 'delivery times', 'the premium plan', 'a discount', 'opening hours', 'a demo', 'returns', 'payment options'];
  for (let i = 0; i < opts.leads; i += 1) {
    const n = Math.floor(opts.messages / opts.leads) + (i < opts.messages % opts.leads ? 1 : 0);
    for (let j = 0; j < n; j += 1) {
      plan.push({
        wamid: `wamid.CHAOS${runTag}${String(i).padStart(5, '0')}${String(j).padStart(4, '0')}`,
        waId: waIds[i]!,
        leadIndex: i,
        text: `Hi, lead ${i} here (message ${j + 1} of ${n}): can you tell me about ${topics[Math.floor(random() * topics.length)]}?`,
      });
    }
  }
  for (let i = plan.length - 1; i > 0; i -= 1) {
    const k = Math.floor(random() * (i + 1));
    [plan[i], plan[k]] = [plan[k]!, plan[i]!];
  }
  return { plan, waIds };
}

interface Scheduled {
  kind: 'kill' | 'restart';
  atMs: number;
}

/** Kill and restart times, uniformly at random over most of the sending phase. */
function chaosSchedule(opts: ChaosOptions, random: () => number, sendMs: number): Scheduled[] {
  const s: Scheduled[] = [];
  // stratified: one event at a random time in each of N equal slots, so they spread over the
  // run instead of bunching up (a kill waits for a worker that is up, so bunches would slip
  // past the sending phase); kills in 5–80 % of it, restarts in 10–80 %
  const spread = (n: number, from: number, to: number) =>
    Array.from({ length: n }, (_, i) => sendMs * (from + ((to - from) * (i + random())) / n));
  for (const atMs of spread(opts.workerKills, 0.05, 0.8)) s.push({ kind: 'kill', atMs });
  for (const atMs of spread(opts.serverRestarts, 0.1, 0.8)) s.push({ kind: 'restart', atMs });
  return s.sort((a, b) => a.atMs - b.atMs);
}

async function runChaos(opts: {
  schedule: Scheduled[];
  startedAt: number;
  supervisor: WorkerSupervisor;
  server: RestartableDevServer;
  serverSignal: 'SIGTERM' | 'SIGKILL';
  serverDownS: number;
  random: () => number;
  events: ChaosEvent[];
}): Promise<void> {
  for (const item of opts.schedule) {
    const wait = opts.startedAt + item.atMs - Date.now();
    if (wait > 0) await sleep(wait);
    if (item.kind === 'kill') {
      // kill a worker that is up and working (not one still bundling after the last kill)
      const ready = await opts.supervisor.waitReady(300_000);
      // at least 1–3 s up, so it is busy with the backlog its predecessor left
      const upFor = Date.now() - (ready.readyAt ?? Date.now());
      const minUp = 1000 + opts.random() * 2000;
      if (upFor < minUp) await sleep(minUp - upFor);
      const killed = opts.supervisor.kill();
      if (!killed) continue;
      opts.events.push({ kind: 'worker-kill', at: Date.now(), detail: `worker #${killed.n} (pid ${killed.pid}) after ${Math.round((Date.now() - (killed.readyAt ?? killed.spawnedAt)) / 1000)} s up` });
      log(`SIGKILL worker #${killed.n} (pid ${killed.pid})`);
    } else {
      // short outages are ridden out by the client's gRPC retries; long ones make the webhook answer 503
      const down = 3000 + opts.random() * (opts.serverDownS - 3) * 1000;
      log(`stopping the Temporal dev server (${opts.serverSignal}) for ${(down / 1000).toFixed(1)} s`);
      opts.events.push({ kind: 'server-stop', at: Date.now(), detail: opts.serverSignal });
      await opts.server.halt(opts.serverSignal);
      await sleep(down);
      const t = Date.now();
      await opts.server.start();
      opts.events.push({ kind: 'server-start', at: Date.now(), detail: `up again after ${Math.round((Date.now() - t) / 100) / 10} s start-up` });
      log(`Temporal dev server is back on ${opts.server.address} (start-up ${((Date.now() - t) / 1000).toFixed(1)} s)`);
    }
  }
}

async function main(): Promise<number> {
  const opts = parseChaosOptions(process.argv.slice(2));
  const random = seededRandom(opts.seed);
  const startedAt = new Date();
  const runTag = randomBytes(4).toString('hex').toUpperCase();
  if (!findTemporalBinary('cli')) throw new Error('Temporal CLI not found: run `npm run setup:temporal` (or set TEMPORAL_CLI_PATH)');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'parley-chaos-'));
  // every worker incarnation runs the same code, even if the working tree changes during the run
  const codeRoot = snapshotSources(PROJECT_ROOT, path.join(tmp, 'code'));
  log(
    `${opts.quick ? 'QUICK: ' : ''}${opts.messages} messages over ${opts.leads} leads at ${opts.rate}/s, ${opts.workerKills} worker SIGKILLs, ` +
      `${opts.serverRestarts} dev-server restarts (${opts.serverSignal}), seed ${opts.seed}; files in ${tmp}`,
  );

  const stops: (() => Promise<unknown>)[] = [];
  let db: ChaosDatabase | undefined;
  let failed = true;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    log('interrupted: stopping everything');
    void Promise.allSettled(stops.reverse().map((s) => s())).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    db = await openChaosDatabase(process.env.DATABASE_URL);
    log(`database ${db.created ? `${db.name} (created for this run)` : `${db.name} (DATABASE_URL)`}`);
    // dropped at the end unless --keep or a check failed (then it is kept for the post-mortem)
    if (db.created) stops.push(() => (opts.keep || failed ? Promise.resolve() : db!.drop()));

    const [graph, llm]: [FakeGraphApi, FakeOpenAI] = await Promise.all([startFakeGraphApi(), startFakeOpenAI()]);
    stops.push(() => graph.close(), () => llm.close());

    const server = new RestartableDevServer(await freePort(), path.join(tmp, 'temporal.db'), path.join(tmp, 'temporal.log'));
    await server.start();
    stops.push(() => server.stop());
    log(`Temporal dev server on ${server.address}, SQLite ${server.dbFilename} (start-up ${(server.startMs[0]! / 1000).toFixed(1)} s)`);

    const secrets = {
      PARLEY_ADMIN_TOKEN: `chaos-admin-${randomBytes(12).toString('hex')}`,
      PARLEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      META_APP_SECRET: `chaos-app-secret-${randomBytes(12).toString('hex')}`,
      META_VERIFY_TOKEN: `chaos-verify-${randomBytes(6).toString('hex')}`,
    };
    const taskQueue = `chaos-${runTag.toLowerCase()}`;
    const env: Record<string, string | undefined> = {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: opts.logLevel,
      DATABASE_URL: db.url,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      ...secrets,
      GRAPH_API_URL: graph.url,
      OPENAI_BASE_URL: llm.url,
      OPENAI_API_KEY: 'sk-chaos-fake-openai-key',
      METRICS_PORT: undefined,
      // the simulated Meta sends the 'sent' status within a second: a retry after a kill needs to wait less than in production
      SEND_UNCONFIRMED_WAIT_MS: process.env.SEND_UNCONFIRMED_WAIT_MS ?? '45000',
    };
    const config = loadConfig(env);
    const apiLogStream = createWriteStream(path.join(tmp, 'api.log'), { flags: 'a' });
    const apiLog = createLogger({ level: config.LOG_LEVEL, name: 'parley-api', destination: apiLogStream });
    const core = await buildCore(config, { log: apiLog, migrate: true });
    stops.push(() => core.database.close());
    const { client, connection } = await connectClient({ address: server.address, namespace: server.namespace, payloadCodec: core.payloadCodec });
    stops.push(() => connection.close());
    const temporal = createParleyTemporal(client, { taskQueue, leadIds: core.leadIds });
    const app = createApp({ config, log: apiLog, database: core.database, services: core.services, temporal });
    const http: Server = await new Promise((resolve, reject) => {
      const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    http.keepAliveTimeout = 60_000;
    stops.push(
      () =>
        new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections();
        }),
    );
    const apiUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

    const supervisor = new WorkerSupervisor({ env, logFile: path.join(tmp, 'worker.log'), projectRoot: codeRoot, restartPauseMs: () => 500 + random() * 2500 });
    stops.push(() => supervisor.stop());
    supervisor.start();
    const first = await supervisor.waitReady(300_000);
    log(`API ${apiUrl}; worker #1 (pid ${first.pid}, workers/main.ts from the code snapshot ${codeRoot}) ready after ${((first.readyAt! - first.spawnedAt) / 1000).toFixed(1)} s; task queue ${taskQueue}`);

    // tenant, credits, agent, WhatsApp channel: through the API, as an integrator would
    const initialCredits = opts.messages * 2 + 100;
    const tenant = await api(apiUrl, 'POST', '/v1/tenants', secrets.PARLEY_ADMIN_TOKEN, { name: `Chaos ${runTag}` });
    const tenantId = String(tenant.id);
    const apiKey = String(tenant.apiKey);
    await api(apiUrl, 'POST', `/v1/tenants/${tenantId}/credits`, secrets.PARLEY_ADMIN_TOKEN, { amount: initialCredits, reference: `chaos-${runTag}` });
    const agent = await api(apiUrl, 'POST', '/v1/agents', apiKey, { name: 'Chaos agent', systemPrompt: 'You are a helpful sales assistant.', model: 'gpt-4o-mini' });
    const phoneNumberId = String(100_000_000_000_000 + Math.floor(random() * 899_999_999_999_999));
    const channel = await api(apiUrl, 'POST', '/v1/channels', apiKey, {
      platform: 'whatsapp',
      phoneNumberId,
      accessToken: `EAAGchaos${randomBytes(16).toString('hex')}`,
      verifyToken: `chaos-verify-${runTag}`,
      agentId: agent.id,
    });
    const channelId = String(channel.id);
    const checkSql = postgres(db.url, { max: 2, onnotice: () => {} });
    stops.push(() => checkSql.end({ timeout: 5 }));

    // ---- the run: steady inbound load, kills and restarts at random times ----
    const { plan, waIds } = planMessages(opts, random, runTag);
    const sendMs = (plan.length / opts.rate) * 1000;
    const schedule = chaosSchedule(opts, random, sendMs);
    const events: ChaosEvent[] = [];
    const sender = new MetaSender({
      apiUrl,
      phoneNumberId,
      appSecret: secrets.META_APP_SECRET,
      rate: opts.rate,
      duplicateRate: opts.duplicateRate,
      random,
      timeoutMs: opts.webhookTimeoutS * 1000,
    });
    log(`sending ${plan.length} messages over ~${Math.round(sendMs / 1000)} s; chaos at ${schedule.map((s) => `${s.kind} ${Math.round(s.atMs / 1000)}s`).join(', ')}`);
    // like Meta: every send the Graph API accepted is followed by its sent/delivered status webhooks
    let statusesScanned = 0;
    const statusWatcher = setInterval(() => {
      if (!opts.statusWebhooks) return;
      const sent = graph.sentMessages();
      for (; statusesScanned < sent.length; statusesScanned += 1) sender.statusesFor(sent[statusesScanned]!);
    }, 200);
    stops.push(async () => clearInterval(statusWatcher));
    const sendStart = Date.now();
    const chaos = runChaos({ schedule, startedAt: sendStart, supervisor, server, serverSignal: opts.serverSignal, serverDownS: opts.serverDownS, random, events });
    const step = Math.max(1, Math.round(plan.length / 10));
    await sender.sendAll(plan, (n) => {
      if (n % step === 0 || n === plan.length) {
        const st = sender.stats;
        const w = supervisor.running;
        log(
          `sent ${n}/${plan.length}; accepted ${st.uniqueAccepted} unique, ${st.posts} posts (${Object.entries(st.answers).map(([k, v]) => `${k}×${v}`).join(' ')}), ` +
            `${sender.pendingDeliveries} deliveries pending; worker ${w ? `#${w.n}${w.readyAt ? '' : ' (starting)'}` : 'down'}`,
        );
      }
    });
    await chaos;
    log(`all messages sent and the chaos schedule done after ${Math.round((Date.now() - sendStart) / 1000)} s; draining (Meta's redeliveries go on meanwhile)`);

    // ---- drain ----
    const workflowIds = waIds.map((w) => temporal.leadWorkflowId(channelId, w));
    const settling = sender.settle(300_000).then((ok) => {
      if (!ok) log(`WARNING: ${sender.pendingDeliveries} deliveries still not accepted after 300 s`);
    });
    const drained = await drain({
      sql: checkSql,
      tenantId,
      expectedInbound: plan.length,
      graph,
      temporal,
      workflowIds,
      timeoutMs: opts.drainTimeoutS * 1000,
      // longer than the burst debounce plus the pacing gap, so a reply between them is seen
      quietMs: Math.max(10_000, config.LEAD_DEBOUNCE_GAP_MS + (config.LEAD_PACING_MIN_GAP_MS ?? 6000) + 2000),
      log,
    });
    await settling;
    clearInterval(statusWatcher);
    if (!(await sender.settle(120_000))) log(`WARNING: ${sender.pendingDeliveries} status webhooks still not accepted`);
    log(drained.drained ? `drained after ${drained.waitedS.toFixed(0)} s` : `NOT drained after ${drained.waitedS.toFixed(0)} s: ${drained.unsettled.length} leads unsettled`);

    // ---- checks ----
    const results = await collectChecks({
      opts,
      sql: checkSql,
      tenantId,
      initialCredits,
      plan,
      sender,
      graph,
      temporal,
      client,
      workflowIds,
      channelId,
      supervisor,
      events,
      drained,
    });
    const passed = results.checks.every((c) => c.pass) && !interrupted;
    const finishedAt = new Date();
    const result = {
      benchmark: 'parley-chaos',
      schema: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationS: Math.round((Date.now() - t0) / 100) / 10,
      passed,
      git: { commit: gitCommit() },
      machine: {
        ...machineInfo(),
        loadAvgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      parameters: {
        ...opts,
        topology:
          'this process: Meta sender + fake Graph API + fake LLM + API (createApp over HTTP); worker: workers/main.ts as a child process, ' +
          'run from a snapshot of the sources taken at the start (every incarnation runs the same code); ' +
          'Temporal: temporal server start-dev --db-filename (SQLite in a temp dir, fixed port); PostgreSQL',
        database: db.created ? 'fresh database (dropped after the run unless --keep)' : 'DATABASE_URL',
        leadSettings: leadSettingsFrom(config),
        temporalServerStartMs: server.startMs,
      },
      chaos: {
        events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString(), atS: Math.round((e.at - sendStart) / 100) / 10 })),
        workers: supervisor.incarnations.map((i) => ({
          n: i.n,
          pid: i.pid,
          startupMs: i.readyAt !== undefined ? i.readyAt - i.spawnedAt : null,
          upS: i.exitedAt !== undefined && i.readyAt !== undefined ? Math.round((i.exitedAt - i.readyAt) / 100) / 10 : null,
          exit: i.exit ?? null,
          killedByChaos: i.killedByChaos,
          ...(i.lastLines ? { lastLines: i.lastLines } : {}),
        })),
      },
      delivery: sender.stats,
      drain: { drained: drained.drained, waitedS: Math.round(drained.waitedS), unsettled: drained.unsettled },
      ...results.data,
      checks: results.checks,
    };
    const dir = path.join(PROJECT_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `chaos-${startedAt.toISOString().replace(/[:.]/g, '-')}${opts.quick ? '-quick' : ''}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    printSummary({ result, checks: results.checks, duplicates: results.duplicates, events, sendStart, opts, commit: result.git.commit });
    log(`results written to ${path.relative(process.cwd(), file)}`);
    failed = !passed;
    return passed ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    if (!interrupted) {
      for (const stop of stops.reverse()) await stop().catch((err: unknown) => log(`stop failed: ${(err as Error).message}`));
      if (opts.keep || failed) {
        log(`kept ${tmp} (Temporal SQLite file, worker.log, api.log, temporal.log, code snapshot)`);
        if (db?.created) log(`kept database ${db.name}; drop it with: psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE ${db.name} WITH (FORCE)'`);
      } else {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
  }
}

async function collectChecks(o: {
  opts: ChaosOptions;
  sql: postgres.Sql;
  tenantId: string;
  initialCredits: number;
  plan: PlannedMessage[];
  sender: MetaSender;
  graph: FakeGraphApi;
  temporal: ReturnType<typeof createParleyTemporal>;
  client: Parameters<typeof workflowSummary>[0];
  workflowIds: string[];
  channelId: string;
  supervisor: WorkerSupervisor;
  events: ChaosEvent[];
  drained: Awaited<ReturnType<typeof drain>>;
}): Promise<{ checks: Check[]; duplicates: DuplicateSend[]; data: Record<string, unknown> }> {
  const checks: Check[] = [];
  const add = (group: string, name: string, expected: string | number, actual: string | number, pass: boolean) =>
    checks.push({ group, name, expected: String(expected), actual: String(actual), pass });
  const { sql, tenantId } = o;
  const st = o.sender.stats;
  const unique = o.plan.length;

  // -- inbound
  const snap = await dbSnapshot(sql, tenantId);
  const rows = await sql<{ id: string }[]>`select provider_message_id as id from messages where tenant_id = ${tenantId} and direction = 'inbound'`;
  const recorded = new Set(rows.map((r) => r.id));
  const sentIds = new Set(o.plan.map((m) => m.wamid));
  const missing = [...sentIds].filter((id) => !recorded.has(id));
  const unknown = [...recorded].filter((id) => !sentIds.has(id));
  add('inbound', 'unique messages accepted by the webhook', unique, st.uniqueAccepted, st.uniqueAccepted === unique);
  add('inbound', 'inbound rows recorded', unique, snap.inbound, snap.inbound === unique);
  add('inbound', 'recorded more than once (same wamid)', 0, snap.inbound - snap.inboundDistinct, snap.inbound === snap.inboundDistinct);
  add('inbound', 'accepted but not recorded', 0, missing.length, missing.length === 0);
  add('inbound', 'recorded but never sent', 0, unknown.length, unknown.length === 0);

  // -- lead workflows' own counters (carried across continue-as-new)
  const states = await leadStates(o.temporal, o.workflowIds);
  let admitted = 0;
  let dupsFiltered = 0;
  let turns = 0;
  let replies = 0;
  let failedReplies = 0;
  let blockedTurns = 0;
  let runs = 0;
  let unqueryable = 0;
  for (const s of states.values()) {
    if ('error' in s) {
      unqueryable += 1;
      continue;
    }
    admitted += s.counters.inbound;
    dupsFiltered += s.counters.duplicates;
    turns += s.counters.turns;
    replies += s.counters.replies;
    failedReplies += s.counters.failedReplies;
    blockedTurns += s.counters.blockedTurns;
    runs += s.counters.runs;
  }
  const extraSignals = st.accepted - unique;
  add('workflows', 'lead workflows drained (no buffered messages)', o.workflowIds.length, o.workflowIds.length - o.drained.unsettled.length, o.drained.drained);
  add('workflows', 'lead workflows answering the state query', o.workflowIds.length, o.workflowIds.length - unqueryable, unqueryable === 0);
  add('workflows', 'messages admitted by the workflows (dedup)', unique, admitted, admitted === unique);
  add('workflows', `redeliveries filtered as duplicates`, `>= ${extraSignals}`, dupsFiltered, dupsFiltered >= extraSignals);

  // -- replies: the database, the workflows' counters and what the Graph API saw
  const outboundRows = await sql<{ id: string; provider_message_id: string | null; status: string }[]>`
    select id, provider_message_id, status from messages where tenant_id = ${tenantId} and direction = 'outbound'`;
  const outMap = new Map(outboundRows.map((r) => [r.id, { providerMessageId: r.provider_message_id, status: r.status }]));
  const sentRows = outboundRows.filter((r) => r.status !== 'pending' && r.status !== 'failed');
  // each batch of inbound messages is recorded before its reply's outbound row is created, so
  // every inbound row must have an outbound row of its lead after it (insertion order, seq)
  const [unanswered] = await sql<{ n: number }[]>`
    select count(*)::int as n from messages i
    where i.tenant_id = ${tenantId} and i.direction = 'inbound'
      and not exists (select 1 from messages o where o.lead_id = i.lead_id and o.direction = 'outbound' and o.seq > i.seq)`;
  const sends = sendsByOutboundId(o.graph);
  const totalSends = [...sends.values()].reduce((a, l) => a + l.length, 0);
  const duplicateEntries = [...sends.entries()].filter(([, l]) => l.length > 1);
  const orphans = [...sends.keys()].filter((id) => !outMap.has(id) || outMap.get(id)!.status === 'pending');
  const neverSeen = sentRows.filter((r) => !sends.has(r.id));
  add('replies', 'inbound messages with no reply after them', 0, unanswered?.n ?? -1, unanswered?.n === 0);
  add('replies', 'turns answered (workflow counters)', turns, replies, replies === turns);
  add('replies', 'failed / credit-blocked turns', 0, failedReplies + blockedTurns, failedReplies + blockedTurns === 0);
  add('replies', 'outbound rows sent', replies, sentRows.length, sentRows.length === replies);
  add('replies', 'outbound rows pending or failed', 0, outboundRows.length - sentRows.length, outboundRows.length === sentRows.length);
  add('replies', 'Graph API sends (successful)', sentRows.length, totalSends, totalSends === sentRows.length);
  add('replies', 'outbound ids sent more than once', 0, duplicateEntries.length, duplicateEntries.length === 0);
  add('replies', 'sent rows the Graph API never saw', 0, neverSeen.length, neverSeen.length === 0);
  add('replies', 'sends without a sent outbound row', 0, orphans.length, orphans.length === 0);
  const wrongWamid = sentRows.filter((r) => {
    const wamids = (sends.get(r.id) ?? []).map((x) => ((x.response.body as { messages?: { id?: string }[] }).messages ?? [])[0]?.id);
    return !r.provider_message_id || !wamids.includes(r.provider_message_id);
  });
  add('replies', "rows whose wamid is not one the Graph API returned", 0, wrongWamid.length, wrongWamid.length === 0);

  const [evRows, dl] = await Promise.all([
    sql<{ type: string; n: number }[]>`select type, count(*)::int as n from lead_events where tenant_id = ${tenantId} group by type order by type`,
    sql<{ n: number | null }[]>`select case when to_regclass('dead_letters') is null then null else 0 end as n`,
  ]);
  let deadLetters: Record<string, number> | null = null;
  if (dl[0]?.n !== null) {
    const rows = await sql<{ status: string; n: number }[]>`select status, count(*)::int as n from dead_letters where tenant_id = ${tenantId} group by status`;
    deadLetters = Object.fromEntries(rows.map((r) => [r.status, r.n]));
    const open = deadLetters.open ?? 0;
    add('replies', 'open dead letters', 0, open, open === 0);
  }

  // -- credits
  const held = snap.reservations.held ?? { count: 0, amount: 0 };
  const captured = snap.reservations.captured ?? { count: 0, amount: 0 };
  const topups = snap.ledger.topup?.amount ?? 0;
  const debits = snap.ledger.debit ?? { count: 0, amount: 0 };
  const ledgerSum = Object.values(snap.ledger).reduce((a, l) => a + l.amount, 0);
  const [debitRefs] = await sql<{ orphan: number; dup: number }[]>`
    select
      count(*) filter (where m.id is null or m.status in ('pending', 'failed'))::int as orphan,
      (count(*) - count(distinct l.message_id))::int as dup
    from credit_ledger l left join messages m on m.id = l.message_id
    where l.tenant_id = ${tenantId} and l.kind = 'debit'`;
  add('credits', 'initial = balance + captured + held', o.initialCredits, snap.balance + -debits.amount + held.amount, o.initialCredits === snap.balance - debits.amount + held.amount);
  add('credits', 'sum(ledger) = balance + held', ledgerSum, snap.balance + held.amount, ledgerSum === snap.balance + held.amount);
  add('credits', 'top-ups in the ledger', o.initialCredits, topups, topups === o.initialCredits);
  add('credits', 'reservations still held', 0, held.count, held.count === 0);
  add('credits', 'ledger debits = sent replies', sentRows.length, debits.count, debits.count === sentRows.length);
  add('credits', 'captured reservations = debits', debits.count, captured.count, captured.count === debits.count);
  add('credits', 'debits without a sent message / twice', 0, (debitRefs?.orphan ?? 0) + (debitRefs?.dup ?? 0), (debitRefs?.orphan ?? 0) + (debitRefs?.dup ?? 0) === 0);

  // -- workflows in Temporal (visibility) and their histories
  const { summary: wf, executions } = await workflowSummary(o.client, LEAD_WORKFLOW_TYPE);
  const running = wf.byStatus.RUNNING ?? 0;
  add('temporal', 'lead workflows running', o.workflowIds.length, running, running === o.workflowIds.length);
  add('temporal', 'failed / terminated / timed out / cancelled', 0, wf.failed.length, wf.failed.length === 0);
  add('temporal', 'non-determinism errors in histories', 0, wf.nondeterminism.length, wf.nondeterminism.length === 0);

  // -- the chaos really happened
  const kills = o.events.filter((e) => e.kind === 'worker-kill').length;
  const restarts = o.events.filter((e) => e.kind === 'server-start').length;
  add('chaos', 'worker SIGKILLs', o.opts.workerKills, kills, kills === o.opts.workerKills);
  add('chaos', 'dev-server restarts (same file, same port)', o.opts.serverRestarts, restarts, restarts === o.opts.serverRestarts);

  const duplicates = analyzeDuplicates({
    duplicates: duplicateEntries,
    outboundRows: outMap,
    executions,
    workflowIdFor: (to) => o.temporal.leadWorkflowId(o.channelId, to),
    incarnations: o.supervisor.incarnations,
    events: o.events,
  });
  return {
    checks,
    duplicates,
    data: {
      inbound: { unique, recorded: snap.inbound, missing: missing.slice(0, 50), unknown: unknown.slice(0, 50), admittedByWorkflows: admitted, duplicatesFilteredByWorkflows: dupsFiltered },
      replies: {
        turns,
        replies,
        failedReplies,
        blockedTurns,
        outboundByStatus: snap.outbound,
        graphSends: totalSends,
        uniqueOutboundIdsSent: sends.size,
        duplicates,
        orphans: orphans.slice(0, 50),
        neverSeen: neverSeen.slice(0, 50).map((r) => r.id),
      },
      credits: { initial: o.initialCredits, balance: snap.balance, reservations: snap.reservations, ledger: snap.ledger },
      workflows: { ...wf, runsPerLeadTotal: runs },
      leadEvents: Object.fromEntries(evRows.map((r) => [r.type, r.n])),
      deadLetters,
    },
  };
}

main().then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => {
      console.error('chaos: something kept the process alive after shutdown; exiting');
      process.exit(code);
    }, 15_000).unref();
  },
  (err: unknown) => {
    console.error('chaos failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 2;
    setTimeout(() => process.exit(2), 15_000).unref();
  },
);
