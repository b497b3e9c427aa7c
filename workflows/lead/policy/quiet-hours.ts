/**
 * Send windows (quiet hours) in the lead's time zone. A window lists the local week days and
 * the local time range in which messages may go out; everything else is quiet.
 *
 * Semantics:
 * - `start` is inclusive, `end` exclusive, both local wall-clock `HH:MM`.
 * - `end < start` spans midnight: 22:00–06:00 on Friday runs from Friday 22:00 to Saturday
 *   06:00. `days` always names the day a slot STARTS on.
 * - `end === start` is a whole 24 hours from `start` (00:00–00:00 is the whole listed day).
 * - Wall-clock times follow the zone's daylight-saving rules: a start that falls into a
 *   spring-forward gap opens when the clock jumps; a repeated hour after fall-back counts twice.
 *
 * Deterministic: all time-zone arithmetic goes through `Intl.DateTimeFormat` with an explicit
 * zone, never the host's.
 */
import type { SendWindow } from '../../../contract/messages';
import { formatInstant, parseInstant } from './window';

export type { SendWindow } from '../../../contract/messages';

/** Local wall-clock time `HH:MM`, 00:00–23:59. */
export const HH_MM = /^(?:[01]\d|2[0-3]):[0-5]\d$/;


/** Whether `tz` is an IANA time zone this runtime knows (e.g. `Asia/Kolkata`, `UTC`). */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  try {
    formatterFor(tz);
    return true;
  } catch {
    return false;
  }
}


/** Whether a message may go out at `at`; no window means always. */
export function isAllowed(at: string, window: SendWindow | undefined, timeZone: string): boolean {
  const ms = parseInstant(at, 'at');
  assertTimeZone(timeZone);
  if (window === undefined) return true;
  return allowedAt(ms, checkedWindow(window), timeZone);
}

/**
 * `dueAt` itself when a message may go out then; otherwise the earliest later instant that is
 * allowed (the start of the next slot, or the moment a DST change moves the clock into one).
 */
export function nextAllowedSlot(dueAt: string, window: SendWindow | undefined, timeZone: string): string {
  const due = parseInstant(dueAt, 'dueAt');
  assertTimeZone(timeZone);
  if (window === undefined) return dueAt;
  const w = checkedWindow(window);
  if (allowedAt(due, w, timeZone)) return dueAt;

  // The allowed set only begins where the wall clock reaches `start`, or where a DST change
  // makes it jump into a slot. A slot starts at least once a week, so eight days suffice.
  let best: number | undefined;
  const consider = (at: number) => {
    if (at >= due && (best === undefined || at < best) && allowedAt(at, w, timeZone)) best = at;
  };
  const local = localParts(due, timeZone);
  // Slot starts on later local days are later instants, so the first day with one wins.
  for (let k = -1; k <= 8 && best === undefined; k++) {
    const day = new Date(Date.UTC(local.year, local.month - 1, local.day + k));
    if (!w.days.includes(day.getUTCDay())) continue;
    for (const at of instantsAtWallTime(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), w.startMin, timeZone)) consider(at);
  }
  // A DST change before that slot start may move the clock into a slot earlier.
  for (const change of offsetChanges(due, best ?? due + 9 * DAY_MS, timeZone)) consider(change);
  // Unreachable for a valid window; kept so a bug can never become an endless wait.
  if (best === undefined) throw new RangeError(`no allowed send slot within 9 days of ${dueAt} in ${timeZone}`);
  return formatInstant(best);
}

// ---------------------------------------------------------------------------------------------

const DAY_MS = 24 * 60 * 60 * 1000;

interface CheckedWindow {
  days: number[];
  startMin: number;
  endMin: number;
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/**
 * What is wrong with a send window, the rules of `sendWindowSchema` (policy/schemas.ts) without
 * zod, which stays out of the workflow bundle (every cached workflow would evaluate its own copy).
 */
export function sendWindowProblems(window: unknown): string[] {
  if (typeof window !== 'object' || window === null) return ['window: must be an object'];
  const w = window as Record<string, unknown>;
  const problems: string[] = [];
  const days = w.days;
  if (!Array.isArray(days)) problems.push('days: must be an array of week days');
  else {
    if (days.length === 0) problems.push('days: at least one day is required');
    if (days.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > 6)) problems.push('days: each day is a whole number 0–6');
    if (new Set(days).size !== days.length) problems.push('days: days must be unique');
  }
  for (const key of ['start', 'end'] as const) {
    if (typeof w[key] !== 'string' || !HH_MM.test(w[key])) problems.push(`${key}: ${key} must be HH:MM (00:00–23:59)`);
  }
  return problems;
}

function checkedWindow(window: SendWindow): CheckedWindow {
  const problems = sendWindowProblems(window);
  if (problems.length > 0) throw new RangeError(`invalid send window: ${problems.join('; ')}`);
  return { days: window.days, startMin: minutesOf(window.start), endMin: minutesOf(window.end) };
}

function assertTimeZone(tz: string): void {
  if (!isValidTimeZone(tz)) throw new RangeError(`invalid time zone ${JSON.stringify(tz)}`);
}

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

function allowedAt(ms: number, w: CheckedWindow, tz: string): boolean {
  const p = localParts(ms, tz);
  const weekday = new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay();
  const t = p.hour * 60 + p.minute + p.second / 60;
  if (w.startMin < w.endMin) return w.days.includes(weekday) && t >= w.startMin && t < w.endMin;
  // Spans midnight (or a full 24 hours when start === end).
  return (w.days.includes(weekday) && t >= w.startMin) || (w.days.includes((weekday + 6) % 7) && t < w.endMin);
}

// Building a formatter is costly (~0.1 ms); formatting with one is cheap. Keyed by the zone as
// given; a prototype-less object so a zone named "__proto__" is just an unknown zone.
const formatters: Record<string, Intl.DateTimeFormat | undefined> = Object.create(null) as Record<string, Intl.DateTimeFormat | undefined>;

/** A cached formatter for `tz`; throws a RangeError for an unknown zone. */
function formatterFor(tz: string): Intl.DateTimeFormat {
  return (formatters[tz] ??= new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }));
}

function localParts(ms: number, tz: string): LocalParts {
  const fmt = formatterFor(tz);
  const out: LocalParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of fmt.formatToParts(ms)) {
    if (part.type in out) out[part.type as keyof LocalParts] = Number(part.value);
  }
  if (out.hour === 24) out.hour = 0;
  return out;
}

/** Local time minus UTC at `ms`, in milliseconds (e.g. +19 800 000 in Asia/Kolkata). */
function offsetAt(ms: number, tz: string): number {
  const p = localParts(ms, tz);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - (ms - (((ms % 1000) + 1000) % 1000));
}

/** Every instant whose local wall clock reads the given date and minute: none in a DST gap, two in an overlap. */
function instantsAtWallTime(year: number, month: number, day: number, minuteOfDay: number, tz: string): number[] {
  const naive = Date.UTC(year, month - 1, day, Math.floor(minuteOfDay / 60), minuteOfDay % 60);
  const found: number[] = [];
  for (const offset of [offsetAt(naive - DAY_MS, tz), offsetAt(naive, tz), offsetAt(naive + DAY_MS, tz)]) {
    const at = naive - offset;
    if (offsetAt(at, tz) === offset && !found.includes(at)) found.push(at);
  }
  return found;
}

/** The instants in [from, to] at which the zone's UTC offset changes (DST transitions). */
function offsetChanges(from: number, to: number, tz: string): number[] {
  const changes: number[] = [];
  // Zones change offset at most a few times a year, never twice within a day.
  const step = DAY_MS;
  let prev = from;
  let prevOffset = offsetAt(from, tz);
  for (let t = from + step; prev < to; t += step) {
    const at = Math.min(t, to);
    const offset = offsetAt(at, tz);
    if (offset !== prevOffset) {
      let lo = prev;
      let hi = at;
      while (hi - lo > 1) {
        const mid = lo + Math.floor((hi - lo) / 2);
        if (offsetAt(mid, tz) === prevOffset) lo = mid;
        else hi = mid;
      }
      changes.push(hi);
    }
    prev = at;
    prevOffset = offset;
  }
  return changes;
}
