import { DEFAULT_PACING, nextSendAt, type PacingPolicy } from '../../workflows/lead/policy/pacing';

const WA: PacingPolicy = { minGapMs: 6000, jitterMs: 1000 };
const NOW = '2026-03-06T09:00:02.000Z';
const LAST = '2026-03-06T09:00:00.000Z';

describe('DEFAULT_PACING', () => {
  test('WhatsApp keeps to the pair rate of one message per 6 s', () => expect(DEFAULT_PACING.whatsapp.minGapMs).toBe(6000));
  test('Instagram waits 1 s, web chat not at all', () => {
    expect(DEFAULT_PACING.instagram.minGapMs).toBe(1000);
    expect(DEFAULT_PACING.webchat).toEqual({ minGapMs: 0, jitterMs: 0 });
  });
  test('every channel has a non-negative policy', () => {
    for (const p of Object.values(DEFAULT_PACING)) {
      expect(p.minGapMs).toBeGreaterThanOrEqual(0);
      expect(p.jitterMs).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('nextSendAt', () => {
  test('sends at once when nothing was sent before', () => expect(nextSendAt({ now: NOW, policy: WA, random: 0.7 })).toBe(NOW));
  test('waits out the minimum gap', () => expect(nextSendAt({ lastOutboundAt: LAST, now: NOW, policy: WA, random: 0 })).toBe('2026-03-06T09:00:06.000Z'));
  test('adds floor(random × jitter)', () => {
    expect(nextSendAt({ lastOutboundAt: LAST, now: NOW, policy: WA, random: 0.5 })).toBe('2026-03-06T09:00:06.500Z');
    expect(nextSendAt({ lastOutboundAt: LAST, now: NOW, policy: WA, random: 0.9999 })).toBe('2026-03-06T09:00:06.999Z');
    expect(nextSendAt({ lastOutboundAt: LAST, now: NOW, policy: WA, random: 0.00049 })).toBe('2026-03-06T09:00:06.000Z');
  });
  test('sends now once the gap has passed, returning now as given', () => {
    expect(nextSendAt({ lastOutboundAt: LAST, now: '2026-03-06T09:00:10Z', policy: WA, random: 0.5 })).toBe('2026-03-06T09:00:10Z');
  });
  test('exactly at the gap it is now', () => {
    expect(nextSendAt({ lastOutboundAt: LAST, now: '2026-03-06T09:00:06.500Z', policy: WA, random: 0.5 })).toBe('2026-03-06T09:00:06.500Z');
  });
  test('a zero policy never waits', () => {
    expect(nextSendAt({ lastOutboundAt: NOW, now: NOW, policy: DEFAULT_PACING.webchat, random: 0.99 })).toBe(NOW);
  });
  test('a last send in the future (clock skew) still keeps the gap from it', () => {
    expect(nextSendAt({ lastOutboundAt: '2026-03-06T09:00:03Z', now: NOW, policy: { minGapMs: 1000, jitterMs: 0 }, random: 0 })).toBe('2026-03-06T09:00:04.000Z');
  });
  test.each([1, -0.1, Number.NaN, Number.POSITIVE_INFINITY])('rejects random = %p', (random) => {
    expect(() => nextSendAt({ lastOutboundAt: LAST, now: NOW, policy: WA, random })).toThrow(/random must be in \[0, 1\)/);
  });
  test('rejects a negative or non-finite policy', () => {
    expect(() => nextSendAt({ now: NOW, policy: { minGapMs: -1, jitterMs: 0 }, random: 0 })).toThrow(/minGapMs/);
    expect(() => nextSendAt({ now: NOW, policy: { minGapMs: 0, jitterMs: Number.NaN }, random: 0 })).toThrow(/jitterMs/);
  });
  test('rejects malformed times', () => {
    expect(() => nextSendAt({ now: 'now', policy: WA, random: 0 })).toThrow(/now must be/);
    expect(() => nextSendAt({ lastOutboundAt: '2026-03-06', now: NOW, policy: WA, random: 0 })).toThrow(/lastOutboundAt must be/);
  });
});
