/**
 * Burst debounce: inbound messages that arrive within `gapMs` of each other become one LLM
 * turn. The turn starts `gapMs` after the latest message, but never later than `maxWaitMs`
 * after the first, so a lead who keeps typing still gets an answer.
 */
import { formatInstant, parseInstant } from './window';

export interface DebouncePolicy {
  /** Quiet time after the latest message before the burst is answered. */
  gapMs: number;
  /** Longest a burst waits after its first message. */
  maxWaitMs: number;
}

export const DEFAULT_DEBOUNCE: Readonly<DebouncePolicy> = { gapMs: 3000, maxWaitMs: 15000 };

export interface DebounceInput extends DebouncePolicy {
  /** When the first message of the pending burst arrived. */
  firstArrivalAt: string;
  /** When its latest message arrived. */
  lastArrivalAt: string;
}

/** When the pending burst should be answered: min(last + gap, first + maxWait). */
export function flushAt(input: DebounceInput): string {
  return formatInstant(flushAtMs(input));
}

/** Whether the pending burst should be answered at `now`. */
export function shouldFlush(input: DebounceInput & { now: string }): boolean {
  return parseInstant(input.now, 'now') >= flushAtMs(input);
}

function flushAtMs(input: DebounceInput): number {
  const first = parseInstant(input.firstArrivalAt, 'firstArrivalAt');
  const last = parseInstant(input.lastArrivalAt, 'lastArrivalAt');
  if (!(Number.isFinite(input.gapMs) && input.gapMs >= 0)) throw new RangeError(`gapMs must be a non-negative number, got ${input.gapMs}`);
  if (!(Number.isFinite(input.maxWaitMs) && input.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be a non-negative number, got ${input.maxWaitMs}`);
  if (last < first) throw new RangeError(`lastArrivalAt (${input.lastArrivalAt}) is before firstArrivalAt (${input.firstArrivalAt})`);
  return Math.min(last + input.gapMs, first + input.maxWaitMs);
}
