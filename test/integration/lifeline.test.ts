/**
 * A lead's lifeline: a value the database refuses for good never stalls the lead (it is parked,
 * not retried forever), database error text with values never reaches logs or Temporal, and the
 * database's unique message id decides what is new even after the dedup window forgot it.
 * Real Temporal (dev server), real database, fake Meta and LLM.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { toolCallReply } from '../../fakes/openai';
import { readableHistory } from '../../temporal/readable-history';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  // a tiny dedup window, so a redelivery is older than what the workflow remembers
  stack = await startStack({ LEAD_DEDUP_WINDOW: '10', LEAD_EXTRACTION_IDLE_MS: '1500', LEAD_DEBOUNCE_GAP_MS: '400' });
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: TenantFixture) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
const wamid = () => `wamid.${randomBytes(16).toString('hex')}`;

async function leadOf(t: TenantFixture, contactId: string) {
  return waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === contactId), {
    what: `lead ${contactId}`,
  }) as Promise<{ id: string; workflowId: string }>;
}

/** Every activity failure in a workflow's histories (all runs): type, message, non-retryable. */
async function activityFailures(workflowId: string) {
  const out: { activity: string; type?: string; message: string; nonRetryable: boolean; attempt: number }[] = [];
  const handle = stack.temporal.client.workflow.getHandle(workflowId);
  // raw, a failure's message reads "Encoded failure" (its text is in an encrypted payload): decode it
  const history = await readableHistory(await handle.fetchHistory(), stack.core.payloadCodec);
  const scheduled = new Map<string, string>();
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
    const f = e.activityTaskFailedEventAttributes;
    if (f) {
      const app = f.failure?.applicationFailureInfo;
      out.push({
        activity: scheduled.get(String(f.scheduledEventId)) ?? '',
        type: app?.type ?? undefined,
        message: f.failure?.message ?? '',
        nonRetryable: Boolean(app?.nonRetryable),
        attempt: 0,
      });
    }
  }
  return out;
}

/** What the workflow is retrying right now (a stalled lead shows an activity with many attempts). */
async function pendingAttempts(workflowId: string): Promise<number> {
  const d = await stack.temporal.client.workflowService.describeWorkflowExecution({
    namespace: stack.config.TEMPORAL_NAMESPACE,
    execution: { workflowId },
  });
  return Math.max(0, ...(d.pendingActivities ?? []).map((a) => a.attempt ?? 0));
}

describe('a value the database refuses never stalls the lead', () => {
  test('the AI\'s handoff reason cut mid-emoji (a lone surrogate) is stored well formed; after a handback the lead is answered', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    stack.llm.script([toolCallReply('handoff_to_human', { reason: 'wants a bulk price \uD83D' })]);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Who can I talk to about 500 units?')).expect(200);
    const lead = await leadOf(t, from);
    const s = await waitFor(async () => {
      const st = await stack.temporal.leadState(lead.workflowId);
      return st?.mode === 'human' ? st : undefined;
    }, { what: 'human mode' });
    expect(s.mode).toBe('human');
    const ev = await waitFor(async () => {
      const d = await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t)).expect(200);
      return d.body.events.find((e: { type: string }) => e.type === 'llm_handoff');
    }, { what: 'llm_handoff event' });
    expect(ev.data.reason).toBe('wants a bulk price \uFFFD');

    await stack.api.post(`/v1/leads/${lead.id}/handback`).set(auth(t)).send({}).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Still there?')).expect(200);
    await waitFor(() => sentTo(from).length === 1, { what: 'reply after the handback', timeoutMs: 30_000 });
  });

  test('a 12-digit Meta timestamp (year 33658) is bounded: recorded, answered, and the next message is answered too', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello from the future', { timestamp: 999_999_999_999 })).expect(200);
    await waitFor(() => sentTo(from).length === 1, { what: 'first reply', timeoutMs: 30_000 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'And now?')).expect(200);
    await waitFor(() => sentTo(from).length === 2, { what: 'second reply', timeoutMs: 30_000 });
    const lead = await leadOf(t, from);
    const messages = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items as { direction: string; sentAt: string }[];
    for (const m of messages.filter((x) => x.direction === 'inbound')) expect(new Date(m.sentAt).getUTCFullYear()).toBeLessThan(3000);
    const st = await stack.temporal.leadState(lead.workflowId);
    expect(new Date(st!.lastInboundAt!).getUTCFullYear()).toBeLessThan(3000);
  });

  test('an extraction failure recorded for a lead whose rows are gone is refused once (not retried), parked, and the loop goes on', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there')).expect(200);
    await waitFor(() => sentTo(from).length === 1, { what: 'first reply', timeoutMs: 30_000 });
    const lead = await leadOf(t, from);
    // the lead's rows disappear (erased by hand); the extraction then fails and its failure cannot be recorded
    await stack.core.database.db.execute(sql`delete from leads where id = ${lead.id}`);
    const refused = await waitFor(async () => (await activityFailures(lead.workflowId)).find((f) => f.activity === 'recordExtractionFailure'), {
      what: 'the refused extraction failure',
      timeoutMs: 60_000,
    });
    expect(refused).toMatchObject({ type: 'database_rejected', nonRetryable: true });
    expect(refused.message).toMatch(/SQLSTATE 23503/);
    expect(refused.message).not.toContain(lead.id);
    // the workflow is not stuck retrying, and still takes the next message (a turn runs)
    const before = (await stack.temporal.leadState(lead.workflowId))!.counters.turns;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Anyone?')).expect(200);
    const after = await waitFor(async () => {
      const st = await stack.temporal.leadState(lead.workflowId);
      return st && st.counters.turns > before && st.pendingInbound === 0 ? st : undefined;
    }, { what: 'the next turn', timeoutMs: 30_000 });
    expect(after.deadLetters?.some((d) => d.kind === 'database')).toBe(true);
    await waitFor(async () => (await pendingAttempts(lead.workflowId)) <= 1, { what: 'no activity retrying' });
  });

  test('database error text with values never reaches the logs or Temporal failure messages', async () => {
    const lines = stack.logLines.join('\n');
    expect(stack.logLines.filter((l) => l.includes('params:'))).toEqual([]);
    // the webhook's own note of the replaced timestamp names it on purpose; no database error may
    const dbLines = stack.logLines.filter((l) => !l.includes('webhook items cut to fit limits')).join('\n');
    expect(dbLines).not.toContain('+033658');
    expect(lines).not.toContain('Failed query');
  });
});

describe('the database decides whether an inbound message is new', () => {
  test('a redelivery older than the dedup window gets no second reply and no second charge', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const from = randomWaId();
    const first = wamid();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Question one', { id: first })).expect(200);
    await waitFor(() => sentTo(from).length === 1, { what: 'reply 1', timeoutMs: 30_000 });
    // a burst of ten more messages (one turn) pushes the first id out of the workflow's window (LEAD_DEDUP_WINDOW=10)
    for (let i = 0; i < 10; i++) await postWebhook(stack, textWebhook(t.phoneNumberId, from, `Part ${i + 1}`)).expect(200);
    await waitFor(() => sentTo(from).length === 2, { what: 'reply 2', timeoutMs: 30_000 });
    const lead = await leadOf(t, from);
    const before = (await stack.temporal.leadState(lead.workflowId))!;
    expect(before.seenInboundIds).not.toContain(first);
    // Meta redelivers the first message
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Question one', { id: first })).expect(200);
    const after = await waitFor(async () => {
      const st = await stack.temporal.leadState(lead.workflowId);
      return st && st.counters.duplicates > before.counters.duplicates && st.pendingInbound === 0 ? st : undefined;
    }, { what: 'redelivery handled', timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(sentTo(from)).toHaveLength(2);
    expect(after.counters.turns).toBe(2);
    const credits = (await stack.api.get('/v1/credits').set(auth(t)).expect(200)).body;
    expect(credits).toMatchObject({ balance: 8, reserved: 0 });
  });
});

describe('manual messages while the channel\'s circuit is open', () => {
  test('answer 202 queued at once (more of them than the workflow\'s in-flight update limit), and go out once the circuit closes', async () => {
    const t = await createTenant(stack, { credits: 30 });
    const from = randomWaId();
    stack.graph.failNext({ code: 190, to: from, message: 'Error validating access token' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
    await waitFor(async () => (await stack.api.get(`/v1/channels/${t.channelId}`).set(auth(t)).expect(200)).body.circuit.state === 'open', { what: 'circuit open' });
    const lead = await leadOf(t, from);
    await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.circuitWaitSince, { what: 'the lead waits for the circuit' });

    // 12 concurrent manual messages: Temporal allows 10 updates in flight per workflow
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ text: `Manual ${i + 1}` }).timeout(20_000)),
    );
    expect(Date.now() - started).toBeLessThan(20_000);
    for (const a of answers) expect({ status: a.status, body: a.body }).toMatchObject({ status: 202, body: { status: 'queued' } });

    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ accessToken: `EAAG${randomBytes(16).toString('hex')}` }).expect(200);
    await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(auth(t)).send({}).expect(200);
    await waitFor(() => sentTo(from).length === 13, { what: 'the reply and 12 manual messages sent', timeoutMs: 60_000 });
    const texts = sentTo(from).map((r) => (r.body as { text?: { body?: string } }).text?.body);
    for (let i = 1; i <= 12; i++) expect(texts.filter((x) => x === `Manual ${i}`)).toHaveLength(1);
  });
});
