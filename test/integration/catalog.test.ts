import { ADMIN_TOKEN, startStack, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function tenantKey(): Promise<string> {
  const t = await stack.api.post('/v1/tenants').set('authorization', `Bearer ${ADMIN_TOKEN}`).send({ name: 'Catalog Co' }).expect(201);
  return t.body.apiKey;
}

test('every tenant starts with the default pipeline New → Qualified → Nurture → Converted → Lost', async () => {
  const key = await tenantKey();
  const res = await stack.api.get('/v1/pipelines').set('authorization', `Bearer ${key}`).expect(200);
  expect(res.body.items).toHaveLength(1);
  expect(res.body.items[0].isDefault).toBe(true);
  expect(res.body.items[0].stages.map((s: { name: string }) => s.name)).toEqual(['New', 'Qualified', 'Nurture', 'Converted', 'Lost']);
});

test('templates: registered, listed with their variable count, unique per name and language, validated', async () => {
  const key = await tenantKey();
  const auth = { authorization: `Bearer ${key}` };
  const body = { name: 'order_update', language: 'en_US', category: 'utility', body: 'Hi {{1}}, your order {{2}} is on its way.', approved: true };
  const created = await stack.api.post('/v1/templates').set(auth).send(body).expect(201);
  expect(created.body).toMatchObject({ name: 'order_update', language: 'en_US', approved: true, variables: 2 });
  await stack.api.post('/v1/templates').set(auth).send(body).expect(409);
  await stack.api.post('/v1/templates').set(auth).send({ ...body, language: 'hi' }).expect(201);
  const bad = await stack.api.post('/v1/templates').set(auth).send({ ...body, name: 'Order Update!', category: 'promo' }).expect(400);
  expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['category', 'name']);
  await stack.api.post('/v1/templates').set(auth).send({ ...body, name: 'x', extra: 1 }).expect(400);
  const list = await stack.api.get('/v1/templates').set(auth).expect(200);
  expect(list.body.items.map((t: { language: string }) => t.language)).toEqual(['en_US', 'hi']);
  // another tenant sees none of them
  const other = await tenantKey();
  const none = await stack.api.get('/v1/templates').set('authorization', `Bearer ${other}`).expect(200);
  expect(none.body.items).toEqual([]);
});

test('custom pipelines: created with ordered unique stages, names unique per tenant', async () => {
  const key = await tenantKey();
  const auth = { authorization: `Bearer ${key}` };
  const p = await stack.api.post('/v1/pipelines').set(auth).send({ name: 'Renewals', stages: ['Due', 'Contacted', 'Renewed', 'Churned'] }).expect(201);
  expect(p.body.stages.map((s: { name: string; position: number }) => [s.name, s.position])).toEqual([
    ['Due', 0],
    ['Contacted', 1],
    ['Renewed', 2],
    ['Churned', 3],
  ]);
  await stack.api.post('/v1/pipelines').set(auth).send({ name: 'Renewals', stages: ['A'] }).expect(409);
  await stack.api.post('/v1/pipelines').set(auth).send({ name: 'Dupes', stages: ['A', 'A'] }).expect(400);
  await stack.api.post('/v1/pipelines').set(auth).send({ name: 'Empty', stages: [] }).expect(400);
  const list = await stack.api.get('/v1/pipelines').set(auth).expect(200);
  expect(list.body.items.map((x: { name: string }) => x.name)).toEqual(['Sales', 'Renewals']);
});
