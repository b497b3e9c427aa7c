/**
 * Anatomy of a turn, read back from Temporal histories: how many events and workflow tasks a
 * turn costs, and for every activity type how long it waited in the task queue
 * (schedule → start) versus how long it ran (start → close: database, fake LLM, fake Graph API),
 * and how long the workflow deliberately waited on timers (burst debounce, pacing).
 */
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { summarize, type LatencySummary } from './stats';

export interface TurnAnatomy {
  sampled: number;
  historyEvents: LatencySummary;
  workflowTasks: { perLead: LatencySummary; scheduleToStartMs: LatencySummary; startToCloseMs: LatencySummary };
  activities: Record<string, { count: number; scheduleToStartMs: LatencySummary; startToCloseMs: LatencySummary }>;
  /** Durable waits per lead: the sum of its timers (burst debounce, pacing), ms. */
  timersMs: LatencySummary;
  /** Webhook scheduled → WorkflowExecutionStarted (acceptance), ms. */
  acceptMs: LatencySummary;
  /** WorkflowExecutionStarted → the send activity completed, ms. */
  workflowMs: LatencySummary;
}

export async function turnAnatomy(client: Client, leads: { workflowId: string; dueAt: number }[]): Promise<TurnAnatomy> {
  const events: number[] = [];
  const wftPerLead: number[] = [];
  const wftQueue: number[] = [];
  const wftRun: number[] = [];
  const accept: number[] = [];
  const workflow: number[] = [];
  const timers: number[] = [];
  const acts = new Map<string, { queue: number[]; run: number[] }>();
  for (const lead of leads) {
    const history = await client.workflow.getHandle(lead.workflowId).fetchHistory();
    const list = history.events ?? [];
    events.push(list.length);
    const at = new Map<string, number>();
    const actType = new Map<string, string>();
    let started: number | undefined;
    let wfts = 0;
    let lastSendDone: number | undefined;
    let timerMs = 0;
    for (const e of list) {
      const id = String(e.eventId);
      const t = tsToMs(e.eventTime);
      at.set(id, t);
      if (e.workflowExecutionStartedEventAttributes) started = t;
      if (e.workflowTaskStartedEventAttributes) {
        const s = at.get(String(e.workflowTaskStartedEventAttributes.scheduledEventId));
        if (s !== undefined) wftQueue.push(t - s);
      }
      if (e.workflowTaskCompletedEventAttributes) {
        wfts += 1;
        const s = at.get(String(e.workflowTaskCompletedEventAttributes.startedEventId));
        if (s !== undefined) wftRun.push(t - s);
      }
      const timerEnd = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
      if (timerEnd) {
        const s = at.get(String(timerEnd.startedEventId));
        if (s !== undefined && (lastSendDone === undefined || t <= lastSendDone)) timerMs += t - s;
      }
      if (e.activityTaskScheduledEventAttributes) actType.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      if (done) {
        const type = actType.get(String(done.scheduledEventId)) ?? '?';
        const scheduled = at.get(String(done.scheduledEventId));
        const start = at.get(String(done.startedEventId));
        const entry = acts.get(type) ?? { queue: [], run: [] };
        acts.set(type, entry);
        if (scheduled !== undefined && start !== undefined) entry.queue.push(start - scheduled);
        if (start !== undefined) entry.run.push(t - start);
        if (/send/i.test(type)) lastSendDone = t;
      }
    }
    wftPerLead.push(wfts);
    timers.push(timerMs);
    if (started !== undefined) {
      accept.push(started - lead.dueAt);
      if (lastSendDone !== undefined) workflow.push(lastSendDone - started);
    }
  }
  const activities: TurnAnatomy['activities'] = {};
  for (const [type, v] of acts) activities[type] = { count: v.run.length, scheduleToStartMs: summarize(v.queue), startToCloseMs: summarize(v.run) };
  return {
    sampled: leads.length,
    historyEvents: summarize(events),
    workflowTasks: { perLead: summarize(wftPerLead), scheduleToStartMs: summarize(wftQueue), startToCloseMs: summarize(wftRun) },
    activities,
    timersMs: summarize(timers),
    acceptMs: summarize(accept),
    workflowMs: summarize(workflow),
  };
}
