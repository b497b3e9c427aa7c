/**
 * Opt-out through the public API on the real dev server: the suppression routes (tenant scope,
 * strict bodies, pagination), a STOP through the webhook, the lead's `optedOut`, the events, the
 * enrolment refused for a suppressed contact, and the agent's opt-out settings.
 */
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

/** A lead that wrote once and got its AI reply. */
async function activeLead(t: TenantFixture) {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there')).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
  return { from, lead: lead as { id: string } };
}

const leadView = async (t: TenantFixture, leadId: string) => (await stack.api.get(`/v1/leads/${leadId}`).set(auth(t)).expect(200)).body as { optedOut: boolean; events: { type: string; data: Record<string, unknown> }[] };

test('POST/GET/DELETE /v1/suppressions: normalized, idempotent, paginated, scoped by tenant', async () => {
  const t = await createTenant(stack);
  const other = await createTenant(stack);

  const a = await stack.api.post('/v1/suppressions').set(auth(t)).send({ contact: '+91 98765-43210', note: 'asked by phone' }).expect(201);
  expect(a.body).toMatchObject({ contact: '919876543210', source: 'api', note: 'asked by phone', keyword: null });
  expect(a.body.forms).toContain('919876543210');
  // the same contact again (another spelling): the existing suppression, 200
  const again = await stack.api.post('/v1/suppressions').set(auth(t)).send({ contact: '919876543210' }).expect(200);
  expect(again.body.id).toBe(a.body.id);
  const b = await stack.api.post('/v1/suppressions').set(auth(t)).send({ contact: 'US.13491208655302741918' }).expect(201);
  const c = await stack.api.post('/v1/suppressions').set(auth(t)).send({ contact: '14155550100' }).expect(201);

  // pagination: limit 2, then the rest; oldest first
  const p1 = await stack.api.get('/v1/suppressions?limit=2').set(auth(t)).expect(200);
  expect(p1.body.items.map((s: { id: string }) => s.id)).toEqual([a.body.id, b.body.id]);
  expect(typeof p1.body.nextCursor).toBe('string');
  const p2 = await stack.api.get(`/v1/suppressions?limit=2&cursor=${p1.body.nextCursor}`).set(auth(t)).expect(200);
  expect(p2.body).toEqual({ items: [expect.objectContaining({ id: c.body.id })], nextCursor: null });
  for (const q of ['limit=0', 'limit=201', 'limit=abc', 'cursor=garbage', 'foo=1']) {
    const bad = await stack.api.get(`/v1/suppressions?${q}`).set(auth(t));
    expect([q, bad.status]).toEqual([q, 400]);
  }

  // another tenant sees none of them, cannot read or delete them (404), and its own list is separate
  expect((await stack.api.get('/v1/suppressions').set(auth(other)).expect(200)).body).toEqual({ items: [], nextCursor: null });
  await stack.api.get(`/v1/suppressions/${a.body.id}`).set(auth(other)).expect(404);
  await stack.api.delete(`/v1/suppressions/${a.body.id}`).set(auth(other)).expect(404);
  const theirs = await stack.api.post('/v1/suppressions').set(auth(other)).send({ contact: '919876543210' }).expect(201);
  expect(theirs.body.id).not.toBe(a.body.id);
  await stack.api.get(`/v1/suppressions/${a.body.id}`).set(auth(t)).expect(200);

  await stack.api.delete(`/v1/suppressions/${a.body.id}`).set(auth(t)).expect(200);
  await stack.api.delete(`/v1/suppressions/${a.body.id}`).set(auth(t)).expect(404);
  await stack.api.delete('/v1/suppressions/not-a-uuid').set(auth(t)).expect(404);
  expect((await stack.api.get('/v1/suppressions').set(auth(t)).expect(200)).body.items).toHaveLength(2);
  // the other tenant's suppression of the same number is untouched
  await stack.api.get(`/v1/suppressions/${theirs.body.id}`).set(auth(other)).expect(200);

  await stack.api.get('/v1/suppressions').expect(401);
  await stack.api.post('/v1/suppressions').send({ contact: '919876543210' }).expect(401);
});

test('POST /v1/suppressions: strict bodies answer 400 with the reason', async () => {
  const t = await createTenant(stack);
  const cases: unknown[] = [{}, { contact: '' }, { contact: '   ' }, { contact: '+1 23' }, { contact: 'two words' }, { contact: 'x'.repeat(129) }, { contact: 919876543210 }, { contact: '919876543210', extra: true }, { contact: '919876543210', note: '' }, { contact: '919876543210', note: 'n'.repeat(501) }];
  for (const body of cases) {
    const r = await stack.api.post('/v1/suppressions').set(auth(t)).send(body as object);
    expect([body, r.status]).toEqual([body, 400]);
    expect(r.body.error.code).toBe('validation_failed');
    expect(r.body.error.issues.length).toBeGreaterThan(0);
  }
  expect((await stack.api.get('/v1/suppressions').set(auth(t)).expect(200)).body.items).toHaveLength(0);
});

test('a STOP through the webhook: the lead shows optedOut and the event, enrolment is refused, START re-subscribes', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const { from, lead } = await activeLead(t);
  expect((await leadView(t, lead.id)).optedOut).toBe(false);

  await postWebhook(stack, textWebhook(t.phoneNumberId, from, ' STOP ')).expect(200);
  // the suppression row and the lead's event are two statements: wait for both
  const stopped = await waitFor(async () => {
    const v = await leadView(t, lead.id);
    return v.optedOut && v.events.some((e) => e.type === 'opted_out') ? v : undefined;
  }, { what: 'optedOut and its event' });
  expect(stopped.events.find((e) => e.type === 'opted_out')?.data).toMatchObject({ source: 'keyword', keyword: 'stop' });
  const list = (await stack.api.get('/v1/suppressions').set(auth(t)).expect(200)).body.items;
  expect(list).toEqual([expect.objectContaining({ contact: from, source: 'keyword', keyword: 'stop', leadId: lead.id })]);
  await waitFor(async () => (await stack.api.get(`/v1/leads/${lead.id}/state`).set(auth(t))).body.optedOut === true, { what: 'the state query' });

  const seq = await stack.api.post('/v1/sequences').set(auth(t)).send({ name: 'Nudge', steps: [{ delayMs: 500, kind: 'text', text: 'Following up!' }] }).expect(201);
  const refused = await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(409);
  expect(refused.body.error.code).toBe('contact_opted_out');
  const template = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ template: { name: 'follow_up', language: 'en' } }).expect(409);
  expect(template.body.error.code).toBe('contact_opted_out');

  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Start')).expect(200);
  const back = await waitFor(async () => {
    const v = await leadView(t, lead.id);
    return !v.optedOut && v.events.some((e) => e.type === 'opted_in') ? v : undefined;
  }, { what: 'opted in and its event' });
  expect(back.events.find((e) => e.type === 'opted_in')?.data).toMatchObject({ source: 'keyword', keyword: 'start', wasSuppressed: true });
  expect((await stack.api.get('/v1/suppressions').set(auth(t)).expect(200)).body.items).toHaveLength(0);
  await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
});

test('the API suppresses and releases a lead by its phone: optedOut and an event each time', async () => {
  const t = await createTenant(stack, { credits: 20 });
  const { from, lead } = await activeLead(t);
  const s = await stack.api.post('/v1/suppressions').set(auth(t)).send({ contact: `+${from}` }).expect(201);
  const v = await leadView(t, lead.id);
  expect(v.optedOut).toBe(true);
  expect(v.events.find((e) => e.type === 'opted_out')?.data).toEqual({ source: 'api', suppressionId: s.body.id });
  await stack.api.delete(`/v1/suppressions/${s.body.id}`).set(auth(t)).expect(200);
  const after = await leadView(t, lead.id);
  expect(after.optedOut).toBe(false);
  expect(after.events.find((e) => e.type === 'opted_in')?.data).toEqual({ source: 'api', suppressionId: s.body.id });
});

test('POST /v1/agents takes optional opt-out settings (strict); without them it works as before', async () => {
  const t = await createTenant(stack);
  const base = { name: 'Bot', systemPrompt: 'Be brief.', model: 'gpt-4o-mini' };
  const plain = await stack.api.post('/v1/agents').set(auth(t)).send(base).expect(201);
  expect(plain.body.optOut).toBeNull();
  const optOut = { languages: ['en', 'pt'], keywords: { fr: { stop: ['ARRÊT'], start: ['COMMENCER'] } }, confirmationText: 'Done: no more messages.', replyAfterOptOut: false };
  const withSettings = await stack.api.post('/v1/agents').set(auth(t)).send({ ...base, optOut }).expect(201);
  expect(withSettings.body.optOut).toEqual(optOut);
  for (const bad of [{ languages: ['fr'] }, { keywords: { French: { stop: ['x'] } } }, { keywords: { fr: { stop: [''] } } }, { keywords: { fr: { halt: ['x'] } } }, { confirmationText: '' }, { replyAfterOptOut: 'no' }, { extra: 1 }]) {
    const r = await stack.api.post('/v1/agents').set(auth(t)).send({ ...base, optOut: bad });
    expect([bad, r.status]).toEqual([bad, 400]);
  }
});
