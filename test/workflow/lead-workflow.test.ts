/**
 * The lead workflow on the time-skipping test server, with the real activities (in-memory
 * PGlite, the fake Graph API and the fake LLM as local HTTP servers).
 */
import { randomBytes } from 'node:crypto';
import { inboundSignal, stateQuery, type InboundMessage } from '../../workflows/lead/definitions';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, until } from './support';

jest.setTimeout(120_000);

const kit = createWorkflowTestKit();
const { tenantWithChannel, withWorker, sentTo } = kit;

function inbound(contactId: string, n: number): InboundMessage {
  // the lead wrote just now (the 24-hour window is open)
  return inboundText(contactId, n);
}

/** A worker whose lead settings have this event budget (runs get them through ensureLead). */
const budget = (eventBudget: number) => ({ settings: { eventBudget, dedupWindow: 100 } });

test('continues as new under a small event budget and loses no message, carrying dedup memory across runs', async () => {
  const t = await tenantWithChannel(100);
  const contactId = `c${randomBytes(4).toString('hex')}`;
  await withWorker(async (taskQueue) => {
    const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
      workflowId: `lead:${t.channelAccountId}:${contactId}`,
      taskQueue,
      args: [leadInput(t, contactId)],
      signal: inboundSignal,
      signalArgs: [inbound(contactId, 1)],
    });
    // one message at a time, each sent as soon as the previous reply reaches Meta (the turn
    // may still be finishing): many turns, and the lead is never idle long
    for (let n = 2; n <= 8; n++) {
      await kit.env.sleep('10 seconds'); // past the burst debounce (3 s) and the pacing gap (6 s)
      await until(() => sentTo(contactId).length === n - 1, `reply ${n - 1}`);
      await handle.signal(inboundSignal, inbound(contactId, n));
    }
    await kit.env.sleep('10 seconds');
    await until(() => sentTo(contactId).length === 8, 'reply 8');
    // a redelivery of an early message, after several continue-as-new: still a duplicate
    await handle.signal(inboundSignal, inbound(contactId, 3));
    const state = await handle.query(stateQuery);
    // ~13 events a turn: 8 turns under a budget of 40 need at least 2 hand-overs
    expect(state.counters.runs).toBeGreaterThanOrEqual(3);
    expect(state.historyLength).toBeLessThan(40 + 40);
    // polled on the test server's clock: a query racing a continue-as-new is answered only
    // after the server's workflow-task timeout, which time skipping then fast-forwards
    for (let i = 0; i < 60 && (await handle.query(stateQuery)).counters.duplicates !== 1; i++) await kit.env.sleep('2 seconds');
    const after = await handle.query(stateQuery);
    expect(after.counters).toMatchObject({ inbound: 8, duplicates: 1, replies: 8 });
    expect(sentTo(contactId)).toHaveLength(8);
    const firstRun = await kit.env.client.workflow.getHandle(handle.workflowId, handle.signaledRunId).describe();
    expect(firstRun.status.name).toBe('CONTINUED_AS_NEW');
  }, budget(40));
});

test('a burst of signals around continue-as-new is handled: every message recorded exactly once', async () => {
  const t = await tenantWithChannel(100);
  const contactId = `c${randomBytes(4).toString('hex')}`;
  await withWorker(async (taskQueue) => {
    const wfInput = leadInput(t, contactId);
    const workflowId = `lead:${t.channelAccountId}:${contactId}`;
    // 30 messages a few ms apart, not waiting for replies: they arrive while turns run and
    // while runs hand over (the budget of 50 events is passed several times)
    for (let n = 1; n <= 30; n++) {
      if (n > 1) await new Promise((r) => setTimeout(r, 25));
      await kit.env.client.workflow.signalWithStart(leadConversation, {
        workflowId,
        taskQueue,
        args: [wfInput],
        signal: inboundSignal,
        signalArgs: [inbound(contactId, n)],
      });
    }
    const handle = kit.env.client.workflow.getHandle(workflowId);
    for (let i = 0; i < 6; i++) await kit.env.sleep('10 seconds'); // bursts flush, paced replies go out
    await until(async () => {
      const s = await handle.query(stateQuery);
      return s.counters.runs > 1 && s.counters.inbound === 30 && s.pendingInbound === 0 && s.counters.turns === s.counters.replies && s.leadId !== undefined;
    }, 'all 30 handled');
    const s = await handle.query(stateQuery);
    const msgs = await kit.services.leads.messages(t.tenantId, s.leadId!, { limit: 200 });
    const inboundRows = msgs.items.filter((m) => m.direction === 'inbound');
    expect(inboundRows).toHaveLength(30);
    expect(new Set(inboundRows.map((m) => m.providerMessageId)).size).toBe(30);
    const outboundRows = msgs.items.filter((m) => m.direction === 'outbound');
    expect(outboundRows.every((m) => m.status === 'sent')).toBe(true);
    expect(outboundRows).toHaveLength(sentTo(contactId).length);
    expect(s.counters.runs).toBeGreaterThan(1);
    expect(s.counters.duplicates).toBe(0);
    // the 30 messages became a few turns (burst debounce), each answered once
    expect(s.counters.replies).toBeGreaterThanOrEqual(1);
    expect(s.counters.replies).toBeLessThan(30);
  }, budget(50));
});
