/**
 * Anatomy of a turn, read back from Temporal histories: how many events and workflow tasks a
 * turn costs, and for every activity type how long it waited in the task queue
 * (schedule → start) versus how long it ran (start → close: database, fake LLM, fake Graph API),
 * and how long the workflow deliberately waited on timers (burst debounce, pacing).
 *
 * A turn is a slice of the history: from its input (WorkflowExecutionStarted for a new lead's
 * first turn; the first WorkflowExecutionSignaled / WorkflowExecutionUpdateAccepted at or after
 * the webhook's time for an ordinary turn of an existing lead) to
 *  - "send done": the completion of the activity that sent the reply: the first completed
 *    activity or local-activity marker at or after the moment the fake Graph API received the
 *    reply, preferring one whose name matches /send|replyTurn/i; without a reply time, the first
 *    completion whose name matches;
 *  - "idle": the last event before the lead's next input (or the end of the history), i.e. the
 *    turn including its bookkeeping after the send (credit capture, timers armed).
 * Nothing here knows the workflow's activity names, so the same file measures a workflow that
 * merges or renames its activities or runs them as local activities (MarkerRecorded events).
 */
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time';
import { readableHistory } from '../temporal/readable-history';
import { summarize, type LatencySummary } from './stats';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Activity names that send the reply (today's sendWhatsAppText; a merged replyTurn). */
export const SEND_ACTIVITY = /send|replyTurn/i;

export interface TurnSlice {
  startIndex: number;
  /** Index of the "send done" event; undefined when the turn sent nothing (yet). */
  sendDoneIndex?: number;
  /** Index of the turn's last event (before the next input, or the history's end). */
  idleIndex: number;
  /** Events from the input to send done, both included. */
  eventsToSend?: number;
  /** WorkflowTaskCompleted events after the input up to send done. */
  workflowTasksToSend?: number;
  eventsToIdle: number;
  workflowTasksToIdle: number;
  /** Local activities completed in the turn (MarkerRecorded), by activity type. */
  localActivities: Record<string, number>;
  /** Other markers in the turn (`core_patch` from patched(), …), by marker name. */
  otherMarkers: Record<string, number>;
  startMs: number;
  sendDoneMs?: number;
}

function isInput(e: HistoryEvent): boolean {
  return Boolean(e.workflowExecutionSignaledEventAttributes || e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateAdmittedEventAttributes);
}

/** sdk-core's marker for a completed local activity (others: `core_patch` for patched(), …). */
const LOCAL_ACTIVITY_MARKER = /local_activity/i;

/** The activity type a local-activity marker records (sdk-core writes JSON with `activity_type`); undefined for other markers. */
export function markerActivityType(e: HistoryEvent): string | undefined {
  const m = e.markerRecordedEventAttributes;
  if (!m || !LOCAL_ACTIVITY_MARKER.test(m.markerName ?? '')) return undefined;
  const data = m.details?.data?.payloads?.[0]?.data;
  if (!data) return m.markerName ?? undefined;
  try {
    const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: unknown; activityType?: unknown };
    const t = parsed.activity_type ?? parsed.activityType;
    return typeof t === 'string' ? t : (m.markerName ?? undefined);
  } catch {
    return m.markerName ?? undefined;
  }
}

/**
 * Locate one turn in a history. `from`: epoch ms the turn's input was sent (omit for the first
 * turn, which starts at WorkflowExecutionStarted). `replyAt`: epoch ms the fake Graph API
 * received the turn's reply, when known.
 */
export function sliceTurn(events: readonly HistoryEvent[], opts: { from?: number; replyAt?: number } = {}): TurnSlice | undefined {
  const time = (e: HistoryEvent) => tsToMs(e.eventTime);
  const startIndex =
    opts.from === undefined ? events.findIndex((e) => e.workflowExecutionStartedEventAttributes) : events.findIndex((e) => isInput(e) && time(e) >= opts.from!);
  if (startIndex < 0) return undefined;
  const scheduledType = new Map<string, string>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) scheduledType.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
  }
  const completionType = (e: HistoryEvent): string | undefined => {
    if (e.activityTaskCompletedEventAttributes) return scheduledType.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) ?? '?';
    return markerActivityType(e);
  };
  // The turn ends before the next input that is not part of it: an input after the reply was sent.
  let sendDoneIndex: number | undefined;
  let firstAfterReply: number | undefined;
  let firstNamed: number | undefined;
  let firstNamedAfterReply: number | undefined;
  for (let i = startIndex + 1; i < events.length; i += 1) {
    const e = events[i]!;
    const type = completionType(e);
    if (type === undefined) continue;
    const afterReply = opts.replyAt !== undefined && time(e) >= opts.replyAt;
    if (afterReply && firstAfterReply === undefined) firstAfterReply = i;
    if (SEND_ACTIVITY.test(type)) {
      if (firstNamed === undefined) firstNamed = i;
      if (afterReply && firstNamedAfterReply === undefined) firstNamedAfterReply = i;
    }
    if (firstNamedAfterReply !== undefined) break;
  }
  if (opts.replyAt !== undefined) sendDoneIndex = firstNamedAfterReply ?? firstAfterReply ?? firstNamed;
  else sendDoneIndex = firstNamed;
  let idleIndex = events.length - 1;
  for (let i = (sendDoneIndex ?? startIndex) + 1; i < events.length; i += 1) {
    if (isInput(events[i]!)) {
      idleIndex = i - 1;
      break;
    }
  }
  const wfts = (to: number) => events.slice(startIndex + 1, to + 1).filter((e) => e.workflowTaskCompletedEventAttributes).length;
  const localActivities: Record<string, number> = {};
  const otherMarkers: Record<string, number> = {};
  for (let i = startIndex; i <= idleIndex; i += 1) {
    const e = events[i]!;
    if (!e.markerRecordedEventAttributes) continue;
    const t = markerActivityType(e);
    if (t !== undefined) localActivities[t] = (localActivities[t] ?? 0) + 1;
    else {
      const name = e.markerRecordedEventAttributes.markerName ?? '?';
      otherMarkers[name] = (otherMarkers[name] ?? 0) + 1;
    }
  }
  return {
    startIndex,
    sendDoneIndex,
    idleIndex,
    ...(sendDoneIndex !== undefined ? { eventsToSend: sendDoneIndex - startIndex + 1, workflowTasksToSend: wfts(sendDoneIndex), sendDoneMs: time(events[sendDoneIndex]!) } : {}),
    eventsToIdle: idleIndex - startIndex + 1,
    workflowTasksToIdle: wfts(idleIndex),
    localActivities,
    otherMarkers,
    startMs: time(events[startIndex]!),
  };
}

export interface TurnAnatomy {
  sampled: number;
  /** The whole history of each lead when read (all its turns so far). */
  historyEvents: LatencySummary;
  /** Per turn: input → the reply's send completed, and input → idle (bookkeeping included). */
  turn: {
    found: number;
    eventsToSend: LatencySummary;
    workflowTasksToSend: LatencySummary;
    eventsToIdle: LatencySummary;
    workflowTasksToIdle: LatencySummary;
    /** Local activities (MarkerRecorded) per turn, by type: total over the sample. */
    localActivities: Record<string, number>;
    /** Other markers (`core_patch`, …), by name: total over the sample. */
    otherMarkers: Record<string, number>;
  };
  /** Workflow tasks of the turn (to idle): count per lead and their queue / run times. */
  workflowTasks: { perLead: LatencySummary; scheduleToStartMs: LatencySummary; startToCloseMs: LatencySummary };
  activities: Record<string, { count: number; scheduleToStartMs: LatencySummary; startToCloseMs: LatencySummary }>;
  /** Durable waits in the turn before the send: the sum of its timers (burst debounce, pacing), ms. */
  timersMs: LatencySummary;
  /** Webhook scheduled → the turn's input event (WorkflowExecutionStarted / Signaled), ms. */
  acceptMs: LatencySummary;
  /** The turn's input event → the send completed, ms. */
  workflowMs: LatencySummary;
  /**
   * Payload bytes of the turn's events (input → idle; every Payload's data + metadata keys and
   * values, search attributes left out as the codec leaves them alone): as stored in Temporal
   * (`stored`: encrypted when the payload codec is on) and as the codec decodes them (`plain`:
   * what the same turn stores with the codec off). Per turn and per payload.
   */
  payloadBytes: { perTurn: { stored: LatencySummary; plain: LatencySummary }; payloadsPerTurn: LatencySummary; perPayload: { stored: number; plain: number } };
}

/** Payloads under `node` (search attributes left out): how many and their bytes (data + metadata keys and values). */
export function payloadByteCount(node: unknown): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  const walk = (v: unknown): void => {
    if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
    if (Array.isArray(v)) return v.forEach(walk);
    const o = v as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && (o.metadata as Record<string, unknown>).encoding instanceof Uint8Array) {
      count += 1;
      bytes += o.data instanceof Uint8Array ? o.data.length : 0;
      for (const [k, x] of Object.entries(o.metadata as Record<string, unknown>)) bytes += Buffer.byteLength(k) + (x instanceof Uint8Array ? x.length : 0);
      return;
    }
    for (const [k, x] of Object.entries(o)) if (k !== 'searchAttributes') walk(x);
  };
  walk(node);
  return { count, bytes };
}

export interface TurnSample {
  workflowId: string;
  /** Epoch ms the webhook was scheduled. */
  dueAt: number;
  /** Epoch ms the fake Graph API received this turn's reply. */
  replyAt?: number;
  /** The lead's first turn (starts at WorkflowExecutionStarted) or a later one (starts at the input at/after dueAt). */
  first: boolean;
}

export async function turnAnatomy(client: Client, leads: TurnSample[]): Promise<TurnAnatomy> {
  const events: number[] = [];
  const toSend: number[] = [];
  const wftToSend: number[] = [];
  const toIdle: number[] = [];
  const wftToIdle: number[] = [];
  const localActivities: Record<string, number> = {};
  const otherMarkers: Record<string, number> = {};
  const wftQueue: number[] = [];
  const wftRun: number[] = [];
  const accept: number[] = [];
  const workflow: number[] = [];
  const timers: number[] = [];
  const acts = new Map<string, { queue: number[]; run: number[] }>();
  const storedBytes: number[] = [];
  const plainBytes: number[] = [];
  const payloadCounts: number[] = [];
  const codecs = client.options.loadedDataConverter.payloadCodecs;
  let found = 0;
  for (const lead of leads) {
    const history = await client.workflow.getHandle(lead.workflowId).fetchHistory();
    const list = history.events ?? [];
    events.push(list.length);
    const slice = sliceTurn(list, { from: lead.first ? undefined : lead.dueAt, replyAt: lead.replyAt });
    if (!slice) continue;
    found += 1;
    toIdle.push(slice.eventsToIdle);
    wftToIdle.push(slice.workflowTasksToIdle);
    if (slice.eventsToSend !== undefined) toSend.push(slice.eventsToSend);
    if (slice.workflowTasksToSend !== undefined) wftToSend.push(slice.workflowTasksToSend);
    for (const [k, v] of Object.entries(slice.localActivities)) localActivities[k] = (localActivities[k] ?? 0) + v;
    for (const [k, v] of Object.entries(slice.otherMarkers)) otherMarkers[k] = (otherMarkers[k] ?? 0) + v;
    accept.push(slice.startMs - lead.dueAt);
    if (slice.sendDoneMs !== undefined) workflow.push(slice.sendDoneMs - slice.startMs);
    const at = new Map<string, number>();
    const actType = new Map<string, string>();
    let timerMs = 0;
    for (let i = 0; i < list.length; i += 1) {
      const e = list[i]!;
      const id = String(e.eventId);
      const t = tsToMs(e.eventTime);
      at.set(id, t);
      if (e.activityTaskScheduledEventAttributes) actType.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      if (i <= slice.startIndex || i > slice.idleIndex) continue;
      if (e.workflowTaskStartedEventAttributes) {
        const s = at.get(String(e.workflowTaskStartedEventAttributes.scheduledEventId));
        if (s !== undefined) wftQueue.push(t - s);
      }
      if (e.workflowTaskCompletedEventAttributes) {
        const s = at.get(String(e.workflowTaskCompletedEventAttributes.startedEventId));
        if (s !== undefined) wftRun.push(t - s);
      }
      const timerEnd = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
      if (timerEnd) {
        const s = at.get(String(timerEnd.startedEventId));
        // only timers the turn started and that ended before its send (debounce, pacing)
        if (s !== undefined && s >= slice.startMs && (slice.sendDoneMs === undefined || t <= slice.sendDoneMs)) timerMs += t - s;
      }
      const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      if (done) {
        const type = actType.get(String(done.scheduledEventId)) ?? '?';
        const scheduled = at.get(String(done.scheduledEventId));
        const start = at.get(String(done.startedEventId));
        const entry = acts.get(type) ?? { queue: [], run: [] };
        acts.set(type, entry);
        if (scheduled !== undefined && start !== undefined) entry.queue.push(start - scheduled);
        if (start !== undefined) entry.run.push(t - start);
      }
    }
    timers.push(timerMs);
    // the turn's payloads as stored, then decoded in place by the client's codec (plain = codec off)
    const turnEvents = list.slice(slice.startIndex, slice.idleIndex + 1);
    const stored = payloadByteCount(turnEvents);
    await readableHistory({ events: turnEvents }, codecs);
    storedBytes.push(stored.bytes);
    plainBytes.push(payloadByteCount(turnEvents).bytes);
    payloadCounts.push(stored.count);
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const payloadTotal = sum(payloadCounts);
  const activities: TurnAnatomy['activities'] = {};
  for (const [type, v] of acts) activities[type] = { count: v.run.length, scheduleToStartMs: summarize(v.queue), startToCloseMs: summarize(v.run) };
  return {
    sampled: leads.length,
    historyEvents: summarize(events),
    turn: {
      found,
      eventsToSend: summarize(toSend),
      workflowTasksToSend: summarize(wftToSend),
      eventsToIdle: summarize(toIdle),
      workflowTasksToIdle: summarize(wftToIdle),
      localActivities,
      otherMarkers,
    },
    workflowTasks: { perLead: summarize(wftToIdle), scheduleToStartMs: summarize(wftQueue), startToCloseMs: summarize(wftRun) },
    activities,
    timersMs: summarize(timers),
    acceptMs: summarize(accept),
    workflowMs: summarize(workflow),
    payloadBytes: {
      perTurn: { stored: summarize(storedBytes), plain: summarize(plainBytes) },
      payloadsPerTurn: summarize(payloadCounts),
      perPayload: { stored: payloadTotal ? Math.round(sum(storedBytes) / payloadTotal) : 0, plain: payloadTotal ? Math.round(sum(plainBytes) / payloadTotal) : 0 },
    },
  };
}
