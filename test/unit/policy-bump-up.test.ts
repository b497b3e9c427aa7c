import { DEFAULT_BUMP_UP, bumpUpDueAt, isRepeat, normalizeForComparison, trimToWords, type BumpUpDueInput } from '../../workflows/lead/policy/bump-up';

const HOUR = 3_600_000;
const IN = '2026-03-06T09:00:00.000Z';
const OUT = '2026-03-06T09:05:00.000Z';
const base: BumpUpDueInput = { channel: 'whatsapp', lastInboundAt: IN, lastOutboundAt: OUT, lastOutboundByBot: true, bumpsSent: 0, policy: DEFAULT_BUMP_UP };

describe('DEFAULT_BUMP_UP', () => {
  test('4 hours idle, at most 2 per conversation, 40 words, WhatsApp only', () =>
    expect(DEFAULT_BUMP_UP).toEqual({ idleMs: 4 * HOUR, maxPerConversation: 2, maxWords: 40, channels: ['whatsapp'] }));
});

describe('bumpUpDueAt', () => {
  test('is idleMs after the bot’s last message', () => expect(bumpUpDueAt(base)).toBe('2026-03-06T13:05:00.000Z'));
  test('a second bump follows the first while under the cap', () => {
    expect(bumpUpDueAt({ ...base, lastOutboundAt: '2026-03-06T13:05:00Z', bumpsSent: 1 })).toBe('2026-03-06T17:05:00.000Z');
  });
  test('none once the cap is reached', () => {
    expect(bumpUpDueAt({ ...base, bumpsSent: 2 })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, bumpsSent: 5 })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, policy: { ...DEFAULT_BUMP_UP, maxPerConversation: 0 } })).toBeUndefined();
  });
  test('none on channels the policy leaves out', () => {
    expect(bumpUpDueAt({ ...base, channel: 'instagram' })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, channel: 'webchat' })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, channel: 'instagram', policy: { ...DEFAULT_BUMP_UP, channels: ['whatsapp', 'instagram'] } })).toBe('2026-03-06T13:05:00.000Z');
  });
  test('none when the lead spoke last (or at the same instant)', () => {
    expect(bumpUpDueAt({ ...base, lastInboundAt: '2026-03-06T09:06:00Z' })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, lastInboundAt: OUT })).toBeUndefined();
  });
  test('none when a human wrote last, or nothing was sent', () => {
    expect(bumpUpDueAt({ ...base, lastOutboundByBot: false })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, lastOutboundAt: undefined })).toBeUndefined();
  });
  test('none when the lead never wrote: there is no window to nudge in', () => expect(bumpUpDueAt({ ...base, lastInboundAt: undefined })).toBeUndefined());
  test('only while the window is still open at the due time', () => {
    // Window closes 2026-03-07T09:00Z. Bot last wrote at 04:59 → due 08:59, open: fine.
    expect(bumpUpDueAt({ ...base, lastOutboundAt: '2026-03-07T04:59:59.999Z' })).toBe('2026-03-07T08:59:59.999Z');
    // Due exactly at the close: too late.
    expect(bumpUpDueAt({ ...base, lastOutboundAt: '2026-03-07T05:00:00Z' })).toBeUndefined();
    expect(bumpUpDueAt({ ...base, lastOutboundAt: '2026-03-07T08:00:00Z' })).toBeUndefined();
  });
  test('rejects malformed times', () => {
    expect(() => bumpUpDueAt({ ...base, lastOutboundAt: '2026-03-06 09:05' })).toThrow(/lastOutboundAt must be/);
    expect(() => bumpUpDueAt({ ...base, lastInboundAt: 'earlier' })).toThrow(/lastInboundAt must be/);
  });
});

describe('trimToWords', () => {
  test('leaves short text as it is (trimmed)', () => {
    expect(trimToWords('  Still keen on the 2BHK?  ', 40)).toBe('Still keen on the 2BHK?');
    expect(trimToWords('one two three', 3)).toBe('one two three');
  });
  test('cuts after the last full sentence that fits', () => {
    expect(trimToWords('Still interested in the flat? I can share photos and the floor plan today if that helps', 8)).toBe('Still interested in the flat?');
  });
  test('cuts at the limit with an ellipsis when no sentence ends in time', () => {
    expect(trimToWords('one two three four five six', 4)).toBe('one two three four…');
    expect(trimToWords('one two three, four five six', 3)).toBe('one two three…');
  });
  test('ignores a sentence end too early to keep half the words', () => {
    expect(trimToWords('Hi! one two three four five six seven', 6)).toBe('Hi! one two three four five…');
  });
  test('counts words across newlines and tabs', () => expect(trimToWords('a\nb\tc d', 3)).toBe('a b c…'));
  test('handles other scripts and closing quotes', () => {
    expect(trimToWords('क्या आप फ्लैट देखना चाहेंगे? मैं फोटो भेज सकता हूँ', 5)).toBe('क्या आप फ्लैट देखना चाहेंगे?');
    expect(trimToWords('He said "call me." Then nothing happened at all', 4)).toBe('He said "call me."');
  });
  test('the result never exceeds the limit', () => {
    const text = Array.from({ length: 100 }, (_, i) => `w${i}${i % 7 === 0 ? '.' : ''}`).join(' ');
    for (const max of [1, 2, 5, 13, 40]) expect(trimToWords(text, max).split(/\s+/).length).toBeLessThanOrEqual(max);
  });
  test('rejects a limit below one', () => {
    expect(() => trimToWords('hi', 0)).toThrow(RangeError);
    expect(() => trimToWords('hi', 2.5)).toThrow(RangeError);
  });
});

describe('isRepeat', () => {
  const previous = ['Would you like to book a site visit this weekend?', 'Great, talk soon!'];
  test('catches the same message with other case, spacing, punctuation or emoji', () => {
    expect(isRepeat('would you like to book a site visit   this weekend', previous)).toBe(true);
    expect(isRepeat('WOULD YOU LIKE TO BOOK A SITE-VISIT THIS WEEKEND?!', previous)).toBe(true);
    expect(isRepeat('Great, talk soon! 😊', previous)).toBe(true);
    expect(isRepeat('great talk soon', previous)).toBe(true);
  });
  test('catches a long message that contains a previous one, or is contained in it', () => {
    expect(isRepeat('Hi Priya! Would you like to book a site visit this weekend?', previous)).toBe(true);
    expect(isRepeat('book a site visit this weekend', previous)).toBe(true);
  });
  test('short messages must match exactly', () => {
    expect(isRepeat('talk soon', previous)).toBe(false); // contained, but under 20 characters
    expect(isRepeat('Great, talk soon! Let me know.', ['Great, talk soon!'])).toBe(false);
  });
  test('containment is by whole words', () => {
    expect(isRepeat('a site visit this weekendly plan for you', ['site visit this weekend'])).toBe(false);
  });
  test('a new message is not a repeat', () => {
    expect(isRepeat('I can also share the floor plan if you like.', previous)).toBe(false);
    expect(isRepeat('anything', [])).toBe(false);
  });
  test('an empty or punctuation-only candidate says nothing new', () => {
    expect(isRepeat('', [])).toBe(true);
    expect(isRepeat(' ?! ', previous)).toBe(true);
  });
  test('normalization is Unicode-aware', () => {
    expect(normalizeForComparison('  Ｈｅｌｌｏ，  WORLD!! ')).toBe('hello world');
    expect(normalizeForComparison('Grüße — ¿Qué tal?')).toBe('grüße qué tal');
    expect(isRepeat('नमस्ते! क्या आप साइट विज़िट बुक करना चाहेंगे?', ['नमस्ते क्या आप साइट विज़िट बुक करना चाहेंगे'])).toBe(true);
  });
});
