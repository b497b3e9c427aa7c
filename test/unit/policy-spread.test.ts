import { spreadAt, spreadOffsetMs } from '../../workflows/lead/policy/spread';

const AT = '2026-12-01T09:00:00.000Z';

test('a wave of 1,000 leads due at one instant wakes spread over the window, never early', () => {
  const offsets = Array.from({ length: 1000 }, (_, i) => spreadOffsetMs(`lead:acc:${9_100_000_000 + i}`, AT, 60_000));
  expect(Math.min(...offsets)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...offsets)).toBeLessThan(60_000);
  // roughly even: every 10-second slice of the minute gets between 100 and 240 of the 1,000
  const slices = Array.from({ length: 6 }, (_, k) => offsets.filter((o) => o >= k * 10_000 && o < (k + 1) * 10_000).length);
  for (const n of slices) expect(n).toBeGreaterThan(100);
  for (const n of slices) expect(n).toBeLessThan(240);
  // at most a few leads share a second
  const perSecond = new Map<number, number>();
  for (const o of offsets) perSecond.set(Math.floor(o / 1000), (perSecond.get(Math.floor(o / 1000)) ?? 0) + 1);
  expect(Math.max(...perSecond.values())).toBeLessThan(40);
});

test('the offset is the same for the same lead and deadline (deterministic), and differs between deadlines', () => {
  expect(spreadOffsetMs('lead:a:1', AT, 60_000)).toBe(spreadOffsetMs('lead:a:1', AT, 60_000));
  const later = ['2026-12-02T09:00:00.000Z', '2026-12-03T09:00:00.000Z', '2026-12-04T09:00:00.000Z'].map((at) => spreadOffsetMs('lead:a:1', at, 60_000));
  expect(new Set([spreadOffsetMs('lead:a:1', AT, 60_000), ...later]).size).toBeGreaterThan(1);
});

test('spreadAt adds the offset; a spread of 0 (or less) is the deadline itself', () => {
  const offset = spreadOffsetMs('lead:a:2', AT, 60_000);
  expect(Date.parse(spreadAt('lead:a:2', AT, 60_000)) - Date.parse(AT)).toBe(offset);
  expect(spreadAt('lead:a:2', AT, 0)).toBe(AT);
  expect(spreadAt('lead:a:2', AT, -5)).toBe(AT);
  expect(spreadOffsetMs('lead:a:2', AT, 1)).toBe(0);
});
