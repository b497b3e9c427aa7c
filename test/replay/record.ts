/**
 * `npm run record:histories`: run Parley's reference scenarios on a real Temporal dev server
 * with the whole stack, and save each lead workflow's history under test/replay/histories/.
 * The replay test replays every saved history against the current workflow code, so a change
 * that would break running leads fails CI. Re-record only when a change is meant to be
 * incompatible (and then version the workflow with patched()).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { startDevServer } from '../../temporal/dev-server';
import { leadWorkflowId } from '../../workflows/lead/definitions';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

const OUT = path.join(__dirname, 'histories');
/**
 * Histories are kept per workflow version: v1-* were recorded before the conversation engine
 * (patch conversation-engine-v1) and must keep replaying; this script writes the current version.
 */
const PREFIX = 'v2-';

type Scenario = (stack: Stack) => Promise<string>;

async function idle(stack: Stack, workflowId: string, check: (s: NonNullable<Awaited<ReturnType<Stack['temporal']['leadState']>>>) => boolean) {
  await waitFor(async () => {
    const s = await stack.temporal.leadState(workflowId);
    return s && s.pendingInbound === 0 && check(s);
  }, { timeoutMs: 60_000, what: workflowId });
}

const scenarios: Record<string, Scenario> = {
  async 'reply-once'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, is my order shipped?')).expect(200);
    const wf = leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'duplicate-and-second-message'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const body = textWebhook(t.phoneNumberId, from, 'Do you ship to Pune?');
    await postWebhook(stack, body).expect(200);
    const wf = leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    await postWebhook(stack, body).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'And Mumbai?')).expect(200);
    await idle(stack, wf, (s) => s.counters.replies === 2 && s.counters.duplicates === 1);
    return wf;
  },
  async 'no-credit-blocked'(stack) {
    const t = await createTenant(stack, { credits: 0 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello?')).expect(200);
    const wf = leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.blockedTurns === 1);
    return wf;
  },
  async 'invalid-token-not-retried'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    stack.graph.failNext({ code: 190, to: from });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
    const wf = leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.failedReplies === 1);
    return wf;
  },
  async 'rate-limited-then-sent'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    stack.graph.failNext({ code: 130429, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Any discounts?')).expect(200);
    const wf = leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'llm-fallback-model'(stack) {
    const t = await createTenant(stack, { credits: 5, model: 'gpt-4.1-mini', fallbackModel: 'gpt-4o' });
    const from = randomWaId();
    stack.llm.failNext({ status: 404, code: 'model_not_found', model: 'gpt-4.1-mini' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Can I get a demo?')).expect(200);
    const wf = leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
};

async function main(): Promise<void> {
  const server = await startDevServer({ uiPort: false });
  process.env.PARLEY_TEST_TEMPORAL_ADDRESS = server.address;
  const stack = await startStack({ LOG_LEVEL: 'warn' });
  const smallBudget = await startStack({ LOG_LEVEL: 'warn', LEAD_EVENT_BUDGET: '50' });
  try {
    {
      // continue-as-new: the first run's history ends in ContinueAsNew with the carried state
      const t = await createTenant(smallBudget, { credits: 10 });
      const from = randomWaId();
      const wf = leadWorkflowId(t.channelId, from);
      for (let i = 1; i <= 3; i++) {
        await postWebhook(smallBudget, textWebhook(t.phoneNumberId, from, `Question ${i}`)).expect(200);
        await idle(smallBudget, wf, (s) => s.counters.replies === i);
      }
      await idle(smallBudget, wf, (s) => s.counters.runs > 1);
      let firstRunId: string | undefined;
      await waitFor(async () => {
        for await (const run of smallBudget.temporal.client.workflow.list({ query: `WorkflowId = '${wf}' AND ExecutionStatus = 'ContinuedAsNew'` })) {
          firstRunId = run.runId;
        }
        return firstRunId;
      }, { timeoutMs: 30_000, what: 'the continued-as-new run in visibility' });
      const history = await smallBudget.temporal.client.workflow.getHandle(wf, firstRunId).fetchHistory();
      if (history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes == null) throw new Error('first run did not end in continue-as-new');
      writeFileSync(path.join(OUT, `${PREFIX}continue-as-new.json`), historyToJSON(history) + '\n');
      console.log(`recorded continue-as-new: ${history.events?.length ?? 0} events`);
    }
    for (const [name, run] of Object.entries(scenarios)) {
      const workflowId = await run(stack);
      const history = await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory();
      writeFileSync(path.join(OUT, `${PREFIX}${name}.json`), historyToJSON(history) + '\n');
      console.log(`recorded ${name}: ${history.events?.length ?? 0} events`);
    }
  } finally {
    await stack.stop();
    await smallBudget.stop();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
