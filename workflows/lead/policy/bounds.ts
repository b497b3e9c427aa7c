/**
 * Bounds that keep one lead's workflow alive and small whatever arrives: provider times that
 * cannot be real, redeliveries older than the dedup window, and how many parked operations the
 * workflow state carries (the dead letters themselves live in the database).
 */
import { CIRCUIT_WAIT_FAILURES, failureIn } from '../../../contract/failures';
import type { InboundMessage, ParkedRef } from '../../../contract/messages';

/** Provider times earlier than this are not real (WhatsApp did not exist). */
const EARLIEST_SENT_AT_MS = Date.UTC(2000, 0, 1);
/** A provider clock may run a little ahead of ours; more than this is a broken timestamp. */
export const SENT_AT_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * The time a message counts as sent: the provider's, unless it is unparseable, before 2000 or
 * more than a day after we received it (a 12-digit Meta timestamp is the year 5138 or later),
 * in which case the time we received it.
 */
export function boundSentAt(sentAt: string, receivedAt: string): string {
  const t = Date.parse(sentAt);
  const r = Date.parse(receivedAt);
  if (Number.isNaN(t) || t < EARLIEST_SENT_AT_MS || t > r + SENT_AT_FUTURE_SKEW_MS) return receivedAt;
  return sentAt;
}

/**
 * The messages of a batch the database had not recorded before (`newIds` from recordInbound);
 * all of them when the answer does not say (a result recorded before it did).
 */
export function newInbound(batch: InboundMessage[], newIds: readonly string[] | undefined): InboundMessage[] {
  if (!newIds) return batch;
  const fresh = new Set(newIds);
  return batch.filter((m) => fresh.has(m.providerMessageId));
}

/** Parked operations (ids) the workflow state carries at most; older ones stay open in the database. */
export const MAX_PARKED_IN_STATE = 100;

/** The id-only form the state keeps of a parked operation. */
export function parkedRef(op: ParkedRef): ParkedRef {
  return { id: op.id, kind: op.kind, parkedAt: op.parkedAt };
}

/** Keep the newest `cap` parked operations (by order of parking). */
export function capParked<T>(parked: T[], cap: number = MAX_PARKED_IN_STATE): T[] {
  return parked.length > cap ? parked.slice(parked.length - cap) : parked;
}

/** Manual messages queued in one lead's workflow at most (e.g. behind an open circuit breaker). */
export const MAX_OUTBOX = 50;

/**
 * Buffered inbound messages (waiting for their turn) the workflow state holds at most, by
 * count and by UTF-8 bytes of their JSON: the state crosses continue-as-new as one payload
 * (Temporal warns at 256 KB and refuses 2 MB), and a lead may write for days while a send
 * waits on an open circuit breaker.
 */
export const DEFAULT_INBOX_LIMITS = { maxMessages: 100, maxBytes: 64 * 1024 };
export type InboxLimits = typeof DEFAULT_INBOX_LIMITS;

/** UTF-8 length of a string (no TextEncoder needed). */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

/**
 * Whether a new message may join the buffer ('buffer'), or the buffer with it must be written
 * to the database now ('record'): nothing is lost beyond the bound, the messages are recorded
 * at once and answered together in the next turn (the LLM reads them from the transcript).
 */
export function inboxAdmission(inbox: readonly InboundMessage[], message: InboundMessage, limits: InboxLimits = DEFAULT_INBOX_LIMITS): 'buffer' | 'record' {
  if (inbox.length + 1 > limits.maxMessages) return 'record';
  let bytes = utf8Bytes(JSON.stringify(message));
  for (const m of inbox) bytes += utf8Bytes(JSON.stringify(m));
  return bytes > limits.maxBytes ? 'record' : 'buffer';
}

/**
 * A deferred send that was in progress when its run handed over (it waited on the circuit
 * breaker) resumes before anything else in the next run; a 131049 deferral waits its turn.
 */
export function resumesFirst(op: { error: { type?: string } }): boolean {
  return failureIn(CIRCUIT_WAIT_FAILURES, op.error.type);
}
