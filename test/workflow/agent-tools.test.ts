/**
 * schedule_follow_up on the time-skipping test server, with the real activities (PGlite, the
 * fake Graph API and the fake LLM): the model schedules a follow-up three days out, the lead's
 * workflow waits on a durable timer, and when it fires the 24-hour window has closed, so the
 * follow-up goes out as the agent's follow-up template, or, without one, is refused and recorded.
 * Inside the window it is an AI message.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import type { AgentToolName } from '../../contract/agent-tools';
import { contentText, toolCallReply } from '../../fakes/openai';
import { inboundSignal, stateQuery, type TemplateRef } from '../../workflows/lead/definitions';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, leadWorkflowId, TEST_SETTINGS, until } from './support';

jest.setTimeout(120_000);

const kit = createWorkflowTestKit();
const HOUR = 60 * 60 * 1000;
/** No bump-ups (only the follow-up reaches out) and no extraction (its LLM call would take a scripted reply). */
const SETTINGS = { ...TEST_SETTINGS, extractionIdleMs: 0, bumpUp: { idleMs: 4 * HOUR, maxPerConversation: 0, maxWords: 40, channels: ['whatsapp' as const] } };
const TEMPLATE: TemplateRef = { name: 'checking_in', language: 'en_US', variables: ['Priya'] };

interface Sent {
  type: string;
  text?: { body: string };
  template?: { name: string; language: { code: string } };
}

/** A lead whose agent has `tools` (and maybe the follow-up template); the lead writes once. */
async function leadWithTools(taskQueue: string, tools: AgentToolName[], template?: TemplateRef) {
  const t = await kit.tenantWithChannel(20);
  const agent = await kit.services.agents.forChannel(t.tenantId, t.channelAccountId);
  await kit.services.agents.update(t.tenantId, agent!.id, { tools, ...(template ? { followUpTemplate: template } : {}) });
  if (template) {
    await kit.services.templates.create(t.tenantId, { name: template.name, language: template.language, category: 'marketing', body: 'Hi {{1}}, shall we pick this up again?', approved: true });
  }
  const contactId = `c${randomBytes(5).toString('hex')}`;
  const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
    workflowId: leadWorkflowId(t.channelAccountId, contactId),
    taskQueue,
    args: [leadInput(t, contactId)],
    signal: inboundSignal,
    signalArgs: [inboundText(contactId, 1, await kit.serverNow())],
  });
  const sent = () => kit.sentTo(contactId).map((r) => r.body as Sent);
  const events = async () => {
    const s = await handle.query(stateQuery);
    return kit.services.leads.events(t.tenantId, s.leadId!, 50);
  };
  return { t, contactId, handle, sent, events };
}

async function scheduleIn(ms: number, note: string): Promise<string> {
  const at = new Date(Date.parse(await kit.serverNow()) + ms).toISOString();
  kit.llm.script([toolCallReply('schedule_follow_up', { at, note }), 'Sure, I will get back to you then.']);
  return at;
}

beforeEach(() => kit.llm.reset());

test('three days out, after the window closed: the follow-up goes out as the agent’s follow-up template', async () => {
  await kit.withWorker(async (taskQueue) => {
    const at = await scheduleIn(3 * 24 * HOUR, 'ask whether the quote works');
    const lead = await leadWithTools(taskQueue, ['schedule_follow_up'], TEMPLATE);
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 1, 'the reply');
    expect(lead.sent()[0]!.text?.body).toBe('Sure, I will get back to you then.');
    const state = await lead.handle.query(stateQuery);
    expect(state.followUps).toEqual([{ id: expect.any(String), at, note: 'ask whether the quote works', template: TEMPLATE }]);

    await kit.env.sleep('2 days');
    expect(lead.sent()).toHaveLength(1);
    await kit.env.sleep('1 day');
    await kit.env.sleep('2 minutes'); // the background lane's spread (60 s at most)
    await until(() => lead.sent().length === 2, 'the follow-up');
    const followUp = lead.sent()[1]!;
    expect(followUp.type).toBe('template');
    expect(followUp.template).toMatchObject({ name: TEMPLATE.name, language: { code: TEMPLATE.language } });
    // no LLM call for a template
    expect(kit.llm.requests.filter((r) => JSON.stringify(r.messages).includes('ask whether the quote works'))).toHaveLength(0);
    const after = await lead.handle.query(stateQuery);
    expect(after.followUps).toBeUndefined();
    const events = await lead.events();
    expect(events.find((e) => e.type === 'follow_up')?.data).toMatchObject({ status: 'sent', template: TEMPLATE.name });
    expect(events.find((e) => e.type === 'tool_called')?.data).toEqual({ name: 'schedule_follow_up', outcome: 'ok', args: { at } });
    // the workflow's history names the timer and the tool call's step
    const history = await lead.handle.fetchHistory();
    const summaries = (history.events ?? []).flatMap((e) => (e.userMetadata?.summary ? [defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary)] : []));
    expect(summaries).toContain(`Tool schedule_follow_up: ok {"at":"${at}"}`);
    expect(summaries).toContain('Scheduled follow-up (schedule_follow_up)');
    await lead.handle.terminate('test done');
  }, { settings: SETTINGS });
});

test('three days out without a follow-up template: refused for the closed window and recorded, nothing sent', async () => {
  await kit.withWorker(async (taskQueue) => {
    await scheduleIn(3 * 24 * HOUR, 'ask again about the flat');
    const lead = await leadWithTools(taskQueue, ['schedule_follow_up']);
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 1, 'the reply');
    await kit.env.sleep('3 days');
    await kit.env.sleep('2 minutes');
    await until(async () => (await lead.events()).some((e) => e.type === 'follow_up'), 'the follow-up attempt');
    const events = await lead.events();
    expect(events.find((e) => e.type === 'follow_up')?.data).toMatchObject({ status: 'refused', reason: 'window_closed' });
    expect(events.find((e) => e.type === 'outbound_refused')?.data).toMatchObject({ purpose: 'follow-up', reason: 'window_closed' });
    expect(lead.sent()).toHaveLength(1);
    expect((await lead.handle.query(stateQuery)).followUps).toBeUndefined();
    await lead.handle.terminate('test done');
  }, { settings: SETTINGS });
});

test('inside the window: the follow-up is an AI message written from the note', async () => {
  await kit.withWorker(async (taskQueue) => {
    await scheduleIn(2 * HOUR, 'send the brochure link');
    const lead = await leadWithTools(taskQueue, ['schedule_follow_up'], TEMPLATE);
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 1, 'the reply');
    kit.llm.script(['Here is the brochure I promised: https://example.com/b.pdf']);
    await kit.env.sleep('2 hours');
    await kit.env.sleep('2 minutes');
    await until(() => lead.sent().length === 2, 'the follow-up');
    expect(lead.sent()[1]).toMatchObject({ type: 'text', text: { body: 'Here is the brochure I promised: https://example.com/b.pdf' } });
    const ask = kit.llm.requests.at(-1)!;
    expect(JSON.stringify(ask.messages)).toContain('send the brochure link');
    // the note (the model wrote it from the conversation; a lead can dictate it) is data: the whole of its block, never in a system message
    expect(ask.messages.filter((m) => m.role === 'user' && contentText(m.content).includes('<follow_up_note>\nsend the brochure link\n</follow_up_note>'))).toHaveLength(1);
    expect(ask.messages.filter((m) => m.role === 'system').map((m) => contentText(m.content)).join('\n')).not.toContain('brochure');
    // a follow-up offers no tools (it is no reply to the lead)
    expect((ask.body as { tools?: unknown }).tools).toBeUndefined();
    await lead.handle.terminate('test done');
  }, { settings: SETTINGS });
});

/** The one-activity turn fails at once: the step-by-step pipeline (generateReply) answers. */
const carefulOnly = { settings: SETTINGS, wrap: () => ({ replyTurn: () => Promise.reject(ApplicationFailure.create({ type: 'test_fast_path_off', message: 'fast path off', nonRetryable: true })) }) };

test('the step-by-step turn offers the tools too: set_stage moves the lead, then the text reply goes out', async () => {
  await kit.withWorker(async (taskQueue) => {
    kit.llm.script([toolCallReply('set_stage', { stage: 'Qualified' }), 'Noted, you are all set.']);
    const lead = await leadWithTools(taskQueue, ['set_stage']);
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 1, 'the reply');
    expect(lead.sent()[0]!.text?.body).toBe('Noted, you are all set.');
    await until(async () => (await lead.handle.query(stateQuery)).stage === 'Qualified', 'stage Qualified');
    const events = await lead.events();
    expect(events.find((e) => e.type === 'tool_called')?.data).toEqual({ name: 'set_stage', outcome: 'ok', args: { stage: 'Qualified' } });
    await lead.handle.terminate('test done');
  }, carefulOnly);
});

test('the step-by-step turn sends send_buttons through the rich path', async () => {
  await kit.withWorker(async (taskQueue) => {
    kit.llm.script([toolCallReply('send_buttons', { body: 'Morning or afternoon?', buttons: [{ id: 'am', title: 'Morning' }, { id: 'pm', title: 'Afternoon' }] })]);
    const lead = await leadWithTools(taskQueue, ['send_buttons']);
    await kit.env.sleep('10 seconds');
    await until(() => lead.sent().length === 1, 'the buttons');
    expect(lead.sent()[0]).toMatchObject({
      type: 'interactive',
      interactive: { type: 'button', body: { text: 'Morning or afternoon?' }, action: { buttons: [{ type: 'reply', reply: { id: 'am', title: 'Morning' } }, { type: 'reply', reply: { id: 'pm', title: 'Afternoon' } }] } },
    });
    await lead.handle.terminate('test done');
  }, carefulOnly);
});
