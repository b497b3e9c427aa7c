/**
 * Delivery statuses are scoped to the channel account (and tenant) the status webhook came
 * for: a tenant that signs its own webhooks (its own app secret, its own phone_number_id)
 * cannot name another tenant's send by wamid or by our id in biz_opaque_callback_data, and
 * so cannot mark a pending send as sent (which would suppress it) or move a status.
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { messages } from '../../db/schema';
import { whatsAppStatusWebhook } from '../../fakes/meta-webhooks';
import { createTenant, postWebhook, randomWaId, startStack, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
let victim: TenantFixture;
let attacker: TenantFixture;
const ATTACKER_SECRET = `attacker-app-secret-${randomUUID()}`;

beforeAll(async () => {
  stack = await startStack();
  victim = await createTenant(stack);
  attacker = await createTenant(stack, { appSecret: ATTACKER_SECRET });
});
afterAll(async () => {
  await stack?.stop();
});

/** A lead of the victim with one pending send (no provider id yet) and one sent message. */
async function victimSends() {
  const { leads } = stack.core.services;
  const contactId = randomWaId();
  const lead = await leads.ensure({ tenantId: victim.tenantId, channelAccountId: victim.channelId, channel: 'whatsapp', contactId, workflowId: stack.leadWorkflowId(victim.channelId, contactId) });
  const pendingId = randomUUID();
  await leads.createOutbound({ id: pendingId, tenantId: victim.tenantId, leadId: lead.leadId, body: 'Your order ships tomorrow' });
  const sentId = randomUUID();
  const sentWamid = `wamid.victim-${randomUUID()}`;
  await leads.createOutbound({ id: sentId, tenantId: victim.tenantId, leadId: lead.leadId, body: 'Thanks!' });
  await leads.markOutboundSent({ id: sentId, leadId: lead.leadId, providerMessageId: sentWamid });
  return { contactId, pendingId, sentId, sentWamid };
}

async function row(id: string) {
  const [m] = await stack.core.database.db.select().from(messages).where(eq(messages.id, id));
  return m!;
}

describe('cross-tenant delivery statuses', () => {
  it("another tenant's signed status naming our pending send (biz_opaque_callback_data) leaves it pending", async () => {
    const v = await victimSends();
    const forged = whatsAppStatusWebhook({ phoneNumberId: attacker.phoneNumberId, id: `wamid.forged-${randomUUID()}`, status: 'sent', recipientId: v.contactId, bizOpaqueCallbackData: v.pendingId });
    await postWebhook(stack, forged, { secret: ATTACKER_SECRET }).expect(200);
    const m = await row(v.pendingId);
    expect(m.status).toBe('pending');
    expect(m.providerMessageId).toBeNull();
  });

  it("another tenant's signed status naming our wamid does not move its status", async () => {
    const v = await victimSends();
    const forged = whatsAppStatusWebhook({ phoneNumberId: attacker.phoneNumberId, id: v.sentWamid, status: 'failed', recipientId: v.contactId, errors: [{ code: 131026, title: 'Message undeliverable' }] });
    await postWebhook(stack, forged, { secret: ATTACKER_SECRET }).expect(200);
    const m = await row(v.sentId);
    expect(m.status).toBe('sent');
    expect(m.error).toBeNull();
  });

  it('the same statuses from the channel that sent them still apply', async () => {
    const v = await victimSends();
    const wamid = `wamid.real-${randomUUID()}`;
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: victim.phoneNumberId, id: wamid, status: 'sent', recipientId: v.contactId, bizOpaqueCallbackData: v.pendingId })).expect(200);
    expect(await row(v.pendingId)).toMatchObject({ status: 'sent', providerMessageId: wamid });
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: victim.phoneNumberId, id: v.sentWamid, status: 'read', recipientId: v.contactId })).expect(200);
    expect((await row(v.sentId)).status).toBe('read');
  });
});
