import { nextWork, type NextWorkInput } from '../../workflows/lead/policy/next-work';
import type { SequenceAction } from '../../workflows/lead/policy/sequence';

const NOW = '2026-03-06T12:00:00.000Z';
const at = (ms: number) => new Date(Date.parse(NOW) + ms).toISOString();
const idle: SequenceAction = { type: 'idle' };
const sendStep = { type: 'send', step: { delayMs: 0, kind: 'text', text: 'hi' }, stepIndex: 0, plan: { action: 'free_form' } } as SequenceAction;
const base: NextWorkInput = { now: NOW, outbox: 0, replays: 0, statuses: 0, sequence: idle, deferred: [] };

describe('nextWork', () => {
  test('nothing to do: wait for a change, with no deadline', () => {
    expect(nextWork(base)).toEqual({ wait: undefined });
  });

  test('the in-memory queues run first, in order: outbox, replays, statuses', () => {
    expect(nextWork({ ...base, outbox: 1, replays: 1, statuses: 1, inbox: { flushAt: at(-1) } })).toEqual({ run: { kind: 'outbox' } });
    expect(nextWork({ ...base, replays: 1, statuses: 1 })).toEqual({ run: { kind: 'replay' } });
    expect(nextWork({ ...base, statuses: 1 })).toEqual({ run: { kind: 'status' } });
  });

  test('a send carried over a circuit wait resumes before even the outbox', () => {
    const deferred = [{ id: 'c', retryAt: at(0), resumesFirst: true }];
    expect(nextWork({ ...base, outbox: 2, deferred })).toEqual({ run: { kind: 'resume_carried', id: 'c' } });
  });

  test('a buffered burst waits for its debounce, then is answered', () => {
    expect(nextWork({ ...base, inbox: { flushAt: at(3000) } })).toEqual({ wait: { until: at(3000), what: 'Wait for more messages (burst)', background: false } });
    expect(nextWork({ ...base, inbox: { flushAt: at(0) } })).toEqual({ run: { kind: 'reply' } });
  });

  test('what the lead wrote comes before a due sequence step, even inside its debounce', () => {
    expect(nextWork({ ...base, inbox: { flushAt: at(3000) }, sequence: sendStep })).toEqual({ run: { kind: 'reply' } });
    expect(nextWork({ ...base, sequence: sendStep })).toEqual({ run: { kind: 'sequence_step' } });
  });

  test('the earliest deadline is the one waited for', () => {
    const input = { ...base, sequence: { type: 'wait', until: at(60_000), reason: 'delay' } as SequenceAction, bumpUpAt: at(30_000), extractionAt: at(90_000) };
    expect(nextWork(input)).toEqual({ wait: { until: at(30_000), what: 'Bump-up if the lead stays quiet', background: true } });
    expect(nextWork({ ...input, bumpUpAt: undefined })).toEqual({ wait: { until: at(60_000), what: 'Sequence: next step delay', background: true } });
  });

  test('due work in priority order: step, bump-up, extraction, deferred send', () => {
    const due = { bumpUpAt: at(-1), extractionAt: at(-1), deferred: [{ id: 'd', retryAt: at(-1), resumesFirst: false }] };
    expect(nextWork({ ...base, ...due, sequence: sendStep })).toEqual({ run: { kind: 'sequence_step' } });
    expect(nextWork({ ...base, ...due })).toEqual({ run: { kind: 'bump_up' } });
    expect(nextWork({ ...base, ...due, bumpUpAt: undefined })).toEqual({ run: { kind: 'extraction' } });
    expect(nextWork({ ...base, ...due, bumpUpAt: undefined, extractionAt: undefined })).toEqual({ run: { kind: 'deferred', id: 'd' } });
  });

  test('extraction waits while messages are buffered (the turn comes first and moves it)', () => {
    expect(nextWork({ ...base, inbox: { flushAt: at(2000) }, extractionAt: at(-5) })).toEqual({ wait: { until: at(2000), what: 'Wait for more messages (burst)', background: false } });
  });

  test('a deferred send not yet due is a deadline, not work', () => {
    expect(nextWork({ ...base, deferred: [{ id: 'd', retryAt: at(5000), resumesFirst: false }] })).toEqual({ wait: { until: at(5000), what: 'Retry a deferred send', background: true } });
  });

  test('the wait is background (its wake-up may be spread) only when no burst is buffered and no carried send waits', () => {
    const later = { bumpUpAt: at(30_000), extractionAt: at(40_000) };
    expect(nextWork({ ...base, ...later })).toMatchObject({ wait: { until: at(30_000), background: true } });
    // a buffered burst: even a background deadline before its flush wakes exactly on time
    expect(nextWork({ ...base, bumpUpAt: at(1000), inbox: { flushAt: at(3000) } })).toMatchObject({ wait: { until: at(1000), background: false } });
    // a send carried over a circuit wait is someone's live message
    expect(nextWork({ ...base, ...later, deferred: [{ id: 'c', retryAt: at(20_000), resumesFirst: true }] })).toMatchObject({ wait: { until: at(20_000), background: false } });
  });

  test('compares instants, not strings (offsets and precision differ)', () => {
    expect(nextWork({ ...base, inbox: { flushAt: '2026-03-06T07:00:00-05:00' } })).toEqual({ run: { kind: 'reply' } });
    expect(nextWork({ ...base, inbox: { flushAt: '2026-03-06T07:00:01-05:00' } })).toMatchObject({ wait: { until: '2026-03-06T07:00:01-05:00' } });
  });
});
