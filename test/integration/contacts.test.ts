/**
 * Data rights on the whole stack: a contact's export across the tenant's channels, and its
 * erasure (rows gone, workflows ended, the audit entry without the contact's number), leaving
 * other contacts and other tenants untouched.
 */
import { randomBytes } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import { llmCalls, leads, messages } from '../../db/schema';
import { createTenant, postWebhook, randomPhoneNumberId, randomWaId, bearer, stackPerFile, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});

const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

/** A second WhatsApp channel of the tenant, on the same agent. */
async function secondChannel(t: TenantFixture): Promise<string> {
  const phoneNumberId = randomPhoneNumberId();
  await stack.api
    .post('/v1/channels')
    .set(bearer(t.apiKey))
    .send({ platform: 'whatsapp', phoneNumberId, accessToken: `EAAG${randomBytes(16).toString('hex')}`, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
    .expect(201);
  return phoneNumberId;
}

async function answered(phoneNumberId: string, from: string, text: string, replies: number) {
  await postWebhook(stack, textWebhook(phoneNumberId, from, text)).expect(200);
  await waitFor(() => sentTo(from).length >= replies || undefined, { what: `reply ${replies} to ${from}` });
}

describe('data rights: a contact across the tenant\'s channels', () => {
  test('export has every lead, message, extraction and event of the contact, nobody else\'s; erase removes them and ends the workflows', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const other = await createTenant(stack, { credits: 5 });
    const second = await secondChannel(t);
    const person = randomWaId();
    const bystander = randomWaId();
    await answered(t.phoneNumberId, person, 'Hi, I want a quote', 1);
    await answered(second, person, 'Also asking here', 2);
    await answered(t.phoneNumberId, bystander, 'I am someone else', 1);
    await answered(other.phoneNumberId, person, 'Same person, other business', 3);

    const exported = await stack.api.get(`/v1/contacts/${person}/export`).set(bearer(t.apiKey)).expect(200);
    expect(exported.headers['content-disposition']).toMatch(/attachment/);
    expect(exported.body.contactId).toBe(person);
    expect(exported.body.leads).toHaveLength(2);
    const texts = (exported.body.leads as { messages: { body: string; direction: string }[] }[]).flatMap((l) => l.messages.map((m) => m.body));
    expect(texts).toEqual(expect.arrayContaining(['Hi, I want a quote', 'Also asking here']));
    expect(texts).not.toContain('I am someone else');
    expect(texts).not.toContain('Same person, other business');
    for (const l of exported.body.leads as { lead: { contactId: string }; messages: { direction: string }[]; events: unknown[]; extractions: unknown[]; messagesOmitted: number }[]) {
      expect(l.lead.contactId).toBe(person);
      expect(l.messages.map((m) => m.direction)).toEqual(expect.arrayContaining(['inbound', 'outbound']));
      expect(Array.isArray(l.events) && Array.isArray(l.extractions)).toBe(true);
      expect(l.messagesOmitted).toBe(0);
    }
    await stack.api.get(`/v1/contacts/${randomWaId()}/export`).set(bearer(t.apiKey)).expect(404);
    // the other tenant's export of the same person has only its own lead
    const theirs = await stack.api.get(`/v1/contacts/${person}/export`).set(bearer(other.apiKey)).expect(200);
    expect(theirs.body.leads).toHaveLength(1);

    const db = stack.core.database.db;
    const before = await db.select().from(leads).where(eq(leads.tenantId, t.tenantId));
    const personLeads = before.filter((l) => l.contactId === person);
    expect(personLeads).toHaveLength(2);
    // an agent's manual message to the person: its text is in the audit entry until the erasure
    await stack.api.post(`/v1/leads/${personLeads[0]!.id}/messages`).set(bearer(t.apiKey)).send({ text: 'Your order goes to 12 Lotus Lane' }).expect(201);
    expect(JSON.stringify((await stack.api.get('/v1/audit-log?limit=50').set(bearer(t.apiKey)).expect(200)).body)).toContain('Lotus Lane');
    const erased = await stack.api.delete(`/v1/contacts/${person}`).set(bearer(t.apiKey)).expect(200);
    expect(erased.body).toMatchObject({ erased: { leads: 2 }, workflowsEnded: 2 });
    expect(erased.body.erased.messages).toBeGreaterThanOrEqual(4);

    // rows gone; workflows ended with the reason in their history; the LLM cost rows stay without the lead
    expect(await db.select().from(leads).where(inArray(leads.id, personLeads.map((l) => l.id)))).toEqual([]);
    expect(await db.select().from(messages).where(inArray(messages.leadId, personLeads.map((l) => l.id)))).toEqual([]);
    for (const l of personLeads) {
      const d = await stack.temporal.client.workflow.getHandle(l.workflowId).describe();
      expect(d.status.name).toBe('TERMINATED');
    }
    const costs = await db.select().from(llmCalls).where(eq(llmCalls.tenantId, t.tenantId));
    expect(costs.length).toBeGreaterThanOrEqual(3);
    expect(costs.filter((c) => c.leadId === null).length).toBeGreaterThanOrEqual(2);

    // others untouched
    const left = await stack.api.get('/v1/leads?limit=200').set(bearer(t.apiKey)).expect(200);
    expect((left.body.items as { contactId: string }[]).map((l) => l.contactId)).toEqual([bystander]);
    const theirsAfter = await stack.api.get(`/v1/contacts/${person}/export`).set(bearer(other.apiKey)).expect(200);
    expect(theirsAfter.body.leads).toHaveLength(1);

    // nothing else names the person: no pacing bucket, no reservation naming its workflow
    const { creditReservations, rateBuckets } = await import('../../db/schema');
    const { like } = await import('drizzle-orm');
    const buckets = await db.select().from(rateBuckets).where(like(rateBuckets.key, `%${person}%`));
    expect(buckets.length).toBeGreaterThan(0); // the other tenant's pacing of the same number stays
    expect(buckets.filter((b) => !b.key.startsWith(`pair:${other.channelId}:`))).toEqual([]);
    const named = await db.select().from(creditReservations).where(inArray(creditReservations.workflowId, personLeads.map((l) => l.workflowId)));
    expect(named).toEqual([]);
    // the audit log has the erasure, never the number
    const audit = await stack.api.get('/v1/audit-log?limit=50').set(bearer(t.apiKey)).expect(200);
    const entry = (audit.body.items as { action: string; target: Record<string, string> }[]).find((i) => i.action === 'DELETE /v1/contacts/:contactId');
    expect(entry).toMatchObject({ target: { contactId: '[erased]' } });
    expect(JSON.stringify(audit.body)).not.toContain(person);
    expect(JSON.stringify(audit.body)).not.toContain('Lotus Lane');
    expect(audit.body.items).toEqual(expect.arrayContaining([expect.objectContaining({ action: 'POST /v1/leads/:leadId/messages', target: { leadId: '[erased]' }, request: null })]));

    // again → 404; the person writes again → a new lead, answered
    await stack.api.delete(`/v1/contacts/${person}`).set(bearer(t.apiKey)).expect(404);
    await answered(t.phoneNumberId, person, 'Hello again, fresh start', 5);
    const fresh = await stack.api.get(`/v1/contacts/${person}/export`).set(bearer(t.apiKey)).expect(200);
    expect(fresh.body.leads).toHaveLength(1);
    expect((fresh.body.leads[0].messages as { body: string }[]).map((m) => m.body)).not.toContain('Hi, I want a quote');
  });
});
