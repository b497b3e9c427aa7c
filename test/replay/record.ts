/**
 * `npm run record:histories`: run Parley's reference scenarios on a real Temporal dev server
 * with the whole stack, and save each lead workflow's history under test/replay/histories/.
 * The replay test replays every saved history against the current workflow code, so a change
 * that would break running leads fails CI. After the first release, an incompatible change gets
 * a named patch and its own set of histories under the same name.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { startDevServer } from '../../temporal/dev-server';
import { instagramTextWebhook, whatsAppStatusWebhook } from '../../fakes/meta-webhooks';
import { signMetaBody } from '../../lib/crypto';
import { APP_SECRET, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

/**
 * Histories are kept in sets, one folder each under test/replay/histories: `baseline/` is the
 * workflow as first released; a change that needs a `patched('name')` branch records its own set
 * under the same name (`npm run record:histories -- --name name`). Every set must keep replaying.
 */
const nameAt = process.argv.indexOf('--name');
const SET = nameAt > 0 ? process.argv[nameAt + 1] ?? '' : 'baseline';
if (!/^[a-z0-9][a-z0-9-]*$/.test(SET)) throw new Error(`--name must be a patch name in kebab case, got "${SET}"`);
const OUT = path.join(__dirname, 'histories', SET);
const PREFIX = '';

type Scenario = (stack: Stack) => Promise<string>;

async function idle(stack: Stack, workflowId: string, check: (s: NonNullable<Awaited<ReturnType<Stack['temporal']['leadState']>>>) => boolean) {
  let last: unknown;
  try {
    await waitFor(async () => {
      const s = await stack.temporal.leadState(workflowId);
      last = s;
      return s && s.pendingInbound === 0 && check(s);
    }, { timeoutMs: 60_000, what: workflowId });
  } catch (err) {
    console.error(`the last state of ${workflowId}: ${JSON.stringify(last)}`);
    throw err;
  }
}

const scenarios: Record<string, Scenario> = {
  async 'reply-once'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, is my order shipped?')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'duplicate-and-second-message'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const body = textWebhook(t.phoneNumberId, from, 'Do you ship to Pune?');
    await postWebhook(stack, body).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
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
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.blockedTurns === 1);
    return wf;
  },
  async 'circuit-wait-and-resume'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 190, to: from });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.circuitWaitSince !== undefined);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth).send({ accessToken: 'EAAG-replaced-token-123' }).expect(200);
    await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(auth).expect(200);
    await idle(stack, wf, (s) => s.counters.replies === 1 && s.circuitWaitSince === undefined);
    return wf;
  },
  async 'manual-message-queued-behind-circuit'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 190, to: from });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.circuitWaitSince !== undefined);
    const lead = (await stack.api.get('/v1/leads?limit=200').set(auth)).body.items.find((l: { contactId: string }) => l.contactId === from);
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ text: 'A colleague will send it shortly' }).expect(202);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth).send({ accessToken: 'EAAG-replaced-token-123' }).expect(200);
    await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(auth).expect(200);
    await idle(stack, wf, (s) => s.counters.replies === 2 && s.circuitWaitSince === undefined);
    return wf;
  },
  async 'redelivery-after-burst'(stack) {
    // a burst, then Meta redelivers its first message: the database says it is not new
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const first = textWebhook(t.phoneNumberId, from, 'First part');
    await postWebhook(stack, first).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Second part')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    await postWebhook(stack, first).expect(200);
    await idle(stack, wf, (s) => s.counters.duplicates === 1);
    return wf;
  },
  async 'dead-letter-replay'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 131000, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Do you ship to Lisbon?')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => (s.deadLetters?.length ?? 0) === 1);
    const s = await stack.temporal.leadState(wf);
    await stack.api.post(`/v1/dead-letters/${s!.deadLetters![0]!.id}/replay`).set(auth).expect(200);
    await idle(stack, wf, (x) => x.counters.replies === 1 && (x.deadLetters?.length ?? 0) === 0);
    return wf;
  },
  async 'dead-letter-discard-and-llm-reply'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 131016, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'First question')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => (s.deadLetters?.length ?? 0) === 1);
    const first = (await stack.temporal.leadState(wf))!.deadLetters![0]!.id;
    await stack.api.post(`/v1/dead-letters/${first}/discard`).set(auth).expect(200);
    stack.llm.failNext({ status: 401, code: 'invalid_api_key', times: 1 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Second question')).expect(200);
    await idle(stack, wf, (s) => (s.deadLetters?.length ?? 0) === 1 && s.deadLetters![0]!.id !== first);
    const second = (await stack.temporal.leadState(wf))!.deadLetters![0]!.id;
    await stack.api.post(`/v1/dead-letters/${second}/replay`).set(auth).expect(200);
    await idle(stack, wf, (s) => s.counters.replies === 1 && (s.deadLetters?.length ?? 0) === 0);
    return wf;
  },
  async 'failed-status-window-closed'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    const sent = stack.graph.sentMessages().find((r) => (r.body as { to?: string }).to === from)!;
    const wamid = (sent.response.body as { messages: { id: string }[] }).messages[0]!.id;
    const failed = whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: wamid, status: 'failed', recipientId: from, errors: [{ code: 131047, title: 'Re-engagement message' }] });
    await postWebhook(stack, failed).expect(200);
    await postWebhook(stack, failed).expect(200);
    await idle(stack, wf, (s) => s.providerWindowClosedAt !== undefined);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Still there?')).expect(200);
    await idle(stack, wf, (s) => s.counters.replies === 2);
    return wf;
  },
  async 'webchat-reply'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const channel = await stack.api.post('/v1/channels').set(auth).send({ platform: 'webchat', agentId: t.agentId }).expect(201);
    const visitor = await stack.api.post(`/webchat/${channel.body.widgetKey}/visitors`).send({}).expect(201);
    const sent = await stack.api
      .post(`/webchat/${channel.body.widgetKey}/messages`)
      .set('authorization', `Bearer ${visitor.body.visitorToken}`)
      .send({ text: 'Do you have a free trial?', clientMessageId: 'm-1' })
      .expect(202);
    // the dedup id is webchat:{contactId}:{clientMessageId}; the contact id names the workflow
    const contactId = (sent.body.messageId as string).split(':')[1]!;
    const wf = stack.leadWorkflowId(channel.body.id, contactId);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'instagram-reply'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const igAccountId = `178414${randomInt(1_000_000_000, 9_999_999_999)}`;
    const channel = await stack.api
      .post('/v1/channels')
      .set(auth)
      .send({ platform: 'instagram', phoneNumberId: igAccountId, accessToken: 'IGAA-record-token-1234', verifyToken: 'ig-verify-record', agentId: t.agentId })
      .expect(201);
    const igsid = String(randomInt(1_000_000_000_000, 9_999_999_999_999));
    const raw = JSON.stringify(instagramTextWebhook({ igAccountId, from: igsid, text: 'Do you ship to Pune?' }));
    await stack.api.post('/webhooks/instagram').set('content-type', 'application/json').set('x-hub-signature-256', signMetaBody(raw, APP_SECRET)).send(raw).expect(200);
    const wf = stack.leadWorkflowId(channel.body.id, igsid);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'rate-limited-then-sent'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    stack.graph.failNext({ code: 130429, to: from, times: 1 }); // the recorder's stack tries a send twice
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Any discounts?')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'llm-fallback-model'(stack) {
    const t = await createTenant(stack, { credits: 5, model: 'gpt-4.1-mini', fallbackModel: 'gpt-4o' });
    const from = randomWaId();
    stack.llm.failNext({ status: 404, code: 'model_not_found', model: 'gpt-4.1-mini' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Can I get a demo?')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    return wf;
  },
  async 'burst-one-turn'(stack) {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    for (let i = 1; i <= 5; i++) await postWebhook(stack, textWebhook(t.phoneNumberId, from, `part ${i}`)).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.inbound === 5 && s.counters.replies >= 1);
    return wf;
  },
  async 'sequence-steps-and-reset'(stack) {
    const t = await createTenant(stack, { credits: 20 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    await stack.api.post('/v1/templates').set(auth).send({ name: 'follow_up', language: 'en', category: 'marketing', body: 'Hi {{1}}, still interested?', approved: true }).expect(201);
    const seq = await stack.api
      .post('/v1/sequences')
      .set(auth)
      .send({
        name: 'Nudge',
        steps: [
          { delayMs: 300, kind: 'text', text: 'Following up!' },
          { delayMs: 300, kind: 'template', template: { name: 'follow_up', language: 'en', variables: ['Priya'] } },
          { delayMs: 300, kind: 'ai', aiInstruction: 'Ask whether they want a demo' },
        ],
        stopOn: ['lead_replied'],
      })
      .expect(201);
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    const lead = (await stack.api.get('/v1/leads').set(auth)).body.items[0];
    await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth).send({ sequenceId: seq.body.id }).expect(200);
    await idle(stack, wf, (s) => s.sequence?.cursor.status === 'completed');
    await stack.api.post(`/v1/leads/${lead.id}/sequence/reset`).set(auth).send({}).expect(200);
    await stack.api.post(`/v1/leads/${lead.id}/sequence/pause`).set(auth).send({}).expect(200);
    await stack.api.post(`/v1/leads/${lead.id}/sequence/resume`).set(auth).send({}).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Stop, I have a question')).expect(200);
    await idle(stack, wf, (s) => s.sequence?.cursor.status === 'stopped' && s.counters.turns === 2);
    return wf;
  },
  async 'handoff-manual-handback-stage'(stack) {
    const t = await createTenant(stack, { credits: 20 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.replies === 1);
    const lead = (await stack.api.get('/v1/leads').set(auth)).body.items[0];
    await stack.api.post(`/v1/leads/${lead.id}/handoff`).set(auth).send({}).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'A person please')).expect(200);
    await idle(stack, wf, (s) => s.counters.inbound === 2);
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ text: 'Sam here, how can I help?' }).expect(201);
    await stack.api.post(`/v1/leads/${lead.id}/stage`).set(auth).send({ stage: 'Qualified' }).expect(200);
    await stack.api.post(`/v1/leads/${lead.id}/handback`).set(auth).send({}).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Thanks!')).expect(200);
    await idle(stack, wf, (s) => s.counters.replies === 3);
    return wf;
  },
  async 'window-closed-template'(stack) {
    const t = await createTenant(stack, { credits: 20 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    await stack.api.post('/v1/templates').set(auth).send({ name: 'reengage', language: 'en', category: 'marketing', body: 'Hi {{1}}!', approved: true }).expect(201);
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Old message', { timestamp: Math.floor(Date.now() / 1000) - 2 * 86400 })).expect(200);
    const wf = stack.leadWorkflowId(t.channelId, from);
    await idle(stack, wf, (s) => s.counters.turns === 1);
    const lead = (await stack.api.get('/v1/leads').set(auth)).body.items[0];
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ text: 'Hello again' }).expect(409);
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ template: { name: 'reengage', language: 'en', variables: ['Priya'] } }).expect(201);
    return wf;
  },
};

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const server = await startDevServer({ uiPort: false });
  process.env.PARLEY_TEST_TEMPORAL_ADDRESS = server.address;
  // recorded histories stay in clear: the replayer has no data keys (they pass through its codec)
  const stack = await startStack({ LOG_LEVEL: 'warn', LEAD_DELIVERY_MAX_ATTEMPTS: '2', PARLEY_PAYLOAD_CODEC: 'false' });
  const smallBudget = await startStack({ LOG_LEVEL: 'warn', LEAD_EVENT_BUDGET: '50', PARLEY_PAYLOAD_CODEC: 'false' });
  try {
    {
      // continue-as-new: the first run's history ends in ContinueAsNew with the carried state
      const t = await createTenant(smallBudget, { credits: 10 });
      const from = randomWaId();
      const wf = stack.leadWorkflowId(t.channelId, from);
      // turns until the history passes the budget (about 12 events a turn)
      for (let i = 1; i <= 8; i++) {
        await postWebhook(smallBudget, textWebhook(t.phoneNumberId, from, `Question ${i}`)).expect(200);
        await idle(smallBudget, wf, (s) => s.counters.replies === i);
        if (((await smallBudget.temporal.leadState(wf))?.counters.runs ?? 1) > 1) break;
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
