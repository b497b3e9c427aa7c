/**
 * Changing the setup on the whole stack (dev server, fake Meta and OpenAI): agent versions,
 * rollback and the version each turn records, deleting agents, sequence versions (enrolled
 * leads keep theirs) and archiving, enrolment rule removal, pipelines and stages (rename, add,
 * reorder, remove with a move of the leads in it, in the database and in their workflows).
 */
import { eq } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { contentText } from '../../fakes/openai';
import { agents, channelAccounts } from '../../db/schema';
import { createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: TenantFixture) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
const replyCalls = async (t: TenantFixture, leadId: string) =>
  (await stack.core.services.extractions.llmCalls(t.tenantId, { leadId })).filter((c) => c.purpose === 'reply').reverse();

/** A lead that wrote once and got its AI reply. */
async function activeLead(t: TenantFixture, text = 'Hi there') {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, text)).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  const workflowId = stack.leadWorkflowId(t.channelId, from);
  await waitFor(() => sentTo(from).length === 1, { what: 'first AI reply' });
  return { from, lead: lead as { id: string }, workflowId };
}

describe('agents', () => {
  test('PATCH makes a new version, the versions list pages, restore makes a new version with the old fields, no-op PATCH makes none', async () => {
    const t = await createTenant(stack);
    const v1 = await stack.api.get(`/v1/agents/${t.agentId}`).set(auth(t)).expect(200);
    expect(v1.body).toMatchObject({ id: t.agentId, version: 1, systemPrompt: 'You are a helpful sales assistant.', fallbackModel: null });

    const v2 = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ systemPrompt: 'You sell solar panels. Be brief.', temperature: 0.2, fallbackModel: 'gpt-4o' }).expect(200);
    expect(v2.body).toMatchObject({ version: 2, systemPrompt: 'You sell solar panels. Be brief.', temperature: 0.2, fallbackModel: 'gpt-4o', name: 'Sales bot' });
    // the same values again: no new version
    const same = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ systemPrompt: 'You sell solar panels. Be brief.' }).expect(200);
    expect(same.body.version).toBe(2);
    // fallbackModel: null removes it
    const v3 = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ fallbackModel: null, handoffKeywords: ['human please'] }).expect(200);
    expect(v3.body).toMatchObject({ version: 3, fallbackModel: null, handoffKeywords: ['human please'] });

    const page1 = await stack.api.get(`/v1/agents/${t.agentId}/versions?limit=2`).set(auth(t)).expect(200);
    expect(page1.body.items.map((v: { version: number }) => v.version)).toEqual([3, 2]);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await stack.api.get(`/v1/agents/${t.agentId}/versions?limit=2&cursor=${page1.body.nextCursor}`).set(auth(t)).expect(200);
    expect(page2.body).toMatchObject({ items: [{ version: 1, systemPrompt: 'You are a helpful sales assistant.' }], nextCursor: null });
    // every version names the key that made it
    const keys = await stack.api.get('/v1/api-keys').set(auth(t)).expect(200);
    expect(page1.body.items[0].createdBy).toBe(keys.body.items[0].id);

    const restored = await stack.api.post(`/v1/agents/${t.agentId}/versions/1/restore`).set(auth(t)).send({}).expect(200);
    expect(restored.body).toMatchObject({ version: 4, systemPrompt: 'You are a helpful sales assistant.', temperature: v1.body.temperature, fallbackModel: null, handoffKeywords: [] });
    const latest = await stack.api.get(`/v1/agents/${t.agentId}/versions?limit=1`).set(auth(t)).expect(200);
    expect(latest.body.items[0]).toMatchObject({ version: 4, restoredFrom: 1 });
    await stack.api.post(`/v1/agents/${t.agentId}/versions/9/restore`).set(auth(t)).send({}).expect(404);
    await stack.api.post(`/v1/agents/${t.agentId}/versions/abc/restore`).set(auth(t)).send({}).expect(404);

    // the audit log shows the PATCH with the agent before and after
    const audit = await stack.api.get('/v1/audit-log').set(auth(t)).expect(200);
    const patches = audit.body.items.filter((e: { action: string }) => e.action === 'PATCH /v1/agents/:agentId').reverse();
    expect(patches.map((e: { before: { version: number }; after: { version: number } }) => [e.before.version, e.after.version])).toEqual([
      [1, 2],
      [2, 2],
      [2, 3],
    ]);
    expect(patches[0].before).toMatchObject({ version: 1, systemPrompt: 'You are a helpful sales assistant.' });
    expect(patches[0].after).toMatchObject({ version: 2, systemPrompt: 'You sell solar panels. Be brief.' });
  });

  test('an agent made before versions were kept (no history row) gets its version 1 recorded at its first change', async () => {
    const t = await createTenant(stack);
    const [old] = await stack.core.database.db.insert(agents).values({ tenantId: t.tenantId, name: 'Legacy', systemPrompt: 'Old prompt.', model: 'gpt-4o-mini' }).returning();
    expect((await stack.api.get(`/v1/agents/${old!.id}/versions`).set(auth(t)).expect(200)).body.items).toEqual([]);
    await stack.api.patch(`/v1/agents/${old!.id}`).set(auth(t)).send({ systemPrompt: 'New prompt.' }).expect(200);
    const versions = await stack.api.get(`/v1/agents/${old!.id}/versions`).set(auth(t)).expect(200);
    expect(versions.body.items.map((v: { version: number; systemPrompt: string; createdBy: string | null }) => [v.version, v.systemPrompt, v.createdBy === null])).toEqual([
      [2, 'New prompt.', false],
      [1, 'Old prompt.', true],
    ]);
    expect((await stack.api.post(`/v1/agents/${old!.id}/versions/1/restore`).set(auth(t)).send({}).expect(200)).body).toMatchObject({ version: 3, systemPrompt: 'Old prompt.' });
  });

  test('bad bodies are 400; another tenant’s agent is 404 on every route', async () => {
    const t = await createTenant(stack);
    const other = await createTenant(stack);
    for (const body of [{}, { nope: 1 }, { temperature: 5 }, { systemPrompt: '' }, { handoffKeywords: 'x' }, { model: null }]) {
      const r = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send(body).expect(400);
      expect(r.body.error.code).toBe('validation_failed');
    }
    await stack.api.get(`/v1/agents/${other.agentId}`).set(auth(t)).expect(404);
    await stack.api.patch(`/v1/agents/${other.agentId}`).set(auth(t)).send({ name: 'mine now' }).expect(404);
    await stack.api.get(`/v1/agents/${other.agentId}/versions`).set(auth(t)).expect(404);
    await stack.api.post(`/v1/agents/${other.agentId}/versions/1/restore`).set(auth(t)).send({}).expect(404);
    await stack.api.delete(`/v1/agents/${other.agentId}`).set(auth(t)).expect(404);
    await stack.api.get('/v1/agents/not-a-uuid').set(auth(t)).expect(404);
    await stack.api.get(`/v1/agents/${t.agentId}/versions?limit=0`).set(auth(t)).expect(400);
    await stack.api.get(`/v1/agents/${t.agentId}/versions?cursor=zzz`).set(auth(t)).expect(400);
    const untouched = await stack.api.get(`/v1/agents/${other.agentId}`).set(auth(other)).expect(200);
    expect(untouched.body).toMatchObject({ name: 'Sales bot', version: 1 });
  });

  test('each reply records the agent version that answered it: after a PATCH version 2, after a restore of 1 version 3 with 1’s prompt', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const { from, lead } = await activeLead(t);
    expect((await replyCalls(t, lead.id)).map((c) => [c.agentId, c.agentVersion])).toEqual([[t.agentId, 1]]);

    await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ systemPrompt: 'You are Version Two, a terse assistant.' }).expect(200);
    stack.llm.requests.length = 0;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'And the price?')).expect(200);
    await waitFor(() => sentTo(from).length === 2, { what: 'second reply' });
    expect((await replyCalls(t, lead.id)).map((c) => c.agentVersion)).toEqual([1, 2]);
    expect(stack.llm.requests.some((r) => contentText(r.messages[0]?.content).startsWith('You are Version Two'))).toBe(true);

    await stack.api.post(`/v1/agents/${t.agentId}/versions/1/restore`).set(auth(t)).send({}).expect(200);
    stack.llm.requests.length = 0;
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Do you deliver?')).expect(200);
    await waitFor(() => sentTo(from).length === 3, { what: 'third reply' });
    expect((await replyCalls(t, lead.id)).map((c) => c.agentVersion)).toEqual([1, 2, 3]);
    const prompts = stack.llm.requests.map((r) => contentText(r.messages[0]?.content));
    expect(prompts.some((p) => p.startsWith('You are a helpful sales assistant.'))).toBe(true);
    expect(prompts.some((p) => p.startsWith('You are Version Two'))).toBe(false);
  });

  test('DELETE: 409 naming the channels while one uses the agent; afterwards 404, and past llm_calls rows keep its id and version', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const { lead } = await activeLead(t);
    const busy = await stack.api.delete(`/v1/agents/${t.agentId}`).set(auth(t)).expect(409);
    expect(busy.body.error.code).toBe('agent_in_use');
    expect(busy.body.error.message).toContain(t.channelId);

    // move the channel to a second agent (the channel route for that is another part of issue 10)
    const second = await stack.api.post('/v1/agents').set(auth(t)).send({ name: 'Second', systemPrompt: 'Second bot.', model: 'gpt-4o-mini' }).expect(201);
    expect(second.body.version).toBe(1);
    await stack.core.database.db.update(channelAccounts).set({ agentId: second.body.id }).where(eq(channelAccounts.id, t.channelId));

    const rule = await stack.api.post('/v1/sequences').set(auth(t)).send({ name: 'S', steps: [{ delayMs: 60_000, kind: 'text', text: 'hi' }] }).expect(201);
    await stack.api.post('/v1/enrollment-rules').set(auth(t)).send({ sequenceId: rule.body.id, agentId: t.agentId }).expect(201);

    const del = await stack.api.delete(`/v1/agents/${t.agentId}`).set(auth(t)).expect(200);
    expect(del.body).toEqual({ id: t.agentId, deleted: true });
    await stack.api.get(`/v1/agents/${t.agentId}`).set(auth(t)).expect(404);
    await stack.api.get(`/v1/agents/${t.agentId}/versions`).set(auth(t)).expect(404);
    await stack.api.delete(`/v1/agents/${t.agentId}`).set(auth(t)).expect(404);
    // the rule that named it went with it; the spend record stays
    const rules = await stack.api.get('/v1/enrollment-rules').set(auth(t)).expect(200);
    expect(rules.body.items).toEqual([]);
    expect((await replyCalls(t, lead.id)).map((c) => [c.agentId, c.agentVersion])).toEqual([[t.agentId, 1]]);
    const usage = await stack.api.get('/v1/agents').set(auth(t)).expect(200);
    expect(usage.body.items.map((a: { id: string }) => a.id)).toEqual([second.body.id]);
  });
});

describe('sequences', () => {
  const stepsV1 = [{ delayMs: 600_000, kind: 'text', text: 'Version one step' }];
  const stepsV2 = [
    { delayMs: 600_000, kind: 'text', text: 'Version two, step one' },
    { delayMs: 600_000, kind: 'text', text: 'Version two, step two' },
  ];

  test('PATCH makes a new version with the same id; an enrolled lead keeps its version until reset, a new enrolment gets the new one', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const seq = await stack.api.post('/v1/sequences').set(auth(t)).send({ name: 'Nurture', steps: stepsV1 }).expect(201);
    expect(seq.body).toMatchObject({ version: 1, archived: false });
    const a = await activeLead(t);
    await stack.api.post(`/v1/leads/${a.lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);

    const v2 = await stack.api.patch(`/v1/sequences/${seq.body.id}`).set(auth(t)).send({ steps: stepsV2, stopOn: ['lead_replied'] }).expect(200);
    expect(v2.body).toMatchObject({ id: seq.body.id, version: 2, name: 'Nurture', steps: stepsV2, stopOn: ['lead_replied'] });
    // the same definition again (keys in another order, as jsonb may return them): no new version
    const reordered = stepsV2.map(({ text, kind, delayMs }) => ({ text, kind, delayMs }));
    expect((await stack.api.patch(`/v1/sequences/${seq.body.id}`).set(auth(t)).send({ steps: reordered }).expect(200)).body.version).toBe(2);
    const versions = await stack.api.get(`/v1/sequences/${seq.body.id}/versions`).set(auth(t)).expect(200);
    expect(versions.body.items.map((v: { version: number; steps: unknown[] }) => [v.version, v.steps.length])).toEqual([
      [2, 2],
      [1, 1],
    ]);

    const aState = await stack.temporal.leadState(a.workflowId);
    expect(aState?.sequence?.def).toMatchObject({ id: seq.body.id, version: 1, steps: stepsV1 });
    const b = await activeLead(t);
    await stack.api.post(`/v1/leads/${b.lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
    expect((await stack.temporal.leadState(b.workflowId))?.sequence?.def).toMatchObject({ version: 2, steps: stepsV2 });

    // a reset restarts the lead on the current version
    await stack.api.post(`/v1/leads/${a.lead.id}/sequence/reset`).set(auth(t)).send({}).expect(200);
    expect((await stack.temporal.leadState(a.workflowId))?.sequence).toMatchObject({ def: { version: 2, steps: stepsV2 }, cursor: { status: 'active', stepIndex: 0 } });

    for (const body of [{}, { steps: [] }, { stopOn: ['nope'] }, { name: 'x', extra: true }, { stopOn: ['lead_replied', 'lead_replied'] }]) {
      await stack.api.patch(`/v1/sequences/${seq.body.id}`).set(auth(t)).send(body).expect(400);
    }
    const other = await createTenant(stack);
    await stack.api.get(`/v1/sequences/${seq.body.id}`).set(auth(other)).expect(404);
    await stack.api.patch(`/v1/sequences/${seq.body.id}`).set(auth(other)).send({ name: 'stolen' }).expect(404);
    await stack.api.delete(`/v1/sequences/${seq.body.id}`).set(auth(other)).expect(404);
    await stack.api.get(`/v1/sequences/${seq.body.id}/versions`).set(auth(other)).expect(404);
  });

  test('DELETE archives: still readable, enrolled leads go on, manual enrolment and new rules 409, existing rules stop enrolling; a rule DELETE removes it', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const seq = await stack.api.post('/v1/sequences').set(auth(t)).send({ name: 'Auto', steps: stepsV1 }).expect(201);
    const rule = await stack.api.post('/v1/enrollment-rules').set(auth(t)).send({ sequenceId: seq.body.id, agentId: t.agentId }).expect(201);
    const a = await activeLead(t);
    await waitFor(async () => (await stack.temporal.leadState(a.workflowId))?.sequence?.def.id === seq.body.id, { what: 'auto-enrolment' });

    const archived = await stack.api.delete(`/v1/sequences/${seq.body.id}`).set(auth(t)).expect(200);
    expect(archived.body).toMatchObject({ id: seq.body.id, archived: true, archivedAt: expect.any(String) });
    const got = await stack.api.get(`/v1/sequences/${seq.body.id}`).set(auth(t)).expect(200);
    expect(got.body.archived).toBe(true);
    await stack.api.delete(`/v1/sequences/${seq.body.id}`).set(auth(t)).expect(200); // idempotent
    expect((await stack.temporal.leadState(a.workflowId))?.sequence?.cursor.status).toBe('active');

    const b = await activeLead(t);
    const refused = await stack.api.post(`/v1/leads/${b.lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(409);
    expect(refused.body.error.code).toBe('sequence_archived');
    expect((await stack.temporal.leadState(b.workflowId))?.sequence).toBeUndefined(); // the rule did not enrol it either
    await stack.api.post('/v1/enrollment-rules').set(auth(t)).send({ sequenceId: seq.body.id }).expect(409);
    await stack.api.patch(`/v1/sequences/${seq.body.id}`).set(auth(t)).send({ name: 'Again' }).expect(409);

    const other = await createTenant(stack);
    await stack.api.delete(`/v1/enrollment-rules/${rule.body.id}`).set(auth(other)).expect(404);
    const del = await stack.api.delete(`/v1/enrollment-rules/${rule.body.id}`).set(auth(t)).expect(200);
    expect(del.body).toEqual({ id: rule.body.id, deleted: true });
    expect((await stack.api.get('/v1/enrollment-rules').set(auth(t)).expect(200)).body.items).toEqual([]);
    await stack.api.delete(`/v1/enrollment-rules/${rule.body.id}`).set(auth(t)).expect(404);
    await stack.api.delete(`/v1/enrollment-rules/${randomUUID()}`).set(auth(t)).expect(404);
  });
});

describe('pipelines and stages', () => {
  const pipelineOf = async (t: TenantFixture, name: string) =>
    (await stack.api.get('/v1/pipelines').set(auth(t)).expect(200)).body.items.find((p: { name: string }) => p.name === name) as {
      id: string;
      stages: { id: string; name: string; position: number }[];
    };
  const names = (p: { stages: { name: string }[] }) => p.stages.map((s) => s.name);

  test('rename a pipeline, add, rename, reorder and remove empty stages; bad bodies 400, another tenant 404', async () => {
    const t = await createTenant(stack);
    const created = await stack.api.post('/v1/pipelines').set(auth(t)).send({ name: 'Partners', stages: ['Intro', 'Demo', 'Signed'] }).expect(201);
    const id = created.body.id as string;
    const renamed = await stack.api.patch(`/v1/pipelines/${id}`).set(auth(t)).send({ name: 'Resellers' }).expect(200);
    expect(renamed.body.name).toBe('Resellers');
    await stack.api.patch(`/v1/pipelines/${id}`).set(auth(t)).send({ name: 'Sales' }).expect(409); // the default pipeline's name

    const added = await stack.api.post(`/v1/pipelines/${id}/stages`).set(auth(t)).send({ name: 'Trial', position: 2 }).expect(201);
    expect(names(added.body.pipeline)).toEqual(['Intro', 'Demo', 'Trial', 'Signed']);
    await stack.api.post(`/v1/pipelines/${id}/stages`).set(auth(t)).send({ name: 'Demo' }).expect(409);
    const last = await stack.api.post(`/v1/pipelines/${id}/stages`).set(auth(t)).send({ name: 'Churned' }).expect(201);
    expect(names(last.body.pipeline)).toEqual(['Intro', 'Demo', 'Trial', 'Signed', 'Churned']);

    const stages = last.body.pipeline.stages as { id: string; name: string }[];
    const reversed = [...stages].reverse().map((s) => s.id);
    const reordered = await stack.api.patch(`/v1/pipelines/${id}`).set(auth(t)).send({ stageOrder: reversed }).expect(200);
    expect(names(reordered.body)).toEqual(['Churned', 'Signed', 'Trial', 'Demo', 'Intro']);
    expect(reordered.body.stages.map((s: { position: number }) => s.position)).toEqual([0, 1, 2, 3, 4]);
    await stack.api.patch(`/v1/pipelines/${id}`).set(auth(t)).send({ stageOrder: reversed.slice(1) }).expect(400);
    await stack.api.patch(`/v1/pipelines/${id}`).set(auth(t)).send({ stageOrder: [...reversed.slice(1), randomUUID()] }).expect(400);

    const trial = stages.find((s) => s.name === 'Trial')!;
    const moved = await stack.api.patch(`/v1/pipelines/${id}/stages/${trial.id}`).set(auth(t)).send({ name: 'Pilot', position: 0 }).expect(200);
    expect(names(moved.body.pipeline)).toEqual(['Pilot', 'Churned', 'Signed', 'Demo', 'Intro']);
    expect(moved.body.moved).toBeUndefined(); // nobody was in it

    const removed = await stack.api.delete(`/v1/pipelines/${id}/stages/${trial.id}`).set(auth(t)).expect(200);
    expect(names(removed.body.pipeline)).toEqual(['Churned', 'Signed', 'Demo', 'Intro']);
    await stack.api.delete(`/v1/pipelines/${id}/stages/${trial.id}`).set(auth(t)).expect(404);

    for (const body of [{}, { name: '' }, { stageOrder: ['x'] }, { name: 'A', color: 'red' }]) await stack.api.patch(`/v1/pipelines/${id}`).set(auth(t)).send(body).expect(400);
    for (const body of [{}, { name: 'X', position: -1 }, { name: 'X', position: 99 }]) await stack.api.post(`/v1/pipelines/${id}/stages`).set(auth(t)).send(body).expect(400);
    await stack.api.delete(`/v1/pipelines/${id}/stages/${stages[0]!.id}?moveTo=`).set(auth(t)).expect(400);

    const other = await createTenant(stack);
    await stack.api.get(`/v1/pipelines/${id}`).set(auth(other)).expect(404);
    await stack.api.patch(`/v1/pipelines/${id}`).set(auth(other)).send({ name: 'Mine' }).expect(404);
    await stack.api.post(`/v1/pipelines/${id}/stages`).set(auth(other)).send({ name: 'Mine' }).expect(404);
    await stack.api.patch(`/v1/pipelines/${id}/stages/${stages[0]!.id}`).set(auth(other)).send({ name: 'Mine' }).expect(404);
    await stack.api.delete(`/v1/pipelines/${id}/stages/${stages[0]!.id}`).set(auth(other)).expect(404);
    expect(names((await stack.api.get(`/v1/pipelines/${id}`).set(auth(t)).expect(200)).body)).toEqual(['Churned', 'Signed', 'Demo', 'Intro']);

    // the entry stage of the default pipeline stays; a pipeline keeps one stage
    const sales = await pipelineOf(t, 'Sales');
    const entry = sales.stages.find((s) => s.name === 'New')!;
    expect((await stack.api.delete(`/v1/pipelines/${sales.id}/stages/${entry.id}`).set(auth(t)).expect(409)).body.error.code).toBe('entry_stage');
    await stack.api.patch(`/v1/pipelines/${sales.id}/stages/${entry.id}`).set(auth(t)).send({ name: 'Fresh' }).expect(409);
    const single = await stack.api.post('/v1/pipelines').set(auth(t)).send({ name: 'Solo', stages: ['Only'] }).expect(201);
    expect((await stack.api.delete(`/v1/pipelines/${single.body.id}/stages/${single.body.stages[0].id}`).set(auth(t)).expect(409)).body.error.code).toBe('last_stage');
  });

  test('a stage with leads in it is removed only with moveTo: the leads move in the database and in their workflows; a rename moves them too', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const p = await stack.api.post('/v1/pipelines').set(auth(t)).send({ name: 'Deals', stages: ['Call booked', 'Proposal'] }).expect(201);
    const [booked, proposal] = p.body.stages as { id: string; name: string }[];
    const a = await activeLead(t);
    const b = await activeLead(t);
    for (const l of [a, b]) await stack.api.post(`/v1/leads/${l.lead.id}/stage`).set(auth(t)).send({ stage: 'Call booked' }).expect(200);

    const refused = await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}`).set(auth(t)).expect(409);
    expect(refused.body.error).toMatchObject({ code: 'stage_has_leads' });
    expect(refused.body.error.message).toContain('2 lead(s)');
    await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}?moveTo=Nowhere`).set(auth(t)).expect(400);
    await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}?moveTo=Call%20booked`).set(auth(t)).expect(400); // itself
    await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}?target=Proposal`).set(auth(t)).expect(400);
    await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}?moveTo=Proposal`).set(auth(t)).send({ moveTo: 'Qualified' }).expect(400);
    await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}`).set(auth(t)).send({ moveTo: 'Proposal', extra: 1 }).expect(400);
    expect(names((await stack.api.get(`/v1/pipelines/${p.body.id}`).set(auth(t)).expect(200)).body)).toEqual(['Call booked', 'Proposal']);

    // a rename carries the leads along
    const renamed = await stack.api.patch(`/v1/pipelines/${p.body.id}/stages/${booked!.id}`).set(auth(t)).send({ name: 'Meeting set' }).expect(200);
    expect(renamed.body.moved).toMatchObject({ from: 'Call booked', to: 'Meeting set', leads: 2, workflowsUpdated: 2, workflowsFailed: [] });
    expect((await stack.api.get(`/v1/leads/${a.lead.id}`).set(auth(t)).expect(200)).body.stage).toBe('Meeting set');
    expect((await stack.temporal.leadState(a.workflowId))?.stage).toBe('Meeting set');

    // b's workflow is gone (terminated): only its row moves, and a new run starts from the row
    await stack.temporal.client.workflow.getHandle(b.workflowId).terminate('test: a lead whose workflow is not running');

    // removal with moveTo: another pipeline's stage of the tenant is a valid target
    const removed = await stack.api.delete(`/v1/pipelines/${p.body.id}/stages/${booked!.id}`).set(auth(t)).send({ moveTo: 'Qualified' }).expect(200);
    expect(removed.body.removed).toMatchObject({ id: booked!.id, name: 'Meeting set' });
    expect(removed.body.moved).toMatchObject({ from: 'Meeting set', to: 'Qualified', leads: 2, workflowsUpdated: 1, workflowsNotRunning: 1, workflowsFailed: [] });
    expect(names(removed.body.pipeline)).toEqual(['Proposal']);
    expect(removed.body.pipeline.stages[0]).toMatchObject({ id: proposal!.id, position: 0 });
    for (const l of [a, b]) expect((await stack.api.get(`/v1/leads/${l.lead.id}`).set(auth(t)).expect(200)).body.stage).toBe('Qualified');
    const aLead = await stack.api.get(`/v1/leads/${a.lead.id}`).set(auth(t)).expect(200);
    expect(aLead.body.events).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'stage_changed', data: expect.objectContaining({ from: 'Meeting set', to: 'Qualified' }) })]));
    expect((await stack.temporal.leadState(a.workflowId))?.stage).toBe('Qualified');
    // b writes again: a new workflow run starts in the stage its row has
    await postWebhook(stack, textWebhook(t.phoneNumberId, b.from, 'Hello again')).expect(200);
    await waitFor(async () => (await stack.temporal.leadState(b.workflowId))?.stage === 'Qualified', { what: 'b restarted in Qualified' });
    // the lead's next turn uses the new stage (its workflow agrees with the database)
    await postWebhook(stack, textWebhook(t.phoneNumberId, a.from, 'Still there?')).expect(200);
    await waitFor(() => sentTo(a.from).length === 2, { what: 'reply after the move' });
    expect((await stack.api.get(`/v1/leads/${a.lead.id}`).set(auth(t)).expect(200)).body.stage).toBe('Qualified');
  });
});
