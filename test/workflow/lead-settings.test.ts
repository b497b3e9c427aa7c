/**
 * Lead settings are the worker's (LEAD_* config), not the start input's: a lead started under
 * settings A keeps running after the worker restarts with settings B, and its next run (after
 * continue-as-new) uses B. Time-skipping test server, the real activities.
 */
import { randomBytes } from 'node:crypto';
import { inboundSignal, stateQuery, type LeadStateSnapshot, type LeadWorkflowSettings } from '../../workflows/lead/definitions';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, leadWorkflowId } from './support';

jest.setTimeout(180_000);

const kit = createWorkflowTestKit();

/** A: a small event budget (a run hands over after a few turns) and the default 3 s debounce. */
const A: LeadWorkflowSettings = { eventBudget: 60, dedupWindow: 100 };
/** B: a long debounce (messages 10 s apart are one turn) and a budget no test run reaches. */
const B: LeadWorkflowSettings = { eventBudget: 2000, dedupWindow: 100, debounce: { gapMs: 30_000, maxWaitMs: 60_000 } };

test('a lead started under settings A uses settings B from its next run once the worker restarts with B', async () => {
  const t = await kit.tenantWithChannel(50);
  const contactId = `c${randomBytes(4).toString('hex')}`;
  const workflowId = leadWorkflowId(t.channelAccountId, contactId);
  const taskQueue = `wf-${randomBytes(6).toString('hex')}`;
  const handle = kit.env.client.workflow.getHandle(workflowId);
  let n = 0;
  const say = async () => handle.signal(inboundSignal, inboundText(contactId, ++n, await kit.serverNow()));
  /** The state once every message is answered; polled on the server's clock (a query racing a continue-as-new waits for it). */
  const settled = async (what: string): Promise<LeadStateSnapshot> => {
    for (let i = 0; i < 60; i++) {
      const s = await handle.query(stateQuery);
      if (s.counters.inbound === n && s.pendingInbound === 0 && s.counters.replies === s.counters.turns && kit.sentTo(contactId).length === s.counters.replies) return s;
      await kit.env.sleep('2 seconds');
    }
    throw new Error(`not settled: ${what}`);
  };
  /** One message, answered before the next (under A at once; `settled` also waits out B's 30 s debounce). */
  const turn = async () => {
    await say();
    await kit.env.sleep('10 seconds'); // past a 3 s debounce and the 6 s pacing gap
    return settled(`message ${n}`);
  };

  try {
    const before = await kit.withWorkerOn(
      taskQueue,
      async () => {
        await kit.env.client.workflow.signalWithStart(leadConversation, {
          workflowId,
          taskQueue,
          args: [leadInput(t, contactId)], // no settings: the worker's ensureLead supplies them
          signal: inboundSignal,
          signalArgs: [inboundText(contactId, ++n, await kit.serverNow())],
        });
        await kit.env.sleep('10 seconds');
        let s = await settled('the first message');
        // A's budget of 60 events (~20 a turn): the lead continues as new within a few turns
        for (let i = 0; i < 6 && s.counters.runs < 2; i++) s = await turn();
        expect(s.counters.runs).toBeGreaterThanOrEqual(2);
        expect(s.counters.turns).toBe(n); // A's 3 s debounce: one turn per message 10 s apart
        return s;
      },
      { settings: A, cache: false },
    );

    await kit.withWorkerOn(
      taskQueue,
      async () => {
        // the run under way took A at its start; it hands over at A's budget, and the next run asks the new worker
        let s = before;
        for (let i = 0; i < 6 && s.counters.runs === before.counters.runs; i++) s = await turn();
        expect(s.counters.runs).toBe(before.counters.runs + 1);
        const { turns, runs } = s.counters;

        // B's debounce: two messages 10 s apart are still one burst 20 s after the first (A would have answered each)
        await say();
        await kit.env.sleep('10 seconds');
        await say();
        await kit.env.sleep('10 seconds');
        expect((await handle.query(stateQuery)).counters.turns).toBe(turns);
        expect(kit.sentTo(contactId)).toHaveLength(turns);
        await kit.env.sleep('25 seconds'); // 30 s after the second message
        s = await settled('the burst under B');
        expect(s.counters.turns).toBe(turns + 1);
        expect(s.counters.inbound).toBe(n);

        // B's budget of 2000 events: turns past A's 60 events and the run does not hand over
        for (let i = 0; i < 8 && s.historyLength <= A.eventBudget + 20; i++) {
          await say();
          await kit.env.sleep('35 seconds'); // past B's 30 s debounce
          s = await settled(`message ${n} under B`);
        }
        expect(s.counters.runs).toBe(runs);
        expect(s.historyLength).toBeGreaterThan(A.eventBudget);
      },
      { settings: B },
    );
  } finally {
    await handle.terminate('test over').catch(() => undefined); // a running lead would stop the server skipping time
  }
});
