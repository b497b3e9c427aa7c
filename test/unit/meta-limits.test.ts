/**
 * Field limits and time bounds of the Meta webhook parsers (api/webhooks/meta-limits.ts), through
 * the parsers themselves where it matters.
 */
import { clampItem, clipChars, clipUtf8, limitInbound, LIMITS, META_EARLIEST_TIME, WHATSAPP_MESSAGE_LIMITS, wellFormed } from '../../api/webhooks/meta-limits';
import { parseInstagramWebhook } from '../../api/webhooks/instagram-payload';
import { parseWhatsAppWebhook } from '../../api/webhooks/whatsapp-payload';
import { deterministicRefusal } from '../../temporal/refusals';

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);

function waBody(messages: unknown[], statuses: unknown[] = []) {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: '123' }, contacts: [{ wa_id: '15550001111', profile: { name: 'Sam' } }], messages, statuses } }] }],
  };
}
const waMsg = (extra: Record<string, unknown>) => ({ from: '15550001111', id: 'wamid.A', timestamp: String(Math.floor(NOW / 1000) - 60), ...extra });

describe('strings', () => {
  it('cuts on a code point and ends with an ellipsis within the limit', () => {
    const s = `${'a'.repeat(9)}😀😀`;
    const cut = clipChars(s, 10);
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(cut).toBe(`${'a'.repeat(9)}…`);
    expect(wellFormed(cut)).toBe(cut);
  });

  it('cuts UTF-8 by bytes without splitting a character', () => {
    const cut = clipUtf8('é'.repeat(600), 1000);
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(1000);
    expect(cut.endsWith('é…')).toBe(true);
  });

  it('replaces lone surrogates (a JSON "\\ud83d" escape) so the database takes the string', () => {
    expect(wellFormed('cut mid-emoji \ud83d')).toBe('cut mid-emoji \ufffd');
    expect(wellFormed('\ude00 alone')).toBe('\ufffd alone');
    expect(wellFormed('whole 😀')).toBe('whole 😀');
  });
});

describe('clampItem', () => {
  it("applies Meta's caption limit and bounds every other string, array and depth", () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 20; i++) deep = { d: deep };
    const r = clampItem(
      { type: 'image', image: { id: 'm1', caption: 'c'.repeat(5000) }, referral: { body: 'r'.repeat(10_000) }, list: Array.from({ length: 500 }, (_, i) => i), deep },
      WHATSAPP_MESSAGE_LIMITS,
    );
    if (!r.ok) throw new Error(r.reason);
    const v = r.value as { image: { caption: string }; referral: { body: string }; list: number[] };
    expect(v.image.caption.length).toBe(LIMITS.caption);
    expect(v.referral.body.length).toBe(LIMITS.anyString);
    expect(v.list.length).toBe(LIMITS.anyArray);
    expect(r.adjusted).toEqual(
      expect.arrayContaining([
        "image.caption cut from 5000 to 1024 characters (Meta's limit for a media caption)",
        'referral.body cut from 10000 to 4096 characters (bound for any field)',
        'list cut from 500 to 100 elements',
      ]),
    );
    expect(r.adjusted.some((a) => a.includes('nested deeper'))).toBe(true);
  });

  it('drops an item still too large after its fields are cut', () => {
    const r = clampItem({ many: Array.from({ length: 100 }, () => Array.from({ length: 100 }, () => 'x'.repeat(100))) }, []);
    expect(r.ok).toBe(false);
  });
});

describe('WhatsApp parser', () => {
  it('cuts a 2 MB text to 4,096 characters and records it in details and adjusted', () => {
    const r = parseWhatsAppWebhook(waBody([waMsg({ type: 'text', text: { body: 'x'.repeat(2 * 1024 * 1024) } })]), { receivedAtMs: NOW });
    if (!r.ok) throw new Error(r.reason);
    const m = r.changes[0]!.messages[0]!;
    expect(m.text.length).toBe(4096);
    expect(m.details).toEqual({ adjusted: ["text.body cut from 2097152 to 4096 characters (Meta's limit for a text message body)"] });
    expect(r.adjusted).toEqual([{ path: 'entry[0].changes[0].value.messages[0]', reason: m.details!.adjusted && (m.details!.adjusted as string[])[0] }]);
    expect(r.ignored).toEqual([]);
  });

  it('drops a message whose contact id or message id is over its bound, keeping its siblings', () => {
    const r = parseWhatsAppWebhook(
      waBody([
        waMsg({ from: '9'.repeat(2000), id: 'wamid.long-from', type: 'text', text: { body: 'a' } }),
        waMsg({ id: `wamid.${'z'.repeat(300)}`, type: 'text', text: { body: 'b' } }),
        waMsg({ id: 'wamid.ok', type: 'text', text: { body: 'c' } }),
      ]),
      { receivedAtMs: NOW },
    );
    if (!r.ok) throw new Error(r.reason);
    expect(r.changes[0]!.messages.map((m) => m.providerMessageId)).toEqual(['wamid.ok']);
    expect(r.ignored.map((i) => i.path)).toEqual(['entry[0].changes[0].value.messages[0]', 'entry[0].changes[0].value.messages[1]']);
    expect(r.ignored[0]!.reason).toContain('contact id is 2000 characters');
    expect(r.ignored[1]!.reason).toContain('message id is');
  });

  it('replaces a 12-digit timestamp (and one before 2009) by the time of receipt, recorded', () => {
    const r = parseWhatsAppWebhook(
      waBody(
        [waMsg({ id: 'wamid.future', timestamp: '999999999999', type: 'text', text: { body: 'a' } }), waMsg({ id: 'wamid.past', timestamp: '1', type: 'text', text: { body: 'b' } })],
        [{ id: 'wamid.S', status: 'sent', timestamp: '999999999999', recipient_id: '15550001111' }],
      ),
      { receivedAtMs: NOW },
    );
    if (!r.ok) throw new Error(r.reason);
    const [future, past] = r.changes[0]!.messages;
    expect(future!.sentAt).toBe(new Date(NOW).toISOString());
    expect(past!.sentAt).toBe(new Date(NOW).toISOString());
    expect(JSON.stringify(future!.details)).toContain('outside the plausible range');
    expect(r.changes[0]!.statuses[0]!.timestamp).toBe(new Date(NOW).toISOString());
    expect(r.adjusted.map((a) => a.path)).toEqual([
      'entry[0].changes[0].value.messages[0]',
      'entry[0].changes[0].value.messages[1]',
      'entry[0].changes[0].value.statuses[0]',
    ]);
  });

  it('drops a status whose id or recipient is over its bound, keeping its siblings', () => {
    const r = parseWhatsAppWebhook(
      waBody([], [
        { id: 'wamid.S1', status: 'delivered', timestamp: String(Math.floor(NOW / 1000)), recipient_id: '1'.repeat(2000) },
        { id: 'wamid.S2', status: 'read', timestamp: String(Math.floor(NOW / 1000)), recipient_id: '15550001111', errors: [{ code: 1, message: 'm'.repeat(100_000) }] },
      ]),
      { receivedAtMs: NOW },
    );
    if (!r.ok) throw new Error(r.reason);
    expect(r.changes[0]!.statuses.map((s) => s.providerMessageId)).toEqual(['wamid.S2']);
    expect(r.changes[0]!.statuses[0]!.errors[0]!.message!.length).toBe(LIMITS.anyString);
    expect(r.ignored[0]!.path).toBe('entry[0].changes[0].value.statuses[0]');
  });

  it('keeps a plausible time as Meta sent it (a redelivery days later, a clock a few minutes ahead)', () => {
    const daysAgo = Math.floor((NOW - 6 * 86_400_000) / 1000);
    const ahead = Math.floor((NOW + 5 * 60_000) / 1000);
    const r = parseWhatsAppWebhook(waBody([waMsg({ id: 'a', timestamp: String(daysAgo), type: 'text', text: { body: 'a' } }), waMsg({ id: 'b', timestamp: String(ahead), type: 'text', text: { body: 'b' } })]), { receivedAtMs: NOW });
    if (!r.ok) throw new Error(r.reason);
    expect(r.changes[0]!.messages.map((m) => Date.parse(m.sentAt) / 1000)).toEqual([daysAgo, ahead]);
    expect(r.adjusted).toEqual([]);
    expect(META_EARLIEST_TIME).toBe(Date.parse('2009-01-01T00:00:00Z'));
  });

  it("cuts interactive titles to Meta's limits", () => {
    const r = parseWhatsAppWebhook(waBody([waMsg({ type: 'interactive', interactive: { type: 'list_reply', list_reply: { id: 'row-1', title: 't'.repeat(100), description: 'd'.repeat(100) } } })]), { receivedAtMs: NOW });
    if (!r.ok) throw new Error(r.reason);
    const m = r.changes[0]!.messages[0]!;
    expect(m.text).toBe(`[list] ${'t'.repeat(23)}… — ${'d'.repeat(71)}… (id: row-1)`);
  });
});

describe('Instagram parser', () => {
  const igBody = (messaging: unknown[]) => ({ object: 'instagram', entry: [{ id: '17841400000000000', time: NOW, messaging }] });
  const event = (from: string, message: Record<string, unknown>, timestamp = NOW - 1000) => ({ sender: { id: from }, recipient: { id: '17841400000000000' }, timestamp, message });

  it('cuts a text to 1,000 bytes and drops a 2,000-character sender id, keeping the sibling', () => {
    const r = parseInstagramWebhook(igBody([event('1', { mid: 'm1', text: 'é'.repeat(1_000_000) }), event('7'.repeat(2000), { mid: 'm2', text: 'x' }), event('2', { mid: 'm3', text: 'ok' })]), { receivedAtMs: NOW });
    if (!r.ok) throw new Error(r.reason);
    const msgs = r.entries[0]!.messages;
    expect(msgs.map((m) => m.providerMessageId)).toEqual(['m1', 'm3']);
    expect(Buffer.byteLength(msgs[0]!.text, 'utf8')).toBeLessThanOrEqual(LIMITS.instagramTextBytes);
    expect(r.adjusted[0]!.reason).toBe("message.text cut from 2000000 to 1000 bytes (Meta's limit for an Instagram message text)");
    expect(r.ignored.find((i) => i.path === 'entry[0].messaging[1]')!.reason).toContain('contact id is 2000 characters');
  });

  it('removes an attachment url too long to be a CDN link, and bounds the time', () => {
    const r = parseInstagramWebhook(igBody([event('1', { mid: 'm1', attachments: [{ type: 'image', payload: { url: `https://cdn.fbsbx.com/${'a'.repeat(5000)}` } }] }, 99_999_999_999_999)]), { receivedAtMs: NOW });
    if (!r.ok) throw new Error(r.reason);
    const m = r.entries[0]!.messages[0]!;
    expect(m.media).toBeUndefined();
    expect(m.sentAt).toBe(new Date(NOW).toISOString());
    expect(r.adjusted.map((a) => a.reason).join('\n')).toMatch(/payload\.url removed[\s\S]*outside the plausible range/);
  });
});

describe('limitInbound', () => {
  it('leaves a message within every bound as it is', () => {
    const m = { providerMessageId: 'wamid.1', channel: 'whatsapp' as const, contactId: '15550001111', sentAt: new Date(NOW - 1000).toISOString(), type: 'text' as const, text: 'hi' };
    expect(limitInbound(m, NOW)).toEqual({ ok: true, value: m, adjusted: [] });
  });
});

describe('deterministicRefusal', () => {
  const grpc = (code: number, details: string) => Object.assign(new Error('Failed to signalWithStart Workflow'), { cause: Object.assign(new Error(details), { code, details }) });
  it("recognises Temporal's refusals of an item's own content", () => {
    expect(deterministicRefusal(grpc(3, 'Blob data size exceeds limit.'))).toBe('Blob data size exceeds limit.');
    expect(deterministicRefusal(grpc(3, 'WorkflowId exceeds maximum allowed length (2007/1000)'))).toContain('WorkflowId');
    expect(deterministicRefusal(grpc(8, 'grpc: received message larger than max (5000188 vs. 4194304)'))).toContain('larger than max');
  });
  it('leaves everything else to be retried (503)', () => {
    expect(deterministicRefusal(grpc(14, 'Connection refused'))).toBeUndefined();
    expect(deterministicRefusal(grpc(8, 'namespace rate limit exceeded'))).toBeUndefined();
    expect(deterministicRefusal(grpc(3, 'search attribute LeadStage is not defined'))).toBeUndefined();
    expect(deterministicRefusal(new Error('boom'))).toBeUndefined();
  });
});
