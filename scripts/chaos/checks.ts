/**
 * After the chaos: wait until every lead workflow has settled, then compare what "Meta" sent,
 * what the database recorded, what the fake Graph API received, the credit ledger and the
 * workflows' state in Temporal. Every duplicate send is traced to its cause through the
 * workflow history and the record of worker kills and server restarts.
 */
import type { Client } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import type { Sql } from 'postgres';
import type { FakeGraphApi, GraphRequestRecord } from '../../fakes/graph-api';
import type { ParleyTemporal } from '../../temporal/client';
import { readableHistory } from '../../temporal/readable-history';
import type { LeadStateSnapshot } from '../../workflows/lead/definitions';
import type { WorkerIncarnation } from './worker-supervisor';

export interface ChaosEvent {
  kind: 'worker-kill' | 'server-stop' | 'server-start';
  at: number;
  /** Worker incarnation killed, or the server's down time. */
  detail: string;
}

export interface Check {
  group: string;
  name: string;
  expected: string;
  actual: string;
  pass: boolean;
}

export interface DbSnapshot {
  inbound: number;
  inboundDistinct: number;
  outbound: Record<string, number>;
  reservations: Record<string, { count: number; amount: number }>;
  ledger: Record<string, { count: number; amount: number }>;
  balance: number;
  events: number;
}

export async function dbSnapshot(sql: Sql, tenantId: string): Promise<DbSnapshot> {
  const [inb] = await sql<{ n: number; d: number }[]>`
    select count(*)::int as n, count(distinct provider_message_id)::int as d from messages where tenant_id = ${tenantId} and direction = 'inbound'`;
  const out = await sql<{ status: string; n: number }[]>`
    select status, count(*)::int as n from messages where tenant_id = ${tenantId} and direction = 'outbound' group by status`;
  const res = await sql<{ status: string; n: number; amount: number }[]>`
    select status, count(*)::int as n, coalesce(sum(amount), 0)::int as amount from credit_reservations where tenant_id = ${tenantId} group by status`;
  const led = await sql<{ kind: string; n: number; amount: number }[]>`
    select kind, count(*)::int as n, coalesce(sum(amount), 0)::int as amount from credit_ledger where tenant_id = ${tenantId} group by kind`;
  const [t] = await sql<{ balance: number }[]>`select credit_balance as balance from tenants where id = ${tenantId}`;
  const [ev] = await sql<{ n: number }[]>`select count(*)::int as n from lead_events where tenant_id = ${tenantId}`;
  return {
    inbound: inb?.n ?? 0,
    inboundDistinct: inb?.d ?? 0,
    outbound: Object.fromEntries(out.map((r) => [r.status, r.n])),
    reservations: Object.fromEntries(res.map((r) => [r.status, { count: r.n, amount: r.amount }])),
    ledger: Object.fromEntries(led.map((r) => [r.kind, { count: r.n, amount: r.amount }])),
    balance: t?.balance ?? 0,
    events: ev?.n ?? 0,
  };
}

/** Successful user-visible sends seen by the fake Graph API, by our outbound id (biz_opaque_callback_data). */
export function sendsByOutboundId(graph: FakeGraphApi): Map<string, GraphRequestRecord[]> {
  const by = new Map<string, GraphRequestRecord[]>();
  for (const r of graph.sentMessages()) {
    const id = String((r.body as { biz_opaque_callback_data?: unknown }).biz_opaque_callback_data ?? '(none)');
    const list = by.get(id) ?? [];
    list.push(r);
    by.set(id, list);
  }
  return by;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export async function leadStates(temporal: ParleyTemporal, workflowIds: string[]): Promise<Map<string, LeadStateSnapshot | { error: string }>> {
  const states = await mapLimit(workflowIds, 8, async (id) => {
    try {
      return (await temporal.leadState(id)) ?? { error: 'no such workflow' };
    } catch (err) {
      return { error: (err as Error).message };
    }
  });
  return new Map(workflowIds.map((id, i) => [id, states[i]!]));
}

export interface DrainResult {
  drained: boolean;
  waitedS: number;
  lastSnapshot: DbSnapshot;
  /** Leads whose workflow still had unhandled messages (or could not be queried) at the end. */
  unsettled: { workflowId: string; pendingInbound?: number; outbox?: number; error?: string }[];
}

/**
 * Wait until every inbound message is recorded, no reply is in flight (no held reservation,
 * no pending outbound row), nothing has changed for `quietMs`, and every lead workflow says
 * it has no buffered messages.
 */
export async function drain(opts: {
  sql: Sql;
  tenantId: string;
  expectedInbound: number;
  graph: FakeGraphApi;
  temporal: ParleyTemporal;
  workflowIds: string[];
  timeoutMs: number;
  quietMs: number;
  log: (line: string) => void;
}): Promise<DrainResult> {
  const t0 = Date.now();
  let lastSig = '';
  let quietSince = Date.now();
  let lastLog = 0;
  let snap = await dbSnapshot(opts.sql, opts.tenantId);
  let unsettled: DrainResult['unsettled'] = [];
  for (;;) {
    snap = await dbSnapshot(opts.sql, opts.tenantId);
    const sends = opts.graph.sentMessages().length;
    const sig = JSON.stringify([snap.inbound, snap.outbound, snap.reservations, snap.events, sends]);
    if (sig !== lastSig) {
      lastSig = sig;
      quietSince = Date.now();
    }
    const held = snap.reservations.held?.count ?? 0;
    const pending = snap.outbound.pending ?? 0;
    const now = Date.now();
    if (now - lastLog >= 10_000) {
      lastLog = now;
      opts.log(
        `drain ${Math.round((now - t0) / 1000)} s: inbound recorded ${snap.inbound}/${opts.expectedInbound}, replies sent ${snap.outbound.sent ?? 0}, ` +
          `in flight: ${held} held credits, ${pending} pending sends; Graph sends ${sends}`,
      );
    }
    if (snap.inbound >= opts.expectedInbound && held === 0 && pending === 0 && now - quietSince >= opts.quietMs) {
      const states = await leadStates(opts.temporal, opts.workflowIds);
      unsettled = [];
      for (const [workflowId, s] of states) {
        if ('error' in s) unsettled.push({ workflowId, error: s.error });
        else if (s.pendingInbound > 0 || (s.outbox?.length ?? 0) > 0) unsettled.push({ workflowId, pendingInbound: s.pendingInbound, outbox: s.outbox?.length ?? 0 });
      }
      if (unsettled.length === 0) return { drained: true, waitedS: (Date.now() - t0) / 1000, lastSnapshot: snap, unsettled };
    }
    if (Date.now() - t0 > opts.timeoutMs) {
      if (unsettled.length === 0) {
        const states = await leadStates(opts.temporal, opts.workflowIds);
        for (const [workflowId, s] of states) {
          if ('error' in s) unsettled.push({ workflowId, error: s.error });
          else if (s.pendingInbound > 0 || (s.outbox?.length ?? 0) > 0) unsettled.push({ workflowId, pendingInbound: s.pendingInbound, outbox: s.outbox?.length ?? 0 });
        }
      }
      return { drained: false, waitedS: (Date.now() - t0) / 1000, lastSnapshot: snap, unsettled };
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---------------------------------------------------------------------------------------------
// workflows: status by visibility, and what the chaos left in their histories

type HistoryEvent = proto.api.history.v1.IHistoryEvent;

export interface WorkflowExecutionRecord {
  workflowId: string;
  runId: string;
  status: string;
  events: HistoryEvent[];
}

export interface WorkflowSummary {
  executions: number;
  byStatus: Record<string, number>;
  /** Closed runs that are neither continued-as-new nor completed: failed, terminated, timed out, cancelled. */
  failed: { workflowId: string; runId: string; status: string; failure?: string }[];
  /** Workflow task failures in the histories, by cause and message. */
  workflowTaskFailures: Record<string, number>;
  workflowTaskTimeouts: number;
  nondeterminism: { workflowId: string; runId: string; eventId: string; message: string }[];
  /** Activities that needed more than one attempt, by type and last failure. */
  retriedActivities: Record<string, number>;
  /** Activities that closed as failed or timed out (after their retries). */
  activityFailures: Record<string, number>;
  /**
   * Send activities that completed on a later attempt (the first one died with its worker):
   * `alreadySent` = the retry found the stored wamid and sent nothing; `sentOnRetry` = the
   * first attempt had not sent yet (or had not stored the wamid: then it is a duplicate).
   */
  retriedSends: { alreadySent: number; sentOnRetry: number };
}

function decodePayloads(p: proto.api.common.v1.IPayloads | null | undefined): string {
  return (p?.payloads ?? []).map((x) => (x.data ? Buffer.from(x.data).toString('utf8') : '')).join(' ');
}

export async function workflowSummary(client: Client, workflowType: string): Promise<{ summary: WorkflowSummary; executions: WorkflowExecutionRecord[] }> {
  const list: { workflowId: string; runId: string; status: string }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = '${workflowType}'` })) {
    list.push({ workflowId: w.workflowId, runId: w.runId, status: w.status.name });
  }
  const executions = await mapLimit(list, 8, async (w) => {
    // decoded: the payloads are encrypted and the failures' text encoded (temporal/readable-history.ts)
    const history = await readableHistory(await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory(), client.options.loadedDataConverter.payloadCodecs);
    return { ...w, events: history.events ?? [] };
  });
  const s: WorkflowSummary = {
    executions: executions.length,
    byStatus: {},
    failed: [],
    workflowTaskFailures: {},
    workflowTaskTimeouts: 0,
    nondeterminism: [],
    retriedActivities: {},
    activityFailures: {},
    retriedSends: { alreadySent: 0, sentOnRetry: 0 },
  };
  const causeName = (c: number | null | undefined) =>
    (proto.api.enums.v1.WorkflowTaskFailedCause[c ?? 0] ?? String(c)).replace('WORKFLOW_TASK_FAILED_CAUSE_', '');
  for (const e of executions) {
    s.byStatus[e.status] = (s.byStatus[e.status] ?? 0) + 1;
    const actType = new Map<string, string>();
    const attempts = new Map<string, number>();
    for (const ev of e.events) {
      const a = ev.activityTaskScheduledEventAttributes;
      if (a) actType.set(String(ev.eventId), a.activityType?.name ?? '?');
      const wtf = ev.workflowTaskFailedEventAttributes;
      if (wtf) {
        const cause = causeName(wtf.cause);
        const key = `${cause}: ${(wtf.failure?.message ?? '').slice(0, 120)}`;
        s.workflowTaskFailures[key] = (s.workflowTaskFailures[key] ?? 0) + 1;
        if (/NON_DETERMINISTIC/.test(cause) || /nondetermin/i.test(wtf.failure?.message ?? '')) {
          s.nondeterminism.push({ workflowId: e.workflowId, runId: e.runId, eventId: String(ev.eventId), message: wtf.failure?.message ?? '' });
        }
      }
      if (ev.workflowTaskTimedOutEventAttributes) s.workflowTaskTimeouts += 1;
      const st = ev.activityTaskStartedEventAttributes;
      if (st) attempts.set(String(st.scheduledEventId), st.attempt ?? 1);
      const done = ev.activityTaskCompletedEventAttributes;
      if (done && (attempts.get(String(done.scheduledEventId)) ?? 1) > 1 && /^send/.test(actType.get(String(done.scheduledEventId)) ?? '')) {
        if (/"alreadySent"\s*:\s*true/.test(decodePayloads(done.result))) s.retriedSends.alreadySent += 1;
        else s.retriedSends.sentOnRetry += 1;
      }
      if (st && (st.attempt ?? 1) > 1) {
        const key = `${actType.get(String(st.scheduledEventId)) ?? '?'} (last failure: ${(st.lastFailure?.message ?? '?').slice(0, 80)})`;
        s.retriedActivities[key] = (s.retriedActivities[key] ?? 0) + 1;
      }
      const af = ev.activityTaskFailedEventAttributes ?? ev.activityTaskTimedOutEventAttributes;
      if (af) {
        const key = `${actType.get(String(af.scheduledEventId)) ?? '?'}: ${(af.failure?.message ?? '?').slice(0, 100)}`;
        s.activityFailures[key] = (s.activityFailures[key] ?? 0) + 1;
      }
    }
    if (!['RUNNING', 'CONTINUED_AS_NEW', 'COMPLETED'].includes(e.status)) {
      const last = e.events.at(-1);
      const failure =
        last?.workflowExecutionFailedEventAttributes?.failure?.message ??
        last?.workflowExecutionTerminatedEventAttributes?.reason ??
        (last?.workflowExecutionTimedOutEventAttributes ? 'timed out' : undefined);
      s.failed.push({ workflowId: e.workflowId, runId: e.runId, status: e.status, failure: failure ?? undefined });
    }
  }
  return { summary: s, executions };
}

// ---------------------------------------------------------------------------------------------
// duplicate sends: what happened

export interface DuplicateSend {
  outboundMessageId: string;
  to: string;
  workflowId?: string;
  sends: { at: string; wamid: string }[];
  /** The provider id stored on the outbound row, and its status. */
  stored: { providerMessageId: string | null; status: string } | null;
  activity?: {
    type: string;
    runId: string;
    scheduledEventId: string;
    startedEventId?: string;
    /** Attempt that finally completed. */
    attempt: number;
    /** Why the previous attempt ended (Temporal's record). */
    lastFailure?: string;
    closedEventId?: string;
    closedAs?: string;
  };
  /** The worker that made the first send, and what happened to it. */
  firstSendWorker?: { n: number; pid: number; killedByChaos: boolean; killedMsAfterSend?: number; exitedMsAfterSend?: number };
  serverStopsBetween: number;
  cause: string;
}

export function analyzeDuplicates(opts: {
  duplicates: [string, GraphRequestRecord[]][];
  outboundRows: Map<string, { providerMessageId: string | null; status: string }>;
  executions: WorkflowExecutionRecord[];
  workflowIdFor: (to: string) => string;
  incarnations: readonly WorkerIncarnation[];
  events: readonly ChaosEvent[];
}): DuplicateSend[] {
  return opts.duplicates.map(([id, sends]) => {
    const to = String((sends[0]!.body as { to?: unknown }).to ?? '');
    const workflowId = to ? opts.workflowIdFor(to) : undefined;
    const d: DuplicateSend = {
      outboundMessageId: id,
      to,
      workflowId,
      sends: sends.map((s) => ({
        at: s.at,
        wamid: String(((s.response.body as { messages?: { id?: string }[] }).messages ?? [])[0]?.id ?? '?'),
      })),
      stored: opts.outboundRows.get(id) ?? null,
      serverStopsBetween: 0,
      cause: '',
    };
    // the send activity in the history: its input carries the outbound id
    for (const e of opts.executions.filter((x) => x.workflowId === workflowId)) {
      const at = new Map<string, HistoryEvent>();
      for (const ev of e.events) {
        at.set(String(ev.eventId), ev);
        const sch = ev.activityTaskScheduledEventAttributes;
        // the send activity (captureCredit's input carries the same id as its messageId)
        if (sch && /^send/.test(sch.activityType?.name ?? '') && decodePayloads(sch.input).includes(id)) {
          d.activity = { type: sch.activityType?.name ?? '?', runId: e.runId, scheduledEventId: String(ev.eventId), attempt: 1 };
        }
        if (!d.activity || d.activity.runId !== e.runId) continue;
        const st = ev.activityTaskStartedEventAttributes;
        if (st && String(st.scheduledEventId) === d.activity.scheduledEventId) {
          d.activity.startedEventId = String(ev.eventId);
          d.activity.attempt = st.attempt ?? 1;
          d.activity.lastFailure = st.lastFailure?.message ?? undefined;
        }
        const closed =
          (ev.activityTaskCompletedEventAttributes && ['completed', ev.activityTaskCompletedEventAttributes] as const) ||
          (ev.activityTaskFailedEventAttributes && ['failed', ev.activityTaskFailedEventAttributes] as const) ||
          (ev.activityTaskTimedOutEventAttributes && ['timed out', ev.activityTaskTimedOutEventAttributes] as const);
        if (closed && String(closed[1].scheduledEventId) === d.activity.scheduledEventId) {
          d.activity.closedEventId = String(ev.eventId);
          d.activity.closedAs = closed[0];
        }
      }
    }
    const t1 = Date.parse(sends[0]!.at);
    const t2 = Date.parse(sends[1]!.at);
    const inc = opts.incarnations.find((i) => i.spawnedAt <= t1 && (i.exitedAt === undefined || i.exitedAt >= t1));
    if (inc) {
      d.firstSendWorker = {
        n: inc.n,
        pid: inc.pid,
        killedByChaos: inc.killedByChaos,
        ...(inc.killedAt !== undefined ? { killedMsAfterSend: inc.killedAt - t1 } : {}),
        ...(inc.exitedAt !== undefined ? { exitedMsAfterSend: inc.exitedAt - t1 } : {}),
      };
    }
    d.serverStopsBetween = opts.events.filter((e) => e.kind === 'server-stop' && e.at >= t1 && e.at <= t2).length;
    const act = d.activity ? `${d.activity.type} (workflow ${workflowId}, run ${d.activity.runId}, scheduled event ${d.activity.scheduledEventId}, completed on attempt ${d.activity.attempt}${d.activity.lastFailure ? ` after "${d.activity.lastFailure}"` : ''})` : 'the send activity';
    const storedNote = d.stored
      ? `the outbound row now holds ${d.stored.providerMessageId === d.sends.at(-1)?.wamid ? 'the last' : d.stored.providerMessageId === d.sends[0]?.wamid ? 'the first' : 'another'} wamid (status ${d.stored.status})`
      : 'no outbound row';
    const killedAt = inc?.killedAt ?? inc?.exitedAt;
    if (inc?.killedByChaos && killedAt !== undefined && killedAt >= t1 && killedAt <= t2) {
      d.cause =
        `worker #${inc.n} (pid ${inc.pid}) was SIGKILLed ${killedAt - t1} ms after the fake Graph API received the first send, before ` +
        `markOutboundSent stored the wamid, so the row stayed 'pending'; Temporal retried ${act} after its start-to-close timeout, ` +
        `createOutbound found no provider id and the message was sent again; ${storedNote}`;
    } else if (d.serverStopsBetween > 0) {
      d.cause = `the Temporal server was stopped between the two sends; ${act} was retried and sent again; ${storedNote}`;
    } else if (inc && d.activity && d.activity.attempt > 1) {
      d.cause =
        `no kill or restart in between: attempt 1 of ${act} outlived its start-to-close timeout (a slow attempt, not a dead one) and ` +
        `the retry sent again before the first attempt stored the wamid; ${storedNote}`;
    } else {
      d.cause = `unexplained: ${act}; ${storedNote}`;
    }
    return d;
  });
}
