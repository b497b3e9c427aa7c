/**
 * What a tenant can do to the shared platform or to others with its own API key: amplify the
 * circuit-close route into the shared Temporal server, open its own channel's breaker with a
 * template on a web chat, and point an enrollment rule at another tenant's channel.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { createWhatsAppActivities } from '../../activities/channels/whatsapp';
import { createLogger } from '../../lib/logger';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const authOf = (t: TenantFixture) => ({ authorization: `Bearer ${t.apiKey}` });
const sendsTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

async function circuitSignalsIn(workflowId: string): Promise<number> {
  const history = await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'circuitClosed').length;
}

async function eventsOf(t: TenantFixture, leadId: string) {
  const r = await stack.api.get(`/v1/leads/${leadId}`).set(authOf(t)).expect(200);
  return r.body.events as { type: string; data: Record<string, unknown> }[];
}

describe('circuit close', () => {
  test('a closed circuit: 200 "already closed" and no signal to any lead, however often it is called', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi')).expect(200);
    await waitFor(() => sendsTo(from).length === 1, { what: 'first reply' });
    const wf = stack.leadWorkflowId(t.channelId, from);
    for (let i = 0; i < 3; i++) {
      const r = await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(authOf(t)).expect(200);
      expect(r.body).toMatchObject({ id: t.channelId, alreadyClosed: true, circuit: { state: 'closed' } });
      expect(r.body.message).toMatch(/already closed/);
    }
    expect(await circuitSignalsIn(wf)).toBe(0);
  });

  test('an open circuit: closed once, the waiting leads are signalled by a workflow outside the request; a second call does nothing', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    stack.graph.failNext({ code: 190, to: from, message: 'Error validating access token' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
    const leads = await waitFor(async () => {
      const r = await stack.api.get('/v1/leads').set(authOf(t)).expect(200);
      return r.body.items.length ? (r.body.items as { id: string }[]) : undefined;
    });
    await waitFor(async () => (await eventsOf(t, leads[0]!.id)).some((e) => e.type === 'circuit_wait'), { what: 'circuit_wait' });
    const wf = stack.leadWorkflowId(t.channelId, from);

    const closed = await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(authOf(t)).expect(200);
    expect(closed.body).toMatchObject({ alreadyClosed: false, circuit: { state: 'closed' } });
    expect(closed.body.resumeWorkflowId).toMatch(new RegExp(`^circuit-resume:${t.channelId}:\\d+$`));
    const result = await stack.temporal.client.workflow.getHandle(closed.body.resumeWorkflowId as string).result();
    expect(result).toEqual({ signalled: 1 });
    await waitFor(() => sendsTo(from).length === 1, { what: 'the reply after the close' });
    expect(await circuitSignalsIn(wf)).toBe(1);

    const again = await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(authOf(t)).expect(200);
    expect(again.body.alreadyClosed).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(await circuitSignalsIn(wf)).toBe(1);
  });
});

describe('templates on a channel that is not WhatsApp', () => {
  async function webChatLead(t: TenantFixture) {
    const channel = await stack.api.post('/v1/channels').set(authOf(t)).send({ platform: 'webchat', agentId: t.agentId }).expect(201);
    const visitor = await stack.api.post(`/webchat/${channel.body.widgetKey}/visitors`).send({}).expect(201);
    await stack.api
      .post(`/webchat/${channel.body.widgetKey}/messages`)
      .set('authorization', `Bearer ${visitor.body.visitorToken as string}`)
      .send({ text: 'Do you have a free trial?', clientMessageId: 'm-1' })
      .expect(202);
    const lead = await waitFor(async () => {
      const r = await stack.api.get('/v1/leads').set(authOf(t)).expect(200);
      return (r.body.items as { id: string; channel: string; contactId: string }[]).find((l) => l.channel === 'webchat');
    }, { what: 'web chat lead' });
    return { channelId: channel.body.id as string, leadId: lead.id, contactId: lead.contactId };
  }

  test('a manual template and the enrolment in a sequence with template steps answer 409; the breaker stays closed', async () => {
    const t = await createTenant(stack, { credits: 10 });
    await stack.api.post('/v1/templates').set(authOf(t)).send({ name: 'promo', language: 'en', category: 'marketing', body: 'Hi {{1}}', approved: true }).expect(201);
    const wc = await webChatLead(t);
    const manual = await stack.api
      .post(`/v1/leads/${wc.leadId}/messages`)
      .set(authOf(t))
      .send({ template: { name: 'promo', language: 'en', variables: ['Priya'] } })
      .expect(409);
    expect(manual.body.error.code).toBe('template_not_supported');
    expect(manual.body.error.message).toMatch(/WhatsApp/);

    const seq = await stack.api
      .post('/v1/sequences')
      .set(authOf(t))
      .send({ name: 'promo', steps: [{ delayMs: 1000, kind: 'template', template: { name: 'promo', language: 'en', variables: ['x'] } }] })
      .expect(201);
    const enrol = await stack.api.post(`/v1/leads/${wc.leadId}/sequence/enroll`).set(authOf(t)).send({ sequenceId: seq.body.id }).expect(409);
    expect(enrol.body.error.code).toBe('template_not_supported');
    const rule = await stack.api.post('/v1/enrollment-rules').set(authOf(t)).send({ sequenceId: seq.body.id, channelAccountId: wc.channelId }).expect(409);
    expect(rule.body.error.code).toBe('template_not_supported');

    const channel = await stack.api.get(`/v1/channels/${wc.channelId}`).set(authOf(t)).expect(200);
    expect(channel.body.circuit.state).toBe('closed');
  });

  test('the template send activity refuses a web chat channel, non-retryable, without calling Meta or opening the breaker', async () => {
    const t = await createTenant(stack, { credits: 10 });
    await stack.api.post('/v1/templates').set(authOf(t)).send({ name: 'promo', language: 'en', category: 'marketing', body: 'Hi', approved: true }).expect(201);
    const wc = await webChatLead(t);
    const before = stack.graph.requests.length;
    const activities = createWhatsAppActivities({
      ...stack.core.services,
      log: createLogger({ level: 'silent' }),
      graphApiUrl: stack.graph.url,
      graphApiVersion: 'v21.0',
      timeoutMs: 5000,
    });
    const err = await activities
      .sendWhatsAppTemplate({ tenantId: t.tenantId, leadId: wc.leadId, channelAccountId: wc.channelId, outboundMessageId: randomUUID(), to: wc.contactId, template: { name: 'promo', language: 'en' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).type).not.toMatch(/provider_auth|channel_circuit_open/);
    expect(stack.graph.requests.length).toBe(before);
    const channel = await stack.api.get(`/v1/channels/${wc.channelId}`).set(authOf(t)).expect(200);
    expect(channel.body.circuit.state).toBe('closed');
  });
});

describe('enrollment rules', () => {
  test("another tenant's channel id and an unknown channel id answer 404", async () => {
    const a = await createTenant(stack);
    const b = await createTenant(stack);
    const seq = await stack.api.post('/v1/sequences').set(authOf(b)).send({ name: 'nurture', steps: [{ delayMs: 1000, kind: 'text', text: 'Still interested?' }] }).expect(201);
    const foreign = await stack.api.post('/v1/enrollment-rules').set(authOf(b)).send({ sequenceId: seq.body.id, channelAccountId: a.channelId }).expect(404);
    expect(foreign.body.error.code).toBe('channel_not_found');
    await stack.api.post('/v1/enrollment-rules').set(authOf(b)).send({ sequenceId: seq.body.id, channelAccountId: randomUUID() }).expect(404);
    await stack.api.post('/v1/enrollment-rules').set(authOf(b)).send({ sequenceId: seq.body.id, channelAccountId: b.channelId }).expect(201);
    const rules = await stack.api.get('/v1/enrollment-rules').set(authOf(b)).expect(200);
    expect(rules.body.items).toHaveLength(1);
  });
});
