import fs from 'fs';
import path from 'path';
import { parseWhatsAppWebhook, type ParsedChange, type WebhookParseResult } from '../../api/webhooks/whatsapp-payload';

interface Fixture {
  name: string;
  kind: 'whatsapp' | 'instagram' | 'malformed';
  expect: { inbound: number; statuses: number; ignored: number; valid: boolean };
  body: unknown;
}

const fixtures: Fixture[] = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../fixtures/meta-webhooks.json'), 'utf8'),
) as Fixture[];

const PHONE_NUMBER_ID = '184752093316548';
const FROM = '919876543210';

/** A one-change WhatsApp body carrying the given messages/statuses. */
function body(value: { messages?: unknown; statuses?: unknown; contacts?: unknown }): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '230981457709312',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15557320418', phone_number_id: PHONE_NUMBER_ID },
              contacts: value.contacts ?? [{ profile: { name: 'Priya Sharma' }, wa_id: FROM }],
              ...(value.messages !== undefined ? { messages: value.messages } : {}),
              ...(value.statuses !== undefined ? { statuses: value.statuses } : {}),
            },
          },
        ],
      },
    ],
  };
}

function msg(id: string, type: string, extra: Record<string, unknown>): Record<string, unknown> {
  return { from: FROM, id, timestamp: '1760172000', type, ...extra };
}

function okResult(result: WebhookParseResult): Extract<WebhookParseResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got: ${result.reason}`);
  return result;
}

const allMessages = (changes: ParsedChange[]) => changes.flatMap((c) => c.messages);
const allStatuses = (changes: ParsedChange[]) => changes.flatMap((c) => c.statuses);

function single(b: unknown) {
  const r = okResult(parseWhatsAppWebhook(b));
  const messages = allMessages(r.changes);
  expect(messages).toHaveLength(1);
  return messages[0]!;
}

describe('parseWhatsAppWebhook: fixtures', () => {
  const waFixtures = fixtures.filter((f) => f.kind === 'whatsapp' || f.kind === 'malformed');

  it('has fixtures to check', () => {
    expect(waFixtures.length).toBeGreaterThan(0);
  });

  it.each(waFixtures.map((f) => [f.name, f] as const))('%s matches expect', (_name, fixture) => {
    const result = parseWhatsAppWebhook(fixture.body);
    expect(result.ok).toBe(fixture.expect.valid);
    if (result.ok) {
      expect(allMessages(result.changes)).toHaveLength(fixture.expect.inbound);
      expect(allStatuses(result.changes)).toHaveLength(fixture.expect.statuses);
      expect(result.ignored).toHaveLength(fixture.expect.ignored);
      for (const m of allMessages(result.changes)) {
        expect(m.channel).toBe('whatsapp');
        expect(m.providerMessageId).toMatch(/^wamid\./);
        expect(new Date(m.sentAt).toISOString()).toBe(m.sentAt);
      }
    } else {
      expect(result.reason).toEqual(expect.any(String));
      expect(result.reason.length).toBeGreaterThan(0);
      expect(result.issues.length).toBeGreaterThan(0);
    }
  });

  it.each(fixtures.filter((f) => f.kind === 'instagram').map((f) => [f.name, f] as const))(
    '%s (instagram) is rejected by the WhatsApp parser',
    (_name, fixture) => {
      const result = parseWhatsAppWebhook(fixture.body);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain('expected object "whatsapp_business_account", got "instagram"');
    },
  );

  it('gives clear reasons for the malformed fixtures', () => {
    const missing = fixtures.find((f) => f.name === 'malformed_missing_entry');
    const wrong = fixtures.find((f) => f.name === 'malformed_wrong_object');
    const r1 = parseWhatsAppWebhook(missing?.body);
    const r2 = parseWhatsAppWebhook(wrong?.body);
    expect(r1).toMatchObject({ ok: false, reason: 'entry is required' });
    expect(r2.ok).toBe(false);
    if (!r2.ok) {
      expect(r2.reason).toContain('expected object "whatsapp_business_account", got "user"');
      expect(r2.issues).toContainEqual({
        path: 'object',
        message: 'expected object "whatsapp_business_account", got "user"',
      });
    }
  });
});

describe('parseWhatsAppWebhook: message types', () => {
  it('keeps the full text body and the sender fields', () => {
    const longBody = `Hello ${'x'.repeat(4000)} end`;
    const m = single(body({ messages: [msg('wamid.T1', 'text', { text: { body: longBody } })] }));
    expect(m).toEqual({
      providerMessageId: 'wamid.T1',
      channel: 'whatsapp',
      contactId: FROM,
      contactName: 'Priya Sharma',
      identity: { phone: FROM },
      sentAt: '2025-10-11T08:40:00.000Z',
      type: 'text',
      text: longBody,
    });
  });

  it('normalizes the image fixture with media id, mime type and caption', () => {
    const fixture = fixtures.find((f) => f.name === 'wa_image_with_caption');
    const m = single(fixture?.body);
    expect(m.type).toBe('image');
    expect(m.text).toBe('[image] This is the damaged box');
    expect(m.media).toEqual({
      id: '7498430527618300',
      mimeType: 'image/jpeg',
      sha256: 'Q49Szf03pGa/XWuXuudDGRKeWHoTNcTv4p1QhYPuorw=',
      caption: 'This is the damaged box',
    });
    expect(m.details).toMatchObject({ id: '7498430527618300', url: expect.stringContaining('https://') });
    expect(m.contactName).toBe('Priya Sharma');
    expect(m.sentAt).toBe('2025-10-11T08:40:05.000Z');
  });

  it('normalizes audio voice notes, documents and animated stickers', () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          messages: [
            msg('wamid.A', 'audio', { audio: { id: 'm1', mime_type: 'audio/ogg; codecs=opus', voice: true } }),
            msg('wamid.D', 'document', {
              document: { id: 'm2', mime_type: 'application/pdf', filename: 'invoice.pdf', caption: 'Here it is' },
            }),
            msg('wamid.S', 'sticker', { sticker: { id: 'm3', mime_type: 'image/webp', animated: true } }),
            msg('wamid.V', 'video', { video: { id: 'm4', mime_type: 'video/mp4' } }),
          ],
        }),
      ),
    );
    const [audio, doc, sticker, video] = allMessages(r.changes);
    expect(audio).toMatchObject({ type: 'audio', text: '[voice note]', media: { id: 'm1', voice: true } });
    expect(doc).toMatchObject({
      type: 'document',
      text: '[document] invoice.pdf — Here it is',
      media: { id: 'm2', filename: 'invoice.pdf', caption: 'Here it is', mimeType: 'application/pdf' },
    });
    expect(sticker).toMatchObject({ type: 'sticker', media: { id: 'm3', animated: true } });
    expect(video).toMatchObject({ type: 'video', text: '[video]', media: { id: 'm4', mimeType: 'video/mp4' } });
    expect(r.ignored).toEqual([]);
  });

  it('normalizes a location', () => {
    const m = single(
      body({
        messages: [
          msg('wamid.L', 'location', {
            location: { latitude: 12.97, longitude: 77.59, name: 'Shop name', address: 'MG Road', url: 'https://x.y' },
          }),
        ],
      }),
    );
    expect(m.type).toBe('location');
    expect(m.text).toBe('[location] 12.97, 77.59 (Shop name, MG Road)');
    expect(m.details).toEqual({
      latitude: 12.97,
      longitude: 77.59,
      name: 'Shop name',
      address: 'MG Road',
      url: 'https://x.y',
    });
  });

  it('normalizes an interactive button_reply with its context id', () => {
    const fixture = fixtures.find((f) => f.name === 'wa_interactive_button_reply');
    const m = single(fixture?.body);
    expect(m.type).toBe('interactive');
    expect(m.text).toBe('[button] Yes, deliver (id: confirm_delivery)');
    expect(m.replyToProviderId).toBe('wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSRkJGQTgxMUJGMTBCNjRGMDA3AA==');
    expect(m.details).toEqual({ type: 'button_reply', button_reply: { id: 'confirm_delivery', title: 'Yes, deliver' } });
  });

  it('normalizes list_reply, nfm_reply and template quick-reply buttons', () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          messages: [
            msg('wamid.LR', 'interactive', {
              interactive: { type: 'list_reply', list_reply: { id: 'slot_2', title: 'Tue 10:00', description: 'Morning' } },
            }),
            msg('wamid.NFM', 'interactive', {
              interactive: {
                type: 'nfm_reply',
                nfm_reply: { name: 'flow', body: 'Sent', response_json: '{"size":"M"}' },
              },
            }),
            msg('wamid.BT', 'button', { button: { payload: 'BOOK', text: 'Yes, book it' } }),
          ],
        }),
      ),
    );
    const [list, nfm, button] = allMessages(r.changes);
    expect(list).toMatchObject({ type: 'interactive', text: '[list] Tue 10:00 — Morning (id: slot_2)' });
    expect(nfm?.type).toBe('interactive');
    expect(nfm?.text).toContain('{"size":"M"}');
    expect(button).toMatchObject({ type: 'button', text: '[button] Yes, book it (id: BOOK)', details: { payload: 'BOOK' } });
  });

  it('normalizes reactions, including a removed reaction', () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          messages: [
            msg('wamid.R1', 'reaction', { reaction: { message_id: 'wamid.OUT1', emoji: '👍' } }),
            msg('wamid.R2', 'reaction', { reaction: { message_id: 'wamid.OUT1', emoji: '' } }),
          ],
        }),
      ),
    );
    const [added, removed] = allMessages(r.changes);
    expect(added).toMatchObject({
      type: 'reaction',
      text: '[reaction 👍 to wamid.OUT1]',
      details: { message_id: 'wamid.OUT1', emoji: '👍' },
    });
    expect(removed).toMatchObject({ type: 'reaction', text: '[reaction removed from wamid.OUT1]' });
  });

  it('normalizes contacts, order, system and request_welcome', () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          messages: [
            msg('wamid.C', 'contacts', {
              contacts: [{ name: { formatted_name: 'Jane Doe', first_name: 'Jane' }, phones: [{ phone: '+1 555 0100', wa_id: '15550100' }] }],
            }),
            msg('wamid.O', 'order', {
              order: {
                catalog_id: 'cat1',
                text: 'Gift wrap please',
                product_items: [{ product_retailer_id: 'SKU1', quantity: 2, item_price: 10.5, currency: 'INR' }],
              },
            }),
            msg('wamid.SYS', 'system', {
              system: { body: 'User A changed from 1 to 2', wa_id: '2', type: 'user_changed_number' },
            }),
            msg('wamid.RW', 'request_welcome', {}),
          ],
        }),
      ),
    );
    const [contacts, order, system, welcome] = allMessages(r.changes);
    expect(contacts).toMatchObject({ type: 'contacts', text: '[contacts] Jane Doe (+1 555 0100)' });
    expect(contacts?.details?.['contacts']).toHaveLength(1);
    expect(order).toMatchObject({ type: 'order', details: { catalog_id: 'cat1' } });
    expect(order?.text).toContain('2 × SKU1');
    expect(system).toMatchObject({ type: 'system', text: '[system] User A changed from 1 to 2', details: { wa_id: '2' } });
    expect(welcome).toMatchObject({ type: 'request_welcome' });
    expect(r.ignored).toEqual([]);
  });

  it('turns an unknown future type into unsupported, keeping its fields', () => {
    const m = single(
      body({ messages: [msg('wamid.P', 'poll_vote', { poll_vote: { poll_id: 'p1', options: ['a'] } })] }),
    );
    expect(m.type).toBe('unsupported');
    expect(m.text).toContain('poll_vote');
    expect(m.details).toEqual({ originalType: 'poll_vote', poll_vote: { poll_id: 'p1', options: ['a'] } });
  });

  it("keeps Meta's unsupported messages with their errors", () => {
    const errors = [
      { code: 131051, title: 'Message type unknown', message: 'Message type unknown', error_data: { details: 'x' } },
    ];
    const m = single(body({ messages: [msg('wamid.U', 'unsupported', { errors, unsupported: { type: 'poll_update' } })] }));
    expect(m.type).toBe('unsupported');
    expect(m.text).toBe('[unsupported: poll_update] Message type unknown');
    expect(m.details).toEqual({ originalType: 'poll_update', errors, unsupported: { type: 'poll_update' } });
  });

  it("picks contactName by wa_id, never another contact's name", () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          contacts: [
            { profile: { name: 'Priya Sharma' }, wa_id: FROM },
            { profile: { name: 'Oliver Grant' }, wa_id: '447700900123' },
          ],
          messages: [
            { ...msg('wamid.X1', 'text', { text: { body: 'a' } }), from: '447700900123' },
            { ...msg('wamid.X2', 'text', { text: { body: 'b' } }), from: '000' },
          ],
        }),
      ),
    );
    const [a, b] = allMessages(r.changes);
    expect(a).toMatchObject({ contactId: '447700900123', contactName: 'Oliver Grant' });
    expect(b).toMatchObject({ contactId: '000' });
    // Priya is FROM, not 000: her name (and forms) must not be given to another person
    expect(b!.contactName).toBeUndefined();
  });
});

describe('parseWhatsAppWebhook: broken items never fail the batch', () => {
  it('keeps the valid messages and reports the broken one with its path', () => {
    const { id: _dropped, ...noId } = msg('wamid.B2', 'text', { text: { body: 'no id' } });
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          messages: [
            msg('wamid.B1', 'text', { text: { body: 'first' } }),
            noId,
            msg('wamid.B3', 'text', { text: { body: 'third' } }),
          ],
        }),
      ),
    );
    expect(allMessages(r.changes).map((m) => m.providerMessageId)).toEqual(['wamid.B1', 'wamid.B3']);
    expect(r.ignored).toEqual([{ path: 'entry[0].changes[0].value.messages[1]', reason: 'id is required' }]);
  });

  it('reports bad timestamps, missing type payloads and non-object items', () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          messages: [
            msg('wamid.K1', 'text', { text: { body: 'ok' } }),
            { ...msg('wamid.K2', 'text', { text: { body: 'x' } }), timestamp: 'yesterday' },
            msg('wamid.K3', 'image', {}),
            null,
            'junk',
          ],
        }),
      ),
    );
    expect(allMessages(r.changes)).toHaveLength(1);
    expect(r.ignored.map((i) => i.path)).toEqual([
      'entry[0].changes[0].value.messages[1]',
      'entry[0].changes[0].value.messages[2]',
      'entry[0].changes[0].value.messages[3]',
      'entry[0].changes[0].value.messages[4]',
    ]);
    expect(r.ignored[0]?.reason).toContain('timestamp');
    expect(r.ignored[1]?.reason).toBe('image is required');
    expect(r.ignored[2]?.reason).toContain('must be an object');
  });

  it('ignores non-messages fields and broken changes but keeps sibling changes', () => {
    const b = body({ messages: [msg('wamid.F1', 'text', { text: { body: 'hi' } })] });
    const entry = (b['entry'] as { changes: unknown[] }[])[0]!;
    entry.changes.push({ field: 'account_update', value: { event: 'VERIFIED_ACCOUNT' } });
    entry.changes.push({ field: 'messages', value: { metadata: {} } });
    entry.changes.push(42);
    const r = okResult(parseWhatsAppWebhook(b));
    expect(allMessages(r.changes)).toHaveLength(1);
    expect(r.ignored).toEqual([
      { path: 'entry[0].changes[1]', reason: expect.stringContaining('account_update') },
      { path: 'entry[0].changes[2].value', reason: 'metadata.phone_number_id is required' },
      { path: 'entry[0].changes[3]', reason: expect.stringContaining('must be an object') },
    ]);
  });

  it('keeps a message id once per body, across changes', () => {
    const b = body({ messages: [msg('wamid.DUP', 'text', { text: { body: 'one' } })] });
    const entry = (b['entry'] as { changes: unknown[] }[])[0]!;
    entry.changes.push(structuredClone(entry.changes[0]));
    const r = okResult(parseWhatsAppWebhook(b));
    expect(allMessages(r.changes)).toHaveLength(1);
    expect(r.ignored).toEqual([
      { path: 'entry[0].changes[1].value.messages[0]', reason: 'duplicate message id in body' },
    ]);
  });
});

describe('parseWhatsAppWebhook: statuses', () => {
  it('parses failed statuses with numeric error codes', () => {
    const fixture = fixtures.find((f) => f.name === 'wa_status_failed_131047_reengagement');
    const r = okResult(parseWhatsAppWebhook(fixture?.body));
    const [status] = allStatuses(r.changes);
    expect(status).toEqual({
      providerMessageId: 'wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkM4QjQ3QkMxRkMxN0EyNzI1MgA=',
      status: 'failed',
      recipientId: '5511987654321',
      recipient: { phone: '5511987654321' },
      timestamp: '2025-10-11T08:42:30.000Z',
      errors: [
        {
          code: 131047,
          title: 'Re-engagement message',
          message: 'Re-engagement message',
          details:
            'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
        },
      ],
    });
  });

  it('keeps conversation/pricing in details, callback data, unknown statuses and numeric-string codes', () => {
    const r = okResult(
      parseWhatsAppWebhook(
        body({
          statuses: [
            {
              id: 'wamid.S1',
              status: 'sent',
              timestamp: '1760172100',
              recipient_id: FROM,
              biz_opaque_callback_data: 'lead:42',
              conversation: { id: 'c1', origin: { type: 'service' } },
              pricing: { billable: true, category: 'service' },
            },
            { id: 'wamid.S2', status: 'held_for_quality_assessment', timestamp: '1760172101', recipient_id: FROM },
            { id: 'wamid.S3', status: 'failed', timestamp: '1760172102', recipient_id: FROM, errors: [{ code: '131026', title: 'Undeliverable' }] },
            { status: 'read', timestamp: '1760172103', recipient_id: FROM },
          ],
        }),
      ),
    );
    const [s1, s2, s3] = allStatuses(r.changes);
    expect(allStatuses(r.changes)).toHaveLength(3);
    expect(s1).toMatchObject({
      bizOpaqueCallbackData: 'lead:42',
      errors: [],
      details: { conversation: { id: 'c1', origin: { type: 'service' } }, pricing: { billable: true, category: 'service' } },
    });
    expect(s2?.status).toBe('held_for_quality_assessment');
    expect(s3?.errors).toEqual([{ code: 131026, title: 'Undeliverable' }]);
    expect(r.ignored).toEqual([{ path: 'entry[0].changes[0].value.statuses[3]', reason: 'id is required' }]);
  });
});

describe('parseWhatsAppWebhook: junk', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['array', []],
    ['string', 'string'],
    ['number', 42],
    ['empty object', {}],
    ['empty entry', { object: 'whatsapp_business_account', entry: [] }],
    ['entry not array', { object: 'whatsapp_business_account', entry: 'x' }],
    ['entry without changes', { object: 'whatsapp_business_account', entry: [{ id: '1' }] }],
    ['changes not array', { object: 'whatsapp_business_account', entry: [{ id: '1', changes: {} }] }],
    ['entry item null', { object: 'whatsapp_business_account', entry: [null] }],
  ])('%s → ok:false without throwing', (_name, input) => {
    let result: WebhookParseResult | undefined;
    expect(() => {
      result = parseWhatsAppWebhook(input);
    }).not.toThrow();
    expect(result?.ok).toBe(false);
    if (result && !result.ok) {
      expect(result.reason).toMatch(/\S/);
      expect(result.issues.length).toBeGreaterThan(0);
    }
  });

  it('explains what is wrong', () => {
    expect(parseWhatsAppWebhook(null)).toMatchObject({ ok: false, reason: 'body must be a JSON object, got null' });
    expect(parseWhatsAppWebhook({ object: 'whatsapp_business_account', entry: [{ id: '1' }] })).toMatchObject({
      ok: false,
      reason: 'entry[0].changes is required',
      issues: [{ path: 'entry[0].changes', message: 'entry[0].changes is required' }],
    });
  });

  it('accepts an envelope whose entry has an empty changes array', () => {
    expect(parseWhatsAppWebhook({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [] }] })).toEqual({
      ok: true,
      changes: [],
      templateChanges: [],
      ignored: [],
      adjusted: [],
    });
  });
});
