/**
 * What the lead's main loop does next: the one place that orders the work. The loop runs the
 * answer when it is due, or waits until `until` (or a change) otherwise. Pure.
 */
import type { SequenceAction } from './sequence';

export type Work =
  /** A send the previous run carried while it waited for the circuit breaker: it was first. */
  | { kind: 'resume_carried'; id: string }
  /** A manual message or API template from the outbox. */
  | { kind: 'outbox' }
  /** An admin replays a dead letter. */
  | { kind: 'replay' }
  /** A failed-delivery status from the webhook. */
  | { kind: 'status' }
  /** Answer what the lead wrote. */
  | { kind: 'reply' }
  | { kind: 'sequence_step' }
  | { kind: 'bump_up' }
  /** A follow-up the model scheduled (schedule_follow_up) whose time came. */
  | { kind: 'follow_up' }
  | { kind: 'extraction' }
  /** A deferred send (131049) whose time came. */
  | { kind: 'deferred'; id: string };

/** `background`: only background work waits (no burst buffered, no carried send), so the wake-up may be spread (policy/spread.ts). */
export type NextWork = { run: Work } | { wait: { until: string; what: string; background: boolean } | undefined };

export interface NextWorkInput {
  now: string;
  /** In-memory queues of this run (never carried): they run before anything else. */
  outbox: number;
  replays: number;
  statuses: number;
  /** Buffered inbound messages (or ones recorded early) and when the burst's debounce ends. */
  inbox?: { flushAt: string };
  sequence: SequenceAction;
  bumpUpAt?: string;
  /** The earliest scheduled follow-up (agent tool schedule_follow_up). */
  followUpAt?: string;
  extractionAt?: string;
  deferred: readonly { id: string; retryAt?: string; resumesFirst: boolean }[];
}

export function nextWork(input: NextWorkInput): NextWork {
  const { now } = input;
  const t = Date.parse(now);
  const due = (at: string | undefined): at is string => at !== undefined && Date.parse(at) <= t;
  const dueDeferred = input.deferred.find((d) => due(d.retryAt));
  if (dueDeferred?.resumesFirst) return { run: { kind: 'resume_carried', id: dueDeferred.id } };
  if (input.outbox > 0) return { run: { kind: 'outbox' } };
  if (input.replays > 0) return { run: { kind: 'replay' } };
  if (input.statuses > 0) return { run: { kind: 'status' } };

  // every deadline, earliest first; the first that is due decides that something runs
  const waits: { at: string; what: string }[] = [];
  if (input.inbox) waits.push({ at: input.inbox.flushAt, what: 'Wait for more messages (burst)' });
  const seq = input.sequence;
  if (seq.type === 'wait') waits.push({ at: seq.until, what: seq.reason === 'quiet_hours' ? 'Sequence: quiet hours' : 'Sequence: next step delay' });
  if (seq.type === 'send') waits.push({ at: now, what: 'Sequence step due' });
  if (input.bumpUpAt) waits.push({ at: input.bumpUpAt, what: 'Bump-up if the lead stays quiet' });
  if (input.followUpAt) waits.push({ at: input.followUpAt, what: 'Scheduled follow-up (schedule_follow_up)' });
  if (input.extractionAt && !input.inbox) waits.push({ at: input.extractionAt, what: 'Extract lead data after inactivity' });
  for (const d of input.deferred) if (d.retryAt) waits.push({ at: d.retryAt, what: 'Retry a deferred send' });
  waits.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
  const first = waits[0];
  // only background work waits (no burst buffered, no carried send): its wake-up may be spread later
  const background = !input.inbox && !input.deferred.some((d) => d.resumesFirst && d.retryAt);
  if (!first || !due(first.at)) return { wait: first ? { until: first.at, what: first.what, background } : undefined };

  // something is due: what the lead wrote comes first, so a reply can stop the sequence before its step goes out
  if (input.inbox) return { run: { kind: 'reply' } };
  if (seq.type === 'send') return { run: { kind: 'sequence_step' } };
  if (due(input.followUpAt)) return { run: { kind: 'follow_up' } };
  if (due(input.bumpUpAt)) return { run: { kind: 'bump_up' } };
  if (due(input.extractionAt)) return { run: { kind: 'extraction' } };
  if (dueDeferred) return { run: { kind: 'deferred', id: dueDeferred.id } };
  // a deadline in the past that asks for nothing (never expected): look again in a second
  return { wait: { until: new Date(t + 1000).toISOString(), what: first.what, background: false } };
}
