import { isAllowed, isValidTimeZone, nextAllowedSlot, sendWindowProblems, type SendWindow } from '../../workflows/lead/policy/quiet-hours';
import { sendWindowSchema, timeZoneSchema } from '../../workflows/lead/policy/schemas';

const WEEKDAYS_9_TO_6: SendWindow = { days: [1, 2, 3, 4, 5], start: '09:00', end: '18:00' };
const EVERY_DAY = [0, 1, 2, 3, 4, 5, 6];

/** "Mon 09:00" as a wall clock in `tz`: what a human would check. */
function local(iso: string, tz: string): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(iso));
  const get = (type: string) => parts.find((p) => p.type === type)?.value;
  return `${get('weekday')} ${get('hour')}:${get('minute')}`;
}

describe('sendWindowSchema and time zones', () => {
  test('accepts a well-formed window', () => {
    expect(sendWindowSchema.parse(WEEKDAYS_9_TO_6)).toEqual(WEEKDAYS_9_TO_6);
    expect(sendWindowSchema.safeParse({ days: [6], start: '22:00', end: '06:00' }).success).toBe(true);
    expect(sendWindowSchema.safeParse({ days: [0], start: '00:00', end: '23:59' }).success).toBe(true);
  });
  test.each([
    ['no days', { days: [], start: '09:00', end: '18:00' }, /at least one day/],
    ['a day out of range', { days: [7], start: '09:00', end: '18:00' }, /days/],
    ['a negative day', { days: [-1], start: '09:00', end: '18:00' }, /days/],
    ['a fractional day', { days: [1.5], start: '09:00', end: '18:00' }, /days/],
    ['repeated days', { days: [1, 1], start: '09:00', end: '18:00' }, /unique/],
    ['H:MM', { days: [1], start: '9:00', end: '18:00' }, /start must be HH:MM/],
    ['24:00', { days: [1], start: '09:00', end: '24:00' }, /end must be HH:MM/],
    ['minute 60', { days: [1], start: '09:60', end: '18:00' }, /start must be HH:MM/],
    ['seconds', { days: [1], start: '09:00:00', end: '18:00' }, /start must be HH:MM/],
  ])('rejects %s', (_label, value, message) => {
    const r = sendWindowSchema.safeParse(value);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
    // the workflow's zod-free check (quiet-hours.ts) refuses it for the same reason
    expect(sendWindowProblems(value).join('; ')).toMatch(message);
  });
  test('the workflow-side check accepts what the schema accepts', () => {
    for (const w of [WEEKDAYS_9_TO_6, { days: [6], start: '22:00', end: '06:00' }, { days: [0, 1, 2, 3, 4, 5, 6], start: '00:00', end: '23:59' }]) {
      expect(sendWindowSchema.safeParse(w).success).toBe(true);
      expect(sendWindowProblems(w)).toEqual([]);
    }
    expect(sendWindowProblems(null)).not.toEqual([]);
    expect(sendWindowProblems({ days: 'mon', start: '09:00', end: '18:00' })).toEqual(['days: must be an array of week days']);
  });
  test('knows IANA zones and rejects the rest', () => {
    expect(isValidTimeZone('Asia/Kolkata')).toBe(true);
    expect(isValidTimeZone('America/New_York')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(isValidTimeZone('+05:30 but not really')).toBe(false);
    expect(timeZoneSchema.safeParse('Europe/Berlin').success).toBe(true);
    expect(timeZoneSchema.safeParse('Europe/Nowhere').success).toBe(false);
  });
});

describe('isAllowed', () => {
  const tz = 'Asia/Kolkata'; // UTC+05:30, no DST
  test('start is inclusive, end exclusive, in the lead’s zone', () => {
    expect(isAllowed('2026-03-06T03:29:59.999Z', WEEKDAYS_9_TO_6, tz)).toBe(false); // Fri 08:59:59.999
    expect(isAllowed('2026-03-06T03:30:00Z', WEEKDAYS_9_TO_6, tz)).toBe(true); // Fri 09:00
    expect(isAllowed('2026-03-06T12:29:59Z', WEEKDAYS_9_TO_6, tz)).toBe(true); // Fri 17:59:59
    expect(isAllowed('2026-03-06T12:30:00Z', WEEKDAYS_9_TO_6, tz)).toBe(false); // Fri 18:00
  });
  test('uses the local day, not the UTC day', () => {
    // 2026-03-06T20:00Z is Friday in UTC but Saturday 01:30 in Kolkata.
    expect(isAllowed('2026-03-06T20:00:00Z', { days: [5], start: '00:00', end: '23:59' }, 'UTC')).toBe(true);
    expect(isAllowed('2026-03-06T20:00:00Z', { days: [5], start: '00:00', end: '23:59' }, tz)).toBe(false);
    expect(isAllowed('2026-03-06T20:00:00Z', { days: [6], start: '00:00', end: '23:59' }, tz)).toBe(true);
  });
  test('weekends are excluded', () => expect(isAllowed('2026-03-07T05:00:00Z', WEEKDAYS_9_TO_6, tz)).toBe(false));
  test('no window means any time', () => expect(isAllowed('2026-03-07T23:00:00Z', undefined, tz)).toBe(true));
  test('rejects a bad zone, window or time', () => {
    expect(() => isAllowed('2026-03-06T03:30:00Z', WEEKDAYS_9_TO_6, 'Mars/Base')).toThrow(/invalid time zone/);
    expect(() => isAllowed('2026-03-06T03:30:00Z', undefined, 'Mars/Base')).toThrow(/invalid time zone/);
    expect(() => isAllowed('2026-03-06T03:30:00Z', { days: [], start: '09:00', end: '18:00' }, tz)).toThrow(/invalid send window: days/);
    expect(() => isAllowed('2026-03-06T03:30:00', WEEKDAYS_9_TO_6, tz)).toThrow(/at must be/);
  });
});

describe('nextAllowedSlot', () => {
  test('returns dueAt itself, unchanged, when allowed', () => {
    expect(nextAllowedSlot('2026-03-04T10:00:00+05:30', WEEKDAYS_9_TO_6, 'Asia/Kolkata')).toBe('2026-03-04T10:00:00+05:30');
    expect(nextAllowedSlot('2026-03-07T23:00:00Z', undefined, 'Asia/Kolkata')).toBe('2026-03-07T23:00:00Z');
  });

  describe('Asia/Kolkata', () => {
    const tz = 'Asia/Kolkata';
    test('early morning waits for opening the same day', () => {
      expect(nextAllowedSlot('2026-03-04T01:00:00Z', WEEKDAYS_9_TO_6, tz)).toBe('2026-03-04T03:30:00.000Z'); // Wed 06:30 → 09:00
    });
    test('Friday evening waits for Monday morning', () => {
      const slot = nextAllowedSlot('2026-03-06T13:00:00Z', WEEKDAYS_9_TO_6, tz); // Fri 18:30
      expect(slot).toBe('2026-03-09T03:30:00.000Z');
      expect(local(slot, tz)).toBe('Mon 09:00');
    });
    test('Saturday waits for Monday', () => expect(nextAllowedSlot('2026-03-07T04:30:00Z', WEEKDAYS_9_TO_6, tz)).toBe('2026-03-09T03:30:00.000Z'));
    test('a time already at the end of the slot moves on', () => expect(nextAllowedSlot('2026-03-04T12:30:00Z', WEEKDAYS_9_TO_6, tz)).toBe('2026-03-05T03:30:00.000Z'));
  });

  describe('America/New_York across the 2026-03-08 spring-forward', () => {
    const tz = 'America/New_York';
    test('a step due Friday 23:00 with Mon–Fri 09:00–18:00 goes Monday 09:00 local (now EDT)', () => {
      const slot = nextAllowedSlot('2026-03-07T04:00:00Z', WEEKDAYS_9_TO_6, tz); // Fri 2026-03-06 23:00 EST
      expect(slot).toBe('2026-03-09T13:00:00.000Z'); // 09:00 EDT = 13:00Z, not 14:00Z
      expect(local(slot, tz)).toBe('Mon 09:00');
    });
    test('the same the week before, still in EST', () => {
      expect(nextAllowedSlot('2026-02-28T04:00:00Z', WEEKDAYS_9_TO_6, tz)).toBe('2026-03-02T14:00:00.000Z');
    });
    test('a slot starting inside the skipped hour opens when the clock jumps', () => {
      const w: SendWindow = { days: EVERY_DAY, start: '02:30', end: '04:00' };
      const slot = nextAllowedSlot('2026-03-08T06:00:00Z', w, tz); // 01:00 EST
      expect(slot).toBe('2026-03-08T07:00:00.000Z'); // 03:00 EDT, the first instant at or after 02:30
      expect(isAllowed(slot, w, tz)).toBe(true);
      expect(isAllowed('2026-03-08T06:59:59Z', w, tz)).toBe(false);
    });
    test('a slot that lies entirely inside the skipped hour is taken the next week', () => {
      const w: SendWindow = { days: [0], start: '02:00', end: '02:30' };
      expect(nextAllowedSlot('2026-03-08T06:00:00Z', w, tz)).toBe('2026-03-15T06:00:00.000Z');
    });
  });

  describe('America/New_York at the 2026-11-01 fall-back', () => {
    const tz = 'America/New_York';
    test('the repeated hour opens a slot again when the clock falls back', () => {
      const w: SendWindow = { days: EVERY_DAY, start: '00:00', end: '01:30' };
      // 01:45 EDT is outside; at 06:00Z the clock reads 01:00 EST, inside again.
      expect(isAllowed('2026-11-01T05:45:00Z', w, tz)).toBe(false);
      expect(nextAllowedSlot('2026-11-01T05:45:00Z', w, tz)).toBe('2026-11-01T06:00:00.000Z');
    });
    test('a start time that occurs twice is used the first time, then the second', () => {
      const w: SendWindow = { days: EVERY_DAY, start: '01:30', end: '01:40' };
      expect(nextAllowedSlot('2026-11-01T05:00:00Z', w, tz)).toBe('2026-11-01T05:30:00.000Z'); // 01:30 EDT
      expect(nextAllowedSlot('2026-11-01T05:45:00Z', w, tz)).toBe('2026-11-01T06:30:00.000Z'); // 01:30 EST
    });
  });

  describe('Europe/Berlin across the 2026-03-29 change to summer time', () => {
    const tz = 'Europe/Berlin';
    const daily: SendWindow = { days: EVERY_DAY, start: '08:00', end: '20:00' };
    test('before the change: CET, UTC+1', () => expect(nextAllowedSlot('2026-03-28T06:00:00Z', daily, tz)).toBe('2026-03-28T07:00:00.000Z'));
    test('over the change: Saturday night waits for Sunday 08:00 CEST', () => {
      const slot = nextAllowedSlot('2026-03-28T20:00:00Z', daily, tz); // Sat 21:00 CET
      expect(slot).toBe('2026-03-29T06:00:00.000Z');
      expect(local(slot, tz)).toBe('Sun 08:00');
    });
    test('after the change: CEST, UTC+2', () => expect(nextAllowedSlot('2026-03-29T19:00:00Z', daily, tz)).toBe('2026-03-30T06:00:00.000Z'));
  });

  describe('a window spanning midnight (22:00–06:00)', () => {
    const nightly: SendWindow = { days: EVERY_DAY, start: '22:00', end: '06:00' };
    test('is allowed late evening and early morning', () => {
      expect(isAllowed('2026-03-04T23:00:00Z', nightly, 'UTC')).toBe(true);
      expect(isAllowed('2026-03-05T05:59:59Z', nightly, 'UTC')).toBe(true);
      expect(isAllowed('2026-03-05T06:00:00Z', nightly, 'UTC')).toBe(false);
      expect(isAllowed('2026-03-04T21:59:59Z', nightly, 'UTC')).toBe(false);
    });
    test('daytime waits for 22:00 the same day', () => {
      expect(nextAllowedSlot('2026-03-04T12:00:00Z', nightly, 'UTC')).toBe('2026-03-04T22:00:00.000Z');
      expect(nextAllowedSlot('2026-03-05T06:00:00Z', nightly, 'UTC')).toBe('2026-03-05T22:00:00.000Z');
    });
    test('days name the day a slot starts on', () => {
      const fridayNight: SendWindow = { days: [5], start: '22:00', end: '06:00' };
      expect(isAllowed('2026-03-07T03:00:00Z', fridayNight, 'UTC')).toBe(true); // Saturday 03:00 belongs to Friday's slot
      expect(isAllowed('2026-03-06T03:00:00Z', fridayNight, 'UTC')).toBe(false); // Friday 03:00 belongs to Thursday's
      expect(nextAllowedSlot('2026-03-06T03:00:00Z', fridayNight, 'UTC')).toBe('2026-03-06T22:00:00.000Z');
      expect(nextAllowedSlot('2026-03-07T06:00:00Z', fridayNight, 'UTC')).toBe('2026-03-13T22:00:00.000Z');
    });
    test('with weekends excluded, Monday’s small hours are Sunday’s and stay quiet', () => {
      const weeknights: SendWindow = { days: [1, 2, 3, 4, 5], start: '22:00', end: '06:00' };
      const slot = nextAllowedSlot('2026-03-08T17:30:00Z', weeknights, 'Asia/Kolkata'); // Sun 23:00 IST
      expect(slot).toBe('2026-03-09T16:30:00.000Z');
      expect(local(slot, 'Asia/Kolkata')).toBe('Mon 22:00');
    });
  });

  test('start === end is a whole 24 hours from start', () => {
    const mondays: SendWindow = { days: [1], start: '00:00', end: '00:00' };
    expect(isAllowed('2026-03-09T00:00:00Z', mondays, 'UTC')).toBe(true);
    expect(isAllowed('2026-03-09T23:59:59Z', mondays, 'UTC')).toBe(true);
    expect(isAllowed('2026-03-10T00:00:00Z', mondays, 'UTC')).toBe(false);
    expect(nextAllowedSlot('2026-03-08T23:59:00Z', mondays, 'UTC')).toBe('2026-03-09T00:00:00.000Z');
    expect(nextAllowedSlot('2026-03-10T00:00:00Z', mondays, 'UTC')).toBe('2026-03-16T00:00:00.000Z');
  });

  test('a single allowed day a week is found from any day', () => {
    const sundays: SendWindow = { days: [0], start: '10:00', end: '11:00' };
    expect(nextAllowedSlot('2026-03-08T11:00:00Z', sundays, 'UTC')).toBe('2026-03-15T10:00:00.000Z');
  });

  test('rejects invalid input', () => {
    expect(() => nextAllowedSlot('2026-03-06T13:00:00Z', WEEKDAYS_9_TO_6, 'Not/AZone')).toThrow(RangeError);
    expect(() => nextAllowedSlot('2026-03-06T13:00:00Z', { days: [1, 1], start: '09:00', end: '18:00' }, 'UTC')).toThrow(/unique/);
    expect(() => nextAllowedSlot('2026-03-06T13:00:00Z', { days: [1], start: '9am', end: '18:00' }, 'UTC')).toThrow(/start must be HH:MM/);
    expect(() => nextAllowedSlot('2026-03-06 13:00', WEEKDAYS_9_TO_6, 'UTC')).toThrow(/dueAt must be/);
  });

  // Property: the answer is allowed, not before dueAt, and nothing between dueAt and it is allowed.
  const propertyCases: [string, SendWindow, number][] = [
    ['America/New_York', WEEKDAYS_9_TO_6, Date.UTC(2026, 2, 1)],
    ['America/New_York', { days: EVERY_DAY, start: '01:30', end: '02:45' }, Date.UTC(2026, 9, 28)],
    ['Europe/Berlin', { days: [2, 4, 6], start: '22:15', end: '01:45' }, Date.UTC(2026, 2, 25)],
    ['Asia/Kolkata', { days: [0, 6], start: '10:00', end: '12:30' }, Date.UTC(2026, 2, 1)],
    ['Australia/Lord_Howe', { days: EVERY_DAY, start: '01:45', end: '02:15' }, Date.UTC(2026, 3, 1)],
  ];
  describe.each(propertyCases)('is the earliest allowed instant (%s %j)', (tz, window, from) => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const samples = Array.from({ length: 30 }, () => from + Math.floor(random() * 12 * 86_400_000));
    test.each(samples)('from %p', (dueMs) => {
      const due = new Date(dueMs).toISOString();
      const slot = nextAllowedSlot(due, window, tz);
      const slotMs = Date.parse(slot);
      expect(slotMs).toBeGreaterThanOrEqual(dueMs);
      expect(isAllowed(slot, window, tz)).toBe(true);
      if (slotMs > dueMs) {
        expect(isAllowed(new Date(slotMs - 1).toISOString(), window, tz)).toBe(false);
        // Every slot edge and DST change in these zones falls on a quarter hour (UTC-aligned, even
        // at Lord Howe's +10:30/+11), so an allowed stretch before the answer would show here.
        const quarter = 15 * 60_000;
        for (let t = Math.ceil(dueMs / quarter) * quarter; t < slotMs; t += quarter) {
          if (isAllowed(new Date(t).toISOString(), window, tz)) throw new Error(`${new Date(t).toISOString()} is allowed but ${slot} was returned for ${due}`);
        }
      }
    });
  });
});
