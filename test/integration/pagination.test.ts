/**
 * Every list route of the tenant API pages the same way: `?limit=1..200&cursor=` →
 * `{ items, nextCursor }` (keyset, opaque cursor; nextCursor null on the last page). Walking a
 * list page by page gives exactly the full list, in order, each item once; a bad limit, a bad
 * cursor or an unknown parameter is a 400.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { samples } from '../support/media-samples';
import { ADMIN_TOKEN, createTenant, randomWaId, startStack, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
let t: TenantFixture;
let leadId: string;
const N = 5;

beforeAll(async () => {
  stack = await startStack();
  t = await createTenant(stack, { credits: 10 });
  const auth = { authorization: `Bearer ${t.apiKey}` };
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const api = stack.api;
  const s = stack.core.services;
  for (let i = 0; i < N; i++) {
    await api.post('/v1/agents').set(auth).send({ name: `Agent ${i}`, systemPrompt: 'Be brief.', model: 'gpt-4o-mini' }).expect(201);
    await api.post('/v1/channels').set(auth).send({ platform: 'webchat', agentId: t.agentId, displayPhoneNumber: `Chat ${i}` }).expect(201);
    // names out of creation order: the template list is ordered by name and language
    await api
      .post('/v1/templates')
      .set(auth)
      .send({ name: `tpl_${(i * 3) % N}`, language: i % 2 ? 'en_US' : 'de', category: 'utility', body: 'Hi {{1}}', approved: true })
      .expect(201);
    await api.post('/v1/pipelines').set(auth).send({ name: `Pipeline ${i}`, stages: ['A', 'B'] }).expect(201);
    const seq = await api
      .post('/v1/sequences')
      .set(auth)
      .send({ name: `Seq ${i}`, steps: [{ delayMs: 60_000, kind: 'text', text: 'Still there?' }] })
      .expect(201);
    await api.post('/v1/enrollment-rules').set(auth).send({ sequenceId: seq.body.id }).expect(201);
    await api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 1, reference: `page-${i}-${randomUUID()}` }).expect(201);
    await api.post('/v1/suppressions').set(auth).send({ contact: randomWaId() }).expect(201);
    await api.post('/v1/media').set(auth).attach('file', Buffer.concat([samples.png, randomBytes(64)]), { filename: `p${i}.png`, contentType: 'image/png' }).expect(201);
  }
  // leads, messages, extraction versions and dead letters straight through the services (no LLM turns racing the walk)
  for (let i = 0; i < N; i++) {
    const contactId = randomWaId();
    const l = await s.leads.ensure({ tenantId: t.tenantId, channelAccountId: t.channelId, channel: 'whatsapp', contactId, workflowId: `lead:${t.channelId}:${contactId}` });
    if (i === 0) leadId = l.leadId;
  }
  for (let i = 0; i < N; i++) {
    await s.leads.recordInbound({
      tenantId: t.tenantId,
      leadId,
      messages: [{ providerMessageId: `wamid.page-${randomUUID()}`, channel: 'whatsapp', contactId: 'x', sentAt: new Date().toISOString(), type: 'text', text: `message ${i}` }],
    });
    await s.extractions.saveIfChanged({
      tenantId: t.tenantId,
      leadId,
      data: { name: `Name ${i}`, email: null, company: null, budget: null, authority: null, need: null, timeline: null, fields: {} },
      model: 'gpt-4o-mini',
      summary: null,
      scoreOf: () => i,
    });
    await s.deadLetters.park({ id: randomUUID(), tenantId: t.tenantId, leadId, workflowId: `lead:${t.channelId}:x`, kind: 'send', operation: { i }, error: { code: 'test' } });
  }
});
afterAll(async () => {
  await stack?.stop();
});

const routes = () => [
  '/v1/agents',
  '/v1/channels',
  '/v1/templates',
  '/v1/pipelines',
  '/v1/sequences',
  '/v1/enrollment-rules',
  '/v1/credits/ledger',
  '/v1/leads',
  `/v1/leads/${leadId}/messages`,
  `/v1/leads/${leadId}/extractions`,
  '/v1/extractions',
  '/v1/dead-letters',
  '/v1/suppressions',
  '/v1/media',
];

function get(path: string, query: Record<string, string | number> = {}) {
  return stack.api.get(path).query(query).set({ authorization: `Bearer ${t.apiKey}` });
}

describe('every list route pages with limit and cursor', () => {
  test.each([1, 2, 3])('limit %i: the pages make up the full list, in order, each item once', async (limit) => {
    for (const path of routes()) {
      const full = await get(path, { limit: 200 }).expect(200);
      expect(Object.keys(full.body).sort()).toEqual(['items', 'nextCursor']);
      expect(full.body.nextCursor).toBeNull();
      const all = (full.body.items as { id: string }[]).map((x) => x.id);
      expect({ path, n: all.length >= N }).toEqual({ path, n: true });

      const walked: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await get(path, { limit, ...(cursor ? { cursor } : {}) }).expect(200);
        const ids = (r.body.items as { id: string }[]).map((x) => x.id);
        expect(ids.length).toBeLessThanOrEqual(limit);
        if (r.body.nextCursor !== null) {
          expect(ids).toHaveLength(limit);
          expect(typeof r.body.nextCursor).toBe('string');
        }
        walked.push(...ids);
        cursor = r.body.nextCursor as string | null;
        pages += 1;
      } while (cursor !== null && pages <= all.length + 1);
      expect({ path, walked }).toEqual({ path, walked: all });
      expect(new Set(walked).size).toBe(walked.length);
      expect({ path, pages }).toEqual({ path, pages: Math.max(1, Math.ceil(all.length / limit)) });
    }
  });

  test('the default page is at most 50 items and says where to go on; an empty cursor is the first page', async () => {
    for (const path of routes()) {
      const r = await get(path).expect(200);
      expect(r.body.items.length).toBeLessThanOrEqual(50);
      expect(r.body).toHaveProperty('nextCursor');
      const empty = await get(path, { cursor: '' }).expect(200);
      expect(empty.body).toEqual(r.body);
    }
  });

  test('a bad limit, a bad cursor or an unknown parameter is a 400', async () => {
    const otherRoutesCursor = (await get('/v1/leads', { limit: 1 }).expect(200)).body.nextCursor as string;
    const messagesCursor = (await get(`/v1/leads/${leadId}/messages`, { limit: 1 }).expect(200)).body.nextCursor as string;
    for (const path of routes()) {
      for (const limit of ['0', '201', '-1', '1.5', 'ten']) {
        const r = await get(path, { limit });
        expect({ path, limit, status: r.status }).toEqual({ path, limit, status: 400 });
      }
      for (const cursor of ['garbage', Buffer.from('["x","y"]').toString('base64url'), 'a'.repeat(501)]) {
        const r = await get(path, { cursor });
        expect({ path, cursor: cursor.slice(0, 20), status: r.status }).toEqual({ path, cursor: cursor.slice(0, 20), status: 400 });
      }
      const r = await get(path, { page: 2 });
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
    }
    // a cursor of another kind of list is refused, not misread
    await get('/v1/templates', { cursor: otherRoutesCursor }).expect(400);
    await get('/v1/agents', { cursor: messagesCursor }).expect(400);
  });

  test('another tenant walks an empty list; a cursor never crosses tenants', async () => {
    const other = await createTenant(stack);
    for (const path of routes().filter((p) => !p.includes(leadId))) {
      const mine = (await get(path, { limit: 1 }).expect(200)).body.nextCursor as string;
      const theirs = await stack.api.get(path).query({ limit: 200, cursor: mine }).set({ authorization: `Bearer ${other.apiKey}` }).expect(200);
      const ids = new Set(((await get(path, { limit: 200 })).body.items as { id: string }[]).map((x) => x.id));
      for (const item of theirs.body.items as { id: string }[]) expect(ids.has(item.id)).toBe(false);
    }
  });
});
