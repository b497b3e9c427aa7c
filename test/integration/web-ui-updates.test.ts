/**
 * The updates sales ops send from the Temporal Web UI: called by name with the small JSON body
 * the UI's "Send an update" sends (a real Temporal client, no typed definitions), on a real lead
 * conversation. Each changes the lead like the API's update does, is recorded as the Web UI's
 * doing, and a bad body is rejected with its reason. The lead's current details (the Web UI's
 * Markdown) show the conversation and are encrypted by the payload codec in Temporal.
 */
import { ENCRYPTED_ENCODING } from '../../temporal/payload-codec';
import { LeadMessage } from '../../contract/workflow-names';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';
import { updateRejection as rejection } from '../support/updates';

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

/** What the Web UI does: an update by name, its input the JSON the person typed (none when empty). */
function webUiUpdate(workflowId: string, name: string, body?: unknown) {
  const handle = stack.temporal.client.workflow.getHandle(workflowId);
  return body === undefined ? handle.executeUpdate<unknown, []>(name, { args: [] }) : handle.executeUpdate<unknown, [unknown]>(name, { args: [body] });
}

async function events(t: TenantFixture, leadId: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  return (await stack.api.get(`/v1/leads/${leadId}/events?limit=100`).set(auth(t)).expect(200)).body.items;
}

/** The Web UI's current details: the SDK's built-in metadata query, decoded by the client's codec. */
async function currentDetails(workflowId: string): Promise<string> {
  const meta = await stack.temporal.client.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return meta.currentDetails ?? '';
}

test('hand off with a reason, hand back, pause and resume the sequence, send a manual message: by name with JSON, recorded as the Web UI', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const seq = await stack.api
    .post('/v1/sequences')
    .set(auth(t))
    .send({ name: 'Nurture', steps: [{ delayMs: 3_600_000, kind: 'text', text: 'Still thinking about it?' }, { delayMs: 3_600_000, kind: 'text', text: 'Last call!' }], stopOn: ['lead_replied'] })
    .expect(201);
  const from = randomWaId();
  const workflowId = stack.leadWorkflowId(t.channelId, from);
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'How much is the premium plan?', { name: 'Priya Sharma' })).expect(200);
  await waitFor(() => sentTo(from).length === 1, { what: 'the AI reply' });
  const lead = (await stack.api.get('/v1/leads').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from);
  await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);

  // pause and resume the sequence (same transitions as the API's)
  const paused = (await webUiUpdate(workflowId, LeadMessage.pauseSequence)) as { status: string; remainingMs: number };
  expect(paused).toMatchObject({ status: 'paused', sequenceId: seq.body.id });
  expect(paused.remainingMs).toBeGreaterThan(3_500_000);
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.pauseSequence, {}))).toBe('pauseSequence: sequence is already paused');
  expect((await webUiUpdate(workflowId, LeadMessage.resumeSequence, {})) as { status: string }).toMatchObject({ status: 'active' });
  const seqEvents = (await events(t, lead.id)).filter((e) => e.type === 'sequence_pause' || e.type === 'sequence_resume');
  expect(seqEvents.map((e) => [e.type, e.data.source])).toEqual(expect.arrayContaining([['sequence_pause', 'web_ui'], ['sequence_resume', 'web_ui']]));

  // hand off, with a reason
  expect(await webUiUpdate(workflowId, LeadMessage.handOff, { reason: 'asks for a discount' })).toEqual({ mode: 'human' });
  expect((await stack.temporal.leadState(workflowId))?.mode).toBe('human');
  // a person has the lead: the sequence stops, as with the API's handoff
  expect((await stack.temporal.leadState(workflowId))?.sequence?.cursor).toMatchObject({ status: 'stopped', stopReason: 'handed_off' });
  const handOffEvent = (await events(t, lead.id)).find((e) => e.type === 'mode_changed' && e.data.to === 'human');
  expect(handOffEvent?.data).toMatchObject({ from: 'ai', to: 'human', request: 'handoff', source: 'web_ui', reason: 'asks for a discount' });
  // the database copy follows (the list shows it)
  await waitFor(async () => (await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t))).body.mode === 'human', { what: 'mode in the database' });
  // a second handoff is refused with the reason, before it reaches the history
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.handOff))).toBe('handOff: lead is already with a human');

  // a manual message from the team, through the same delivery path
  const result = (await webUiUpdate(workflowId, LeadMessage.sendManualMessage, { text: 'Hi, Anna here from sales: 20% off this week.' })) as { status: string; requestId: string };
  expect(result.status).toBe('sent');
  expect((sentTo(from).at(-1)!.body as { text: { body: string } }).text.body).toBe('Hi, Anna here from sales: 20% off this week.');
  const msgs = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items as { body: string; direction: string }[];
  expect(msgs.some((m) => m.direction === 'outbound' && m.body === 'Hi, Anna here from sales: 20% off this week.')).toBe(true);
  await waitFor(async () => (await events(t, lead.id)).some((e) => e.type === 'manual_message_requested' && e.data.source === 'web_ui' && e.data.requestId === result.requestId), { what: 'manual message event' });

  // hand back: the AI answers again
  expect(await webUiUpdate(workflowId, LeadMessage.handBack, {})).toEqual({ mode: 'ai' });
  expect((await events(t, lead.id)).find((e) => e.type === 'mode_changed' && e.data.to === 'ai')?.data).toMatchObject({ request: 'handback', source: 'web_ui' });

  // the details show the lead masked, the mode, the window, the sequence and the last messages
  const details = await waitFor(async () => {
    const d = await currentDetails(workflowId);
    return d.includes('20% off this week') && d.includes('**Mode** ai') ? d : undefined;
  }, { what: 'current details' });
  expect(details).toContain(`**Lead** ${from.slice(0, 2)}…${from.slice(-4)} on WhatsApp`);
  expect(details).not.toContain(from);
  expect(details).not.toContain('Priya');
  expect(details).toMatch(/- \*\*Window\*\* open until \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  expect(details).toContain('- **Sequence** Nurture, stopped at step 1 of 2 (handed\\_off)');
  expect(details).toContain('**Lead:** How much is the premium plan?');
  expect(details).toMatch(/\*\*Bot:\*\* /);
  expect(details).toContain('**Team:** Hi, Anna here from sales: 20% off this week.');

  // in Temporal the details are encrypted: the raw query result is a codec payload
  const raw = await stack.temporal.client.connection.workflowService.queryWorkflow({
    namespace: stack.config.TEMPORAL_NAMESPACE,
    execution: { workflowId },
    query: { queryType: '__temporal_workflow_metadata' },
  });
  const payload = raw.queryResult!.payloads![0]!;
  expect(Buffer.from(payload.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
  expect(Buffer.from(payload.data!).toString('latin1')).not.toContain('premium plan');
});

test('bad bodies are rejected with a clear reason and change nothing', async () => {
  const t = await createTenant(stack, { credits: 5 });
  const from = randomWaId();
  const workflowId = stack.leadWorkflowId(t.channelId, from);
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
  await waitFor(() => sentTo(from).length === 1, { what: 'the AI reply' });

  expect(await rejection(webUiUpdate(workflowId, LeadMessage.sendManualMessage, { txt: 'hi' }))).toMatch(/^sendManualMessage: unknown field "txt"; it takes only "text"/);
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.sendManualMessage))).toMatch(/^sendManualMessage needs the message/);
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.sendManualMessage, { text: '   ' }))).toBe('sendManualMessage: "text" is empty');
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.sendManualMessage, { text: 'x'.repeat(4097) }))).toBe('sendManualMessage: "text" is 4097 characters; at most 4096');
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.handOff, { reason: 42 }))).toBe('handOff: "reason" must be a string');
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.handOff, 'now'))).toMatch(/^handOff takes a JSON object/);
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.handBack, {}))).toBe('handBack: lead is not with a human');
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.pauseSequence, {}))).toMatch(/^pauseSequence: /);
  expect(await rejection(webUiUpdate(workflowId, LeadMessage.resumeSequence, { force: true }))).toMatch(/^resumeSequence: unknown field "force"/);

  // rejected updates leave no trace in the history (validators run before it) and nothing was sent
  const history = await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  expect(history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateAdmittedEventAttributes || e.workflowExecutionUpdateCompletedEventAttributes)).toEqual([]);
  expect(sentTo(from)).toHaveLength(1);
  expect((await stack.temporal.leadState(workflowId))?.mode).toBe('ai');
});
