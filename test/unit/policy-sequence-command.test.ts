import { sequenceCommand, stopOn } from '../../workflows/lead/policy/sequence-command';
import { enroll, type SequenceDef } from '../../workflows/lead/policy/sequence';

const NOW = '2026-03-06T12:00:00.000Z';
const SEQ: SequenceDef = { id: 's1', name: 'Nurture', steps: [{ delayMs: 3600_000, kind: 'text', text: 'hi' }, { delayMs: 60_000, kind: 'text', text: 'again' }], stopOn: ['lead_replied'] };
const running = () => {
  const t = enroll(SEQ, NOW);
  if (!t.ok) throw new Error(t.reason);
  return { def: SEQ, cursor: t.cursor };
};

describe('sequenceCommand', () => {
  test('enrol: only in a mode where sequences run, and not over a running sequence', () => {
    expect(sequenceCommand({ action: 'enroll', sequence: SEQ }, { mode: 'ai', now: NOW })).toMatchObject({ ok: true, cursor: { stepIndex: 0, status: 'active' } });
    expect(sequenceCommand({ action: 'enroll', sequence: SEQ }, { mode: 'paused', now: NOW })).toEqual({ ok: false, reason: 'sequences do not run while the lead is in paused mode' });
    expect(sequenceCommand({ action: 'enroll', sequence: SEQ }, { mode: 'ai', sequence: running(), now: NOW })).toEqual({ ok: false, reason: 'the lead is already in sequence Nurture; reset or stop it first' });
  });

  test('pause, resume, skip and reset act on the current sequence; without one they are refused', () => {
    for (const action of ['pause', 'resume', 'reset', 'skip'] as const) {
      expect(sequenceCommand({ action }, { mode: 'ai', now: NOW })).toEqual({ ok: false, reason: 'the lead is not enrolled in a sequence' });
    }
    expect(sequenceCommand({ action: 'pause' }, { mode: 'ai', sequence: running(), now: NOW })).toMatchObject({ ok: true, cursor: { status: 'paused' } });
    expect(sequenceCommand({ action: 'resume' }, { mode: 'ai', sequence: running(), now: NOW })).toMatchObject({ ok: false });
    expect(sequenceCommand({ action: 'skip' }, { mode: 'ai', sequence: running(), now: NOW })).toMatchObject({ ok: true, cursor: { stepIndex: 1 } });
  });

  test('a reset may carry a newer version of the same sequence: the lead restarts on its first step; another sequence is refused', () => {
    const v2: SequenceDef = { ...SEQ, version: 2, steps: [{ delayMs: 5_000, kind: 'text', text: 'new first step' }] };
    expect(sequenceCommand({ action: 'reset', sequence: v2 }, { mode: 'ai', sequence: running(), now: NOW })).toMatchObject({
      ok: true,
      cursor: { sequenceId: 's1', stepIndex: 0, status: 'active', dueAt: '2026-03-06T12:00:05.000Z' },
    });
    expect(sequenceCommand({ action: 'reset', sequence: { ...v2, id: 's2' } }, { mode: 'ai', sequence: running(), now: NOW })).toMatchObject({ ok: false, reason: expect.stringContaining('not "s2"') });
  });

  test('a reset is refused while sequences may not run (a human has the lead)', () => {
    expect(sequenceCommand({ action: 'reset' }, { mode: 'closed', sequence: running(), now: NOW })).toMatchObject({ ok: false, reason: expect.stringContaining('closed mode') });
  });
});

describe('stopOn', () => {
  test('a running sequence stops on its own stop conditions, and always on a handoff', () => {
    expect(stopOn(running(), 'lead_replied')).toBe('lead_replied');
    expect(stopOn(running(), 'stage_changed')).toBeUndefined();
    expect(stopOn(running(), 'handed_off')).toBe('handed_off');
    expect(stopOn(undefined, 'handed_off')).toBeUndefined();
  });
});
