/**
 * Bounds that keep one lead's workflow alive and small whatever arrives: provider times that
 * cannot be real, redeliveries older than the dedup window, and how many parked operations the
 * workflow state carries (the dead letters themselves live in the database).
 */
import type { InboundMessage } from '../definitions';

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

/** Parked operations the workflow state carries at most; older ones stay open in the database. */
export const MAX_PARKED_IN_STATE = 20;

/** Keep the newest `cap` parked operations (by order of parking). */
export function capParked<T>(parked: T[], cap: number = MAX_PARKED_IN_STATE): T[] {
  return parked.length > cap ? parked.slice(parked.length - cap) : parked;
}

/** Manual messages queued in one lead's workflow at most (e.g. behind an open circuit breaker). */
export const MAX_OUTBOX = 50;
