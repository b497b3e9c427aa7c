/**
 * Delivery you can trust: the circuit breaker, dead letters (replay, discard), failed
 * statuses signalled to the lead workflow. Real Temporal, real activities, fake Meta and LLM.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { whatsAppStatusWebhook } from '../../fakes/meta-webhooks';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  // two tries per send, so retries run out within the test
  stack = await startStack({ LEAD_DELIVERY_MAX_ATTEMPTS: '2' });
});
afterAll(async () => {
  await stack?.stop();
});

function sendsTo(to: string) {
  return stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
}
function attemptsTo(to: string) {
  return stack.graph.requests.filter((r) => (r.body as { to?: string }).to === to);
}

type Auth = { authorization: string };
async function leadOf(auth: Auth, contactId: string) {
  return waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth)).body.items.find((l: { contactId: string }) => l.contactId === contactId), {
    what: `lead ${contactId}`,
  });
}
async function eventsOf(auth: Auth, leadId: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  return (await stack.api.get(`/v1/leads/${leadId}`).set(auth).expect(200)).body.events;
}
async function openDeadLetters(auth: Auth, leadId: string) {
  return (await stack.api.get(`/v1/dead-letters?status=open&leadId=${leadId}`).set(auth).expect(200)).body.items as {
    id: string;
    kind: string;
    status: string;
    outboundMessageId: string | null;
    error: { type?: string };
  }[];
}
async function firstDeadLetter(auth: Auth, leadId: string, what: string) {
  const items = await waitFor(async () => {
    const open = await openDeadLetters(auth, leadId);
    return open.length ? open : undefined;
  }, { what });
  return items[0]!;
}
async function credits(auth: Auth) {
  return (await stack.api.get('/v1/credits').set(auth).expect(200)).body as { balance: number; reserved: number };
}

describe('circuit breaker', () => {
  test('an invalid token (190) opens the channel\'s circuit: sends wait, then go out once after the token is replaced and the circuit closed', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const first = randomWaId();
    const second = randomWaId();
    // GET /metrics: channels by circuit state (no per-channel series), and the Graph error by code and class
    const metricsText = async () => (await stack.api.get('/metrics').set({ authorization: `Bearer ${stack.config.PARLEY_ADMIN_TOKEN}` }).expect(200)).text;
    const sampleOf = (text: string, prefix: string) => Number(text.split('\n').find((l) => l.startsWith(prefix))?.split(' ').pop() ?? 0);
    const openCircuits = async () => sampleOf(await metricsText(), 'parley_channel_circuits{platform="whatsapp",state="open"}');
    const openBefore = await openCircuits();
    stack.graph.failNext({ code: 190, to: first, message: 'Error validating access token' });
    await postWebhook(stack, textWebhook(t.phoneNumberId, first, 'Price list please')).expect(200);

    const channel = await waitFor(async () => {
      const r = await stack.api.get(`/v1/channels/${t.channelId}`).set(auth).expect(200);
      return r.body.circuit.state === 'open' ? r.body : undefined;
    }, { what: 'circuit open' });
    expect(channel.circuit.reason).toMatchObject({ code: 190, class: 'auth' });
    expect(JSON.stringify(channel)).not.toContain(t.accessToken);
    expect(await openCircuits()).toBe(openBefore + 1);
    const text = await metricsText();
    expect(text).not.toContain(t.channelId);
    expect(sampleOf(text, 'parley_graph_errors_total{platform="whatsapp",code="190",class="auth"}')).toBeGreaterThanOrEqual(1);
    expect(sampleOf(text, 'parley_channel_circuits_opened_total{platform="whatsapp"}')).toBeGreaterThanOrEqual(1);
    await stack.api.get('/metrics').expect(401);
    const lead = await leadOf(auth, first);
    await waitFor(async () => (await eventsOf(auth, lead.id)).some((e) => e.type === 'circuit_wait'), { what: 'circuit_wait event' });

    // another lead of the same channel: its send waits too, without calling Meta
    await postWebhook(stack, textWebhook(t.phoneNumberId, second, 'Hello?')).expect(200);
    const lead2 = await leadOf(auth, second);
    await waitFor(async () => (await eventsOf(auth, lead2.id)).some((e) => e.type === 'circuit_wait'), { what: 'second lead waits' });
    expect(attemptsTo(first)).toHaveLength(1);
    expect(attemptsTo(second)).toHaveLength(0);
    // the credits stay reserved while the sends wait; nothing failed
    expect(await credits(auth)).toMatchObject({ balance: 3, reserved: 2 });

    // the admin replaces the token and closes the circuit: the waiting sends go out, once each
    const newToken = `EAAG${randomBytes(12).toString('hex')}`;
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth).send({ accessToken: newToken }).expect(200);
    const closed = await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(auth).expect(200);
    expect(closed.body.circuit.state).toBe('closed');
    expect(await openCircuits()).toBe(openBefore);
    await waitFor(() => sendsTo(first).length === 1 && sendsTo(second).length === 1, { what: 'both replies after the circuit closed' });
    expect(sendsTo(first)[0]!.authorization).toBe(`Bearer ${newToken}`);
    await waitFor(async () => {
      const c = await credits(auth);
      return c.reserved === 0 && c.balance === 3;
    }, { what: 'credits captured' });
    await waitFor(async () => (await eventsOf(auth, lead.id)).some((e) => e.type === 'circuit_resumed'), { what: 'circuit_resumed event' });
    // only one message went out to each lead, ever
    await new Promise((r) => setTimeout(r, 500));
    expect(sendsTo(first)).toHaveLength(1);
    expect(sendsTo(second)).toHaveLength(1);
  });

  test('circuit endpoints: 404 for another tenant\'s channel, 400 for a bad id or an empty patch', async () => {
    const a = await createTenant(stack, { credits: 1 });
    const b = await createTenant(stack, { credits: 1 });
    const authB = { authorization: `Bearer ${b.apiKey}` };
    await stack.api.post(`/v1/channels/${a.channelId}/circuit/close`).set(authB).expect(404);
    await stack.api.get(`/v1/channels/${a.channelId}`).set(authB).expect(404);
    const bad = await stack.api.get('/v1/channels/not-a-uuid').set(authB).expect(400);
    expect(bad.body.error.code).toBe('validation_failed');
    const empty = await stack.api.patch(`/v1/channels/${b.channelId}`).set(authB).send({}).expect(400);
    expect(empty.body.error.code).toBe('validation_failed');
  });
});

describe('dead letters', () => {
  test('a send whose retries run out is parked; replay sends it once and captures the credit', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 131000, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Do you ship to Lisbon?')).expect(200);
    const lead = await leadOf(auth, from);
    const dl = await firstDeadLetter(auth, lead.id, 'dead letter');
    expect(dl).toMatchObject({ kind: 'send', status: 'open', error: { type: 'provider_transient' } });
    expect(dl.outboundMessageId).toBeTruthy();
    expect(sendsTo(from)).toHaveLength(0);
    expect(await credits(auth)).toMatchObject({ balance: 4, reserved: 1 });
    const state = await stack.temporal.leadState(lead.workflowId);
    expect(state?.deadLetters).toHaveLength(1);
    const described = await stack.temporal.client.workflow.getHandle(lead.workflowId).describe();
    expect(described.searchAttributes.NeedsAttention).toEqual([true]);

    const replay = await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth).expect(200);
    expect(replay.body.result).toMatchObject({ status: 'sent', outboundMessageId: dl.outboundMessageId });
    expect(replay.body.deadLetter.status).toBe('replayed');
    expect(sendsTo(from)).toHaveLength(1);
    expect((sendsTo(from)[0]!.body as { biz_opaque_callback_data: string }).biz_opaque_callback_data).toBe(dl.outboundMessageId);
    expect(await credits(auth)).toMatchObject({ balance: 4, reserved: 0 });
    const after = await stack.temporal.client.workflow.getHandle(lead.workflowId).describe();
    expect(after.searchAttributes.NeedsAttention).toEqual([false]);
    // a second replay is refused: it is no longer open
    const again = await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth).expect(409);
    expect(again.body.error.code).toBe('not_open');
  });

  test('a replay left half-way (the API died while it was replaying) can be sent again after a while', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 131000, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Anyone there?')).expect(200);
    const lead = await leadOf(auth, from);
    const dl = await firstDeadLetter(auth, lead.id, 'dead letter');
    const { deadLetters } = stack.core.services;
    expect(await deadLetters.markReplaying(t.tenantId, dl.id)).toBe(true); // as if the API died right after
    const fresh = await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth).expect(409);
    expect(fresh.body.error.code).toBe('not_open');
    await stack.core.database.db.execute(sql`update dead_letters set updated_at = now() - interval '10 minutes' where id = ${dl.id}`);
    const replay = await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth).expect(200);
    expect(replay.body.result.status).toBe('sent');
    expect(sendsTo(from)).toHaveLength(1);
  });

  test('a replayed send that had in fact gone out (status webhook matched by our id) is not sent again', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 2, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Is it in stock?')).expect(200);
    const lead = await leadOf(auth, from);
    const dl = await firstDeadLetter(auth, lead.id, 'dead letter');
    // Meta did deliver it (our write of its id was lost): the status webhook carries our id
    const wamid = `wamid.${randomBytes(16).toString('hex')}`;
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: wamid, status: 'delivered', recipientId: from, bizOpaqueCallbackData: dl.outboundMessageId! })).expect(200);
    const replay = await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth).expect(200);
    expect(replay.body.result.status).toBe('sent');
    expect(sendsTo(from)).toHaveLength(0);
    const messages = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200)).body.items;
    expect(messages.find((m: { id: string }) => m.id === dl.outboundMessageId)).toMatchObject({ providerMessageId: wamid, status: 'delivered' });
  });

  test('discard releases the held credit; an LLM that rejects the request parks the turn, and replay answers it', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 131016, to: from, times: 2 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'First question')).expect(200);
    const lead = await leadOf(auth, from);
    const dl = await firstDeadLetter(auth, lead.id, 'dead letter');
    expect(await credits(auth)).toMatchObject({ reserved: 1 });
    const discarded = await stack.api.post(`/v1/dead-letters/${dl.id}/discard`).set(auth).expect(200);
    expect(discarded.body.status).toBe('discarded');
    expect(await credits(auth)).toMatchObject({ balance: 5, reserved: 0 });
    await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth).expect(409);

    // the LLM rejects the request (bad key): not retried, parked as a 'reply' dead letter
    stack.llm.failNext({ status: 401, code: 'invalid_api_key', times: 1 });
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Second question')).expect(200);
    const reply = await firstDeadLetter(auth, lead.id, 'reply dead letter');
    expect(reply).toMatchObject({ kind: 'reply', error: { type: 'llm_config' } });
    expect(await credits(auth)).toMatchObject({ balance: 5, reserved: 0 });
    const replay = await stack.api.post(`/v1/dead-letters/${reply.id}/replay`).set(auth).expect(200);
    expect(replay.body.result.status).toBe('sent');
    expect(sendsTo(from)).toHaveLength(1);
    expect(await credits(auth)).toMatchObject({ balance: 4, reserved: 0 });
  });

  test('list and get are scoped to the tenant; bad input is a 400', async () => {
    const a = await createTenant(stack, { credits: 1 });
    const b = await createTenant(stack, { credits: 1 });
    const authA = { authorization: `Bearer ${a.apiKey}` };
    const authB = { authorization: `Bearer ${b.apiKey}` };
    const from = randomWaId();
    stack.graph.failNext({ code: 131000, to: from, times: 2 });
    await postWebhook(stack, textWebhook(a.phoneNumberId, from, 'hello')).expect(200);
    const lead = await leadOf(authA, from);
    const dl = await firstDeadLetter(authA, lead.id, 'dead letter');
    await stack.api.get(`/v1/dead-letters/${dl.id}`).set(authA).expect(200);
    await stack.api.get(`/v1/dead-letters/${dl.id}`).set(authB).expect(404);
    await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(authB).expect(404);
    expect((await stack.api.get('/v1/dead-letters').set(authB).expect(200)).body.items).toHaveLength(0);
    const bad = await stack.api.get('/v1/dead-letters?status=lost').set(authA).expect(400);
    expect(bad.body.error.code).toBe('validation_failed');
    await stack.api.get('/v1/dead-letters').expect(401);
  });
});

describe('statuses', () => {
  test('a failed status is applied once and signalled to the lead workflow (131047 closes the window)', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there')).expect(200);
    await waitFor(() => sendsTo(from).length === 1, { what: 'reply' });
    const lead = await leadOf(auth, from);
    const out = await waitFor(async () => {
      const items = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200)).body.items;
      return items.find((m: { direction: string; providerMessageId: string | null }) => m.direction === 'outbound' && m.providerMessageId);
    }, { what: 'outbound with wamid' });
    const failed = whatsAppStatusWebhook({
      phoneNumberId: t.phoneNumberId,
      id: out.providerMessageId,
      status: 'failed',
      recipientId: from,
      errors: [{ code: 131047, title: 'Re-engagement message' }],
    });
    // delivered twice, and a late 'delivered' after it: failed stays, one event
    await postWebhook(stack, failed).expect(200);
    await postWebhook(stack, failed).expect(200);
    await postWebhook(stack, whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: out.providerMessageId, status: 'delivered', recipientId: from })).expect(200);
    await waitFor(async () => (await eventsOf(auth, lead.id)).some((e) => e.type === 'delivery_failed'), { what: 'delivery_failed event' });
    const state = await waitFor(async () => {
      const s = await stack.temporal.leadState(lead.workflowId);
      return s?.providerWindowClosedAt ? s : undefined;
    }, { what: 'window closed by the provider' });
    expect(state.failedDeliveries).toEqual([out.providerMessageId]);
    expect((await eventsOf(auth, lead.id)).filter((e) => e.type === 'delivery_failed')).toHaveLength(1);
    const msg = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200)).body.items.find((m: { id: string }) => m.id === out.id);
    expect(msg.status).toBe('failed');
    // with the window closed by Meta, a manual free-form message is refused
    const manual = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ text: 'Are you still there?' });
    expect(manual.status).toBe(409);
    expect(manual.body.error.code).toBe('window_closed');
    // the lead writes again: the window is open and the AI answers
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Still there?')).expect(200);
    await waitFor(() => sendsTo(from).length === 2, { what: 'reply after the lead wrote again' });
    expect((await stack.temporal.leadState(lead.workflowId))?.providerWindowClosedAt).toBeUndefined();
  });
});

describe('read receipts', () => {
  test('the lead\'s message is marked read with the typing indicator while the AI writes; a channel can turn it off', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const from = randomWaId();
    const wamid = `wamid.${randomBytes(16).toString('hex')}`;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello!', { id: wamid })).expect(200);
    await waitFor(() => sendsTo(from).length === 1, { what: 'reply' });
    const reads = () => stack.graph.requests.filter((r) => (r.body as { status?: string; message_id?: string }).status === 'read' && r.phoneNumberId === t.phoneNumberId);
    await waitFor(() => reads().length === 1, { what: 'read receipt' });
    expect(reads()[0]!.body).toMatchObject({ messaging_product: 'whatsapp', status: 'read', message_id: wamid, typing_indicator: { type: 'text' } });
    expect(reads()[0]!.response.status).toBe(200);

    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth).send({ markRead: false }).expect(200);
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'One more thing')).expect(200);
    await waitFor(() => sendsTo(from).length === 2, { what: 'second reply' });
    expect(reads()).toHaveLength(1);
  });
});

describe('unconfirmed sends (the call timed out after Meta accepted it)', () => {
  let slow: Stack;
  beforeAll(async () => {
    slow = await startStack({ GRAPH_API_TIMEOUT_MS: '300', SEND_UNCONFIRMED_WAIT_MS: '4000' });
  });
  afterAll(async () => {
    await slow?.stop();
  });
  const slowSendsTo = (to: string) => slow.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

  test('the retry waits for the status webhook, which carries our id: the message is not sent again', async () => {
    const t = await createTenant(slow, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    await slow.api.patch(`/v1/channels/${t.channelId}`).set(auth).send({ markRead: false }).expect(200);
    const from = randomWaId();
    slow.graph.setDelay(800); // Meta accepts it, but answers after our 300 ms timeout
    await postWebhook(slow, textWebhook(t.phoneNumberId, from, 'Is the blue one in stock?')).expect(200);
    const [sent] = await waitFor(() => (slowSendsTo(from).length ? slowSendsTo(from) : undefined), { what: 'the first attempt at Meta' });
    slow.graph.setDelay(0);
    const ourId = (sent!.body as { biz_opaque_callback_data: string }).biz_opaque_callback_data;
    const wamid = (sent!.response.body as { messages: { id: string }[] }).messages[0]!.id;
    // the status webhook comes late, after Temporal's first retry (~1 s): that retry must not send
    await new Promise((r) => setTimeout(r, 2000));
    expect(slowSendsTo(from)).toHaveLength(1);
    await postWebhook(slow, whatsAppStatusWebhook({ phoneNumberId: t.phoneNumberId, id: wamid, status: 'sent', recipientId: from, bizOpaqueCallbackData: ourId })).expect(200);
    await waitFor(async () => {
      const c = (await slow.api.get('/v1/credits').set(auth).expect(200)).body;
      return c.reserved === 0 && c.balance === 4;
    }, { what: 'the credit captured', timeoutMs: 30_000 });
    expect(slowSendsTo(from)).toHaveLength(1);
    const lead = (await slow.api.get('/v1/leads?limit=200').set(auth).expect(200)).body.items.find((l: { contactId: string }) => l.contactId === from);
    const out = (await slow.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200)).body.items.find((m: { id: string }) => m.id === ourId);
    expect(out).toMatchObject({ providerMessageId: wamid, status: 'sent' });
  });

  test('without a status webhook the send goes again after the wait: never lost (the duplicate is the price, bounded by the wait)', async () => {
    const t = await createTenant(slow, { credits: 5 });
    const auth = { authorization: `Bearer ${t.apiKey}` };
    await slow.api.patch(`/v1/channels/${t.channelId}`).set(auth).send({ markRead: false }).expect(200);
    const from = randomWaId();
    slow.graph.setDelay(800);
    await postWebhook(slow, textWebhook(t.phoneNumberId, from, 'Hello?')).expect(200);
    const [first] = await waitFor(() => (slowSendsTo(from).length ? slowSendsTo(from) : undefined), { what: 'the first attempt at Meta' });
    slow.graph.setDelay(0);
    const [, second] = await waitFor(() => (slowSendsTo(from).length === 2 ? slowSendsTo(from) : undefined), { what: 'the second attempt', timeoutMs: 30_000 });
    // not before the wait ran out
    expect(Date.parse(second!.at) - Date.parse(first!.at)).toBeGreaterThanOrEqual(3000);
    expect((second!.body as { biz_opaque_callback_data: string }).biz_opaque_callback_data).toBe((first!.body as { biz_opaque_callback_data: string }).biz_opaque_callback_data);
    await waitFor(async () => (await slow.api.get('/v1/credits').set(auth).expect(200)).body.reserved === 0, { what: 'the credit captured' });
    expect((await slow.api.get('/v1/credits').set(auth).expect(200)).body.balance).toBe(4);
  });
});
