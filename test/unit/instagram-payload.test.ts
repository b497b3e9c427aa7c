import fs from 'fs';
import path from 'path';
import { parseInstagramWebhook, type InstagramParseResult } from '../../api/webhooks/instagram-payload';
import { parseWhatsAppWebhook } from '../../api/webhooks/whatsapp-payload';
import { classifyGraphError, isRetryableGraphError } from '../../lib/graph-errors';
import {
  instagramAttachmentWebhook,
  instagramEchoWebhook,
  instagramEvent,
  instagramPostbackWebhook,
  instagramReactionWebhook,
  instagramReadWebhook,
  instagramTextWebhook,
  instagramWebhook,
} from '../../fakes/meta-webhooks';

interface Fixture {
  name: string;
  kind: 'whatsapp' | 'instagram' | 'malformed';
  expect: { inbound: number; statuses: number; ignored: number; valid: boolean };
  body: unknown;
}
const fixtures: Fixture[] = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/meta-webhooks.json'), 'utf8')) as Fixture[];

const IG = '17841469035182274';
const USER = '6254873019284751';
const TS = 1760172001000;
const who = { igAccountId: IG, from: USER, timestamp: TS };

function ok(result: InstagramParseResult): Extract<InstagramParseResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got: ${result.reason}`);
  return result;
}
const messagesOf = (b: unknown) => ok(parseInstagramWebhook(b)).entries.flatMap((e) => e.messages);
function single(b: unknown) {
  const m = messagesOf(b);
  expect(m).toHaveLength(1);
  return m[0]!;
}

describe('parseInstagramWebhook: fixtures', () => {
  it.each(fixtures.filter((f) => f.kind === 'instagram').map((f) => [f.name, f] as const))('%s matches expect', (_name, fixture) => {
    const r = ok(parseInstagramWebhook(fixture.body));
    expect(r.entries.flatMap((e) => e.messages)).toHaveLength(fixture.expect.inbound);
    expect(r.ignored).toHaveLength(fixture.expect.ignored);
  });

  it('reads the recorded text DM', () => {
    const f = fixtures.find((x) => x.name === 'ig_text_dm')!;
    const r = ok(parseInstagramWebhook(f.body));
    expect(r.entries[0]!.accountId).toBe(IG);
    expect(r.entries[0]!.messages[0]).toEqual({
      providerMessageId: expect.stringMatching(/^aWdf/),
      channel: 'instagram',
      contactId: USER,
      sentAt: '2025-10-11T08:40:01.000Z',
      type: 'text',
      text: 'Do you ship to Pune?',
    });
  });

  it.each(fixtures.filter((f) => f.kind !== 'instagram').map((f) => [f.name, f] as const))('%s (not instagram) is rejected', (_name, fixture) => {
    const r = parseInstagramWebhook(fixture.body);
    expect(r.ok).toBe(false);
  });

  it('and the WhatsApp parser still rejects Instagram bodies', () => {
    expect(parseWhatsAppWebhook(instagramTextWebhook({ ...who, text: 'hi' })).ok).toBe(false);
  });
});

describe('parseInstagramWebhook: every event kind', () => {
  it('text, with a reply to another message', () => {
    const m = single(instagramTextWebhook({ ...who, text: 'Is it in stock?', mid: 'mid.1', replyToMid: 'mid.0' }));
    expect(m).toMatchObject({ providerMessageId: 'mid.1', type: 'text', text: 'Is it in stock?', replyToProviderId: 'mid.0', contactId: USER, channel: 'instagram' });
  });

  it('a quick reply keeps its payload and reads as the tapped title', () => {
    const m = single(instagramTextWebhook({ ...who, text: 'Book a call', mid: 'mid.qr', quickReplyPayload: 'BOOK_CALL' }));
    expect(m).toMatchObject({ type: 'button', text: '[quick reply] Book a call (id: BOOK_CALL)', details: { quickReply: { payload: 'BOOK_CALL' } } });
  });

  it.each([
    ['image', 'image', '[image]'],
    ['video', 'video', '[video]'],
    ['audio', 'audio', '[audio]'],
    ['file', 'document', '[file]'],
    ['share', 'image', '[shared post]'],
    ['story_mention', 'image', '[story mention]'],
    ['ig_reel', 'video', '[shared reel]'],
  ] as const)('attachment %s → %s, media by url, readable text', (attType, type, text) => {
    const url = `https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&type=${attType}`;
    const m = single(instagramAttachmentWebhook({ ...who, mid: `mid.${attType}`, attachments: [{ type: attType, url }] }));
    expect(m).toMatchObject({ providerMessageId: `mid.${attType}`, type, text, media: { id: url }, details: { attachmentType: attType } });
  });

  it('an unknown attachment type is kept, readable, as unsupported', () => {
    const m = single(instagramAttachmentWebhook({ ...who, mid: 'mid.x', attachments: [{ type: 'hologram', url: 'https://x/y' }] }));
    expect(m).toMatchObject({ type: 'unsupported', text: '[attachment: hologram]', media: { id: 'https://x/y' } });
  });

  it('a reel title and the message text become the caption', () => {
    const m = single(instagramAttachmentWebhook({ ...who, mid: 'mid.r', text: 'look!', attachments: [{ type: 'ig_reel', url: 'https://cdn/r', title: 'Summer sale' }] }));
    expect(m.text).toBe('[shared reel] Summer sale — look!');
    expect(m.media).toEqual({ id: 'https://cdn/r', caption: 'look!' });
  });

  it('several attachments become one message each with stable ids', () => {
    const b = instagramAttachmentWebhook({ ...who, mid: 'mid.multi', attachments: [{ type: 'image', url: 'https://a' }, { type: 'image', url: 'https://b' }] });
    const m = messagesOf(b);
    expect(m.map((x) => [x.providerMessageId, x.media?.id])).toEqual([
      ['mid.multi', 'https://a'],
      ['mid.multi#1', 'https://b'],
    ]);
    expect(messagesOf(b).map((x) => x.providerMessageId)).toEqual(m.map((x) => x.providerMessageId));
  });

  it('a reply to a story says so', () => {
    const b = instagramWebhook(IG, [instagramEvent(who, { message: { mid: 'mid.s', text: 'love it', reply_to: { story: { id: '1799', url: 'https://cdn/story' } } } })]);
    const m = single(b);
    expect(m).toMatchObject({ type: 'text', text: '[reply to story] love it', details: { replyToStory: { id: '1799', url: 'https://cdn/story' } } });
  });

  it('a postback reads as the button title, keeps its payload and its mid', () => {
    const m = single(instagramPostbackWebhook({ ...who, mid: 'mid.pb', title: 'Shipping info', payload: 'SHIPPING' }));
    expect(m).toMatchObject({ providerMessageId: 'mid.pb', type: 'interactive', text: '[button] Shipping info (id: SHIPPING)', details: { postback: { title: 'Shipping info', payload: 'SHIPPING' } } });
  });

  it('a postback without a mid gets a deterministic id', () => {
    const b = instagramWebhook(IG, [instagramEvent(who, { postback: { title: 'Prices', payload: 'PRICES' } })]);
    const a = single(b);
    expect(a.providerMessageId).toMatch(/^ig\.postback\./);
    expect(single(JSON.parse(JSON.stringify(b))).providerMessageId).toBe(a.providerMessageId);
  });

  it('reactions and their removal get deterministic ids, distinct per action', () => {
    const react = instagramReactionWebhook({ ...who, mid: 'mid.ours', emoji: '❤️' });
    const a = single(react);
    expect(a).toMatchObject({ type: 'reaction', text: '[reaction ❤️ to mid.ours]', details: { reaction: { mid: 'mid.ours', action: 'react', emoji: '❤️' } } });
    expect(a.providerMessageId).toMatch(/^ig\.reaction\./);
    expect(single(react).providerMessageId).toBe(a.providerMessageId); // redelivery → same id
    const unreact = single(instagramReactionWebhook({ ...who, mid: 'mid.ours', action: 'unreact' }));
    expect(unreact.text).toBe('[reaction removed from mid.ours]');
    expect(unreact.providerMessageId).not.toBe(a.providerMessageId);
  });

  it('an unsupported message is kept and readable', () => {
    const m = single(instagramWebhook(IG, [instagramEvent(who, { message: { mid: 'mid.u', is_unsupported: true } })]));
    expect(m).toMatchObject({ type: 'unsupported', text: '[unsupported: instagram message]' });
  });

  it('timestamps in ms become ISO; a seconds value is taken as seconds', () => {
    expect(single(instagramTextWebhook({ ...who, text: 'x', timestamp: 1760172001000 })).sentAt).toBe('2025-10-11T08:40:01.000Z');
    expect(single(instagramTextWebhook({ ...who, text: 'x', timestamp: 1760172001 })).sentAt).toBe('2025-10-11T08:40:01.000Z');
  });
});

describe('parseInstagramWebhook: ignored events', () => {
  it.each([
    ['echo', instagramEchoWebhook({ ...who, text: 'our reply' })],
    ['read', instagramReadWebhook({ ...who, mid: 'mid.ours' })],
    ['delivery', instagramWebhook(IG, [instagramEvent(who, { delivery: { mids: ['mid.ours'], watermark: TS } })])],
    ['deleted', instagramWebhook(IG, [instagramEvent(who, { message: { mid: 'mid.d', is_deleted: true } })])],
    ['edit', instagramWebhook(IG, [instagramEvent(who, { message_edit: { mid: 'mid.e', text: 'new', num_edit: 1 } })])],
    ['referral', instagramWebhook(IG, [instagramEvent(who, { referral: { ref: 'spring', source: 'IGME', type: 'OPEN_THREAD' } })])],
  ] as const)('%s: no message, counted as an expected ignore', (event, b) => {
    const r = ok(parseInstagramWebhook(b));
    expect(r.entries.flatMap((e) => e.messages)).toEqual([]);
    expect(r.ignored).toEqual([expect.objectContaining({ path: 'entry[0].messaging[0]', expected: true, event })]);
  });

  it('an echo is ignored even when is_echo comes from the account with no other marker', () => {
    const b = instagramWebhook(IG, [{ sender: { id: IG }, recipient: { id: USER }, timestamp: TS, message: { mid: 'm', text: 'x' } }]);
    expect(ok(parseInstagramWebhook(b)).ignored[0]).toMatchObject({ expected: true, event: 'echo' });
  });

  it('comment changes on an entry are ignored as expected', () => {
    const b = { object: 'instagram', entry: [{ id: IG, time: TS, changes: [{ field: 'comments', value: { id: 'c1', text: 'nice' } }] }] };
    const r = ok(parseInstagramWebhook(b));
    expect(r.ignored).toEqual([expect.objectContaining({ path: 'entry[0].changes', expected: true })]);
  });
});

describe('parseInstagramWebhook: broken items are skipped, siblings kept', () => {
  it('a broken event among valid ones', () => {
    const good1 = instagramEvent(who, { message: { mid: 'mid.g1', text: 'first' } });
    const noSender = { recipient: { id: IG }, timestamp: TS, message: { mid: 'mid.b', text: 'x' } };
    const badTimestamp = instagramEvent({ ...who, timestamp: 'yesterday' as unknown as number }, { message: { mid: 'mid.c', text: 'x' } });
    const noMid = instagramEvent(who, { message: { text: 'no id' } });
    const badReaction = instagramEvent(who, { reaction: { mid: 'mid.g1', action: 'poke' } });
    const empty = instagramEvent(who, { message: { mid: 'mid.e' } });
    const unknown = instagramEvent(who, { hologram: { x: 1 } });
    const badAttachment = instagramEvent(who, { message: { mid: 'mid.a', attachments: [42] } });
    const good2 = instagramEvent({ ...who, from: '999' }, { message: { mid: 'mid.g2', text: 'second' } });
    const r = ok(parseInstagramWebhook(instagramWebhook(IG, [good1, noSender, badTimestamp, noMid, badReaction, empty, unknown, badAttachment, 'junk' as never, good2])));
    expect(r.entries[0]!.messages.map((m) => m.providerMessageId)).toEqual(['mid.g1', 'mid.g2']);
    expect(r.ignored.map((i) => [i.path, i.expected])).toEqual([
      ['entry[0].messaging[1]', false],
      ['entry[0].messaging[2]', false],
      ['entry[0].messaging[3]', false],
      ['entry[0].messaging[4]', false],
      ['entry[0].messaging[5]', false],
      ['entry[0].messaging[6]', false],
      ['entry[0].messaging[7]', false],
      ['entry[0].messaging[8]', false],
    ]);
    const reasons = r.ignored.map((i) => i.reason);
    expect(reasons[0]).toBe('sender is required');
    expect(reasons[1]).toMatch(/^timestamp must be a number/);
    expect(reasons[2]).toBe('message.mid is required');
    expect(reasons[3]).toMatch(/^reaction\.action must be "react" or "unreact"/);
    expect(reasons[4]).toBe('message has neither text nor attachments');
    expect(reasons[5]).toMatch(/^unknown event \(hologram\)/);
    expect(reasons[6]).toMatch(/^message\.attachments\[0\] must be an object/);
  });

  it('a broken entry among valid ones; duplicates in one body count once', () => {
    const ev = instagramEvent(who, { message: { mid: 'mid.dup', text: 'twice' } });
    const b = { object: 'instagram', entry: [{ time: TS, messaging: [ev] }, { id: IG, messaging: [ev, ev] }, { id: IG, messaging: 'nope' }] };
    const r = ok(parseInstagramWebhook(b));
    expect(r.entries.map((e) => e.messages.length)).toEqual([1]);
    expect(r.ignored.map((i) => [i.path, i.reason])).toEqual([
      ['entry[0]', 'id is required'],
      ['entry[1].messaging[1]', 'duplicate message id in body'],
      ['entry[2]', 'messaging must be an array, got "nope"'],
    ]);
  });

  it.each([
    ['not an object', 'hello'],
    ['wrong object', { object: 'page', entry: [] }],
    ['no entry', { object: 'instagram' }],
    ['empty entry', { object: 'instagram', entry: [] }],
    ['entry not an array', { object: 'instagram', entry: {} }],
  ])('a bad envelope (%s) fails the body with a reason', (_n, b) => {
    const r = parseInstagramWebhook(b);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason.length).toBeGreaterThan(0);
      expect(r.issues.length).toBeGreaterThan(0);
    }
  });
});

describe('Graph error taxonomy: Instagram codes', () => {
  test('code 10 with an outside-window subcode is a window error, not an auth error', () => {
    expect(classifyGraphError(10, 2534022)).toBe('reengagement');
    expect(classifyGraphError(10, 2018278)).toBe('reengagement');
    expect(classifyGraphError(10)).toBe('auth');
    expect(classifyGraphError(10, 123)).toBe('auth');
  });
  test('613 is a rate limit, 551 (user unavailable) is permanent', () => {
    expect(classifyGraphError(613)).toBe('rate_limited');
    expect(isRetryableGraphError('rate_limited', 400)).toBe(true);
    expect(classifyGraphError(551)).toBe('permanent');
  });
});
