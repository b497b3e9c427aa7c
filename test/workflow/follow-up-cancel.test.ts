/**
 * Cancelling a scheduled follow-up, on the time-skipping test server with the real activities and
 * the real API app (createApp over a Temporal client with Parley's data converter): the model
 * schedules a follow-up, the API lists it and cancels it, and when its time has passed nothing
 * was sent and the `follow_up_cancelled` event is there. An unknown id and another tenant's key
 * are 404. The Web UI's `cancelFollowUp` update is sent by name with the JSON a person types; the
 * model cancels through cancel_follow_up (the offline stand-in's /noremind, and a scripted call on
 * the step-by-step path).
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { Client } from '@temporalio/client';
import request from 'supertest';
import { createApp } from '../../api/app';
import { loadConfig } from '../../config';
import { LeadMessage } from '../../contract/workflow-names';
import { toolCallReply } from '../../fakes/openai';
import { createLeadIds } from '../../lib/lead-ids';
import { createParleyTemporal } from '../../temporal/client';
import { parleyDataConverter } from '../../temporal/data-converter';
import { inboundSignal, stateQuery, type InboundMessage, type TemplateRef } from '../../workflows/lead/definitions';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, leadWorkflowId, TEST_SETTINGS, until, type TenantChannel } from './support';
import { updateRejection as rejection } from '../support/updates';

jest.setTimeout(120_000);

const kit = createWorkflowTestKit();
const HOUR = 60 * 60 * 1000;
/** No bump-ups and no extraction: only the follow-up could reach out. */
const SETTINGS = { ...TEST_SETTINGS, extractionIdleMs: 0, bumpUp: { idleMs: 4 * HOUR, maxPerConversation: 0, maxWords: 40, channels: ['whatsapp' as const] } };
const TEMPLATE: TemplateRef = { name: 'checking_in', language: 'en_US', variables: ['Priya'] };

let client: Client;
let api: ReturnType<typeof request>;
beforeAll(() => {
  // the API's client, with the data converter the worker and the API use (failure messages in encoded payloads)
  client = new Client({ connection: kit.env.connection, namespace: kit.env.namespace ?? 'default', dataConverter: parleyDataConverter() });
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', PGLITE_DATA_DIR: 'memory://', PARLEY_ADMIN_TOKEN: 'test-admin-token-follow-ups', PARLEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), PARLEY_CHECK_RESPONSES: 'true', AUTH_FAILURES_PER_MINUTE: '1000' });
  const temporal = createParleyTemporal(client, { taskQueue: 'unused', leadIds: createLeadIds(Buffer.alloc(32, 7)) });
  api = request(createApp({ config, log: kit.log, database: { ping: async () => undefined }, services: kit.services, temporal }));
});
beforeEach(() => kit.llm.reset());

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

interface Sent {
  type: string;
  text?: { body: string };
}

async function ownerKey(tenantId: string): Promise<string> {
  return (await kit.services.apiKeys.create(tenantId, { name: 'test', role: 'owner' })).key;
}

function textFrom(contactId: string, n: number, text: string, sentAt: string): InboundMessage {
  return { ...inboundText(contactId, n, sentAt), text };
}

/** A lead whose agent may schedule and cancel follow-ups; the lead writes once and the model schedules one `inMs` ahead. */
async function leadWithFollowUp(taskQueue: string, inMs: number, note: string, template?: TemplateRef) {
  const t: TenantChannel = await kit.tenantWithChannel(20);
  const agent = await kit.services.agents.forChannel(t.tenantId, t.channelAccountId);
  await kit.services.agents.update(t.tenantId, agent!.id, { tools: ['schedule_follow_up', 'cancel_follow_up'], ...(template ? { followUpTemplate: template } : {}) });
  const now = await kit.serverNow();
  const at = new Date(Date.parse(now) + inMs).toISOString();
  kit.llm.script([toolCallReply('schedule_follow_up', { at, note }), 'Sure, I will get back to you then.']);
  const contactId = `c${randomBytes(5).toString('hex')}`;
  const workflowId = leadWorkflowId(t.channelAccountId, contactId);
  const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
    workflowId,
    taskQueue,
    args: [leadInput(t, contactId)],
    signal: inboundSignal,
    signalArgs: [inboundText(contactId, 1, now)],
  });
  const sent = () => kit.sentTo(contactId).map((r) => r.body as Sent);
  await kit.env.sleep('10 seconds');
  await until(() => sent().length === 1, 'the reply');
  await until(async () => ((await handle.query(stateQuery)).followUps?.length ?? 0) === 1, 'the follow-up in the state');
  const state = await handle.query(stateQuery);
  const leadId = state.leadId!;
  const events = () => kit.services.leads.events(t.tenantId, leadId, 50);
  return { t, contactId, workflowId, handle, leadId, at, followUpId: state.followUps![0]!.id, sent, events };
}

test('the API lists the follow-up and cancels it: past its time nothing is sent, the event says who cancelled', async () => {
  await kit.withWorker(async (taskQueue) => {
    const lead = await leadWithFollowUp(taskQueue, 3 * 24 * HOUR, 'ask whether the quote works', TEMPLATE);
    const key = await ownerKey(lead.t.tenantId);

    const list = await api.get(`/v1/leads/${lead.leadId}/follow-ups`).set(auth(key)).expect(200);
    expect(list.body).toEqual({ items: [{ id: lead.followUpId, at: lead.at, note: 'ask whether the quote works', template: TEMPLATE.name }] });

    // another tenant's key: the lead is not found (404, not 403), for reading and for cancelling, and nothing changes
    const other = await kit.tenantWithChannel(1);
    const otherKey = await ownerKey(other.tenantId);
    const foreignList = await api.get(`/v1/leads/${lead.leadId}/follow-ups`).set(auth(otherKey)).expect(404);
    expect(foreignList.body.error).toMatchObject({ code: 'not_found', message: 'lead not found' });
    const foreignCancel = await api.delete(`/v1/leads/${lead.leadId}/follow-ups/${lead.followUpId}`).set(auth(otherKey)).expect(404);
    expect(foreignCancel.body.error).toMatchObject({ code: 'not_found', message: 'lead not found' });
    expect(JSON.stringify(foreignCancel.body)).not.toContain('quote');

    // an id that is not waiting: 404; a malformed one: 400
    const unknown = await api.delete(`/v1/leads/${lead.leadId}/follow-ups/${crypto.randomUUID()}`).set(auth(key)).expect(404);
    expect(unknown.body.error).toMatchObject({ code: 'not_found', message: expect.stringMatching(/^follow-up not found/) });
    await api.delete(`/v1/leads/${lead.leadId}/follow-ups/not-a-uuid`).set(auth(key)).expect(400);
    expect((await lead.handle.query(stateQuery)).followUps).toHaveLength(1);

    const cancelled = await api.delete(`/v1/leads/${lead.leadId}/follow-ups/${lead.followUpId}`).set(auth(key)).expect(200);
    expect(cancelled.body).toEqual({ cancelled: { id: lead.followUpId, at: lead.at, note: 'ask whether the quote works', template: TEMPLATE.name } });
    expect((await api.get(`/v1/leads/${lead.leadId}/follow-ups`).set(auth(key)).expect(200)).body).toEqual({ items: [] });
    expect((await lead.handle.query(stateQuery)).followUps).toBeUndefined();
    // a second cancel finds nothing
    await api.delete(`/v1/leads/${lead.leadId}/follow-ups/${lead.followUpId}`).set(auth(key)).expect(404);

    // past its time (and the background spread): nothing went out, no attempt was made
    await kit.env.sleep('3 days');
    await kit.env.sleep('5 minutes');
    expect(lead.sent()).toHaveLength(1);
    const events = await lead.events();
    expect(events.filter((e) => e.type === 'follow_up')).toEqual([]);
    expect(events.filter((e) => e.type === 'follow_up_cancelled').map((e) => e.data)).toEqual([{ followUpId: lead.followUpId, at: lead.at, source: 'api', template: TEMPLATE.name }]);
    // the note is never in the events
    expect(JSON.stringify(events)).not.toContain('quote works');
    await lead.handle.terminate('test done');
  }, { settings: SETTINGS });
});

test('the Web UI update by name: bad bodies and unknown ids are refused with the reason, {"all": true} cancels', async () => {
  await kit.withWorker(async (taskQueue) => {
    const lead = await leadWithFollowUp(taskQueue, 2 * 24 * HOUR, 'call back about the flat');
    const byName = (body?: unknown) => {
      const h = client.workflow.getHandle(lead.workflowId);
      return body === undefined ? h.executeUpdate<unknown, []>(LeadMessage.cancelFollowUp, { args: [] }) : h.executeUpdate<unknown, [unknown]>(LeadMessage.cancelFollowUp, { args: [body] });
    };
    // the current details show the follow-up's time and id, so a person can copy it
    const meta = await client.workflow.getHandle(lead.workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(meta.currentDetails).toContain(`- **Follow-ups** ${lead.at.slice(0, 16).replace('T', ' ')} UTC (\`${lead.followUpId}\`)`);

    expect(await rejection(byName())).toMatch(/^cancelFollowUp needs the follow-up/);
    expect(await rejection(byName({ id: lead.followUpId }))).toMatch(/^cancelFollowUp: unknown field "id"/);
    expect(await rejection(byName({ followUpId: lead.followUpId, all: true }))).toBe('cancelFollowUp: give "followUpId" or "all", not both');
    const missing = crypto.randomUUID();
    expect(await rejection(byName({ followUpId: missing }))).toBe(`cancelFollowUp: no follow-up ${missing} is waiting for this lead (it went out, was cancelled, or never existed)`);
    // refused before the history: no update events
    const before = await lead.handle.fetchHistory();
    expect(before.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toEqual([]);

    const result = (await byName({ all: true })) as { cancelled: { id: string }[] };
    expect(result.cancelled.map((f) => f.id)).toEqual([lead.followUpId]);
    expect((await lead.handle.query(stateQuery)).followUps).toBeUndefined();
    expect(await rejection(byName({ all: true }))).toBe('cancelFollowUp: no follow-ups are scheduled for this lead');
    const events = await lead.events();
    expect(events.find((e) => e.type === 'follow_up_cancelled')?.data).toEqual({ followUpId: lead.followUpId, at: lead.at, source: 'web_ui' });

    await kit.env.sleep('2 days');
    await kit.env.sleep('5 minutes');
    expect(lead.sent()).toHaveLength(1);
    expect((await lead.events()).filter((e) => e.type === 'follow_up')).toEqual([]);
    await lead.handle.terminate('test done');
  }, { settings: SETTINGS });
});

test('the model cancels: the turn is given the waiting follow-up, the stand-in’s /noremind calls cancel_follow_up', async () => {
  await kit.withWorker(async (taskQueue) => {
    const lead = await leadWithFollowUp(taskQueue, 2 * HOUR, 'send the brochure link');
    // nothing scripted: the offline stand-in answers, and /noremind makes it call cancel_follow_up
    await lead.handle.signal(inboundSignal, textFrom(lead.contactId, 2, '/noremind', await kit.serverNow()));
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 2, 'the second reply');
    await until(async () => (await lead.handle.query(stateQuery)).followUps === undefined, 'the follow-up cancelled');
    // the turn's LLM request offered cancel_follow_up with the waiting follow-up as its only choice
    const offered = kit.llm.requests
      .map((r) => (r.body as { tools?: { function: { name: string; parameters: { properties: { followUpId?: { enum?: string[] } } } } }[] }).tools ?? [])
      .flat()
      .find((tool) => tool.function.name === 'cancel_follow_up');
    expect(offered?.function.parameters.properties.followUpId?.enum).toEqual([lead.followUpId]);
    const events = await lead.events();
    expect(events.find((e) => e.type === 'tool_called' && (e.data as { name: string }).name === 'cancel_follow_up')?.data).toEqual({ name: 'cancel_follow_up', outcome: 'ok', args: { all: true } });
    expect(events.find((e) => e.type === 'follow_up_cancelled')?.data).toEqual({ followUpId: lead.followUpId, at: lead.at, source: 'agent' });

    await kit.env.sleep('2 hours');
    await kit.env.sleep('5 minutes');
    expect(lead.sent()).toHaveLength(2);
    expect((await lead.events()).filter((e) => e.type === 'follow_up')).toEqual([]);
    await lead.handle.terminate('test done');
  }, { settings: SETTINGS });
});

/** The one-activity turn fails at once: the step-by-step pipeline (generateReply) answers. */
const carefulOnly = { settings: SETTINGS, wrap: () => ({ replyTurn: () => Promise.reject(ApplicationFailure.create({ type: 'test_fast_path_off', message: 'fast path off', nonRetryable: true })) }) };

test('the step-by-step turn is given the follow-ups too: a cancel_follow_up call by id takes that one out', async () => {
  await kit.withWorker(async (taskQueue) => {
    const lead = await leadWithFollowUp(taskQueue, 2 * HOUR, 'ask about the test drive');
    kit.llm.script([toolCallReply('cancel_follow_up', { followUpId: lead.followUpId }), 'Alright, no reminder then.']);
    await lead.handle.signal(inboundSignal, textFrom(lead.contactId, 2, 'never mind, no need to remind me', await kit.serverNow()));
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 2, 'the second reply');
    expect(lead.sent()[1]!.text?.body).toBe('Alright, no reminder then.');
    await until(async () => (await lead.handle.query(stateQuery)).followUps === undefined, 'the follow-up cancelled');
    // the tool result told the model what it cancelled
    const afterTool = kit.llm.requests.at(-1)!;
    expect(JSON.stringify(afterTool.messages)).toContain(`Done: the follow-up at ${lead.at} is cancelled.`);
    const events = await lead.events();
    expect(events.find((e) => e.type === 'follow_up_cancelled')?.data).toEqual({ followUpId: lead.followUpId, at: lead.at, source: 'agent' });
    await kit.env.sleep('2 hours');
    await kit.env.sleep('5 minutes');
    expect(lead.sent()).toHaveLength(2);
    await lead.handle.terminate('test done');
  }, carefulOnly);
});
