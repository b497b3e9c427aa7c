import type { InboundMessage } from '../../workflows/lead/definitions';
import { boundSentAt, capParked, DEFAULT_INBOX_LIMITS, inboxAdmission, newInbound, resumesFirst, utf8Bytes } from '../../workflows/lead/policy/bounds';

const NOW = '2026-11-29T07:00:00.000Z';
const msg = (id: string, text = 'hi'): InboundMessage => ({ providerMessageId: id, channel: 'whatsapp', contactId: 'c', sentAt: NOW, type: 'text', text });

describe('boundSentAt', () => {
  test('keeps a real provider time, also slightly ahead of ours', () => {
    expect(boundSentAt('2026-11-29T06:59:00.000Z', NOW)).toBe('2026-11-29T06:59:00.000Z');
    expect(boundSentAt('2026-11-29T07:05:00.000Z', NOW)).toBe('2026-11-29T07:05:00.000Z');
  });
  test('a 12-digit Meta timestamp (year 5138 or 33658), garbage or a pre-2000 time becomes the time we received it', () => {
    expect(boundSentAt(new Date(100_000_000_000 * 1000).toISOString(), NOW)).toBe(NOW);
    expect(boundSentAt(new Date(999_999_999_999 * 1000).toISOString(), NOW)).toBe(NOW);
    expect(boundSentAt('not a date', NOW)).toBe(NOW);
    expect(boundSentAt('1970-01-01T00:00:00.000Z', NOW)).toBe(NOW);
  });
});

describe('newInbound', () => {
  test('keeps only what the database had not recorded; everything when it does not say', () => {
    const batch = [msg('a'), msg('b'), msg('c')];
    expect(newInbound(batch, ['b']).map((m) => m.providerMessageId)).toEqual(['b']);
    expect(newInbound(batch, [])).toEqual([]);
    expect(newInbound(batch, undefined)).toBe(batch);
  });
});

describe('capParked', () => {
  test('keeps the newest', () => {
    expect(capParked([1, 2, 3, 4], 2)).toEqual([3, 4]);
    expect(capParked([1], 2)).toEqual([1]);
  });
});

describe('inboxAdmission', () => {
  test('buffers within the bounds, records beyond the count or the bytes', () => {
    expect(inboxAdmission([], msg('a'))).toBe('buffer');
    const full = Array.from({ length: DEFAULT_INBOX_LIMITS.maxMessages }, (_, i) => msg(`m${i}`));
    expect(inboxAdmission(full, msg('x'))).toBe('record');
    expect(inboxAdmission([msg('a', 'x'.repeat(60_000))], msg('b', 'y'.repeat(60_000)), { maxMessages: 100, maxBytes: 100_000 })).toBe('record');
    // bytes, not characters: 40,000 three-byte characters are 120,000 bytes
    expect(inboxAdmission([], msg('a', '€'.repeat(40_000)), { maxMessages: 100, maxBytes: 100_000 })).toBe('record');
  });
  test('utf8Bytes counts like Buffer.byteLength, a lone surrogate as U+FFFD', () => {
    for (const s of ['', 'abc', 'héllo', '€', '😀 x', 'a\uD83Db']) expect(utf8Bytes(s)).toBe(Buffer.byteLength(s, 'utf8'));
  });
});

test('a send carried over a circuit wait resumes first; a 131049 deferral does not', () => {
  expect(resumesFirst({ error: { type: 'channel_circuit_open' } })).toBe(true);
  expect(resumesFirst({ error: { type: 'provider_auth' } })).toBe(true);
  expect(resumesFirst({ error: { type: 'provider_spam_limited' } })).toBe(false);
});
