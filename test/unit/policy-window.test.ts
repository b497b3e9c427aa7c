import {
  CUSTOMER_SERVICE_WINDOW_MS,
  formatInstant,
  isWindowOpen,
  parseInstant,
  planOutbound,
  windowClosesAt,
  type TemplateRef,
} from '../../workflows/lead/policy/window';

const TEMPLATE: TemplateRef = { name: 'follow_up', language: 'en_US', variables: ['Priya'] };
const INBOUND = '2026-03-06T09:00:00.000Z';

describe('parseInstant / formatInstant', () => {
  test('reads Z and numeric offsets, with or without seconds and fractions', () => {
    expect(parseInstant('2026-03-06T09:00:00Z')).toBe(Date.UTC(2026, 2, 6, 9));
    expect(parseInstant('2026-03-06T14:30:00+05:30')).toBe(Date.UTC(2026, 2, 6, 9));
    expect(parseInstant('2026-03-06T14:30+0530')).toBe(Date.UTC(2026, 2, 6, 9));
    expect(parseInstant('2026-03-06T04:00:00.250-05:00')).toBe(Date.UTC(2026, 2, 6, 9, 0, 0, 250));
  });
  test.each([
    ['no offset (would be read in the host zone)', '2026-03-06T09:00:00'],
    ['a date only', '2026-03-06'],
    ['a day that does not exist', '2026-02-30T09:00:00Z'],
    ['hour 24', '2026-03-01T24:00:00Z'],
    ['month 13', '2026-13-01T09:00:00Z'],
    ['minute 60', '2026-03-01T09:60:00Z'],
    ['a space instead of T', '2026-03-06 09:00:00Z'],
    ['prose', 'tomorrow'],
    ['empty', ''],
  ])('rejects %s', (_label, value) => {
    expect(() => parseInstant(value, 'dueAt')).toThrow(RangeError);
    expect(() => parseInstant(value, 'dueAt')).toThrow(/dueAt must be an ISO-8601 instant/);
  });
  test('accepts 29 February only in leap years', () => {
    expect(parseInstant('2028-02-29T00:00:00Z')).toBe(Date.UTC(2028, 1, 29));
    expect(() => parseInstant('2026-02-29T00:00:00Z')).toThrow(RangeError);
  });
  test('formats canonically in UTC', () => {
    expect(formatInstant(Date.UTC(2026, 2, 6, 9))).toBe('2026-03-06T09:00:00.000Z');
  });
});

describe('the 24-hour customer-service window', () => {
  test('is 24 hours', () => expect(CUSTOMER_SERVICE_WINDOW_MS).toBe(86_400_000));

  test('closes 24 hours after the last inbound message', () => {
    expect(windowClosesAt(INBOUND)).toBe('2026-03-07T09:00:00.000Z');
    expect(windowClosesAt('2026-03-06T14:30:00+05:30')).toBe('2026-03-07T09:00:00.000Z');
  });
  test('has no close time when the lead never wrote', () => expect(windowClosesAt(undefined)).toBeUndefined());
  test('rejects a malformed time', () => expect(() => windowClosesAt('yesterday')).toThrow(/lastInboundAt/));

  test('is open until, not at, the close', () => {
    expect(isWindowOpen(INBOUND, INBOUND)).toBe(true);
    expect(isWindowOpen(INBOUND, '2026-03-07T08:59:59.999Z')).toBe(true);
    expect(isWindowOpen(INBOUND, '2026-03-07T09:00:00.000Z')).toBe(false);
    expect(isWindowOpen(INBOUND, '2026-03-08T09:00:00.000Z')).toBe(false);
  });
  test('is closed when the lead never wrote', () => expect(isWindowOpen(undefined, INBOUND)).toBe(false));
  test('is open when the provider timestamp is slightly ahead of our clock', () =>
    expect(isWindowOpen('2026-03-06T09:00:05Z', '2026-03-06T09:00:00Z')).toBe(true));
  test('compares instants, not strings, across offsets', () =>
    expect(isWindowOpen('2026-03-06T14:30:00+05:30', '2026-03-07T08:59:00Z')).toBe(true));
});

describe('planOutbound', () => {
  const inside = '2026-03-06T20:00:00Z';
  const outside = '2026-03-07T09:00:00Z';

  test.each(['ai', 'text'] as const)('%s goes free-form inside the window, template or not', (kind) => {
    expect(planOutbound({ kind, lastInboundAt: INBOUND, now: inside })).toEqual({ action: 'free_form' });
    expect(planOutbound({ kind, lastInboundAt: INBOUND, now: inside, fallbackTemplate: TEMPLATE })).toEqual({ action: 'free_form' });
  });
  test.each(['ai', 'text'] as const)('%s falls back to its template outside the window', (kind) => {
    expect(planOutbound({ kind, lastInboundAt: INBOUND, now: outside, fallbackTemplate: TEMPLATE })).toEqual({ action: 'template', template: TEMPLATE, fallback: true });
  });
  test.each(['ai', 'text'] as const)('%s is refused outside the window without a template', (kind) => {
    expect(planOutbound({ kind, lastInboundAt: INBOUND, now: outside })).toEqual({ action: 'refuse', reason: 'window_closed' });
  });
  test('a lead who never wrote gets only templates', () => {
    expect(planOutbound({ kind: 'ai', now: inside })).toEqual({ action: 'refuse', reason: 'window_closed' });
    expect(planOutbound({ kind: 'text', now: inside, fallbackTemplate: TEMPLATE })).toEqual({ action: 'template', template: TEMPLATE, fallback: true });
  });
  test('a template message always goes as its template, even inside the window', () => {
    expect(planOutbound({ kind: 'template', lastInboundAt: INBOUND, now: inside, fallbackTemplate: TEMPLATE })).toEqual({ action: 'template', template: TEMPLATE, fallback: false });
    expect(planOutbound({ kind: 'template', now: outside, fallbackTemplate: TEMPLATE })).toEqual({ action: 'template', template: TEMPLATE, fallback: false });
  });
  test('a template message without a template is refused as no_template, inside or outside', () => {
    expect(planOutbound({ kind: 'template', lastInboundAt: INBOUND, now: inside })).toEqual({ action: 'refuse', reason: 'no_template' });
    expect(planOutbound({ kind: 'template', now: outside })).toEqual({ action: 'refuse', reason: 'no_template' });
  });
  test('our own sends never extend the window: only the last inbound counts', () => {
    // The bot replied at 08:00 on day two; the window still closes 24h after the lead's message.
    expect(planOutbound({ kind: 'ai', lastInboundAt: INBOUND, now: '2026-03-07T09:30:00Z' })).toEqual({ action: 'refuse', reason: 'window_closed' });
  });
  test('rejects a malformed now on every path', () => {
    expect(() => planOutbound({ kind: 'template', now: 'now', fallbackTemplate: TEMPLATE })).toThrow(/now must be/);
    expect(() => planOutbound({ kind: 'ai', now: '2026-03-06T20:00:00' })).toThrow(/now must be/);
  });
  test('returns the template it was given (plain data, JSON round-trip safe)', () => {
    const plan = planOutbound({ kind: 'ai', now: outside, fallbackTemplate: TEMPLATE });
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });
});
