import { DEFAULT_DEBOUNCE, flushAt, shouldFlush } from '../../workflows/lead/policy/debounce';

const T0 = '2026-03-06T09:00:00.000Z';
const at = (seconds: number) => new Date(Date.UTC(2026, 2, 6, 9, 0, seconds)).toISOString();

describe('burst debounce', () => {
  test('defaults: 3 s gap, 15 s longest wait', () => expect(DEFAULT_DEBOUNCE).toEqual({ gapMs: 3000, maxWaitMs: 15000 }));

  test('a single message is answered one gap after it', () => {
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: T0, ...DEFAULT_DEBOUNCE })).toBe(at(3));
  });
  test('every new message in the burst pushes the answer back', () => {
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: at(2), ...DEFAULT_DEBOUNCE })).toBe(at(5));
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: at(9), ...DEFAULT_DEBOUNCE })).toBe(at(12));
  });
  test('but never past the longest wait after the first message', () => {
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: at(13), ...DEFAULT_DEBOUNCE })).toBe(at(15));
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: at(40), ...DEFAULT_DEBOUNCE })).toBe(at(15));
  });
  test('zero gap answers at once; zero longest wait answers at the first message', () => {
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: at(1), gapMs: 0, maxWaitMs: 15000 })).toBe(at(1));
    expect(flushAt({ firstArrivalAt: T0, lastArrivalAt: at(1), gapMs: 3000, maxWaitMs: 0 })).toBe(T0);
  });
  test('accepts offsets and answers in UTC', () => {
    expect(flushAt({ firstArrivalAt: '2026-03-06T14:30:00+05:30', lastArrivalAt: '2026-03-06T14:30:01+05:30', ...DEFAULT_DEBOUNCE })).toBe(at(4));
  });

  test('shouldFlush is false before, true at and after the flush time', () => {
    const burst = { firstArrivalAt: T0, lastArrivalAt: at(2), ...DEFAULT_DEBOUNCE };
    expect(shouldFlush({ ...burst, now: at(4) })).toBe(false);
    expect(shouldFlush({ ...burst, now: '2026-03-06T09:00:04.999Z' })).toBe(false);
    expect(shouldFlush({ ...burst, now: at(5) })).toBe(true);
    expect(shouldFlush({ ...burst, now: at(60) })).toBe(true);
  });
  test('shouldFlush honours the longest wait', () => {
    expect(shouldFlush({ firstArrivalAt: T0, lastArrivalAt: at(14), ...DEFAULT_DEBOUNCE, now: at(15) })).toBe(true);
  });

  test('rejects a burst whose last message precedes its first', () => {
    expect(() => flushAt({ firstArrivalAt: at(5), lastArrivalAt: T0, ...DEFAULT_DEBOUNCE })).toThrow(/before firstArrivalAt/);
  });
  test('rejects negative durations and malformed times', () => {
    expect(() => flushAt({ firstArrivalAt: T0, lastArrivalAt: T0, gapMs: -1, maxWaitMs: 1 })).toThrow(/gapMs/);
    expect(() => flushAt({ firstArrivalAt: T0, lastArrivalAt: T0, gapMs: 1, maxWaitMs: Number.NaN })).toThrow(/maxWaitMs/);
    expect(() => flushAt({ firstArrivalAt: 'soon', lastArrivalAt: T0, ...DEFAULT_DEBOUNCE })).toThrow(/firstArrivalAt/);
    expect(() => shouldFlush({ firstArrivalAt: T0, lastArrivalAt: T0, ...DEFAULT_DEBOUNCE, now: '2026-03-06T09:00:00' })).toThrow(/now must be/);
  });
});
