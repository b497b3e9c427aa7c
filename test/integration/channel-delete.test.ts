/**
 * DELETE /v1/channels/:id on the whole stack: the channel is gone from the tenant API and from
 * live traffic at once (webhooks acknowledged and dropped, no lead, no workflow; its secrets
 * wiped), its running leads' workflows end and the leads are closed in the background (a
 * `channel_deleted` event, held credits given back), nothing is lost from the database, and its
 * number can be connected again by a new channel.
 */
import { FailureType } from '../../contract/failures';
import { randomBytes, randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createChannelDeleteActivities } from '../../activities/ops/channel-delete';
import { activityDepsFrom } from '../../composition/worker';
import { and, eq } from 'drizzle-orm';
import { channelAccounts, creditReservations, deadLetters, leads, messages, tenants } from '../../db/schema';
import { closeChannelLeadsWorkflowId } from '../../workflows/channel-delete';
import request from 'supertest';
import { createApp } from '../../api/app';
import { bearer, createTenant, postWebhook, randomWaId, stackPerFile, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});
afterEach(() => {
  stack.llm.setDelay(0);
});

const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

async function leadOf(t: TenantFixture, contactId: string) {
  const db = stack.core.database.db;
  return waitFor(async () => (await db.select().from(leads).where(and(eq(leads.tenantId, t.tenantId), eq(leads.contactId, contactId))))[0], { what: `lead ${contactId}` });
}

async function workflowStatus(workflowId: string): Promise<string> {
  return (await stack.temporal.client.workflow.getHandle(workflowId).describe()).status.name;
}

async function balanceOf(tenantId: string): Promise<number> {
  const [t] = await stack.core.database.db.select({ b: tenants.creditBalance }).from(tenants).where(eq(tenants.id, tenantId));
  return t!.b;
}

describe('DELETE /v1/channels/:id', () => {
  test('a running lead: its workflow ends, the lead is closed with an event, its messages stay readable; the channel is gone from the API', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, what do you sell?')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'the first reply' });
    const lead = await leadOf(t, from);
    expect(await workflowStatus(lead.workflowId)).toBe('RUNNING');

    const del = await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    expect(del.body).toEqual({ id: t.channelId, deleted: true, leadsClosed: 1, closeWorkflowId: closeChannelLeadsWorkflowId(t.channelId) });

    // the background close: the workflow ended, the lead closed, one event
    const closed = await stack.temporal.client.workflow.getHandle(del.body.closeWorkflowId).result();
    expect(closed).toMatchObject({ leadsClosed: 1, workflowsEnded: 1 });
    expect(await workflowStatus(lead.workflowId)).toBe('TERMINATED');
    const detail = await stack.api.get(`/v1/leads/${lead.id}`).set(bearer(t.apiKey)).expect(200);
    expect(detail.body.mode).toBe('closed');
    const events = (detail.body.events as { type: string; data: Record<string, unknown> }[]).filter((e) => e.type === 'channel_deleted');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ channelAccountId: t.channelId, modeBefore: 'ai' });

    // nothing lost: the transcript, the tenant-wide message list, the events page
    const transcript = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(bearer(t.apiKey)).expect(200);
    const bodies = (transcript.body.items as { body: string; direction: string }[]).map((m) => m.direction);
    expect(bodies).toEqual(expect.arrayContaining(['inbound', 'outbound']));
    const all = await stack.api.get('/v1/messages?limit=50').set(bearer(t.apiKey)).expect(200);
    expect((all.body.items as { body: string }[]).map((m) => m.body)).toContain('Hi, what do you sell?');
    const page = await stack.api.get(`/v1/leads/${lead.id}/events?limit=200`).set(bearer(t.apiKey)).expect(200);
    expect((page.body.items as { type: string }[]).some((e) => e.type === 'channel_deleted')).toBe(true);
    expect((await stack.api.get(`/v1/leads?channelId=${t.channelId}`).set(bearer(t.apiKey)).expect(200)).body.items).toHaveLength(1);
    // the conversation is over: a manual message or a handoff finds no running workflow
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(bearer(t.apiKey)).send({ text: 'Still there?' }).expect(404);
    await stack.api.post(`/v1/leads/${lead.id}/handoff`).set(bearer(t.apiKey)).send({}).expect(404);

    // the channel: 404 on read, change and delete; not listed; secrets wiped in its row
    await stack.api.get(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(404);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).send({ markRead: false }).expect(404);
    await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(bearer(t.apiKey)).expect(404);
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(404);
    expect((await stack.api.get('/v1/channels').set(bearer(t.apiKey)).expect(200)).body.items).toEqual([]);
    const [row] = await stack.core.database.db.select().from(channelAccounts).where(eq(channelAccounts.id, t.channelId));
    expect(row!.deletedAt).not.toBeNull();
    expect(row!.appSecretEnc).toBeNull();
    const creds = await stack.core.services.channels.sendCredentials(t.channelId);
    expect(creds).toMatchObject({ deleted: true, accessToken: '' });

    // the audit log has the deletion, its answer and the channel as it was
    const audit = await stack.api.get('/v1/audit-log?limit=50').set(bearer(t.apiKey)).expect(200);
    const entry = (audit.body.items as { action: string; target: Record<string, string>; after: unknown; before: { id: string } }[]).find((i) => i.action === 'DELETE /v1/channels/:id');
    expect(entry).toMatchObject({ target: { id: t.channelId }, after: del.body, before: { id: t.channelId, platform: 'whatsapp' } });
    expect(JSON.stringify(audit.body)).not.toContain(t.accessToken);
  });

  test('a webhook for the deleted number is acknowledged and creates nothing; a run started on it ends without a lead', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const known = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, known, 'Hello')).expect(200);
    await waitFor(() => sentTo(known).length >= 1 || undefined, { what: 'the first reply' });
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    await stack.temporal.client.workflow.getHandle(closeChannelLeadsWorkflowId(t.channelId)).result();

    // the routing cache of this process forgot it: a new contact and a known one, both dropped
    const stranger = randomWaId();
    const lines = stack.logLines.length;
    const res = await postWebhook(stack, textWebhook(t.phoneNumberId, stranger, 'Anyone there?')).expect(200);
    expect(res.body).toMatchObject({ received: 0, unknownChannels: 1 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, known, 'Me again')).expect(200);
    expect(stack.logLines.slice(lines).some((l) => l.includes('unknown phone_number_id'))).toBe(true);
    await expect(stack.temporal.client.workflow.getHandle(stack.leadWorkflowId(t.channelId, stranger)).describe()).rejects.toThrow();
    expect(await workflowStatus(stack.leadWorkflowId(t.channelId, known))).toBe('TERMINATED');
    const db = stack.core.database.db;
    expect(await db.select().from(leads).where(eq(leads.channelAccountId, t.channelId))).toHaveLength(1);

    // what another API process with a stale cache would do: signal the deleted channel's workflow.
    // The run refuses to start a lead and completes.
    const late = randomWaId();
    const { workflowId } = await stack.temporal.signalInbound(
      { tenantId: t.tenantId, channelAccountId: t.channelId, channel: 'whatsapp', contactId: late },
      { providerMessageId: `wamid.${randomBytes(8).toString('hex')}`, channel: 'whatsapp', contactId: late, sentAt: new Date().toISOString(), type: 'text', text: 'Late hello' },
    );
    await stack.temporal.client.workflow.getHandle(workflowId).result();
    expect(await workflowStatus(workflowId)).toBe('COMPLETED');
    expect(await db.select().from(leads).where(eq(leads.channelAccountId, t.channelId))).toHaveLength(1);
    expect(sentTo(late)).toEqual([]);
    expect(sentTo(stranger)).toEqual([]);
  });

  test('the number can be connected again by a new channel (after the routing caches forgot the old one), which answers', async () => {
    const t = await createTenant(stack, { credits: 5 });
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    const connect = () =>
      stack.api
        .post('/v1/channels')
        .set(bearer(t.apiKey))
        .send({ platform: 'whatsapp', phoneNumberId: t.phoneNumberId, accessToken: `EAAG${randomBytes(16).toString('hex')}`, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId: t.agentId });
    // at once: refused, other API processes may still route the number to the deleted channel
    const early = await connect().expect(409);
    expect(early.body.error.code).toBe('channel_recently_deleted');
    expect(early.body.error.issues.retryAfterSeconds).toBeGreaterThan(30);
    expect(early.body.error.issues.retryAfterSeconds).toBeLessThanOrEqual(60);
    // a minute later (the deletion moved back in time rather than waiting)
    await stack.core.database.db.update(channelAccounts).set({ deletedAt: new Date(Date.now() - 61_000).toISOString() }).where(eq(channelAccounts.id, t.channelId));
    const again = await stack.api
      .post('/v1/channels')
      .set(bearer(t.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId: t.phoneNumberId, accessToken: `EAAG${randomBytes(16).toString('hex')}`, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
      .expect(201);
    expect(again.body.id).not.toBe(t.channelId);
    // and only once: the live channel holds the number
    await stack.api
      .post('/v1/channels')
      .set(bearer(t.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId: t.phoneNumberId, accessToken: `EAAG${randomBytes(16).toString('hex')}`, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
      .expect(409);
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello new channel')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'a reply on the new channel' });
    const lead = await leadOf(t, from);
    expect(lead.channelAccountId).toBe(again.body.id);
    expect((await stack.api.get('/v1/channels').set(bearer(t.apiKey)).expect(200)).body.items.map((c: { id: string }) => c.id)).toEqual([again.body.id]);
  });

  test('the close pages through many leads, and running it again changes nothing', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'the first reply' });
    const running = await leadOf(t, from);
    // four more leads without a running workflow (their conversations ended long ago)
    for (let i = 0; i < 4; i += 1) {
      const contactId = randomWaId();
      await stack.core.services.leads.ensure({ tenantId: t.tenantId, channelAccountId: t.channelId, channel: 'whatsapp', contactId, workflowId: stack.leadWorkflowId(t.channelId, contactId) });
    }
    // an open dead letter of the running lead: it can never be replayed once its workflow is gone
    const [parked] = await stack.core.database.db
      .insert(deadLetters)
      .values({ tenantId: t.tenantId, leadId: running.id, workflowId: running.workflowId, kind: 'send', operation: { test: true }, error: { code: 'test' } })
      .returning({ id: deadLetters.id });
    // deleted as the route does it, closed by the activity with pages of two
    const deleted = await stack.core.services.channels.delete(t.tenantId, t.channelId);
    expect(deleted?.openLeads).toBe(5);
    const { closeChannelLeads } = createChannelDeleteActivities({ channels: stack.core.services.channels, temporalClient: stack.temporal.client, log: stack.log });
    const env = () => new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    const input = { tenantId: t.tenantId, channelAccountId: t.channelId, pageSize: 2 };
    expect(await env().run(closeChannelLeads, input)).toEqual({ leadsClosed: 5, workflowsEnded: 1, creditsReleased: 0 });
    expect(await workflowStatus(running.workflowId)).toBe('TERMINATED');
    const db = stack.core.database.db;
    const rows = await db.select().from(leads).where(eq(leads.channelAccountId, t.channelId));
    expect(rows.map((l) => l.mode)).toEqual(['closed', 'closed', 'closed', 'closed', 'closed']);
    // an activity of the ended workflow still in flight cannot reopen a lead the close closed
    await stack.core.services.leads.updateState({ leadId: running.id, mode: 'ai', stage: 'Qualified' });
    expect((await db.select().from(leads).where(eq(leads.id, running.id)))[0]).toMatchObject({ mode: 'closed', stage: 'New' });
    const [dl] = await db.select().from(deadLetters).where(eq(deadLetters.id, parked!.id));
    expect(dl?.status).toBe('discarded');
    expect(dl?.resolvedAt).not.toBeNull();
    // again: only open leads are walked, so nothing to close, no second event, no workflow to end
    expect(await env().run(closeChannelLeads, input)).toEqual({ leadsClosed: 0, workflowsEnded: 0, creditsReleased: 0 });
    for (const l of rows) {
      const events = (await stack.api.get(`/v1/leads/${l.id}/events?limit=200`).set(bearer(t.apiKey)).expect(200)).body.items as { type: string }[];
      expect(events.filter((e) => e.type === 'channel_deleted')).toHaveLength(1);
    }
  });

  test('Temporal unreachable when the close should start: 503, and nothing changed (the channel still live, its lead open)', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'the first reply' });
    // the same app, on a Temporal client whose server does not answer (the failure is outside the product)
    const unreachable = { ...stack.temporal, startChannelLeadsClose: () => Promise.reject(new Error('14 UNAVAILABLE: connection refused')) };
    const app = createApp({ config: stack.config, log: stack.log, database: stack.core.database, services: stack.core.services, temporal: unreachable });
    const refused = await request(app).delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(503);
    expect(refused.body.error.message).toMatch(/nothing changed/);
    expect((await stack.api.get(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200)).body.id).toBe(t.channelId);
    expect((await leadOf(t, from)).mode).not.toBe('closed');
    expect(await stack.core.services.channels.isDeleted(t.channelId)).toBe(false);
  });

  test('a close that runs before the channel is marked deleted waits for the mark, and leaves a channel never marked alone', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'the first reply' });
    const { closeChannelLeads } = createChannelDeleteActivities({ channels: stack.core.services.channels, temporalClient: stack.temporal.client, log: stack.log });
    const input = { tenantId: t.tenantId, channelAccountId: t.channelId };
    const early = await new MockActivityEnvironment({ attempt: 1 }, { logger: new DefaultLogger('ERROR') }).run(closeChannelLeads, input).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(ApplicationFailure);
    expect((early as ApplicationFailure).type).toBe(FailureType.ChannelNotMarkedDeleted);
    expect((early as ApplicationFailure).nonRetryable).toBe(false);
    // the last attempt: the route never marked it (it failed after the start): nothing is closed
    expect(await new MockActivityEnvironment({ attempt: 5 }, { logger: new DefaultLogger('ERROR') }).run(closeChannelLeads, input)).toEqual({ leadsClosed: 0, workflowsEnded: 0, creditsReleased: 0 });
    const lead = await leadOf(t, from);
    expect(lead.mode).not.toBe('closed');
    expect(await workflowStatus(lead.workflowId)).toBe('RUNNING');
  });

  test('the agent of a deleted channel can be deleted; the channel\'s leads stay readable', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'the first reply' });
    const lead = await leadOf(t, from);
    const inUse = await stack.api.delete(`/v1/agents/${t.agentId}`).set(bearer(t.apiKey)).expect(409);
    expect(JSON.stringify(inUse.body)).toContain(t.channelId);
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    await stack.api.delete(`/v1/agents/${t.agentId}`).set(bearer(t.apiKey)).expect(200);
    const [row] = await stack.core.database.db.select().from(channelAccounts).where(eq(channelAccounts.id, t.channelId));
    expect(row).toMatchObject({ agentId: null });
    expect(row!.deletedAt).not.toBeNull();
    await stack.api.get(`/v1/leads/${lead.id}`).set(bearer(t.apiKey)).expect(200);
    await stack.api.get(`/v1/leads/${lead.id}/messages`).set(bearer(t.apiKey)).expect(200);
  });

  test('a deleted web chat channel: its widget key answers 404 at once', async () => {
    const t = await createTenant(stack);
    const ch = await stack.api.post('/v1/channels').set(bearer(t.apiKey)).send({ platform: 'webchat', agentId: t.agentId }).expect(201);
    await stack.api.get(`/webchat/${ch.body.widgetKey}`).expect(200);
    await stack.api.post(`/webchat/${ch.body.widgetKey}/visitors`).send({}).expect(201);
    await stack.api.delete(`/v1/channels/${ch.body.id}`).set(bearer(t.apiKey)).expect(200);
    await stack.api.get(`/webchat/${ch.body.widgetKey}`).expect(404);
    await stack.api.post(`/webchat/${ch.body.widgetKey}/visitors`).send({}).expect(404);
  });

  test('another tenant gets 404; readonly and agent keys get 403; the channel stays', async () => {
    const t = await createTenant(stack);
    const other = await createTenant(stack);
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(other.apiKey)).expect(404);
    for (const role of ['readonly', 'agent'] as const) {
      const key = await stack.api.post('/v1/api-keys').set(bearer(t.apiKey)).send({ name: role, role }).expect(201);
      const refused = await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(key.body.key)).expect(403);
      expect(refused.body.error.code).toBe('forbidden');
    }
    await stack.api.get(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    const manager = await stack.api.post('/v1/api-keys').set(bearer(t.apiKey)).send({ name: 'manager', role: 'manager' }).expect(201);
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(manager.body.key)).expect(200);
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(manager.body.key)).expect(404);
    await stack.api.delete('/v1/channels/not-a-uuid').set(bearer(t.apiKey)).expect(400);
  });

  test('a reply in flight: its held credit reservation goes back to the tenant', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    stack.llm.setDelay(6_000); // the reply turn holds its reservation while the LLM writes
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Tell me everything')).expect(200);
    const workflowId = stack.leadWorkflowId(t.channelId, from);
    const db = stack.core.database.db;
    const held = await waitFor(
      async () => (await db.select().from(creditReservations).where(and(eq(creditReservations.workflowId, workflowId), eq(creditReservations.status, 'held'))))[0],
      { what: 'a held reservation' },
    );
    const before = await balanceOf(t.tenantId);
    const del = await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    const closed = await stack.temporal.client.workflow.getHandle(del.body.closeWorkflowId).result();
    expect(closed).toMatchObject({ leadsClosed: 1, workflowsEnded: 1, creditsReleased: held.amount });
    const [r] = await db.select().from(creditReservations).where(eq(creditReservations.reference, held.reference));
    expect(r!.status).toBe('released');
    expect(await balanceOf(t.tenantId)).toBe(before + held.amount);
    // the LLM's late answer sends nothing and charges nothing (the turn ended with its workflow)
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(sentTo(from)).toEqual([]);
    expect(await balanceOf(t.tenantId)).toBe(before + held.amount);
  });

  test('a send that still reaches the deleted channel is refused for good and recorded as failed, with no Graph API call', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    await waitFor(() => sentTo(from).length >= 1 || undefined, { what: 'the first reply' });
    const lead = await leadOf(t, from);
    await stack.api.delete(`/v1/channels/${t.channelId}`).set(bearer(t.apiKey)).expect(200);
    const calls = stack.graph.sentMessages().length;
    // the delivery activity as the worker registers it, with the stack's real services
    const activities = createActivities(activityDepsFrom(stack.config, stack.core.services, stack.log));
    const outboundMessageId = randomUUID();
    const input = { tenantId: t.tenantId, leadId: lead.id, channelAccountId: t.channelId, outboundMessageId, to: from, text: 'Are you still there?' };
    const err = await new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(activities.sendWhatsAppText, input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'channel_deleted', nonRetryable: true });
    const [row] = await stack.core.database.db.select().from(messages).where(eq(messages.id, outboundMessageId));
    expect(row).toMatchObject({ status: 'failed', error: { type: 'channel_deleted' } });
    expect(stack.graph.sentMessages()).toHaveLength(calls);
    expect(await stack.core.services.channels.sendCredentials(t.channelId)).toMatchObject({ deleted: true, accessToken: '' });
  });
});
