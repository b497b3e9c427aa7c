/**
 * A lead's workflow state and history stay bounded through the worst a lead can go through:
 * 500 failed turns (each parked as a dead letter) and then a week in which every send waits on
 * an open circuit breaker while the lead keeps writing. Time-skipping test server, real
 * database activities; the LLM and the send are replaced to fail on demand.
 *
 * Prints the numbers (`LIFELINE_BOUNDS` line): history length of every run and the JSON bytes of
 * every continue-as-new input.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { circuitClosedSignal, inboundSignal, stateQuery, type InboundMessage } from '../../workflows/lead/definitions';
import { MAX_PARKED_IN_STATE } from '../../workflows/lead/policy/bounds';
import { leadConversation } from '../../workflows/lead/workflow';
import { createWorkflowTestKit, inboundText, leadInput, until } from './support';

jest.setTimeout(600_000);

const kit = createWorkflowTestKit();
const { tenantWithChannel, withWorker, sentTo } = kit;

const EVENT_BUDGET = 2000; // LEAD_EVENT_BUDGET's default
const FAILED_TURNS = 500;
const MESSAGES_DURING_OUTAGE = 300;

/** Every run of a workflow, first to last: its history length and the bytes of its input. */
async function runs(workflowId: string, firstRunId: string) {
  const out: { runId: string; events: number; inputBytes: number }[] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const history: temporal.api.history.v1.IHistory = await kit.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    const inputBytes = (started?.input?.payloads ?? []).reduce((n, p) => n + (p.data?.length ?? 0), 0);
    out.push({ runId, events: events.length, inputBytes });
    const last = events[events.length - 1];
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return out;
}

test('500 failed turns and a week behind an open circuit: the state and every run\'s history stay bounded, and the lead is answered after', async () => {
  const t = await tenantWithChannel(2000);
  const contactId = `c${randomBytes(4).toString('hex')}`;
  let llmFails = true;
  let circuitOpen = false;
  const workflowId = `lead:${t.channelAccountId}:${contactId}`;
  let n = 0;
  /** The lead's next message, written now by the test server's (skipped) clock. */
  const next = async (text?: string): Promise<InboundMessage> => {
    n += 1;
    const m = inboundText(contactId, n, await kit.serverNow());
    return text ? { ...m, text } : m;
  };
  await withWorker(
    async (taskQueue) => {
      const handle = await kit.env.client.workflow.signalWithStart(leadConversation, {
        workflowId,
        taskQueue,
        args: [leadInput(t, contactId)],
        signal: inboundSignal,
        signalArgs: [await next()],
      });
      const firstRunId = handle.signaledRunId;

      // 500 turns whose LLM call fails: each parked as a 'reply' dead letter
      for (let i = 1; i < FAILED_TURNS; i++) {
        await kit.env.sleep('2 seconds');
        await handle.signal(inboundSignal, await next());
      }
      await kit.env.sleep('2 seconds');
      let afterFailures = await kit.env.client.workflow.getHandle(workflowId).query(stateQuery);
      for (let i = 0; i < 30 && (afterFailures.pendingInbound > 0 || afterFailures.counters.failedReplies < afterFailures.counters.turns); i++) {
        await kit.env.sleep('2 seconds');
        afterFailures = await kit.env.client.workflow.getHandle(workflowId).query(stateQuery);
      }
      // one turn per message (on a loaded machine two messages may share a turn): every turn failed and was parked
      expect(afterFailures.counters.turns).toBeGreaterThanOrEqual(FAILED_TURNS - 10);
      expect(afterFailures.counters.failedReplies).toBe(afterFailures.counters.turns);
      // only ids in the state, capped; the operations are in the dead_letters table
      expect(afterFailures.deadLetters!.length).toBe(MAX_PARKED_IN_STATE);
      for (const d of afterFailures.deadLetters!) expect(Object.keys(d).sort()).toEqual(['id', 'kind', 'parkedAt']);
      expect((await kit.services.deadLetters.list(t.tenantId, { status: 'open', limit: 200 })).nextCursor).not.toBeNull();

      // then the channel's circuit opens: the next reply waits for a week while the lead keeps writing
      llmFails = false;
      circuitOpen = true;
      await kit.env.client.workflow.getHandle(workflowId).signal(inboundSignal, await next('are you there?'));
      await kit.env.sleep('10 seconds');
      const perStep = (7 * 24 * 3600) / MESSAGES_DURING_OUTAGE;
      for (let i = 0; i < MESSAGES_DURING_OUTAGE; i++) {
        await kit.env.sleep(`${Math.round(perStep)} seconds`);
        await kit.env.client.workflow.getHandle(workflowId).signal(inboundSignal, await next(`still waiting ${i} ${'x'.repeat(2000)}`));
      }
      const waiting = await kit.env.client.workflow.getHandle(workflowId).query(stateQuery);
      expect(waiting.circuitWaitSince).toBeDefined();
      expect(sentTo(contactId)).toHaveLength(0);

      const all = await runs(workflowId, firstRunId);
      const maxEvents = Math.max(...all.map((r) => r.events));
      const maxInput = Math.max(...all.map((r) => r.inputBytes));
      const last = all[all.length - 1]!;
      console.log(
        `LIFELINE_BOUNDS runs=${all.length} maxHistoryEvents=${maxEvents} currentRunEvents=${last.events} maxContinueAsNewInputBytes=${maxInput} lastInputBytes=${last.inputBytes} ` +
          `deadLettersInState=${waiting.deadLetters?.length ?? 0} pendingInbound=${waiting.pendingInbound}`,
      );
      // every run stays near the event budget (a turn in flight may finish first), every hand-over small
      expect(maxEvents).toBeLessThan(EVENT_BUDGET + 600);
      expect(maxInput).toBeLessThan(256 * 1024);
      expect(all.length).toBeGreaterThan(4);

      // the circuit closes: the waiting reply goes out, then the lead's messages of the week are answered
      circuitOpen = false;
      await kit.env.client.workflow.getHandle(workflowId).signal(circuitClosedSignal);
      await kit.env.sleep('1 minute');
      await until(() => sentTo(contactId).length >= 2, 'the waiting reply and the answer to the week', 120_000).catch(async (err: unknown) => {
        console.log('state after the circuit closed', JSON.stringify(await kit.env.client.workflow.getHandle(workflowId).query(stateQuery)).slice(0, 3000));
        throw err;
      });
      const end = await kit.env.client.workflow.getHandle(workflowId).query(stateQuery);
      expect(end.pendingInbound).toBe(0);
    },
    {
      settings: {
        eventBudget: EVENT_BUDGET,
        dedupWindow: 500,
        debounce: { gapMs: 100, maxWaitMs: 500 },
        extractionIdleMs: 0,
        bumpUp: { idleMs: 4 * 3600_000, maxPerConversation: 2, maxWords: 40, channels: [] },
      },
      wrap: (real) => ({
        // the one-activity turn fails while the wrapped steps below would: the workflow falls back to them
        async replyTurn(input) {
          if (llmFails || circuitOpen) throw ApplicationFailure.create({ type: 'provider_transient', message: 'the one-activity turn is not used in this outage', nonRetryable: true });
          return real.replyTurn(input);
        },
        async generateReply(input) {
          if (llmFails) throw ApplicationFailure.create({ type: 'llm_config', message: 'the LLM refused the key', nonRetryable: true });
          return real.generateReply(input);
        },
        async sendWhatsAppText(input) {
          if (circuitOpen) throw ApplicationFailure.create({ type: 'channel_circuit_open', message: 'circuit open', nonRetryable: true });
          return real.sendWhatsAppText(input);
        },
        async channelCircuitState() {
          return circuitOpen ? ('open' as const) : ('closed' as const);
        },
        async markWhatsAppRead() {
          return undefined as never;
        },
      }),
    },
  );
});
