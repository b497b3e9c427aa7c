import { temporal } from '@temporalio/proto';
import { OFFLINE_REPLY_MARKER } from '../../fakes/openai';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

function sendsTo(to: string) {
  return stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
}

/** History events and completed workflow tasks of a lead's current run. */
/**
 * Events and completed workflow tasks so far, and how many of those tasks were heartbeats (a
 * task completed with nothing in it and a new one taken at once: a workflow task that ran long,
 * e.g. on a loaded machine; counted apart, not hidden).
 */
async function historyCost(workflowId: string): Promise<{ events: number; tasks: number; heartbeats: number; types: string[] }> {
  const history = await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const types = events.map((e) => (temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType)).replace('EVENT_TYPE_', ''));
  const heartbeats = events.filter((e, i) => e.workflowTaskCompletedEventAttributes && events[i + 1]?.workflowTaskScheduledEventAttributes).length;
  return { events: events.length, tasks: events.filter((e) => e.workflowTaskCompletedEventAttributes).length, heartbeats, types };
}

describe('the cost of a turn (README: 18 events and 3 workflow tasks)', () => {
  test('a new lead\'s first turn takes at most 20 history events, an ordinary later turn 18, and each 3 workflow tasks', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const wf = stack.leadWorkflowId(t.channelId, from);
    const idleAfter = async (replies: number) => {
      await waitFor(async () => {
        const s = await stack.temporal.leadState(wf);
        return s && s.counters.replies === replies && s.pendingInbound === 0 && s.extractionDueAt !== undefined;
      }, { what: `reply ${replies} settled` });
      // the turn's last task is complete once the history stops growing
      let before = await historyCost(wf);
      for (;;) {
        await new Promise((r) => setTimeout(r, 300));
        const now = await historyCost(wf);
        if (now.events === before.events) return now;
        before = now;
      }
    };
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, what does the premium plan cost?')).expect(200);
    const first = await idleAfter(1);
    console.log(`first turn: ${first.events} events, ${first.tasks} workflow tasks (${first.heartbeats} heartbeats): ${first.types.join(' ')}`);
    expect(first.events - 3 * first.heartbeats).toBeLessThanOrEqual(20);
    expect(first.tasks - first.heartbeats).toBeLessThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 400)); // past the test stack's pacing gap (200 ms)
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'And does it include onboarding?')).expect(200);
    const second = await idleAfter(2);
    console.log(`ordinary turn: ${second.events - first.events} events, ${second.tasks - first.tasks} workflow tasks (${second.heartbeats - first.heartbeats} heartbeats): ${second.types.slice(first.events).join(' ')}`);
    const heartbeats = second.heartbeats - first.heartbeats;
    expect(second.events - first.events - 3 * heartbeats).toBeLessThanOrEqual(18);
    expect(second.tasks - first.tasks - heartbeats).toBeLessThanOrEqual(3);
    // allowed on a loaded machine, not as the rule
    expect(first.heartbeats + heartbeats).toBeLessThanOrEqual(2);
    expect(sendsTo(from)).toHaveLength(2);
  });
});

describe('one lead, end to end', () => {
  test('an inbound text gets one AI reply, recorded, delivered and paid for', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const body = textWebhook(t.phoneNumberId, from, 'Hi, is my order #A1043 shipped yet?');
    const res = await postWebhook(stack, body).expect(200);
    expect(res.body).toMatchObject({ received: 1, ignored: 0 });

    const [sent] = await waitFor(() => (sendsTo(from).length ? sendsTo(from) : undefined), { what: 'reply at the fake Graph API' });
    expect(sent!.phoneNumberId).toBe(t.phoneNumberId);
    expect(sent!.authorization).toBe(`Bearer ${t.accessToken}`);
    const sentBody = sent!.body as { type: string; text: { body: string }; biz_opaque_callback_data: string };
    expect(sentBody.type).toBe('text');
    expect(sentBody.text.body).toContain(OFFLINE_REPLY_MARKER);
    expect(sentBody.text.body).toContain('#A1043');
    // the LLM saw the agent's prompt and the lead's message
    const llmCall = stack.llm.requests.at(-1)!;
    expect(llmCall.model).toBe('gpt-4o-mini');
    expect(llmCall.messages[0]).toMatchObject({ role: 'system', content: 'You are a helpful sales assistant.' });
    const lastUser = llmCall.messages.filter((m) => m.role === 'user').at(-1);
    expect(lastUser).toMatchObject({ content: 'Hi, is my order #A1043 shipped yet?' });
    // the workflow's facts reach the LLM: stage and the 24-hour window
    const facts = llmCall.messages.find((m) => m.role === 'system' && String(m.content).startsWith('Facts about this conversation'));
    expect(String(facts?.content)).toContain('stage New');
    expect(String(facts?.content)).toMatch(/24-hour window for free-form messages closes at \d{4}-/);

    const auth = { authorization: `Bearer ${t.apiKey}` };
    const leads = await stack.api.get('/v1/leads').set(auth).expect(200);
    expect(leads.body.items).toHaveLength(1);
    const lead = leads.body.items[0];
    expect(lead).toMatchObject({ contactId: from, name: 'Priya Sharma', channel: 'whatsapp', stage: 'New', mode: 'ai', blocked: false });
    expect(lead.workflowId).toBe(stack.leadWorkflowId(t.channelId, from));

    const wamid = (sent!.response.body as { messages: { id: string }[] }).messages[0]!.id;
    const msgs = await waitFor(async () => {
      const r = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200);
      return r.body.items.some((m: { status: string }) => m.status === 'sent') ? r.body.items : undefined;
    });
    expect(msgs).toHaveLength(2);
    const outbound = msgs.find((m: { direction: string }) => m.direction === 'outbound');
    const inbound = msgs.find((m: { direction: string }) => m.direction === 'inbound');
    expect(inbound).toMatchObject({ body: 'Hi, is my order #A1043 shipped yet?', status: 'received' });
    expect(outbound).toMatchObject({ providerMessageId: wamid, status: 'sent' });
    expect(sentBody.biz_opaque_callback_data).toBe(outbound.id);

    const credits = await waitFor(async () => {
      const r = await stack.api.get('/v1/credits').set(auth).expect(200);
      return r.body.reserved === 0 ? r.body : undefined;
    });
    expect(credits.balance).toBe(4);
    const ledger = await stack.api.get('/v1/credits/ledger').set(auth).expect(200);
    expect(ledger.body.items.map((e: { kind: string; amount: number; reference: string }) => [e.kind, e.amount, e.reference]).sort()).toEqual(
      [
        ['debit', -1, `message:${outbound.id}`],
        ['topup', 5, `initial-${t.tenantId}`],
      ].sort(),
    );

    // the workflow's state query, through the API
    const state = await stack.api.get(`/v1/leads/${lead.id}/state`).set(auth).expect(200);
    expect(state.body).toMatchObject({ leadId: lead.id, mode: 'ai', stage: 'New', counters: { inbound: 1, replies: 1, turns: 1 } });

    // a delivery status webhook moves the message forward, never back
    const status = (s: string, ts: number) => ({
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: t.phoneNumberId }, statuses: [{ id: wamid, status: s, timestamp: String(ts), recipient_id: from }] } }] }],
    });
    await postWebhook(stack, status('read', 1760172100)).expect(200);
    await postWebhook(stack, status('delivered', 1760172090)).expect(200);
    const after = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200);
    expect(after.body.items.find((m: { id: string }) => m.id === outbound.id).status).toBe('read');
  });

  test('a webhook Meta delivers twice gets one reply', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    const body = textWebhook(t.phoneNumberId, from, 'Do you ship to Pune?');
    await postWebhook(stack, body).expect(200);
    await waitFor(() => sendsTo(from).length === 1, { what: 'first reply' });
    await postWebhook(stack, body).expect(200);
    // a second, different message proves the workflow handled everything before it
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'And to Mumbai?')).expect(200);
    await waitFor(() => sendsTo(from).length === 2, { what: 'second reply' });
    const state = await waitFor(async () => {
      const s = await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from));
      return s && s.counters.replies === 2 ? s : undefined;
    });
    expect(state.counters).toMatchObject({ inbound: 2, duplicates: 1, replies: 2 });
    expect(sendsTo(from)).toHaveLength(2);
  });

  test('no credit: no LLM call, the lead is blocked and the event recorded', async () => {
    const t = await createTenant(stack, { credits: 0 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello?')).expect(200);
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const lead = await waitFor(async () => {
      const r = await stack.api.get('/v1/leads').set(auth);
      const l = r.body.items[0];
      return l?.blocked ? l : undefined;
    }, { what: 'lead blocked' });
    await waitFor(async () => {
      const detail = await stack.api.get(`/v1/leads/${lead.id}`).set(auth).expect(200);
      return detail.body.events.some((e: { type: string }) => e.type === 'credit_blocked');
    }, { what: 'credit_blocked event' });
    expect(stack.llm.requests.filter((r) => JSON.stringify(r.messages).includes('Hello?'))).toHaveLength(0);
    expect(sendsTo(from)).toHaveLength(0);
    const credits = await stack.api.get('/v1/credits').set(auth).expect(200);
    expect(credits.body).toMatchObject({ balance: 0, reserved: 0 });
  });

  test('a permanent error (131026, undeliverable) is not retried: the message fails and the credit comes back', async () => {
    const t = await createTenant(stack, { credits: 3 });
    const from = randomWaId();
    stack.graph.failNext({ code: 131026, to: from, message: 'Message undeliverable' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const lead = await waitFor(async () => (await stack.api.get('/v1/leads').set(auth)).body.items[0], { what: 'lead' });
    const failed = await waitFor(async () => {
      const r = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth);
      return r.body.items.find((m: { direction: string; status: string }) => m.direction === 'outbound' && m.status === 'failed');
    }, { what: 'failed outbound' });
    expect(failed.error).toMatchObject({ code: 131026, class: 'permanent' });
    const attempts = stack.graph.requests.filter((r) => (r.body as { to?: string }).to === from);
    expect(attempts).toHaveLength(1);
    const credits = await waitFor(async () => {
      const r = await stack.api.get('/v1/credits').set(auth);
      return r.body.reserved === 0 ? r.body : undefined;
    });
    expect(credits.balance).toBe(3);
    await waitFor(async () => {
      const detail = await stack.api.get(`/v1/leads/${lead.id}`).set(auth).expect(200);
      return detail.body.events.some((e: { type: string }) => e.type === 'reply_failed');
    }, { what: 'reply_failed event' });
  });

  test('a rate limit (130429) is retried and the reply goes out once', async () => {
    const t = await createTenant(stack, { credits: 3 });
    const from = randomWaId();
    stack.graph.failNext({ code: 130429, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Any discounts?')).expect(200);
    await waitFor(() => sendsTo(from).length === 1, { timeoutMs: 30_000, what: 'reply after rate limit' });
    const attempts = stack.graph.requests.filter((r) => (r.body as { to?: string }).to === from);
    expect(attempts.map((a) => a.response.status)).toEqual([429, 429, 200]);
  });

  test('the primary model failing falls back to the agent\'s fallback model', async () => {
    const t = await createTenant(stack, { credits: 3, model: 'gpt-4.1-mini', fallbackModel: 'gpt-4o' });
    const from = randomWaId();
    stack.llm.failNext({ status: 404, code: 'model_not_found', model: 'gpt-4.1-mini' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Can I get a demo?')).expect(200);
    await waitFor(() => sendsTo(from).length === 1, { what: 'reply from fallback model' });
    const calls = stack.llm.requests.filter((r) => JSON.stringify(r.messages).includes('Can I get a demo?'));
    expect(calls.map((c) => c.model)).toEqual(['gpt-4.1-mini', 'gpt-4o']);
  });
});
