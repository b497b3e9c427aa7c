/**
 * Agent tools end to end on the real dev server: the fake LLM's scripted tool calls drive each
 * tool through the reply turn and the lead workflow. set_stage is seen through GET /v1/leads/:id,
 * send_buttons and send_list as the exact JSON the fake Graph API received, schedule_follow_up in
 * the workflow's state, and an invalid call is reported to the model once before the text reply.
 * (A follow-up firing after the window closed: test/workflow/agent-tools.test.ts, time-skipping.)
 */
import { contentText, toolCallReply } from '../../fakes/openai';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

async function tenantWithTools(tools: string[] | undefined): Promise<TenantFixture> {
  const t = await createTenant(stack, { credits: 20 });
  if (tools) await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ tools }).expect(200);
  return t;
}

/** A new lead writes `text`; resolves once its first turn ran. */
async function leadWrites(t: TenantFixture, text: string) {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, text)).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
  return { from, lead: lead as { id: string; workflowId: string } };
}

async function events(t: TenantFixture, leadId: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  return (await stack.api.get(`/v1/leads/${leadId}/events?limit=100`).set(auth(t)).expect(200)).body.items;
}

/** The chat requests whose transcript contains `text` (this lead's), in order. */
function requestsSeeing(text: string) {
  return stack.llm.requests.filter((r) => r.messages.some((m) => m.role === 'user' && contentText(m.content).includes(text)));
}

function offeredTools(body: unknown): string[] {
  const tools = (body as { tools?: { function: { name: string } }[] }).tools ?? [];
  return tools.map((x) => x.function.name);
}

beforeEach(() => stack.llm.reset());

test('agents declare their tools: the default is handoff_to_human; PATCH changes them; unknown names are refused', async () => {
  const t = await createTenant(stack, { credits: 5 });
  const agent = await stack.api.get(`/v1/agents/${t.agentId}`).set(auth(t)).expect(200);
  expect(agent.body.tools).toBeNull();
  expect(agent.body.followUpTemplate).toBeNull();
  const bad = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ tools: ['send_fax'] }).expect(400);
  expect(JSON.stringify(bad.body)).toMatch(/tools/);
  await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ tools: ['set_stage', 'set_stage'] }).expect(400);
  const changed = await stack.api
    .patch(`/v1/agents/${t.agentId}`)
    .set(auth(t))
    .send({ tools: ['set_stage', 'send_buttons'], followUpTemplate: { name: 'follow_up', language: 'en' } })
    .expect(200);
  expect(changed.body).toMatchObject({ tools: ['set_stage', 'send_buttons'], followUpTemplate: { name: 'follow_up', language: 'en' }, version: 2 });
  const created = await stack.api.post('/v1/agents').set(auth(t)).send({ name: 'Quiet', systemPrompt: 'x', model: 'gpt-4o-mini', tools: [] }).expect(201);
  expect(created.body.tools).toEqual([]);
  const reset = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ tools: null }).expect(200);
  expect(reset.body.tools).toBeNull();
});

test('the default agent offers only handoff_to_human, as before tools existed', async () => {
  const t = await tenantWithTools(undefined);
  const word = `default-${randomWaId()}`;
  await leadWrites(t, `Hello ${word}`);
  const [req] = requestsSeeing(word);
  expect(offeredTools(req!.body)).toEqual(['handoff_to_human']);
});

test('set_stage: the lead moves to the stage, the model is asked for its reply, the call is a tool_called event', async () => {
  const t = await tenantWithTools(['handoff_to_human', 'set_stage']);
  stack.llm.script([toolCallReply('set_stage', { stage: 'Qualified' }), 'Great, I have noted that you want 40 units.']);
  const word = `stage-${randomWaId()}`;
  const { from, lead } = await leadWrites(t, `I want 40 units ${word}`);
  await waitFor(async () => (await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t))).body.stage === 'Qualified', { what: 'stage Qualified' });
  await waitFor(() => sentTo(from).length === 1, { what: 'the text reply' });
  expect((sentTo(from)[0]!.body as { text: { body: string } }).text.body).toBe('Great, I have noted that you want 40 units.');
  const reqs = requestsSeeing(word);
  expect(reqs).toHaveLength(2);
  // the set_stage tool's enum is the tenant's stages
  const def = ((reqs[0]!.body as { tools: { function: { name: string; parameters: { properties: { stage: { enum: string[] } } } } }[] }).tools).find((x) => x.function.name === 'set_stage');
  expect(def!.function.parameters.properties.stage.enum).toEqual(expect.arrayContaining(['New', 'Qualified', 'Lost']));
  expect(reqs[1]!.messages.at(-1)).toMatchObject({ role: 'tool', content: 'Done: the lead moves to stage Qualified.' });
  const ev = await waitFor(async () => {
    const e = await events(t, lead.id);
    return e.some((x) => x.type === 'stage_changed') ? e : undefined;
  }, { what: 'events' });
  expect(ev.find((x) => x.type === 'tool_called')!.data).toEqual({ name: 'set_stage', outcome: 'ok', args: { stage: 'Qualified' } });
  expect(ev.find((x) => x.type === 'stage_changed')!.data).toMatchObject({ from: 'New', to: 'Qualified' });
  const state = await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from));
  expect(state?.stage).toBe('Qualified');
});

test('send_buttons: the reply goes out as WhatsApp reply buttons, exactly as Meta documents them', async () => {
  const t = await tenantWithTools(['send_buttons']);
  stack.llm.script([toolCallReply('send_buttons', { body: 'Which plan suits you?', buttons: [{ id: 'basic', title: 'Basic' }, { id: 'pro', title: 'Pro' }] })]);
  const { from, lead } = await leadWrites(t, 'What plans do you have?');
  await waitFor(() => sentTo(from).length === 1, { what: 'the buttons' });
  const body = sentTo(from)[0]!.body as Record<string, unknown>;
  expect(body).toEqual({
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: from,
    biz_opaque_callback_data: expect.any(String),
    type: 'interactive',
    interactive: {
      type: 'button',
      body: { text: 'Which plan suits you?' },
      action: { buttons: [{ type: 'reply', reply: { id: 'basic', title: 'Basic' } }, { type: 'reply', reply: { id: 'pro', title: 'Pro' } }] },
    },
  });
  const messages = await waitFor(async () => {
    const items = (await stack.api.get(`/v1/leads/${lead.id}/messages?limit=10`).set(auth(t)).expect(200)).body.items as { direction: string; type: string; body: string; status: string }[];
    return items.find((m) => m.direction === 'outbound' && m.status === 'sent') ? items : undefined;
  }, { what: 'the recorded message' });
  expect(messages.find((m) => m.direction === 'outbound')).toMatchObject({ type: 'interactive', body: 'Which plan suits you?\n1. Basic\n2. Pro' });
  const ev = await events(t, lead.id);
  expect(ev.find((x) => x.type === 'tool_called')!.data).toEqual({ name: 'send_buttons', outcome: 'ok', args: { buttons: ['basic', 'pro'] } });
  // one credit for the one message
  const balance = (await stack.api.get('/v1/credits').set(auth(t))).body;
  expect(balance.balance).toBe(19);
});

test('npm run dev without a key: the offline stand-in answers "/buttons" with send_buttons, unscripted', async () => {
  const t = await tenantWithTools(['send_buttons', 'handoff_to_human']);
  const { from } = await leadWrites(t, '/buttons');
  await waitFor(() => sentTo(from).length === 1, { what: 'the buttons' });
  const body = sentTo(from)[0]!.body as { type: string; interactive: { type: string; action: { buttons: { reply: { id: string } }[] } } };
  expect(body.type).toBe('interactive');
  expect(body.interactive.action.buttons.map((b) => b.reply.id)).toEqual(['prices', 'demo', 'person']);
});

test('send_list: the reply goes out as a WhatsApp list', async () => {
  const t = await tenantWithTools(['send_list']);
  const sections = [{ title: 'Monday', rows: [{ id: 'mon-9', title: '9:00', description: 'morning' }] }, { title: 'Tuesday', rows: [{ id: 'tue-14', title: '14:00' }] }];
  stack.llm.script([toolCallReply('send_list', { body: 'Pick a slot for the demo', button: 'Slots', sections })]);
  const { from } = await leadWrites(t, 'Can I book a demo?');
  await waitFor(() => sentTo(from).length === 1, { what: 'the list' });
  expect((sentTo(from)[0]!.body as { interactive: unknown }).interactive).toEqual({ type: 'list', body: { text: 'Pick a slot for the demo' }, action: { button: 'Slots', sections } });
});

test('an invalid call is reported to the model once, then the turn falls back to text', async () => {
  const t = await tenantWithTools(['send_buttons']);
  const four = [1, 2, 3, 4].map((n) => ({ id: `o${n}`, title: `Option ${n}` }));
  // the second scripted reply is a tool call again: tool_choice none makes the model write text, so the fake answers with the raw script
  stack.llm.script([toolCallReply('send_buttons', { body: 'Choose', buttons: four }), 'We have four options: 1, 2, 3 and 4.']);
  const word = `invalid-${randomWaId()}`;
  const { from, lead } = await leadWrites(t, `Options please ${word}`);
  await waitFor(() => sentTo(from).length === 1, { what: 'the text reply' });
  expect(sentTo(from)[0]!.body).toMatchObject({ type: 'text', text: { body: 'We have four options: 1, 2, 3 and 4.' } });
  const reqs = requestsSeeing(word);
  expect(reqs).toHaveLength(2);
  expect((reqs[0]!.body as { tool_choice?: string }).tool_choice).toBeUndefined();
  expect((reqs[1]!.body as { tool_choice?: string }).tool_choice).toBe('none');
  const reported = reqs[1]!.messages.filter((m) => m.role === 'tool');
  expect(reported).toHaveLength(1);
  expect(contentText(reported[0]!.content)).toMatch(/^Error: [\s\S]*at most 3|^Error: [\s\S]*<=3 items[\s\S]*buttons/);
  const ev = await waitFor(async () => {
    const e = await events(t, lead.id);
    return e.some((x) => x.type === 'tool_called') ? e : undefined;
  }, { what: 'tool event' });
  const call = ev.find((x) => x.type === 'tool_called')!.data;
  expect(call).toMatchObject({ name: 'send_buttons', outcome: 'invalid' });
  expect(String(call.error)).toMatch(/buttons/);
});

test('schedule_follow_up: the workflow keeps a durable follow-up; the note is not in the events', async () => {
  const t = await tenantWithTools(['schedule_follow_up']);
  const at = new Date(Date.now() + 3 * 86_400_000).toISOString();
  stack.llm.script([toolCallReply('schedule_follow_up', { at, note: 'ask whether Maria decided on the quote' }), 'Sure, I will check in with you in three days.']);
  const { from, lead } = await leadWrites(t, 'Let me think about it, ask me again later');
  await waitFor(() => sentTo(from).length === 1, { what: 'the text reply' });
  const state = await waitFor(async () => {
    const s = await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from));
    return s?.followUps?.length ? s : undefined;
  }, { what: 'follow-up in state' });
  expect(state.followUps).toEqual([{ id: expect.any(String), at, note: 'ask whether Maria decided on the quote' }]);
  const api = await stack.api.get(`/v1/leads/${lead.id}/state`).set(auth(t)).expect(200);
  expect(api.body.followUps).toHaveLength(1);
  const ev = await waitFor(async () => {
    const e = await events(t, lead.id);
    return e.some((x) => x.type === 'follow_up_scheduled') ? e : undefined;
  }, { what: 'follow_up_scheduled' });
  expect(ev.find((x) => x.type === 'tool_called')!.data).toEqual({ name: 'schedule_follow_up', outcome: 'ok', args: { at } });
  expect(JSON.stringify(ev)).not.toContain('Maria');
});

test('scheduled follow-ups are listed and cancelled by the API, the Web UI update and the model (stand-in /remind and /noremind)', async () => {
  const t = await tenantWithTools(['schedule_follow_up', 'cancel_follow_up']);
  // nothing scripted: the offline stand-in calls the tools for the slash commands
  const { from, lead } = await leadWrites(t, '/remind 90');
  await waitFor(() => sentTo(from).length === 1, { what: 'the reply' });
  const listed = await waitFor(async () => {
    const r = await stack.api.get(`/v1/leads/${lead.id}/follow-ups`).set(auth(t)).expect(200);
    return r.body.items.length === 1 ? r.body.items : undefined;
  }, { what: 'the follow-up listed' });
  const first = listed[0] as { id: string; at: string; note: string; template: string | null };
  expect(first).toEqual({ id: expect.any(String), at: expect.any(String), note: 'the lead asked to be reminded', template: null });
  expect(Date.parse(first.at) - Date.now()).toBeGreaterThan(80 * 60_000);

  // another tenant: 404 (no leak of the lead or its follow-ups); an id that is not waiting: 404
  const other = await createTenant(stack, { credits: 1 });
  await stack.api.get(`/v1/leads/${lead.id}/follow-ups`).set(auth(other)).expect(404);
  await stack.api.delete(`/v1/leads/${lead.id}/follow-ups/${first.id}`).set(auth(other)).expect(404);
  await stack.api.delete(`/v1/leads/${lead.id}/follow-ups/${crypto.randomUUID()}`).set(auth(t)).expect(404);

  const cancelled = await stack.api.delete(`/v1/leads/${lead.id}/follow-ups/${first.id}`).set(auth(t)).expect(200);
  expect(cancelled.body).toEqual({ cancelled: first });
  expect((await stack.api.get(`/v1/leads/${lead.id}/follow-ups`).set(auth(t)).expect(200)).body).toEqual({ items: [] });
  await waitFor(async () => (await events(t, lead.id)).some((e) => e.type === 'follow_up_cancelled' && e.data.source === 'api' && e.data.followUpId === first.id), { what: 'the API cancel event' });

  // the Web UI: the update by name with the JSON a person types
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, '/remind 120')).expect(200);
  const second = await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.followUps?.[0], { what: 'the second follow-up' });
  const handle = stack.temporal.client.workflow.getHandle(lead.workflowId);
  const byName = (await handle.executeUpdate<unknown, [unknown]>('cancelFollowUp', { args: [{ followUpId: second.id }] })) as { cancelled: { id: string }[] };
  expect(byName.cancelled.map((f) => f.id)).toEqual([second.id]);
  await waitFor(async () => (await events(t, lead.id)).some((e) => e.type === 'follow_up_cancelled' && e.data.source === 'web_ui' && e.data.followUpId === second.id), { what: 'the Web UI cancel event' });

  // the model: the lead says never mind
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, '/remind 60')).expect(200);
  const third = await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.followUps?.[0], { what: 'the third follow-up' });
  await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.counters.turns === 3, { what: 'the third turn' });
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, '/noremind')).expect(200);
  await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.followUps === undefined, { what: 'the model cancels' });
  const ev = await waitFor(async () => {
    const e = await events(t, lead.id);
    return e.some((x) => x.type === 'follow_up_cancelled' && x.data.source === 'agent') ? e : undefined;
  }, { what: 'the agent cancel event' });
  expect(ev.find((x) => x.type === 'follow_up_cancelled' && x.data.source === 'agent')!.data).toEqual({ followUpId: third.id, at: third.at, source: 'agent' });
  expect(ev.find((x) => x.type === 'tool_called' && x.data.name === 'cancel_follow_up')!.data).toEqual({ name: 'cancel_follow_up', outcome: 'ok', args: { all: true } });
  expect(JSON.stringify(ev)).not.toContain('the lead asked to be reminded');
});
