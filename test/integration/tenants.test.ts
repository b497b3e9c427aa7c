/**
 * The platform admin's view of tenants: list, read, rename, suspend and reactivate. A suspended
 * tenant's webhooks are still accepted and recorded, its bot sends nothing (an event says why),
 * and its API keys answer 403 until it is reactivated.
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { leadEvents, leads, messages } from '../../db/schema';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, bearer, stackPerFile, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

describe('tenants (platform admin)', () => {
  test('list pages every tenant; one tenant shows its balance, suspension and limits; a rename sticks', async () => {
    const a = await createTenant(stack, { credits: 7 });
    const b = await createTenant(stack);
    const one = await stack.api.get(`/v1/tenants/${a.tenantId}`).set(admin).expect(200);
    expect(one.body).toMatchObject({ id: a.tenantId, name: 'Acme Sales', suspended: false, suspendedAt: null, creditBalance: 7, creditsPerReply: 1, overrides: { apiRequestsPerMinute: null } });
    expect(one.body.apiRequestsPerMinute).toBeGreaterThan(0);

    const seen = new Set<string>();
    let cursor = '';
    for (let i = 0; i < 200; i++) {
      const page = await stack.api.get(`/v1/tenants?limit=2&cursor=${cursor}`).set(admin).expect(200);
      for (const t of page.body.items as { id: string }[]) seen.add(t.id);
      if (!page.body.nextCursor) break;
      cursor = page.body.nextCursor;
    }
    expect(seen.has(a.tenantId) && seen.has(b.tenantId)).toBe(true);

    const renamed = await stack.api.patch(`/v1/tenants/${a.tenantId}`).set(admin).send({ name: 'Acme Renamed' }).expect(200);
    expect(renamed.body).toMatchObject({ id: a.tenantId, name: 'Acme Renamed', suspended: false });
    await stack.api.patch(`/v1/tenants/${a.tenantId}`).set(admin).send({ name: '' }).expect(400);
    await stack.api.patch(`/v1/tenants/${a.tenantId}`).set(admin).send({ suspended: 'yes' }).expect(400);
    await stack.api.get(`/v1/tenants/${randomUUID()}`).set(admin).expect(404);
    await stack.api.get('/v1/tenants/not-a-uuid').set(admin).expect(404);
    await stack.api.patch(`/v1/tenants/${randomUUID()}`).set(admin).send({ suspended: true }).expect(404);
    // tenant keys cannot see other tenants (or themselves) through the admin routes
    await stack.api.get('/v1/tenants').set(bearer(a.apiKey)).expect(401);
    await stack.api.get(`/v1/tenants/${a.tenantId}`).set(bearer(a.apiKey)).expect(401);
  });

  test('suspended: webhooks recorded, no reply and an event instead, keys refused with 403; reactivated: all works again', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, first message')).expect(200);
    await waitFor(() => sentTo(from).length === 1 || undefined, { what: 'the first reply' });

    const suspended = await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ suspended: true }).expect(200);
    expect(suspended.body).toMatchObject({ suspended: true });
    expect(suspended.body.suspendedAt).not.toBeNull();
    const refused = await stack.api.get('/v1/leads').set(bearer(t.apiKey)).expect(403);
    expect(refused.body.error.code).toBe('tenant_suspended');

    const wamid = `wamid.${randomUUID()}`;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Are you there?', { id: wamid })).expect(200);
    const db = stack.core.database.db;
    const [lead] = await db.select().from(leads).where(and(eq(leads.tenantId, t.tenantId), eq(leads.contactId, from)));
    await waitFor(
      async () => {
        const rows = await db.select().from(leadEvents).where(and(eq(leadEvents.leadId, lead!.id), eq(leadEvents.type, 'tenant_suspended')));
        return rows.length > 0 || undefined;
      },
      { what: 'the tenant_suspended event' },
    );
    const [recorded] = await db.select().from(messages).where(eq(messages.providerMessageId, wamid));
    expect(recorded).toMatchObject({ direction: 'inbound', body: 'Are you there?' });
    expect(sentTo(from)).toHaveLength(1);
    // no credit was taken for the refused turn
    const credits = await db.select().from(messages).where(and(eq(messages.leadId, lead!.id), eq(messages.direction, 'outbound')));
    expect(credits).toHaveLength(1);

    const active = await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ suspended: false }).expect(200);
    expect(active.body).toMatchObject({ suspended: false, suspendedAt: null });
    await stack.api.get('/v1/leads').set(bearer(t.apiKey)).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello again')).expect(200);
    await waitFor(() => sentTo(from).length === 2 || undefined, { what: 'the reply after reactivation' });
    const balance = await stack.api.get('/v1/credits').set(bearer(t.apiKey)).expect(200);
    expect(balance.body.balance).toBe(8);
  });
});

describe('moving a channel to another agent', () => {
  test('the next reply is written with the new agent; another tenant\'s agent is refused; the audit log shows before and after', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const other = await createTenant(stack);
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'First question')).expect(200);
    await waitFor(() => sentTo(from).length === 1 || undefined, { what: 'the first reply' });
    const agent = await stack.api
      .post('/v1/agents')
      .set(bearer(t.apiKey))
      .send({ name: 'Support bot', systemPrompt: 'You are the SUPPORT-DESK assistant.', model: 'gpt-4o-mini' })
      .expect(201);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).send({ agentId: other.agentId }).expect(400);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(other.apiKey)).send({ agentId: other.agentId }).expect(404);
    const moved = await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).send({ agentId: agent.body.id }).expect(200);
    expect(moved.body.agentId).toBe(agent.body.id);

    const before = stack.llm.requests.length;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Second question')).expect(200);
    await waitFor(() => sentTo(from).length === 2 || undefined, { what: 'the second reply' });
    const prompts = stack.llm.requests.slice(before).map((r) => JSON.stringify(r.messages));
    expect(prompts.some((p) => p.includes('SUPPORT-DESK') && p.includes('Second question'))).toBe(true);

    const audit = await stack.api.get('/v1/audit-log?limit=5').set(bearer(t.apiKey)).expect(200);
    expect(audit.body.items[0]).toMatchObject({ action: 'PATCH /v1/channels/:id', before: { agentId: t.agentId }, after: { agentId: agent.body.id } });
    expect(JSON.stringify(audit.body)).not.toContain(t.accessToken);
  });
});

describe('disabling a channel', () => {
  test('disabled: inbound recorded, no AI reply (an event instead), a manual message waits; enabled: it goes out and the AI answers again', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello before')).expect(200);
    await waitFor(() => sentTo(from).length === 1 || undefined, { what: 'the first reply' });
    const off = await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).send({ enabled: false }).expect(200);
    expect(off.body.enabled).toBe(false);

    const wamid = `wamid.${randomUUID()}`;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Anyone there?', { id: wamid })).expect(200);
    const db = stack.core.database.db;
    const [lead] = await db.select().from(leads).where(and(eq(leads.tenantId, t.tenantId), eq(leads.contactId, from)));
    await waitFor(
      async () => (await db.select().from(leadEvents).where(and(eq(leadEvents.leadId, lead!.id), eq(leadEvents.type, 'channel_disabled')))).length > 0 || undefined,
      { what: 'the channel_disabled event' },
    );
    expect((await db.select().from(messages).where(eq(messages.providerMessageId, wamid)))[0]).toMatchObject({ body: 'Anyone there?' });
    const manual = await stack.api.post(`/v1/leads/${lead!.id}/messages`).set(bearer(t.apiKey)).send({ text: 'A person will call you today.' });
    expect(manual.status).toBe(202);
    expect(manual.body.status).toBe('queued');
    await new Promise((r) => setTimeout(r, 500));
    expect(sentTo(from)).toHaveLength(1);

    await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).send({ enabled: true }).expect(200);
    await waitFor(() => sentTo(from).some((m) => JSON.stringify(m.body).includes('A person will call you today.')) || undefined, { what: 'the waiting manual message' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Thanks, one more question')).expect(200);
    await waitFor(() => sentTo(from).length === 3 || undefined, { what: 'an AI reply after enabling' });
    // the refused turn took no credit: two AI replies and one manual message were charged
    const balance = await stack.api.get('/v1/credits').set(bearer(t.apiKey)).expect(200);
    expect(balance.body.balance).toBe(7);
  });
});
