/**
 * The WhatsApp parser on Meta's business-scoped user id (BSUID) shapes: phone + BSUID, BSUID
 * only (username, no phone number), parent BSUIDs, statuses to a BSUID recipient, and the
 * identity-change system messages (user_changed_user_id, user_changed_number).
 */
import fs from 'fs';
import path from 'path';
import { parseWhatsAppWebhook, type WebhookParseResult } from '../../api/webhooks/whatsapp-payload';

const fixtures = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/whatsapp-bsuid-webhooks.json'), 'utf8')) as { name: string; body: unknown }[];
const fixture = (name: string) => {
  const f = fixtures.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return structuredClone(f.body) as Record<string, unknown>;
};
function ok(r: WebhookParseResult): Extract<WebhookParseResult, { ok: true }> {
  if (!r.ok) throw new Error(r.reason);
  return r;
}
const BSUID = 'US.13491208655302741918';
const NEW_BSUID = 'US.20958472619384756102';

describe('parseWhatsAppWebhook: business-scoped user ids', () => {
  it('keeps phone number and BSUID of a message that carries both; the phone stays the contact id', () => {
    const r = ok(parseWhatsAppWebhook(fixture('wa_bsuid_phone_and_bsuid')));
    expect(r.ignored).toEqual([]);
    const [m] = r.changes[0]!.messages;
    expect(m).toMatchObject({ contactId: '16505551234', contactName: 'Sheena Nelson', identity: { phone: '16505551234', bsuid: BSUID }, text: 'Does it come in another colour?' });
  });

  it('accepts a message with no phone number at all (BSUID only) and keeps the username', () => {
    const r = ok(parseWhatsAppWebhook(fixture('wa_bsuid_only_username')));
    expect(r.ignored).toEqual([]);
    const [m] = r.changes[0]!.messages;
    expect(m).toMatchObject({ contactId: BSUID, contactName: 'Sheena Nelson', identity: { bsuid: BSUID, username: '@realsheenanelson' }, text: 'Hi, I saw your ad' });
    expect(m!.identity!.phone).toBeUndefined();
  });

  it('names a contact by its username when the profile has no name', () => {
    const body = fixture('wa_bsuid_only_username');
    const value = ((body.entry as { changes: { value: Record<string, unknown> }[] }[])[0]!.changes[0]!.value);
    delete (value.contacts as { profile: Record<string, unknown> }[])[0]!.profile.name;
    const [m] = ok(parseWhatsAppWebhook(body)).changes[0]!.messages;
    expect(m!.contactName).toBe('@realsheenanelson');
  });

  it('keeps a parent BSUID', () => {
    const [m] = ok(parseWhatsAppWebhook(fixture('wa_bsuid_parent_username'))).changes[0]!.messages;
    expect(m!.identity).toEqual({ bsuid: BSUID, parentBsuid: 'US.ENT.11815799212886844830', username: '@realsheenanelson' });
    expect(m!.contactId).toBe(BSUID);
  });

  it('still drops a message with neither from nor from_user_id, and one whose only id is not a BSUID', () => {
    const body = fixture('wa_bsuid_only_username');
    const value = ((body.entry as { changes: { value: Record<string, unknown> }[] }[])[0]!.changes[0]!.value);
    const base = (value.messages as Record<string, unknown>[])[0]!;
    const { from_user_id: _drop, ...noId } = base;
    value.messages = [noId, { ...base, id: 'wamid.X2', from_user_id: 'not a bsuid' }, { ...base, id: 'wamid.X3' }];
    const r = ok(parseWhatsAppWebhook(body));
    expect(r.changes[0]!.messages.map((m) => m.providerMessageId)).toEqual(['wamid.X3']);
    expect(r.ignored).toHaveLength(2);
    expect(r.ignored[0]!.reason).toMatch(/from or from_user_id is required/);
  });

  it('parses a status sent to a BSUID recipient (no recipient_id)', () => {
    const r = ok(parseWhatsAppWebhook(fixture('wa_status_delivered_bsuid_recipient')));
    expect(r.ignored).toEqual([]);
    const [s] = r.changes[0]!.statuses;
    expect(s).toMatchObject({
      status: 'delivered',
      recipientId: BSUID,
      recipient: { bsuid: BSUID, username: '@realsheenanelson' },
      bizOpaqueCallbackData: '8f14e45f-ceea-467a-9f34-5d3a5c0c1e01',
    });
    expect(s!.details).not.toHaveProperty('recipient_user_id');
  });

  it('parses a failed status to a BSUID recipient without contacts', () => {
    const [s] = ok(parseWhatsAppWebhook(fixture('wa_status_failed_bsuid_recipient'))).changes[0]!.statuses;
    expect(s).toMatchObject({ status: 'failed', recipientId: BSUID, recipient: { bsuid: BSUID }, errors: [{ code: 131026 }] });
  });

  it('drops a status with neither recipient_id nor recipient_user_id', () => {
    const body = fixture('wa_status_failed_bsuid_recipient');
    const value = ((body.entry as { changes: { value: Record<string, unknown> }[] }[])[0]!.changes[0]!.value);
    delete (value.statuses as Record<string, unknown>[])[0]!.recipient_user_id;
    const r = ok(parseWhatsAppWebhook(body));
    expect(r.changes[0]!.statuses).toEqual([]);
    expect(r.ignored[0]!.reason).toMatch(/recipient_id or recipient_user_id is required/);
  });

  it('reads a user_changed_user_id system message as new BSUID + previous BSUID', () => {
    const [m] = ok(parseWhatsAppWebhook(fixture('wa_system_user_changed_user_id'))).changes[0]!.messages;
    expect(m).toMatchObject({ type: 'system', contactId: NEW_BSUID, identity: { bsuid: NEW_BSUID, previous: { bsuid: BSUID } } });
  });

  it('reads a user_changed_number system message as new phone and BSUID + previous phone and BSUID', () => {
    const [m] = ok(parseWhatsAppWebhook(fixture('wa_system_user_changed_number'))).changes[0]!.messages;
    expect(m).toMatchObject({
      type: 'system',
      contactId: '16505551234',
      identity: { phone: '12195555358', bsuid: NEW_BSUID, previous: { phone: '16505551234', bsuid: BSUID } },
    });
  });

  it('reads a user_changed_number system message of the older shape (no BSUIDs)', () => {
    const body = fixture('wa_system_user_changed_number');
    const value = ((body.entry as { changes: { value: Record<string, unknown> }[] }[])[0]!.changes[0]!.value);
    const sys = (value.messages as { system: Record<string, unknown> }[])[0]!.system;
    delete sys.user_id;
    delete sys.previous_user_id;
    const [m] = ok(parseWhatsAppWebhook(body)).changes[0]!.messages;
    expect(m!.identity).toEqual({ phone: '12195555358', previous: { phone: '16505551234' } });
  });
});

describe('parseWhatsAppWebhook: a contacts[] entry never links two people', () => {
  const value = (extra: Record<string, unknown>) => ({
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' }, ...extra } }] }],
  });

  it("a status to a phone number does not take the BSUID of the batch's only contact, who is someone else", () => {
    const r = ok(
      parseWhatsAppWebhook(
        value({
          contacts: [{ user_id: BSUID, profile: { name: 'Other person' } }],
          statuses: [
            { id: 'wamid.A', status: 'delivered', timestamp: '1760172000', recipient_id: '16505551234' },
            { id: 'wamid.B', status: 'delivered', timestamp: '1760172000', recipient_user_id: BSUID },
          ],
        }),
      ),
    );
    const [toPhone, toBsuid] = r.changes[0]!.statuses;
    expect(toPhone!.recipient).toEqual({ phone: '16505551234' });
    expect(toBsuid!.recipient).toMatchObject({ bsuid: BSUID });
  });

  it("a message does not take the only contact's forms when they contradict its own", () => {
    const r = ok(
      parseWhatsAppWebhook(
        value({
          contacts: [{ wa_id: '447700900123', user_id: NEW_BSUID, profile: { name: 'Other person' } }],
          messages: [{ from: '16505551234', id: 'wamid.C', timestamp: '1760172000', type: 'text', text: { body: 'hi' } }],
        }),
      ),
    );
    const [m] = r.changes[0]!.messages;
    expect(m!.identity).toEqual({ phone: '16505551234' });
    expect(m!.contactName).toBeUndefined();
  });

  it("a message still takes its sender's only contact when nothing contradicts (Meta's usual shape)", () => {
    const r = ok(
      parseWhatsAppWebhook(
        value({
          contacts: [{ user_id: BSUID, profile: { name: 'Sheena Nelson', username: '@realsheenanelson' } }],
          messages: [{ from: '16505551234', id: 'wamid.D', timestamp: '1760172000', type: 'text', text: { body: 'hi' } }],
        }),
      ),
    );
    expect(r.changes[0]!.messages[0]!.identity).toMatchObject({ phone: '16505551234', bsuid: BSUID, username: '@realsheenanelson' });
  });
});
