/**
 * Bump-ups and lead extraction: multi-hour behaviours on the time-skipping test server, with
 * the real activities (PGlite, the fake Graph API and the fake LLM as local HTTP servers).
 */
import { inboundSignal, stateQuery, type LeadWorkflowSettings } from '../../workflows/lead/definitions';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, until } from './support';

jest.setTimeout(120_000);

const kit = createWorkflowTestKit();
let n = 0;
const contact = () => `91987${String(Date.now()).slice(-5)}${n++}`;

const HOUR = 60 * 60 * 1000;
function settings(over: Partial<LeadWorkflowSettings>): LeadWorkflowSettings {
  return {
    eventBudget: 2000,
    dedupWindow: 100,
    extractionIdleMs: 0,
    bumpUp: { idleMs: 4 * HOUR, maxPerConversation: 1, maxWords: 40, channels: ['whatsapp'] },
    ...over,
  };
}

const extractionCalls = (contactId: string) =>
  kit.llm.requests.filter((r) => (r.body as { response_format?: unknown }).response_format && JSON.stringify(r.messages).includes(contactId));

test('a bump-up fires once after the lead goes quiet, not twice, and is a short AI nudge', async () => {
  const t = await kit.tenantWithChannel(10);
  const c = contact();
  const leadSettings = settings({});
  await kit.withWorker(async (taskQueue) => {
    kit.llm.script(['Sure! Our starter plan is $29 a month.', 'Still thinking it over? I can send a comparison of the plans.']);
    const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
      workflowId: `lead:${t.channelAccountId}:${c}`,
      taskQueue,
      args: [leadInput(t, c)],
      signal: inboundSignal,
      signalArgs: [inboundText(c, 1, await kit.serverNow())],
    });
    await kit.env.sleep('10 seconds');
    await until(() => kit.sentTo(c).length === 1, 'the reply');
    await kit.env.sleep('3 hours');
    expect(kit.sentTo(c)).toHaveLength(1);
    await kit.env.sleep('61 minutes');
    await until(() => kit.sentTo(c).length === 2, 'the bump-up');
    expect((kit.sentTo(c)[1]!.body as { text: { body: string } }).text.body).toBe('Still thinking it over? I can send a comparison of the plans.');
    const bump = kit.llm.requests.at(-1)!;
    expect(JSON.stringify(bump.messages)).toContain('has not answered your last message');
    expect(JSON.stringify(bump.messages)).toContain('at most 40 words');
    await kit.env.sleep('8 hours');
    const s = await handle.query(stateQuery);
    expect(s.bumpsSent).toBe(1);
    expect(kit.sentTo(c)).toHaveLength(2);
    await handle.terminate('test done'); // a running lead would stop the test server skipping time
  }, { settings: leadSettings });
});

test('a bump-up that would repeat the last bot message is not sent', async () => {
  const t = await kit.tenantWithChannel(10);
  const c = contact();
  const leadSettings = settings({ bumpUp: { idleMs: 4 * HOUR, maxPerConversation: 2, maxWords: 40, channels: ['whatsapp'] } });
  await kit.withWorker(async (taskQueue) => {
    kit.llm.script(['Happy to help! Which plan are you looking at?', 'Happy to help! Which plan are you looking at?']);
    const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
      workflowId: `lead:${t.channelAccountId}:${c}`,
      taskQueue,
      args: [leadInput(t, c)],
      signal: inboundSignal,
      signalArgs: [inboundText(c, 1, await kit.serverNow())],
    });
    await kit.env.sleep('10 seconds');
    await until(() => kit.sentTo(c).length === 1, 'the reply');
    await kit.env.sleep('241 minutes');
    await until(async () => (await handle.query(stateQuery)).bumpsSent === 1, 'first bump-up attempt');
    // the LLM said the same thing again: refused, nothing sent, credit returned
    expect(kit.sentTo(c)).toHaveLength(1);
    const s = await handle.query(stateQuery);
    const events = await kit.services.leads.events(t.tenantId, s.leadId!, 20);
    expect(events.find((e) => e.type === 'bump_up')?.data).toMatchObject({ status: 'refused', reason: 'repeat' });
    const balance = await kit.services.credits.balance(t.tenantId);
    expect(balance).toMatchObject({ balance: 9, reserved: 0 });
    // the refused attempt started a new idle period: the second bump-up waits another 4 hours
    await kit.env.sleep('3 hours');
    expect((await handle.query(stateQuery)).bumpsSent).toBe(1);
    await kit.env.sleep('61 minutes');
    await until(() => kit.sentTo(c).length === 2, 'the second bump-up');
    expect((await handle.query(stateQuery)).bumpsSent).toBe(2);
    await handle.terminate('test done');
  }, { settings: leadSettings });
});

test('extraction runs after inactivity, and again only after new messages', async () => {
  const t = await kit.tenantWithChannel(10);
  const c = contact();
  const leadSettings = settings({ extractionIdleMs: 10 * 60 * 1000, bumpUp: { idleMs: 4 * HOUR, maxPerConversation: 0, maxWords: 40, channels: ['whatsapp'] } });
  await kit.withWorker(async (taskQueue) => {
    const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
      workflowId: `lead:${t.channelAccountId}:${c}`,
      taskQueue,
      args: [leadInput(t, c)],
      signal: inboundSignal,
      signalArgs: [inboundText(c, 1, await kit.serverNow())],
    });
    await kit.env.sleep('10 seconds');
    await until(() => kit.sentTo(c).length === 1, 'the reply');
    await kit.env.sleep('5 minutes');
    expect(extractionCalls(c)).toHaveLength(0);
    await kit.env.sleep('6 minutes');
    await until(() => extractionCalls(c).length === 1, 'first extraction');
    const s = await handle.query(stateQuery);
    const versions = (await kit.services.extractions.listForLead(t.tenantId, s.leadId!)).items;
    expect(versions.length).toBe(1);
    await until(async () => (await handle.query(stateQuery)).extractionDueAt === undefined, 'extraction finished');
    await kit.env.sleep('2 hours');
    expect(extractionCalls(c)).toHaveLength(1);
    await handle.signal(inboundSignal, inboundText(c, 2, await kit.serverNow()));
    await kit.env.sleep('10 seconds');
    await until(() => kit.sentTo(c).length === 2, 'second reply');
    await kit.env.sleep('11 minutes');
    await until(() => extractionCalls(c).length === 2, 'second extraction after new messages');
    await handle.terminate('test done');
  }, { settings: leadSettings });
});
