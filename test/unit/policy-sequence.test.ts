import type { SendWindow } from '../../workflows/lead/policy/quiet-hours';
import {
  enroll,
  nextAction,
  pause,
  reset,
  resume,
  skip,
  stepSent,
  stop,
  stopReasonFor,
  type SequenceCursor,
  type SequenceDef,
  type SequenceTransition,
} from '../../workflows/lead/policy/sequence';
import type { TemplateRef } from '../../workflows/lead/policy/window';
import { sequenceDefSchema } from '../../workflows/lead/policy/schemas';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = '2026-03-02T10:00:00.000Z'; // a Monday
const iso = (ms: number) => new Date(ms).toISOString();
const plus = (base: string, ms: number) => iso(Date.parse(base) + ms);

const REMINDER: TemplateRef = { name: 'reminder', language: 'en_US', variables: ['Priya'] };
const LAST_CALL: TemplateRef = { name: 'last_call', language: 'en_US' };
const DAYTIME_KOLKATA: SendWindow = { days: [0, 1, 2, 3, 4, 5, 6], start: '09:00', end: '20:00' };

const SEQ: SequenceDef = {
  id: 'seq-1',
  name: 'Post-enquiry follow-up',
  steps: [
    { delayMs: 2 * DAY, kind: 'text', text: 'Hi again! Any questions about the flat?', template: REMINDER },
    { delayMs: 1 * DAY, kind: 'ai', aiInstruction: 'Offer a site visit' },
    { delayMs: 3 * DAY, kind: 'template', template: LAST_CALL },
  ],
  stopOn: ['lead_replied', 'handed_off'],
};

/** Unwraps a successful transition, failing the test with the reason otherwise. */
function cursorOf(t: SequenceTransition): SequenceCursor {
  if (!t.ok) throw new Error(`expected ok, got: ${t.reason}`);
  return t.cursor;
}
function reasonOf(t: SequenceTransition): string {
  if (t.ok) throw new Error(`expected a refusal, got ${JSON.stringify(t.cursor)}`);
  return t.reason;
}

const enrolled = () => cursorOf(enroll(SEQ, T0));

describe('enroll', () => {
  test('starts at step 0, due after its delay', () => {
    expect(enroll(SEQ, T0)).toEqual({
      ok: true,
      cursor: { sequenceId: 'seq-1', stepIndex: 0, status: 'active', dueAt: '2026-03-04T10:00:00.000Z', enrolledAt: T0, updatedAt: T0 },
    });
  });
  test('a zero first delay is due at once', () => {
    expect(cursorOf(enroll({ ...SEQ, steps: [{ delayMs: 0, kind: 'ai' }] }, T0)).dueAt).toBe(T0);
  });
  test('refuses a sequence without steps', () => expect(reasonOf(enroll({ ...SEQ, steps: [] }, T0))).toMatch(/has no steps/));
  test('rejects a malformed now', () => expect(() => enroll(SEQ, '2026-03-02T10:00')).toThrow(/now must be/));
});

describe('pause and resume keep the remaining delay', () => {
  test('paused at 30% of a 2-day delay and resumed a day later, 70% is left', () => {
    const c = enrolled();
    const pausedAt = plus(T0, 0.3 * 2 * DAY);
    const paused = cursorOf(pause(c, pausedAt));
    expect(paused).toEqual({ sequenceId: 'seq-1', stepIndex: 0, status: 'paused', remainingMs: 120_960_000 /* 1.4 days */, enrolledAt: T0, updatedAt: pausedAt });
    expect(paused).not.toHaveProperty('dueAt');

    const resumedAt = plus(pausedAt, DAY);
    const resumed = cursorOf(resume(paused, resumedAt));
    expect(resumed.status).toBe('active');
    expect(resumed.dueAt).toBe(plus(resumedAt, 120_960_000));
    expect(resumed.dueAt).toBe('2026-03-05T10:00:00.000Z'); // the original due time, one day later
    expect(resumed).not.toHaveProperty('remainingMs');
    expect(resumed.updatedAt).toBe(resumedAt);
  });
  test('pausing after the due time leaves nothing to wait', () => {
    expect(cursorOf(pause(enrolled(), plus(T0, 3 * DAY))).remainingMs).toBe(0);
    expect(cursorOf(resume(cursorOf(pause(enrolled(), plus(T0, 3 * DAY))), plus(T0, 4 * DAY))).dueAt).toBe(plus(T0, 4 * DAY));
  });
  test('pause only an active sequence', () => {
    const paused = cursorOf(pause(enrolled(), T0));
    expect(reasonOf(pause(paused, T0))).toBe('sequence is already paused');
    expect(reasonOf(pause(cursorOf(stop(enrolled(), 'manual', T0)), T0))).toMatch(/stopped; only an active sequence can be paused/);
    expect(reasonOf(pause(cursorOf(skip({ ...enrolled(), stepIndex: 2 }, SEQ, T0)), T0))).toMatch(/completed/);
  });
  test('resume only a paused sequence', () => {
    expect(reasonOf(resume(enrolled(), T0))).toBe('sequence is not paused');
    expect(reasonOf(resume(cursorOf(stop(enrolled(), 'manual', T0)), T0))).toMatch(/stopped; only a paused sequence can be resumed/);
  });
});

describe('reset', () => {
  test('after a stop, restarts at step one, active, without the stop reason', () => {
    const stopped = cursorOf(stop(cursorOf(stepSent(enrolled(), SEQ, plus(T0, 2 * DAY))), 'lead_replied', plus(T0, 2.5 * DAY)));
    expect(stopped).toMatchObject({ status: 'stopped', stepIndex: 1, stopReason: 'lead_replied' });
    const now = plus(T0, 10 * DAY);
    expect(cursorOf(reset(stopped, SEQ, now))).toEqual({
      sequenceId: 'seq-1',
      stepIndex: 0,
      status: 'active',
      dueAt: plus(now, 2 * DAY),
      enrolledAt: T0,
      updatedAt: now,
    });
  });
  test('works from every status', () => {
    const now = plus(T0, DAY);
    const paused = cursorOf(pause(cursorOf(skip(enrolled(), SEQ, T0)), T0));
    const completed = cursorOf(skip({ ...enrolled(), stepIndex: 2 }, SEQ, T0));
    for (const c of [enrolled(), paused, completed]) {
      const r = cursorOf(reset(c, SEQ, now));
      expect(r).toMatchObject({ stepIndex: 0, status: 'active', dueAt: plus(now, 2 * DAY) });
      expect(r).not.toHaveProperty('remainingMs');
    }
  });
  test('refuses a cursor of another sequence', () => {
    expect(reasonOf(reset(enrolled(), { ...SEQ, id: 'seq-2' }, T0))).toBe('cursor belongs to sequence "seq-1", not "seq-2"');
  });
  test('refuses a sequence that lost its steps', () => expect(reasonOf(reset(enrolled(), { ...SEQ, steps: [] }, T0))).toMatch(/no steps/));
});

describe('skip', () => {
  test('moves an active sequence to the next step, due now', () => {
    const now = plus(T0, HOUR);
    expect(cursorOf(skip(enrolled(), SEQ, now))).toEqual({ sequenceId: 'seq-1', stepIndex: 1, status: 'active', dueAt: now, enrolledAt: T0, updatedAt: now });
  });
  test('a paused sequence stays paused, due at once when resumed', () => {
    const skipped = cursorOf(skip(cursorOf(pause(enrolled(), T0)), SEQ, plus(T0, HOUR)));
    expect(skipped).toMatchObject({ stepIndex: 1, status: 'paused', remainingMs: 0 });
    const resumedAt = plus(T0, 5 * HOUR);
    expect(cursorOf(resume(skipped, resumedAt)).dueAt).toBe(resumedAt);
  });
  test('skipping the last step completes the sequence', () => {
    const last = { ...enrolled(), stepIndex: 2 };
    const done = cursorOf(skip(last, SEQ, T0));
    expect(done).toEqual({ sequenceId: 'seq-1', stepIndex: 3, status: 'completed', enrolledAt: T0, updatedAt: T0 });
  });
  test('refuses stopped and completed sequences, and other sequences', () => {
    expect(reasonOf(skip(cursorOf(stop(enrolled(), 'x', T0)), SEQ, T0))).toMatch(/stopped; only an active or paused sequence can skip/);
    expect(reasonOf(skip(cursorOf(skip({ ...enrolled(), stepIndex: 2 }, SEQ, T0)), SEQ, T0))).toMatch(/completed/);
    expect(reasonOf(skip(enrolled(), { ...SEQ, id: 'other' }, T0))).toMatch(/belongs to sequence/);
  });
});

describe('stop', () => {
  test('stops an active or paused sequence with its reason', () => {
    const now = plus(T0, HOUR);
    expect(cursorOf(stop(enrolled(), 'lead_replied', now))).toEqual({ sequenceId: 'seq-1', stepIndex: 0, status: 'stopped', stopReason: 'lead_replied', enrolledAt: T0, updatedAt: now });
    const fromPaused = cursorOf(stop(cursorOf(pause(enrolled(), T0)), 'manual', now));
    expect(fromPaused).toMatchObject({ status: 'stopped', stopReason: 'manual' });
    expect(fromPaused).not.toHaveProperty('remainingMs');
  });
  test('is terminal', () => {
    const stopped = cursorOf(stop(enrolled(), 'manual', T0));
    expect(reasonOf(stop(stopped, 'again', T0))).toBe('sequence is already stopped');
    expect(reasonOf(stop(cursorOf(skip({ ...enrolled(), stepIndex: 2 }, SEQ, T0)), 'x', T0))).toBe('sequence is already completed');
    expect(reasonOf(stepSent(stopped, SEQ, T0))).toMatch(/stopped/);
  });
  test('requires a reason', () => expect(reasonOf(stop(enrolled(), '  ', T0))).toBe('a stop reason is required'));
});

describe('stepSent', () => {
  test('advances to the next step, due after its delay, then completes', () => {
    const t1 = plus(T0, 2 * DAY);
    const c1 = cursorOf(stepSent(enrolled(), SEQ, t1));
    expect(c1).toEqual({ sequenceId: 'seq-1', stepIndex: 1, status: 'active', dueAt: plus(t1, DAY), enrolledAt: T0, updatedAt: t1 });
    const t2 = plus(t1, DAY + HOUR);
    const c2 = cursorOf(stepSent(c1, SEQ, t2, 1));
    expect(c2).toMatchObject({ stepIndex: 2, dueAt: plus(t2, 3 * DAY) });
    const c3 = cursorOf(stepSent(c2, SEQ, plus(t2, 3 * DAY), 2));
    expect(c3).toEqual({ sequenceId: 'seq-1', stepIndex: 3, status: 'completed', enrolledAt: T0, updatedAt: plus(t2, 3 * DAY) });
    expect(reasonOf(stepSent(c3, SEQ, T0))).toMatch(/completed; only an active sequence advances/);
  });
  test('refuses to advance a cursor that moved while the step was being sent', () => {
    const skipped = cursorOf(skip(enrolled(), SEQ, T0)); // at step 1 now
    expect(reasonOf(stepSent(skipped, SEQ, plus(T0, HOUR), 0))).toBe('step 0 was sent but the sequence is now at step 1');
  });
  test('refuses a paused sequence', () => expect(reasonOf(stepSent(cursorOf(pause(enrolled(), T0)), SEQ, T0))).toMatch(/paused/));
});

describe('stopReasonFor', () => {
  test('names the event when the sequence stops on it', () => {
    expect(stopReasonFor(SEQ, 'lead_replied')).toBe('lead_replied');
    expect(stopReasonFor(SEQ, 'handed_off')).toBe('handed_off');
  });
  test('undefined when it does not', () => {
    expect(stopReasonFor(SEQ, 'stage_changed')).toBeUndefined();
    expect(stopReasonFor({ ...SEQ, stopOn: [] }, 'lead_replied')).toBeUndefined();
  });
});

describe('nextAction', () => {
  const tz = 'Asia/Kolkata';
  const base = { seq: SEQ, timeZone: tz };

  test('idle when paused or stopped, done when completed', () => {
    expect(nextAction({ ...base, cursor: cursorOf(pause(enrolled(), T0)), now: T0 })).toEqual({ type: 'idle' });
    expect(nextAction({ ...base, cursor: cursorOf(stop(enrolled(), 'x', T0)), now: T0 })).toEqual({ type: 'idle' });
    expect(nextAction({ ...base, cursor: cursorOf(skip({ ...enrolled(), stepIndex: 2 }, SEQ, T0)), now: T0 })).toEqual({ type: 'done' });
  });
  test('idle for a cursor of another sequence; done when the steps ran out', () => {
    expect(nextAction({ ...base, seq: { ...SEQ, id: 'other' }, cursor: enrolled(), now: T0 })).toEqual({ type: 'idle' });
    expect(nextAction({ ...base, cursor: { ...enrolled(), stepIndex: 3 }, now: T0 })).toEqual({ type: 'done' });
  });
  test('waits for the delay', () => {
    expect(nextAction({ ...base, cursor: enrolled(), now: T0 })).toEqual({ type: 'wait', until: '2026-03-04T10:00:00.000Z', reason: 'delay' });
  });
  test('a step due at night waits for the morning in the lead’s zone', () => {
    const seq: SequenceDef = { ...SEQ, steps: SEQ.steps.map((s) => ({ ...s, sendWindow: DAYTIME_KOLKATA })) };
    const night = '2026-03-04T17:30:00.000Z'; // 23:00 IST
    const cursor: SequenceCursor = { ...enrolled(), dueAt: night };
    // Asked during the day, before the due time: wait straight until 09:00 IST.
    expect(nextAction({ ...base, seq, cursor, now: '2026-03-04T12:00:00Z' })).toEqual({ type: 'wait', until: '2026-03-05T03:30:00.000Z', reason: 'quiet_hours' });
    // Asked at the due time itself.
    expect(nextAction({ ...base, seq, cursor, now: night })).toEqual({ type: 'wait', until: '2026-03-05T03:30:00.000Z', reason: 'quiet_hours' });
    // The same instant is daytime for a lead in New York (12:30 EST): it goes out.
    expect(nextAction({ ...base, seq, cursor, now: night, timeZone: 'America/New_York', lastInboundAt: T0 }).type).toBe('send');
    // In the morning it is sent.
    expect(nextAction({ ...base, seq, cursor, now: '2026-03-05T03:30:00.000Z' }).type).toBe('send');
  });
  test('a step due by day waits only for its delay even with a send window', () => {
    const seq: SequenceDef = { ...SEQ, steps: SEQ.steps.map((s) => ({ ...s, sendWindow: DAYTIME_KOLKATA })) };
    expect(nextAction({ ...base, seq, cursor: enrolled(), now: T0 })).toEqual({ type: 'wait', until: '2026-03-04T10:00:00.000Z', reason: 'delay' });
  });
  test('sends a due step free-form inside the 24-hour window', () => {
    const now = '2026-03-04T10:00:00.000Z';
    expect(nextAction({ ...base, cursor: enrolled(), now, lastInboundAt: '2026-03-04T08:00:00Z' })).toEqual({
      type: 'send',
      step: SEQ.steps[0],
      stepIndex: 0,
      plan: { action: 'free_form' },
    });
  });
  test('outside the window a free-form step falls back to its template', () => {
    const action = nextAction({ ...base, cursor: enrolled(), now: '2026-03-04T10:00:00Z', lastInboundAt: T0 });
    expect(action).toMatchObject({ type: 'send', stepIndex: 0, plan: { action: 'template', template: REMINDER, fallback: true } });
  });
  test('outside the window a free-form step without a template is refused', () => {
    const cursor: SequenceCursor = { ...enrolled(), stepIndex: 1, dueAt: T0 };
    expect(nextAction({ ...base, cursor, now: T0 })).toMatchObject({ type: 'send', stepIndex: 1, plan: { action: 'refuse', reason: 'window_closed' } });
  });
  test('a template step is sent as its template even inside the window', () => {
    const cursor: SequenceCursor = { ...enrolled(), stepIndex: 2, dueAt: T0 };
    expect(nextAction({ ...base, cursor, now: T0, lastInboundAt: T0 })).toMatchObject({ plan: { action: 'template', template: LAST_CALL, fallback: false } });
  });
  test('an active cursor without a due time is due now', () => {
    const { dueAt: _dueAt, ...cursor } = enrolled();
    expect(nextAction({ ...base, cursor, now: T0, lastInboundAt: T0 }).type).toBe('send');
  });
  test('rejects a malformed now or time zone', () => {
    expect(() => nextAction({ ...base, cursor: enrolled(), now: 'soon' })).toThrow(/now must be/);
    expect(() => nextAction({ ...base, seq: { ...SEQ, steps: SEQ.steps.map((s) => ({ ...s, sendWindow: DAYTIME_KOLKATA })) }, cursor: enrolled(), now: T0, timeZone: 'Nowhere/Land' })).toThrow(/time zone/);
  });

  test('a whole run: enroll, wait, send, advance, complete', () => {
    let cursor = cursorOf(enroll(SEQ, T0));
    let now = T0;
    const log: string[] = [];
    for (let guard = 0; guard < 10; guard++) {
      const action = nextAction({ seq: SEQ, cursor, now, timeZone: tz, lastInboundAt: T0 });
      if (action.type === 'done') break;
      if (action.type === 'wait') {
        now = action.until;
        continue;
      }
      if (action.type !== 'send') throw new Error(`unexpected ${action.type}`);
      log.push(`${now} step ${action.stepIndex} ${action.plan.action}`);
      cursor = cursorOf(stepSent(cursor, SEQ, now, action.stepIndex));
    }
    expect(log).toEqual([
      '2026-03-04T10:00:00.000Z step 0 template',
      '2026-03-05T10:00:00.000Z step 1 refuse',
      '2026-03-08T10:00:00.000Z step 2 template',
    ]);
    expect(cursor.status).toBe('completed');
  });
});

describe('purity', () => {
  test('transitions never mutate their input and produce JSON-safe cursors', () => {
    const c = Object.freeze(enrolled());
    const results = [pause(c, T0), skip(c, SEQ, T0), stop(c, 'x', T0), stepSent(c, SEQ, T0), reset(c, SEQ, T0)];
    expect(c).toEqual(enrolled());
    for (const r of results) {
      const cursor = cursorOf(r);
      expect(JSON.parse(JSON.stringify(cursor))).toEqual(cursor);
      expect(Object.values(cursor)).not.toContain(undefined);
    }
  });
});

describe('sequenceDefSchema', () => {
  test('accepts a valid sequence', () => expect(sequenceDefSchema.parse(SEQ)).toEqual(SEQ));
  test.each([
    ['no steps', { ...SEQ, steps: [] }, /at least one step/],
    ['a template step without a template', { ...SEQ, steps: [{ delayMs: 0, kind: 'template' }] }, /needs a template/],
    ['a text step without text', { ...SEQ, steps: [{ delayMs: 0, kind: 'text', text: ' ' }] }, /needs text/],
    ['a negative delay', { ...SEQ, steps: [{ delayMs: -1, kind: 'ai' }] }, /delayMs/],
    ['an unknown kind', { ...SEQ, steps: [{ delayMs: 0, kind: 'voice' }] }, /kind/],
    ['a bad send window', { ...SEQ, steps: [{ delayMs: 0, kind: 'ai', sendWindow: { days: [], start: '09:00', end: '18:00' } }] }, /at least one day/],
    ['an unknown stop condition', { ...SEQ, stopOn: ['lead_bored'] }, /stopOn/],
    ['repeated stop conditions', { ...SEQ, stopOn: ['lead_replied', 'lead_replied'] }, /unique/],
    ['an empty id', { ...SEQ, id: '' }, /id/],
  ])('rejects %s', (_label, value, message) => {
    const r = sequenceDefSchema.safeParse(value);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });
});
