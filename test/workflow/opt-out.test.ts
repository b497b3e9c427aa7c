/**
 * Opt-out on the time-skipping test server, with the real activities (PGlite, the fake Graph
 * API and the fake LLM): a STOP stops a running sequence for good (no later step, bump-up or
 * template), the confirmation goes out once, START re-subscribes and a new enrolment works; a
 * STOP on a second channel of the tenant suppresses the first channel's scheduled steps.
 */
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { AgentOptOutSettings } from '../../contract/messages';
import { inboundSignal, sendMessageUpdate, sequenceUpdate, stateQuery, type InboundMessage } from '../../workflows/lead/definitions';
import type { SequenceDef, SequenceStep } from '../../workflows/lead/policy/sequence';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, until, leadWorkflowId } from './support';

jest.setTimeout(180_000);

const kit = createWorkflowTestKit();
const HOUR = 60 * 60 * 1000;
const CREDITS = 50;
const CONFIRMATION = 'You will get no more messages from us. Write START to subscribe again.';

type LeadHandle = WorkflowHandle<typeof leadConversation>;

const started: string[] = [];
afterEach(async () => {
  const ids = started.splice(0, started.length);
  await Promise.all(ids.map((id) => kit.env.client.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
});

/** A tenant with credits, an agent with these opt-out settings, and `channels` WhatsApp channels on it. */
async function tenant(optOut: AgentOptOutSettings | undefined, channels = 1) {
  const { services } = kit;
  const t = await services.tenants.create({ name: 'Opt-out test' });
  await services.credits.topUp({ tenantId: t.id, amount: CREDITS, reference: 'seed' });
  const agent = await services.agents.create(t.id, { name: 'a', systemPrompt: 'Be brief.', model: 'gpt-4o-mini', ...(optOut ? { optOut } : {}) });
  const ids: string[] = [];
  for (let i = 0; i < channels; i++) {
    const ch = await services.channels.create(t.id, {
      platform: 'whatsapp',
      phoneNumberId: String(Date.now()) + randomBytes(3).readUIntBE(0, 3),
      accessToken: 'EAAGtesttoken123',
      verifyToken: 'verify-token-1',
      agentId: agent.id,
    });
    ids.push(ch.id);
  }
  return { tenantId: t.id, channelIds: ids };
}

interface Lead {
  handle: LeadHandle;
  contactId: string;
  say(text: string): Promise<void>;
}

let seq = 0;
/** The contact writes its first message on a channel (signal-with-start), as the webhook does. */
async function write(taskQueue: string, tenantId: string, channelAccountId: string, contactId: string, text: string): Promise<Lead> {
  const workflowId = leadWorkflowId(channelAccountId, contactId);
  if (!started.includes(workflowId)) started.push(workflowId);
  const message = async (t: string): Promise<InboundMessage> => ({ ...inboundText(contactId, ++seq, await kit.serverNow()), text: t });
  const handle: LeadHandle = await kit.env.client.workflow.signalWithStart(leadConversation, {
    workflowId,
    taskQueue,
    args: [leadInput({ tenantId, channelAccountId }, contactId)],
    signal: inboundSignal,
    signalArgs: [await message(text)],
  });
  return {
    handle,
    contactId,
    async say(t) {
      await handle.signal(inboundSignal, await message(t));
    },
  };
}

const texts = (contactId: string, prefix: string) => kit.sentTo(contactId).filter((r) => ((r.body as { text?: { body: string } }).text?.body ?? '').startsWith(prefix));
const aiReplies = (contactId: string) => texts(contactId, 'Thanks for your message!');
const events = async (tenantId: string, handle: LeadHandle) => kit.services.leads.events(tenantId, (await handle.query(stateQuery)).leadId!, 100);

function sequenceOf(name: string, n: number): SequenceDef {
  const steps: SequenceStep[] = Array.from({ length: n }, (_, i) => ({ delayMs: HOUR, kind: 'text' as const, text: `${name} step ${i + 1}` }));
  // not stopped by a reply: only the opt-out may stop it here
  return { id: `seq-${randomBytes(3).toString('hex')}`, name, steps, stopOn: ['stage_changed'] };
}

const contact = () => `9198${String(Date.now()).slice(-6)}${randomBytes(1).readUInt8(0) % 10}`;

test('STOP after step 2 of 5: steps 3-5 never go out, the confirmation once, no template; START, then a new enrolment sends again', async () => {
  const t = await tenant({ confirmationText: CONFIRMATION });
  const c = contact();
  await kit.withWorker(async (taskQueue) => {
    const lead = await write(taskQueue, t.tenantId, t.channelIds[0]!, c, 'Hi, what does the 2BHK cost?');
    await kit.env.sleep('10 seconds');
    await until(() => aiReplies(c).length === 1, 'the AI reply to the first message');
    await lead.handle.executeUpdate(sequenceUpdate, { args: [{ action: 'enroll', sequence: sequenceOf('Nurture', 5) }] });

    await kit.env.sleep(HOUR + 5_000);
    await until(() => texts(c, 'Nurture step 1').length === 1, 'step 1');
    await kit.env.sleep(HOUR);
    await until(() => texts(c, 'Nurture step 2').length === 1, 'step 2');

    await kit.env.sleep('10 minutes');
    await lead.say('Stop');
    await kit.env.sleep('10 seconds');
    await until(async () => (await lead.handle.query(stateQuery)).optedOut === true, 'the opt-out');
    await until(() => texts(c, CONFIRMATION).length === 1, 'the confirmation');
    const s = await lead.handle.query(stateQuery);
    expect(s.sequence?.cursor).toMatchObject({ status: 'stopped', stopReason: 'opted_out', stepIndex: 2 });
    const list = await kit.services.suppressions.list(t.tenantId, { limit: 10 });
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ contact: c, source: 'keyword', keyword: 'stop', leadId: s.leadId });
    expect(list.items[0]!.forms).toContain(c);

    // a second STOP: still suppressed, the confirmation is not sent again
    await lead.say('STOP');
    await kit.env.sleep('10 seconds');
    await until(async () => (await events(t.tenantId, lead.handle)).filter((e) => e.type === 'opted_out').length === 2, 'the second opt-out event');
    // a template to a suppressed contact is refused (the suppression list, asked just before the send)
    const refused = await lead.handle.executeUpdate(sendMessageUpdate, { args: [{ requestId: 'tpl-1', kind: 'template', template: { name: 'follow_up', language: 'en' } }] });
    expect(refused).toMatchObject({ requestId: 'tpl-1', status: 'refused', reason: 'contact_opted_out' });

    await kit.env.sleep('5 hours'); // past steps 3, 4 and 5 (and any bump-up)
    expect(texts(c, 'Nurture step')).toHaveLength(2);
    expect(texts(c, CONFIRMATION)).toHaveLength(1);
    // the phrases got no AI reply
    expect(aiReplies(c)).toHaveLength(1);
    const ev = await events(t.tenantId, lead.handle);
    expect(ev.filter((e) => e.type === 'opted_out').map((e) => e.data)).toEqual(
      expect.arrayContaining([expect.objectContaining({ source: 'keyword', keyword: 'stop', alreadySuppressed: false }), expect.objectContaining({ alreadySuppressed: true })]),
    );
    expect(ev.find((e) => e.type === 'sequence_stopped')?.data).toMatchObject({ reason: 'opted_out', stepIndex: 2 });

    // START re-subscribes: the list is empty, a new enrolment sends its step
    await lead.say('start');
    await kit.env.sleep('10 seconds');
    await until(async () => (await lead.handle.query(stateQuery)).optedOut === false, 'the opt-in');
    expect((await kit.services.suppressions.list(t.tenantId, { limit: 10 })).items).toHaveLength(0);
    expect((await events(t.tenantId, lead.handle)).find((e) => e.type === 'opted_in')?.data).toMatchObject({ source: 'keyword', keyword: 'start', wasSuppressed: true });
    await lead.handle.executeUpdate(sequenceUpdate, { args: [{ action: 'enroll', sequence: sequenceOf('Welcome back', 1) }] });
    await kit.env.sleep(HOUR + 5_000);
    await until(() => texts(c, 'Welcome back step 1').length === 1, 'the new enrolment\'s step');
    expect(texts(c, 'Nurture step')).toHaveLength(2);
    expect(aiReplies(c)).toHaveLength(1);
  });
});

test('a STOP on a second channel of the tenant suppresses the first channel\'s scheduled steps; the AI still answers a suppressed contact who writes again', async () => {
  const t = await tenant(undefined, 2);
  const [a, b] = t.channelIds as [string, string];
  const c = contact();
  await kit.withWorker(async (taskQueue) => {
    const onA = await write(taskQueue, t.tenantId, a, c, 'Hello from channel A');
    await kit.env.sleep('10 seconds');
    await until(() => aiReplies(c).length === 1, 'the AI reply on A');
    await onA.handle.executeUpdate(sequenceUpdate, { args: [{ action: 'enroll', sequence: sequenceOf('Channel A', 3) }] });
    await kit.env.sleep(HOUR + 5_000);
    await until(() => texts(c, 'Channel A step 1').length === 1, 'step 1 on A');

    // the same person writes STOP to the tenant's other number: step 2 on A was already scheduled
    const onB = await write(taskQueue, t.tenantId, b, c, 'UNSUBSCRIBE');
    await kit.env.sleep('10 seconds');
    await until(async () => (await onB.handle.query(stateQuery)).optedOut === true, 'the opt-out on B');
    expect((await onA.handle.query(stateQuery)).optedOut).toBe(false); // A has not asked yet

    await kit.env.sleep(HOUR + 5_000);
    await until(async () => (await onA.handle.query(stateQuery)).sequence?.cursor.status === 'stopped', 'A\'s sequence stopped');
    const sA = await onA.handle.query(stateQuery);
    expect(sA.optedOut).toBe(true);
    expect(sA.sequence?.cursor).toMatchObject({ stopReason: 'opted_out', stepIndex: 1 });
    const evA = await events(t.tenantId, onA.handle);
    expect(evA.find((e) => e.type === 'sequence_step_suppressed')?.data).toMatchObject({ stepIndex: 1 });
    await kit.env.sleep('3 hours');
    expect(texts(c, 'Channel A step')).toHaveLength(1);

    // default replyAfterOptOut: the contact writes again on A, the AI answers (Meta allows a reply in the window)
    await onA.say('Actually, is parking included?');
    await kit.env.sleep('10 seconds');
    await until(() => aiReplies(c).length === 2, 'the AI reply to the suppressed contact');
    // the suppression holds: the API-level list still has it
    expect((await kit.services.suppressions.list(t.tenantId, { limit: 10 })).items).toHaveLength(1);

    // START on B: A still believes the contact opted out, but its next step asks the list again and goes out
    await onB.say('START');
    await kit.env.sleep('10 seconds');
    await until(async () => (await kit.services.suppressions.list(t.tenantId, { limit: 10 })).items.length === 0, 'the opt-in on B');
    expect((await onA.handle.query(stateQuery)).optedOut).toBe(true);
    await onA.handle.executeUpdate(sequenceUpdate, { args: [{ action: 'enroll', sequence: sequenceOf('Channel A again', 1) }] });
    await kit.env.sleep(HOUR + 5_000);
    await until(() => texts(c, 'Channel A again step 1').length === 1, 'the new step on A');
    expect((await onA.handle.query(stateQuery)).optedOut).toBe(false);
  });
});

test('a new lead of a suppressed contact is not auto-enrolled (recorded), and still gets its AI reply', async () => {
  const t = await tenant(undefined, 2);
  const [a, b] = t.channelIds as [string, string];
  const seqRow = await kit.services.sequences.create(t.tenantId, { name: 'Welcome', steps: [{ delayMs: HOUR, kind: 'text', text: 'Welcome step 1' }], stopOn: [] });
  await kit.services.sequences.createRule(t.tenantId, { sequenceId: seqRow.id, channelAccountId: a });
  const c = contact();
  await kit.withWorker(async (taskQueue) => {
    const onB = await write(taskQueue, t.tenantId, b, c, 'STOP');
    await kit.env.sleep('10 seconds');
    await until(async () => (await onB.handle.query(stateQuery)).optedOut === true, 'the opt-out on B');
    const onA = await write(taskQueue, t.tenantId, a, c, 'Hi, I saw your ad');
    await kit.env.sleep('10 seconds');
    await until(() => aiReplies(c).length === 1, 'the AI reply on A');
    const sA = await onA.handle.query(stateQuery);
    expect(sA.sequence).toBeUndefined();
    expect(sA.optedOut).toBe(true);
    expect((await events(t.tenantId, onA.handle)).find((e) => e.type === 'sequence_enroll_skipped')?.data).toMatchObject({ sequenceId: seqRow.id, reason: 'contact_opted_out', auto: true });
    await kit.env.sleep(2 * HOUR);
    expect(texts(c, 'Welcome step')).toHaveLength(0);
  });
});

test('replyAfterOptOut: false — a suppressed contact who writes again gets no AI reply (recorded as an event)', async () => {
  const t = await tenant({ replyAfterOptOut: false, languages: ['es'] });
  const c = contact();
  await kit.withWorker(async (taskQueue) => {
    const lead = await write(taskQueue, t.tenantId, t.channelIds[0]!, c, 'Hola');
    await kit.env.sleep('10 seconds');
    await until(() => aiReplies(c).length === 1, 'the AI reply');
    await lead.say('Baja');
    await kit.env.sleep('10 seconds');
    await until(async () => (await lead.handle.query(stateQuery)).optedOut === true, 'the opt-out');
    await lead.say('¿y el precio?');
    await kit.env.sleep('10 seconds');
    await until(async () => (await events(t.tenantId, lead.handle)).some((e) => e.type === 'reply_suppressed'), 'the suppressed reply');
    expect(aiReplies(c)).toHaveLength(1);
    expect(texts(c, CONFIRMATION)).toHaveLength(0); // no confirmation configured
  });
});

test('a STOP on another channel: the first channel\'s bump-up is refused before the LLM is asked, and an API template is refused', async () => {
  const t = await tenant(undefined, 2);
  const [a, b] = t.channelIds as [string, string];
  const c = contact();
  await kit.withWorker(async (taskQueue) => {
    const onA = await write(taskQueue, t.tenantId, a, c, 'Is the flat still available?');
    await kit.env.sleep('10 seconds');
    await until(() => aiReplies(c).length === 1, 'the AI reply on A');
    const onB = await write(taskQueue, t.tenantId, b, c, 'parar');
    await kit.env.sleep('10 seconds');
    await until(async () => (await onB.handle.query(stateQuery)).optedOut === true, 'the opt-out on B');
    const replyCalls = () => kit.llm.requests.filter((r) => !(r.body as { response_format?: unknown }).response_format).length; // not extractions
    const before = replyCalls();

    // A's bump-up falls due after 4 idle hours: the suppression list refuses it, no LLM call, no credit
    await kit.env.sleep('4 hours');
    await kit.env.sleep('2 minutes');
    await until(async () => (await events(t.tenantId, onA.handle)).some((e) => e.type === 'bump_up'), 'the bump-up attempt');
    expect((await events(t.tenantId, onA.handle)).find((e) => e.type === 'bump_up')?.data).toMatchObject({ status: 'refused', reason: 'contact_opted_out' });
    expect(kit.llm.requests.filter((r) => JSON.stringify(r.body).includes('has not answered your last message'))).toHaveLength(0);
    expect(replyCalls()).toBe(before);
    expect((await onA.handle.query(stateQuery)).optedOut).toBe(true);

    // a template through A: refused by the list
    const refused = await onA.handle.executeUpdate(sendMessageUpdate, { args: [{ requestId: 'tpl-a', kind: 'template', template: { name: 'follow_up', language: 'en' } }] });
    expect(refused).toMatchObject({ status: 'refused', reason: 'contact_opted_out' });
    await kit.env.sleep('8 hours');
    expect(kit.sentTo(c).filter((r) => (r.body as { type?: string }).type === 'template')).toHaveLength(0);
    expect(aiReplies(c)).toHaveLength(1); // B's phrase got no reply, A no bump-up
    const balance = await kit.services.credits.balance(t.tenantId);
    expect(balance).toMatchObject({ balance: CREDITS - 1, reserved: 0 });
  });
});
