/**
 * The conversation engine through the public API on the real dev server: sequences and their
 * admin actions, stages, handoff and manual replies, the 24-hour window, auto-enrolment.
 */
import { toolCallReply } from '../../fakes/openai';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: TenantFixture) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

/** A lead that wrote once and got its AI reply. */
async function activeLead(t: TenantFixture, opts: { timestamp?: number } = {}) {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there', { timestamp: opts.timestamp })).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
  return { from, lead, workflowId: stack.leadWorkflowId(t.channelId, from) };
}

async function template(t: TenantFixture, name = 'follow_up') {
  await stack.api
    .post('/v1/templates')
    .set(auth(t))
    .send({ name, language: 'en', category: 'marketing', body: 'Hi {{1}}, still interested?', approved: true })
    .expect(201);
}

test('a sequence sends its steps on durable timers and completes; admin actions answer 409 when invalid', async () => {
  const t = await createTenant(stack, { credits: 20 });
  await template(t);
  const seq = await stack.api
    .post('/v1/sequences')
    .set(auth(t))
    .send({
      name: 'Nudge',
      steps: [
        { delayMs: 500, kind: 'text', text: 'Just following up on your question!' },
        { delayMs: 500, kind: 'template', template: { name: 'follow_up', language: 'en', variables: ['Priya'] } },
      ],
      stopOn: ['lead_replied'],
    })
    .expect(201);
  const { from, lead } = await activeLead(t);
  await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
  const enrolled = await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
  expect(enrolled.body.sequence).toMatchObject({ status: 'active', stepIndex: 0, sequenceId: seq.body.id });
  // resume while active is not a valid transition
  const bad = await stack.api.post(`/v1/leads/${lead.id}/sequence/resume`).set(auth(t)).send({}).expect(409);
  expect(bad.body.error.code).toBe('invalid_transition');
  // enrolling twice is refused too
  await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(409);

  const sends = await waitFor(() => (sentTo(from).length === 3 ? sentTo(from) : undefined), { what: 'both steps' });
  expect((sends[1]!.body as { text: { body: string } }).text.body).toBe('Just following up on your question!');
  expect(sends[2]!.body).toMatchObject({
    type: 'template',
    template: { name: 'follow_up', language: { code: 'en' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Priya' }] }] },
  });
  const state = await waitFor(async () => {
    const s = (await stack.api.get(`/v1/leads/${lead.id}/state`).set(auth(t))).body;
    return s.sequence?.cursor.status === 'completed' ? s : undefined;
  }, { what: 'sequence completed' });
  expect(state.sequence.cursor.stepIndex).toBe(2);
  // the template's rendered text is in the transcript
  const msgs = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200);
  expect(msgs.body.items.map((m: { body: string }) => m.body)).toContain('Hi Priya, still interested?');
  // reset restarts a finished sequence at step one
  const reset = await stack.api.post(`/v1/leads/${lead.id}/sequence/reset`).set(auth(t)).send({}).expect(200);
  expect(reset.body.sequence).toMatchObject({ status: 'active', stepIndex: 0 });
  await stack.api.post(`/v1/leads/${lead.id}/sequence/pause`).set(auth(t)).send({}).expect(200);
});

test('a reply from the lead stops the sequence; a stage change to Lost stops another', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const seq = await stack.api
    .post('/v1/sequences')
    .set(auth(t))
    .send({ name: 'Slow', steps: [{ delayMs: 60_000, kind: 'text', text: 'Checking in' }], stopOn: ['lead_replied', 'stage_changed'] })
    .expect(201);
  const a = await activeLead(t);
  await stack.api.post(`/v1/leads/${a.lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
  await postWebhook(stack, textWebhook(t.phoneNumberId, a.from, 'Actually, one more question')).expect(200);
  const stopped = await waitFor(async () => {
    const s = await stack.temporal.leadState(a.workflowId);
    return s?.sequence?.cursor.status === 'stopped' ? s.sequence.cursor : undefined;
  }, { what: 'stopped by reply' });
  expect(stopped.stopReason).toBe('lead_replied');

  const b = await activeLead(t);
  await stack.api.post(`/v1/leads/${b.lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
  await stack.api.post(`/v1/leads/${b.lead.id}/stage`).set(auth(t)).send({ stage: 'Nope' }).expect(400);
  const staged = await stack.api.post(`/v1/leads/${b.lead.id}/stage`).set(auth(t)).send({ stage: 'Lost' }).expect(200);
  expect(staged.body).toEqual({ stage: 'Lost', sequenceStopped: true });
  await stack.api.post(`/v1/leads/${b.lead.id}/stage`).set(auth(t)).send({ stage: 'Lost' }).expect(409);
  const lead = await stack.api.get(`/v1/leads/${b.lead.id}`).set(auth(t)).expect(200);
  expect(lead.body.stage).toBe('Lost');
  expect(lead.body.events.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['stage_changed', 'sequence_stopped']));
});

test('handoff: the AI stays silent, manual replies go out through delivery and credits, handback resumes the AI', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const { from, lead, workflowId } = await activeLead(t);
  await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
  const h = await stack.api.post(`/v1/leads/${lead.id}/handoff`).set(auth(t)).send({}).expect(200);
  expect(h.body).toEqual({ mode: 'human' });
  await stack.api.post(`/v1/leads/${lead.id}/handoff`).set(auth(t)).send({}).expect(409);

  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Can a person call me?')).expect(200);
  await waitFor(async () => (await stack.temporal.leadState(workflowId))?.counters.inbound === 2, { what: 'second inbound' });
  const manual = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ text: 'Hi, this is Sam from sales. Calling you in 5.' }).expect(201);
  expect(manual.body).toMatchObject({ status: 'sent' });
  expect(sentTo(from)).toHaveLength(2);
  expect((sentTo(from)[1]!.body as { text: { body: string } }).text.body).toBe('Hi, this is Sam from sales. Calling you in 5.');
  const credits = await stack.api.get('/v1/credits').set(auth(t)).expect(200);
  expect(credits.body.balance).toBe(18);

  await stack.api.post(`/v1/leads/${lead.id}/handback`).set(auth(t)).send({}).expect(200);
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Thanks! And the price?')).expect(200);
  await waitFor(() => sentTo(from).length === 3, { what: 'AI reply after handback' });
  const detail = await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t)).expect(200);
  expect(detail.body.mode).toBe('ai');
});

test('outside the 24-hour window free text is refused with window_closed and a template goes out', async () => {
  const t = await createTenant(stack, { credits: 20 });
  await template(t, 'reengage');
  const twoDaysAgo = Math.floor(Date.now() / 1000) - 2 * 24 * 3600;
  const { from, lead, workflowId } = await activeLead(t, { timestamp: twoDaysAgo });
  // the webhook came late: the window had already closed, so the AI reply was refused too
  const s = await waitFor(async () => {
    const st = await stack.temporal.leadState(workflowId);
    return st && st.counters.turns === 1 ? st : undefined;
  });
  expect(s.counters.replies).toBe(0);
  const refused = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ text: 'Hello again' }).expect(409);
  expect(refused.body.error.code).toBe('window_closed');
  const sent = await stack.api
    .post(`/v1/leads/${lead.id}/messages`)
    .set(auth(t))
    .send({ template: { name: 'reengage', language: 'en', variables: ['Priya'] } })
    .expect(201);
  expect(sent.body.status).toBe('sent');
  expect(sentTo(from).map((r) => (r.body as { type: string }).type)).toEqual(['template']);
  const events = (await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t))).body.events.map((e: { type: string }) => e.type);
  expect(events).toContain('outbound_refused');
});

test('an enrolment rule enrols a new lead of the agent automatically', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const seq = await stack.api
    .post('/v1/sequences')
    .set(auth(t))
    .send({ name: 'Welcome', steps: [{ delayMs: 3_600_000, kind: 'ai', aiInstruction: 'Ask if they have questions' }] })
    .expect(201);
  await stack.api.post('/v1/enrollment-rules').set(auth(t)).send({ sequenceId: seq.body.id, agentId: t.agentId }).expect(201);
  const { workflowId } = await activeLead(t);
  const s = await waitFor(async () => (await stack.temporal.leadState(workflowId))?.sequence);
  expect(s.def.id).toBe(seq.body.id);
  expect(s.cursor.status).toBe('active');
});

test('a burst of 5 messages becomes one LLM turn and one reply', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const from = randomWaId();
  // five deliveries at once, as Meta may send a burst: one after the other, a loaded machine could
  // stretch them past the debounce gap (150 ms here) and the burst would rightly become two turns
  await Promise.all([1, 2, 3, 4, 5].map((i) => postWebhook(stack, textWebhook(t.phoneNumberId, from, `burst part ${i}`)).expect(200)));
  const wf = stack.leadWorkflowId(t.channelId, from);
  const s = await waitFor(async () => {
    const st = await stack.temporal.leadState(wf);
    return st && st.counters.inbound === 5 && st.counters.replies >= 1 && st.pendingInbound === 0 ? st : undefined;
  }, { what: 'burst answered' });
  expect(s.counters.turns).toBe(1);
  expect(sentTo(from)).toHaveLength(1);
  // one LLM call saw the burst, all five messages in it (their order is the order they arrived in)
  const calls = stack.llm.requests.filter((r) => JSON.stringify(r.messages).includes('burst part'));
  expect(calls).toHaveLength(1);
  const parts = calls[0]!.messages.filter((m) => m.role === 'user').map((m) => String(m.content));
  expect([...parts].sort()).toEqual([1, 2, 3, 4, 5].map((i) => `burst part ${i}`));
});

test('the LLM can hand the lead to a human with the handoff_to_human tool; the AI then stays silent', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const { from, lead, workflowId } = await activeLead(t);
  await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
  stack.llm.script([toolCallReply('handoff_to_human', { reason: 'wants to negotiate a bulk price' })]);
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'I need 500 units, who can I talk to about pricing?')).expect(200);
  const s = await waitFor(async () => {
    const st = await stack.temporal.leadState(workflowId);
    return st?.mode === 'human' ? st : undefined;
  }, { what: 'human mode' });
  expect(s.counters.turns).toBe(2);
  expect(sentTo(from)).toHaveLength(1);
  const call = stack.llm.requests.find((r) => JSON.stringify(r.messages).includes('500 units'))!;
  expect((call.body as { tools?: { function: { name: string } }[] }).tools?.map((x) => x.function.name)).toEqual(['handoff_to_human']);
  const detail = await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t)).expect(200);
  expect(detail.body.mode).toBe('human');
  const ev = detail.body.events.find((e: { type: string }) => e.type === 'llm_handoff');
  expect(ev.data.reason).toBe('wants to negotiate a bulk price');
  // the credit reserved for that turn came back
  const credits = await stack.api.get('/v1/credits').set(auth(t)).expect(200);
  expect(credits.body).toMatchObject({ balance: 19, reserved: 0 });
});

test("an agent's handoff keyword hands the lead to a human before any AI reply", async () => {
  const t = await createTenant(stack, { credits: 20 });
  const agent = await stack.api
    .post('/v1/agents')
    .set(auth(t))
    .send({ name: 'Keyword bot', systemPrompt: 'Be brief.', model: 'gpt-4o-mini', handoffKeywords: ['talk to a person', 'agent'] })
    .expect(201);
  const phoneNumberId = String(Date.now()).slice(-12);
  const channel = await stack.api
    .post('/v1/channels')
    .set(auth(t))
    .send({ platform: 'whatsapp', phoneNumberId, accessToken: 'EAAG-keyword-token', verifyToken: 'verify-keyword-1', agentId: agent.body.id })
    .expect(201);
  const from = randomWaId();
  await postWebhook(stack, textWebhook(phoneNumberId, from, 'Can I talk to a person, please?')).expect(200);
  const wf = stack.leadWorkflowId(channel.body.id, from);
  const s = await waitFor(async () => {
    const st = await stack.temporal.leadState(wf);
    return st?.mode === 'human' ? st : undefined;
  }, { what: 'keyword handoff' });
  expect(s.counters.replies).toBe(0);
  expect(sentTo(from)).toHaveLength(0);
  // a later message stays with the human: no AI reply
  await postWebhook(stack, textWebhook(phoneNumberId, from, 'Hello?')).expect(200);
  await waitFor(async () => (await stack.temporal.leadState(wf))?.counters.inbound === 2);
  expect(sentTo(from)).toHaveLength(0);
});
