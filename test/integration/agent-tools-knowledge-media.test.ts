/**
 * The search_knowledge and send_media agent tools end to end on the dev server, driven by the fake
 * LLM's scripted tool calls: search_knowledge's passages reach the model as the tool result and
 * are recorded on the reply (GET /v1/leads/:leadId/messages); send_media sends the agent's asset
 * as WhatsApp media with the Meta media id the library uploaded, exactly as the fake Graph API got it.
 */
import { randomBytes } from 'node:crypto';
import { REFERENCE_RULES } from '../../activities/llm/knowledge-context';
import { contentText, toolCallReply } from '../../fakes/openai';
import { samples } from '../support/media-samples';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ OPENAI_EMBEDDING_DIMENSIONS: '256' });
});
afterAll(async () => {
  await stack?.stop();
});
beforeEach(() => stack.llm.reset());

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
const RETURNS = 'Returns policy. Unworn Quokka boots may be returned within 45 days of delivery for a full refund. Refunds reach the original card within 5 working days.';

type LeadMessage = { direction: string; body: string; knowledge: { chunkId: string; documentId: string; title: string; score: number }[] };

async function leadWrites(t: TenantFixture, text: string) {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, text)).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
  return { from, lead: lead as { id: string } };
}

function requestsSeeing(text: string) {
  return stack.llm.requests.filter((r) => r.messages.some((m) => m.role === 'user' && contentText(m.content).includes(text)));
}

type ToolDef = { function: { name: string; description: string; parameters: { properties: Record<string, { enum?: string[] }> } } };
const offered = (body: unknown): ToolDef[] => (body as { tools?: ToolDef[] }).tools ?? [];

test('search_knowledge: the passages are the tool result of the next LLM call, and the reply records them', async () => {
  const t = await createTenant(stack, { credits: 10 });
  const kb = await stack.api.post('/v1/knowledge-bases').set(auth(t)).send({ name: 'Help centre' }).expect(201);
  const doc = await stack.api.post(`/v1/knowledge-bases/${kb.body.id}/documents`).set(auth(t)).send({ title: 'Returns', text: RETURNS }).expect(202);
  await waitFor(async () => (await stack.api.get(`/v1/knowledge-bases/${kb.body.id}/documents/${doc.body.id}`).set(auth(t)).expect(200)).body.status === 'ready', { timeoutMs: 60_000, what: 'document ready' });
  await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ knowledgeBaseIds: [kb.body.id], tools: ['search_knowledge'] }).expect(200);

  stack.llm.script([toolCallReply('search_knowledge', { query: 'returns policy Quokka boots refund' }), 'Yes: unworn boots can be returned within 45 days.']);
  const word = `sk-${randomWaId()}`;
  const { from, lead } = await leadWrites(t, `And that other thing I asked about? ${word}`);
  await waitFor(() => sentTo(from).length === 1, { what: 'the text reply' });
  expect((sentTo(from)[0]!.body as { text: { body: string } }).text.body).toBe('Yes: unworn boots can be returned within 45 days.');

  const reqs = requestsSeeing(word);
  expect(reqs).toHaveLength(2);
  expect(offered(reqs[0]!.body).map((d) => d.function.name)).toEqual(['search_knowledge']);
  const result = reqs[1]!.messages.at(-1)!;
  expect(result.role).toBe('tool');
  expect(contentText(result.content)).toContain('<reference_material>\n<passage number="1" title="Returns">\nReturns policy. Unworn Quokka boots may be returned within 45 days of delivery');
  expect(contentText(result.content)).toMatch(/data, not instructions/);
  // the model may get passages from the tool: the system prompt says what they are (data, never instructions)
  expect(contentText(reqs[0]!.messages[0]!.content)).toContain(REFERENCE_RULES);
  expect(reqs[0]!.messages.filter((m) => m.role === 'system').map((m) => contentText(m.content)).join('\n')).not.toContain('45 days');

  const messages = await waitFor(async () => {
    const items = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items as LeadMessage[];
    return items.find((m) => m.direction === 'outbound') ? items : undefined;
  }, { what: 'the recorded reply' });
  const reply = messages.find((m) => m.direction === 'outbound')!;
  expect(reply.knowledge.map((k) => k.documentId)).toContain(doc.body.id);
  expect(new Set(reply.knowledge.map((k) => k.chunkId)).size).toBe(reply.knowledge.length);
  const events = (await stack.api.get(`/v1/leads/${lead.id}/events?limit=100`).set(auth(t)).expect(200)).body.items as { type: string; data: unknown }[];
  expect(events.find((e) => e.type === 'tool_called')?.data).toEqual({ name: 'search_knowledge', outcome: 'ok', args: {} });
});

test('search_knowledge then send_buttons: the buttons reply records the passages it was written from', async () => {
  const t = await createTenant(stack, { credits: 10 });
  const kb = await stack.api.post('/v1/knowledge-bases').set(auth(t)).send({ name: 'Help centre' }).expect(201);
  const doc = await stack.api.post(`/v1/knowledge-bases/${kb.body.id}/documents`).set(auth(t)).send({ title: 'Returns', text: RETURNS }).expect(202);
  await waitFor(async () => (await stack.api.get(`/v1/knowledge-bases/${kb.body.id}/documents/${doc.body.id}`).set(auth(t)).expect(200)).body.status === 'ready', { timeoutMs: 60_000, what: 'document ready' });
  await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ knowledgeBaseIds: [kb.body.id], tools: ['search_knowledge', 'send_buttons'] }).expect(200);

  stack.llm.script([
    toolCallReply('search_knowledge', { query: 'returns policy Quokka boots refund' }),
    toolCallReply('send_buttons', { body: 'Unworn boots can be returned within 45 days. Start a return?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] }),
  ]);
  const word = `skb-${randomWaId()}`;
  const { from, lead } = await leadWrites(t, `Something else entirely ${word}`);
  await waitFor(() => sentTo(from).length === 1, { what: 'the buttons reply' });
  expect(sentTo(from)[0]!.body).toMatchObject({ type: 'interactive', interactive: { type: 'button' } });
  const reply = await waitFor(async () => {
    const items = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items as (LeadMessage & { type: string; status: string })[];
    return items.find((m) => m.direction === 'outbound' && m.status !== 'pending');
  }, { what: 'the recorded buttons reply' });
  expect(reply.type).toBe('interactive');
  expect(reply.knowledge.map((k) => k.documentId)).toContain(doc.body.id);
});

test('search_knowledge without knowledge bases is not offered', async () => {
  const t = await createTenant(stack, { credits: 5 });
  await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ tools: ['handoff_to_human', 'search_knowledge', 'send_media'] }).expect(200);
  const word = `nokb-${randomWaId()}`;
  await leadWrites(t, `Hello ${word}`);
  const [req] = requestsSeeing(word);
  expect(offered(req!.body).map((d) => d.function.name)).toEqual(['handoff_to_human']);
});

test('send_media: the asset goes out as a WhatsApp document with the uploaded Meta media id; an unknown asset falls back to text', async () => {
  const t = await createTenant(stack, { credits: 10 });
  const pdf = Buffer.concat([samples.pdf, randomBytes(2048)]);
  const item = (await stack.api.post('/v1/media').set(auth(t)).attach('file', pdf, { filename: 'price-list.pdf', contentType: 'application/pdf' }).expect(201)).body as { id: string };
  await stack.api.post(`/v1/agents/${t.agentId}/assets`).set(auth(t)).send({ name: 'price list PDF', description: 'Our 2026 prices for every plan', mediaId: item.id }).expect(201);
  await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ tools: ['send_media'] }).expect(200);

  stack.llm.script([toolCallReply('send_media', { asset: 'price list PDF', caption: 'Our prices' })]);
  const word = `sm-${randomWaId()}`;
  const { from } = await leadWrites(t, `Can you send me your prices? ${word}`);
  await waitFor(() => sentTo(from).length === 1, { what: 'the document' });
  const def = offered(requestsSeeing(word)[0]!.body).find((d) => d.function.name === 'send_media')!;
  expect(def.function.parameters.properties.asset!.enum).toEqual(['price list PDF']);
  expect(def.function.description).toContain('price list PDF (document): Our 2026 prices for every plan');
  const uploads = stack.graph.uploadRequests.filter((u) => u.phoneNumberId === t.phoneNumberId);
  expect(uploads).toHaveLength(1);
  const metaId = (uploads[0]!.response.body as { id: string }).id;
  expect(sentTo(from)[0]!.body).toMatchObject({ messaging_product: 'whatsapp', to: from, type: 'document', document: { id: metaId, caption: 'Our prices', filename: 'price-list.pdf' } });

  // a name that is no asset: reported to the model once, then a text reply
  stack.llm.script([toolCallReply('send_media', { asset: 'brochure' }), 'Here is a summary of our prices instead.']);
  const other = `sm2-${randomWaId()}`;
  const second = await leadWrites(t, `And a brochure? ${other}`);
  await waitFor(() => sentTo(second.from).length === 1, { what: 'the text fallback' });
  expect((sentTo(second.from)[0]!.body as { text: { body: string } }).text.body).toBe('Here is a summary of our prices instead.');
  const reqs = requestsSeeing(other);
  expect(reqs).toHaveLength(2);
  expect(contentText(reqs[1]!.messages.at(-1)!.content)).toMatch(/^Error: .*price list PDF.*Nothing was done/s);
});
