/**
 * WhatsApp users with usernames, end to end through the real webhook, Temporal, the database
 * and the fake Graph API: Meta's business-scoped user id (BSUID) shapes from
 * test/fixtures/whatsapp-bsuid-webhooks.json (phone + BSUID, BSUID only with a username,
 * parent BSUID, statuses to a BSUID recipient, identity changes).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { contactIdentities, leads, messages } from '../../db/schema';
import { randomBsuid, whatsAppIdentityChangeWebhook, whatsAppIdentityTextWebhook, whatsAppStatusWebhook } from '../../fakes/meta-webhooks';
import type { GraphRequestRecord } from '../../fakes/graph-api';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

const fixtures = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/whatsapp-bsuid-webhooks.json'), 'utf8')) as { name: string; body: unknown }[];
const FIXTURE_PHONE_NUMBER_ID = '106540352242922';
const FIXTURE_BSUID = 'US.13491208655302741918';
const FIXTURE_NEW_BSUID = 'US.20958472619384756102';
const FIXTURE_PARENT = 'US.ENT.11815799212886844830';
const FIXTURE_PHONE = '16505551234';

/** A documented fixture, re-addressed to this test's channel and made unique (identities, wamids, our ids). */
function fixtureFor(name: string, to: { phoneNumberId: string; bsuid?: string; newBsuid?: string; phone?: string; wamid?: string; ourId?: string }): unknown {
  const f = fixtures.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  let text = JSON.stringify(f.body)
    .split(FIXTURE_PHONE_NUMBER_ID).join(to.phoneNumberId)
    .split(FIXTURE_PARENT).join(`US.ENT.${randomBytes(8).readBigUInt64BE()}`)
    .split(FIXTURE_BSUID).join(to.bsuid ?? randomBsuid())
    .split(FIXTURE_NEW_BSUID).join(to.newBsuid ?? randomBsuid())
    .split(FIXTURE_PHONE).join(to.phone ?? randomWaId())
    .replace(/"now"/g, String(Math.floor(Date.now() / 1000)));
  text = text.replace(/"id":"wamid\.[^"]+"/g, () => `"id":"${to.wamid ?? `wamid.${randomBytes(12).toString('hex')}`}"`);
  if (to.ourId) text = text.replace(/"biz_opaque_callback_data":"[^"]+"/, `"biz_opaque_callback_data":"${to.ourId}"`);
  const body = JSON.parse(text) as { entry: { changes: { value: { messages?: { timestamp: string }[] } }[] }[] };
  // Meta's examples are dated; a real message is recent (the 24-hour window)
  for (const m of body.entry[0]!.changes[0]!.value.messages ?? []) m.timestamp = String(Math.floor(Date.now() / 1000));
  return body;
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const sendsOf = (t: TenantFixture): GraphRequestRecord[] => stack.graph.sentMessages().filter((r) => r.phoneNumberId === t.phoneNumberId);
const waitSends = (t: TenantFixture, n: number, what: string) => waitFor(() => (sendsOf(t).length >= n ? sendsOf(t) : undefined), { what, timeoutMs: 30_000 });

async function leadsOf(t: TenantFixture) {
  return stack.core.database.db.select().from(leads).where(eq(leads.channelAccountId, t.channelId));
}

async function leadApi(t: TenantFixture) {
  const r = await stack.api.get('/v1/leads').set('authorization', `Bearer ${t.apiKey}`).expect(200);
  return r.body.items as { id: string; contactId: string; phone: string | null; bsuid: string | null; username: string | null; workflowId: string }[];
}

describe('WhatsApp usernames (business-scoped user ids), end to end', () => {
  it('answers a BSUID-only user (no phone number) through `recipient`, keeps the username, and matches the status of the reply', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const bsuid = randomBsuid();
    await postWebhook(stack, fixtureFor('wa_bsuid_only_username', { phoneNumberId: t.phoneNumberId, bsuid })).expect(200);

    const [reply] = await waitSends(t, 1, 'the AI reply to a BSUID-only user');
    expect(reply!.recipientForm).toBe('recipient');
    expect(reply!.body).toMatchObject({ recipient: bsuid });
    expect(reply!.body).not.toHaveProperty('to');

    const [lead] = await waitFor(async () => {
      const items = await leadApi(t);
      return items[0]?.bsuid ? items : undefined;
    }, { what: 'the lead with its BSUID' });
    expect(lead).toMatchObject({ contactId: bsuid, bsuid, phone: null, username: '@realsheenanelson', workflowId: stack.leadWorkflowId(t.channelId, bsuid) });

    // Meta's delivered status for a send to a BSUID: recipient_user_id, no recipient_id
    const wamid = (reply!.response.body as { messages: { id: string }[] }).messages[0]!.id;
    const ourId = (reply!.body as { biz_opaque_callback_data: string }).biz_opaque_callback_data;
    await postWebhook(stack, fixtureFor('wa_status_delivered_bsuid_recipient', { phoneNumberId: t.phoneNumberId, bsuid, wamid, ourId })).expect(200);
    const out = await waitFor(async () => {
      const [m] = await stack.core.database.db.select().from(messages).where(eq(messages.id, ourId));
      return m?.status === 'delivered' ? m : undefined;
    }, { what: 'the delivered status applied' });
    expect(out.providerMessageId).toBe(wamid);

    // a failed status to a BSUID (no contacts[], no recipient_id) reaches the lead's workflow
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: wamid, status: 'failed', recipientUserId: bsuid, errors: [{ code: 131026, title: 'Message undeliverable' }] })).expect(200);
    await waitFor(async () => {
      const r = await stack.api.get(`/v1/leads/${lead!.id}`).set('authorization', `Bearer ${t.apiKey}`).expect(200);
      return (r.body.events as { type: string }[]).some((e) => e.type === 'delivery_failed');
    }, { what: 'delivery_failed event on the BSUID lead' });
  });

  it('manual messages and templates reach a BSUID-only lead through `recipient` too', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const bsuid = randomBsuid();
    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid, text: 'hi' })).expect(200);
    await waitSends(t, 1, 'AI reply');
    const lead = await waitFor(async () => (await leadApi(t))[0], { what: 'lead' });
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ text: 'Hi, Sam from sales here.' }).expect(201);
    await stack.api.post('/v1/templates').set(auth).send({ name: 'order_update', language: 'en_US', category: 'utility', body: 'Hi {{1}}, your order is on its way.', approved: true }).expect(201);
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ template: { name: 'order_update', language: 'en_US', variables: ['Sam'] } }).expect(201);
    const sends = await waitSends(t, 3, 'manual message and template');
    expect(sends.map((s) => [s.recipientForm, s.to, (s.body as { type: string }).type])).toEqual([
      ['recipient', bsuid, 'text'],
      ['recipient', bsuid, 'text'],
      ['recipient', bsuid, 'template'],
    ]);
  });

  it('phone + BSUID first, then BSUID only: one lead, one workflow', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const phone = randomWaId();
    const bsuid = randomBsuid();
    await postWebhook(stack, fixtureFor('wa_bsuid_phone_and_bsuid', { phoneNumberId: t.phoneNumberId, phone, bsuid })).expect(200);
    const [first] = await waitSends(t, 1, 'first reply');
    expect(first).toMatchObject({ to: phone, recipientForm: 'to' });

    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid, username: '@priya', text: 'and in blue?' })).expect(200);
    const sends = await waitSends(t, 2, 'second reply');
    // the lead's number is known: Meta recommends sending to it
    expect(sends[1]).toMatchObject({ to: phone, recipientForm: 'to' });
    const rows = await leadsOf(t);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ contactId: phone, phone, bsuid, username: '@priya', workflowId: stack.leadWorkflowId(t.channelId, phone) });
    const inbound = await stack.core.database.db.select().from(messages).where(and(eq(messages.leadId, rows[0]!.id), eq(messages.direction, 'inbound')));
    expect(inbound).toHaveLength(2);
  });

  it('BSUID only first, then phone + BSUID: the same lead and workflow, which learns the phone number', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const phone = randomWaId();
    const bsuid = randomBsuid();
    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid, username: '@sam', text: 'hi there' })).expect(200);
    const [first] = await waitSends(t, 1, 'first reply');
    expect(first).toMatchObject({ to: bsuid, recipientForm: 'recipient' });

    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, phone, bsuid, text: 'my number is visible now' })).expect(200);
    const sends = await waitSends(t, 2, 'second reply');
    expect(sends[1]).toMatchObject({ to: phone, recipientForm: 'to' });
    const rows = await leadsOf(t);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ contactId: bsuid, phone, bsuid, workflowId: stack.leadWorkflowId(t.channelId, bsuid) });
  });

  it('a parent BSUID user: both ids recorded for the lead', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const bsuid = randomBsuid();
    await postWebhook(stack, fixtureFor('wa_bsuid_parent_username', { phoneNumberId: t.phoneNumberId, bsuid })).expect(200);
    const [reply] = await waitSends(t, 1, 'reply');
    expect(reply).toMatchObject({ to: bsuid, recipientForm: 'recipient' });
    const forms = await stack.core.database.db.select().from(contactIdentities).where(eq(contactIdentities.channelAccountId, t.channelId));
    expect(forms.map((f) => f.kind).sort()).toEqual(['bsuid', 'parent_bsuid']);
    expect(new Set(forms.map((f) => f.contactId))).toEqual(new Set([bsuid]));
  });

  it('user_changed_user_id re-links the lead: the new BSUID reaches the same workflow and gets the replies', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const oldBsuid = randomBsuid();
    const newBsuid = randomBsuid();
    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid: oldBsuid, text: 'hello' })).expect(200);
    await waitSends(t, 1, 'first reply');

    await postWebhook(stack, fixtureFor('wa_system_user_changed_user_id', { phoneNumberId: t.phoneNumberId, bsuid: oldBsuid, newBsuid })).expect(200);
    await waitFor(async () => (await leadsOf(t))[0]?.bsuid === newBsuid, { what: 'the lead re-linked to the new BSUID' });
    const inboundCount = async () => {
      const rows = await leadsOf(t);
      if (rows.length !== 1) return 0;
      return (await stack.core.database.db.select().from(messages).where(and(eq(messages.leadId, rows[0]!.id), eq(messages.direction, 'inbound')))).length;
    };
    // Meta's notice is recorded, but the lead did not write it: no turn, no reply
    await waitFor(async () => (await inboundCount()) === 2, { what: 'the system notice recorded' });
    await new Promise((r) => setTimeout(r, 1500));
    const workflowId = stack.leadWorkflowId(t.channelId, oldBsuid);
    expect((await stack.temporal.leadState(workflowId))!.counters.turns).toBe(1);
    expect(sendsOf(t)).toHaveLength(1);

    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid: newBsuid, text: 'still me' })).expect(200);
    await waitFor(async () => (await inboundCount()) === 3, { what: 'three inbound messages on one lead' });
    const rows = await leadsOf(t);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ contactId: oldBsuid, bsuid: newBsuid, workflowId: stack.leadWorkflowId(t.channelId, oldBsuid) });
    await waitFor(() => sendsOf(t).some((s) => s.to === newBsuid), { what: 'a reply to the new BSUID' });
    expect(sendsOf(t).filter((s) => s.to === newBsuid).every((s) => s.recipientForm === 'recipient')).toBe(true);
  });

  it('user_changed_number keeps the lead: the new number and BSUID reach the same workflow, replies go to the new number', async () => {
    const t = await createTenant(stack, { credits: 6 });
    const oldPhone = randomWaId();
    const newPhone = randomWaId();
    const oldBsuid = randomBsuid();
    const newBsuid = randomBsuid();
    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, phone: oldPhone, bsuid: oldBsuid, text: 'hello' })).expect(200);
    await waitSends(t, 1, 'first reply');

    await postWebhook(stack, whatsAppIdentityChangeWebhook({ phoneNumberId: t.phoneNumberId, type: 'user_changed_number', previousPhone: oldPhone, newPhone, previousBsuid: oldBsuid, newBsuid })).expect(200);
    await waitFor(async () => (await leadsOf(t))[0]?.phone === newPhone, { what: 'the lead moved to the new number' });

    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid: newBsuid, text: 'new phone, same me' })).expect(200);
    await waitFor(() => sendsOf(t).some((s) => s.to === newPhone), { what: 'a reply to the new number' });
    const rows = await leadsOf(t);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ contactId: oldPhone, phone: newPhone, bsuid: newBsuid });
  });

  it('a status naming number and BSUID teaches the BSUID of a lead that only ever wrote with its number; a status never starts a contact', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const phone = randomWaId();
    const bsuid = randomBsuid();
    // a lead from before BSUIDs: phone number only
    await postWebhook(stack, textWebhook(t.phoneNumberId, phone, 'hello from the old days')).expect(200);
    const [reply] = await waitSends(t, 1, 'first reply');
    const wamid = (reply!.response.body as { messages: { id: string }[] }).messages[0]!.id;
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: wamid, status: 'delivered', recipientId: phone, recipientUserId: bsuid })).expect(200);
    // statuses about a stranger record nothing
    const strangerPhone = randomWaId();
    const strangerBsuid = randomBsuid();
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: `wamid.${randomBytes(8).toString('hex')}`, status: 'read', recipientId: strangerPhone, recipientUserId: strangerBsuid })).expect(200);

    await postWebhook(stack, whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid, username: '@hidden', text: 'I hid my number' })).expect(200);
    await waitSends(t, 2, 'second reply');
    const rows = await leadsOf(t);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ contactId: phone, bsuid, username: '@hidden' });
    const forms = await stack.core.database.db.select().from(contactIdentities).where(eq(contactIdentities.channelAccountId, t.channelId));
    expect(forms.map((f) => f.identity).sort()).toEqual([phone, bsuid].sort());
  });

  it('one body with phone + BSUID and then BSUID only for a never-seen user: one contact, and one workflow', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const phone = randomWaId();
    const bsuid = randomBsuid();
    const first = whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, phone, bsuid, text: 'two messages' });
    const second = whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid, text: 'in one body' });
    const value = first.entry[0]!.changes[0]!.value as { messages: unknown[] };
    value.messages.push(...(second.entry[0]!.changes[0]!.value as { messages: unknown[] }).messages);
    const res = await postWebhook(stack, first).expect(200);
    expect(res.body.received).toBe(2);
    await waitSends(t, 1, 'reply');
    await waitFor(async () => {
      const rows = await leadsOf(t);
      if (rows.length !== 1) return false;
      return (await stack.core.database.db.select().from(messages).where(and(eq(messages.leadId, rows[0]!.id), eq(messages.direction, 'inbound')))).length === 2;
    }, { what: 'both messages on one lead' });
    expect(await leadsOf(t)).toHaveLength(1);
  });

  it('answers 503 (Meta retries) when the identity map cannot be read, and accepts the redelivery', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const identities = stack.core.services.contactIdentities;
    const original = identities.resolve;
    identities.resolve = () => Promise.reject(new Error('connection terminated'));
    const body = whatsAppIdentityTextWebhook({ phoneNumberId: t.phoneNumberId, bsuid: randomBsuid(), text: 'are you there?' });
    try {
      await postWebhook(stack, body).expect(503);
    } finally {
      identities.resolve = original;
    }
    await postWebhook(stack, body).expect(200);
    await waitSends(t, 1, 'reply after the redelivery');
  });

  it('reads the identity map once per webhook body, and not at all when every form is cached', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const identities = stack.core.services.contactIdentities;
    const phone = randomWaId();
    const bsuid = randomBsuid();
    const q = { channelAccountId: t.channelId, forms: [{ identity: phone, kind: 'phone' as const }, { identity: bsuid, kind: 'bsuid' as const }], fallback: phone };
    const many = Array.from({ length: 50 }, (_, i) => ({ channelAccountId: t.channelId, forms: [{ identity: `${phone}${i}`, kind: 'phone' as const }], fallback: `${phone}${i}` }));
    const first = await identities.resolve([q, ...many]);
    expect(first.queries).toBe(1);
    expect(first.contactIds[0]).toBe(phone);
    const again = await identities.resolve([{ ...q, forms: [q.forms[1]!], fallback: bsuid }, ...many]);
    expect(again).toMatchObject({ queries: 0 });
    expect(again.contactIds[0]).toBe(phone);
  });
});
