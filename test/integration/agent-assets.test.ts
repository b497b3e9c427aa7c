/**
 * Agent assets (issue 11): `POST/GET/DELETE /v1/agents/:agentId/assets` over the media library:
 * the exact answers, tenant isolation (404), limits (name, description, count, concurrent creations),
 * roles, the library delete refused while an asset names the file (409 media_in_use naming the
 * agents), the agent's delete taking its assets along, and `listAgentAssets` for the agent tools.
 */
import { randomBytes } from 'node:crypto';
import { AGENT_ASSET_LIMITS } from '../../services/agent-assets';
import { samples } from '../support/media-samples';
import { createTenant, startStack, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const fileOf = (head: Buffer, size = 2048) => Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
const upload = async (t: TenantFixture, data: Buffer, filename: string, contentType: string) =>
  (await stack.api.post('/v1/media').set(auth(t)).attach('file', data, { filename, contentType }).expect(201)).body as { id: string; sizeBytes: number };
const assets = (t: TenantFixture, agentId = t.agentId) => `/v1/agents/${agentId}/assets`;

test('create, list and delete: exact answers; names unique per agent ignoring case', async () => {
  const t = await createTenant(stack);
  const pdf = await upload(t, fileOf(samples.pdf, 3000), 'price-list.pdf', 'application/pdf');
  const png = await upload(t, fileOf(samples.png), 'shoe.png', 'image/png');

  const created = await stack.api.post(assets(t)).set(auth(t)).send({ name: '  price list PDF ', description: 'Our 2026 prices for every plan', mediaId: pdf.id }).expect(201);
  expect(created.body).toEqual({
    id: expect.any(String),
    agentId: t.agentId,
    name: 'price list PDF',
    description: 'Our 2026 prices for every plan',
    mediaId: pdf.id,
    kind: 'document',
    mimeType: 'application/pdf',
    filename: 'price-list.pdf',
    sizeBytes: 3000,
    createdAt: expect.any(String),
  });
  const shoe = await stack.api.post(assets(t)).set(auth(t)).send({ name: 'red shoe photo', description: 'The red running shoe', mediaId: png.id }).expect(201);
  const taken = await stack.api.post(assets(t)).set(auth(t)).send({ name: 'Price List pdf', description: 'again', mediaId: png.id }).expect(409);
  expect(taken.body.error).toMatchObject({ code: 'agent_asset_name_taken', message: 'the agent already has an asset named "Price List pdf"' });

  const list = await stack.api.get(assets(t)).set(auth(t)).expect(200);
  expect(list.body).toEqual({ items: [created.body, shoe.body], nextCursor: null });
  // what the agent tools read
  expect(await stack.core.services.agentAssets.listAgentAssets(t.tenantId, t.agentId)).toEqual([
    { id: created.body.id, name: 'price list PDF', description: 'Our 2026 prices for every plan', mediaId: pdf.id, kind: 'document' },
    { id: shoe.body.id, name: 'red shoe photo', description: 'The red running shoe', mediaId: png.id, kind: 'image' },
  ]);

  expect((await stack.api.delete(`${assets(t)}/${created.body.id}`).set(auth(t)).expect(200)).body).toEqual(created.body);
  await stack.api.delete(`${assets(t)}/${created.body.id}`).set(auth(t)).expect(404);
  expect((await stack.api.get(assets(t)).set(auth(t)).expect(200)).body.items).toEqual([shoe.body]);
  // the library file stays
  await stack.api.get(`/v1/media/${pdf.id}`).set(auth(t)).expect(200);
});

test("tenant isolation: another tenant's agent, asset or file is 404", async () => {
  const a = await createTenant(stack);
  const b = await createTenant(stack);
  const aFile = await upload(a, fileOf(samples.png), 'a.png', 'image/png');
  const bFile = await upload(b, fileOf(samples.png), 'b.png', 'image/png');
  const asset = (await stack.api.post(assets(a)).set(auth(a)).send({ name: 'logo', description: 'Our logo', mediaId: aFile.id }).expect(201)).body;

  // b on a's agent
  expect((await stack.api.get(assets(a)).set(auth(b)).expect(404)).body.error).toMatchObject({ code: 'not_found', message: 'agent not found' });
  await stack.api.post(assets(a)).set(auth(b)).send({ name: 'x', description: 'x', mediaId: bFile.id }).expect(404);
  await stack.api.delete(`${assets(a)}/${asset.id}`).set(auth(b)).expect(404);
  // b's own agent, a's asset id or a's file
  await stack.api.delete(`${assets(b)}/${asset.id}`).set(auth(b)).expect(404);
  const foreignFile = await stack.api.post(assets(b)).set(auth(b)).send({ name: 'theirs', description: 'x', mediaId: aFile.id }).expect(404);
  expect(foreignFile.body.error).toMatchObject({ code: 'media_not_found' });
  await stack.api.post(assets(b)).set(auth(b)).send({ name: 'none', description: 'x', mediaId: crypto.randomUUID() }).expect(404);
  await stack.api.get('/v1/agents/not-a-uuid/assets').set(auth(b)).expect(404);
  expect(await stack.core.services.agentAssets.listAgentAssets(b.tenantId, a.agentId)).toEqual([]);
  // a's asset is untouched
  expect((await stack.api.get(assets(a)).set(auth(a)).expect(200)).body.items).toEqual([asset]);
});

test('limits: name and description lengths, control characters, stickers, roles', async () => {
  const t = await createTenant(stack);
  const png = await upload(t, fileOf(samples.png), 'p.png', 'image/png');
  const post = (body: object) => stack.api.post(assets(t)).set(auth(t)).send(body);
  await post({ name: 'n'.repeat(AGENT_ASSET_LIMITS.name + 1), description: 'd', mediaId: png.id }).expect(400);
  await post({ name: 'n'.repeat(AGENT_ASSET_LIMITS.name), description: 'd'.repeat(AGENT_ASSET_LIMITS.description + 1), mediaId: png.id }).expect(400);
  await post({ name: 'two\nlines', description: 'd', mediaId: png.id }).expect(400);
  await post({ name: '   ', description: 'd', mediaId: png.id }).expect(400);
  await post({ name: 'n', description: 'd', mediaId: png.id, extra: 1 }).expect(400);
  await post({ name: 'n', description: 'd', mediaId: 'nope' }).expect(400);
  await post({ name: 'n'.repeat(AGENT_ASSET_LIMITS.name), description: 'd'.repeat(AGENT_ASSET_LIMITS.description), mediaId: png.id }).expect(201);
  const sticker = await upload(t, fileOf(samples.webpStatic, 4000), 's.webp', 'image/webp');
  expect((await post({ name: 'sticker', description: 'd', mediaId: sticker.id }).expect(400)).body.error).toMatchObject({ code: 'media_kind_mismatch' });
  // readers read, only managers change
  const readonly = (await stack.api.post('/v1/api-keys').set(auth(t)).send({ name: 'reader', role: 'readonly' }).expect(201)).body.key as string;
  const reader = { apiKey: readonly };
  expect((await stack.api.get(assets(t)).set(auth(reader)).expect(200)).body.items).toHaveLength(1);
  await stack.api.post(assets(t)).set(auth(reader)).send({ name: 'r', description: 'd', mediaId: png.id }).expect(403);
  const agentKey = (await stack.api.post('/v1/api-keys').set(auth(t)).send({ name: 'agent', role: 'agent' }).expect(201)).body.key as string;
  await stack.api.post(assets(t)).set(auth({ apiKey: agentKey })).send({ name: 'r', description: 'd', mediaId: png.id }).expect(403);
});

test(`at most ${AGENT_ASSET_LIMITS.perAgent} assets per agent, also under concurrent creations`, async () => {
  const t = await createTenant(stack);
  const png = await upload(t, fileOf(samples.png), 'p.png', 'image/png');
  const post = (name: string) => stack.api.post(assets(t)).set(auth(t)).send({ name, description: 'd', mediaId: png.id });
  for (let i = 0; i < AGENT_ASSET_LIMITS.perAgent - 3; i++) await post(`asset ${i}`).expect(201);
  const racing = await Promise.all(Array.from({ length: 8 }, (_, i) => post(`racer ${i}`)));
  expect(racing.filter((r) => r.status === 201)).toHaveLength(3);
  const refused = racing.filter((r) => r.status !== 201);
  expect(refused.map((r) => r.status)).toEqual(Array(5).fill(409));
  expect(refused[0]!.body.error).toMatchObject({ code: 'agent_asset_limit', issues: { assets: AGENT_ASSET_LIMITS.perAgent, maxAssets: AGENT_ASSET_LIMITS.perAgent } });
  expect((await stack.api.get(assets(t)).set(auth(t)).expect(200)).body.items).toHaveLength(AGENT_ASSET_LIMITS.perAgent);
});

test('a library file an asset names cannot be deleted (409 naming the agents); deleting the agent takes its assets along', async () => {
  const t = await createTenant(stack);
  const pdf = await upload(t, fileOf(samples.pdf), 'menu.pdf', 'application/pdf');
  const second = (await stack.api.post('/v1/agents').set(auth(t)).send({ name: 'Night bot', systemPrompt: 'You answer at night.', model: 'gpt-4o-mini' }).expect(201)).body as { id: string };
  const one = (await stack.api.post(assets(t)).set(auth(t)).send({ name: 'menu', description: 'The menu', mediaId: pdf.id }).expect(201)).body;
  const two = (await stack.api.post(assets(t, second.id)).set(auth(t)).send({ name: 'night menu', description: 'The menu', mediaId: pdf.id }).expect(201)).body;

  const refused = await stack.api.delete(`/v1/media/${pdf.id}`).set(auth(t)).expect(409);
  expect(refused.body.error.code).toBe('media_in_use');
  expect(refused.body.error.message).toContain(`"Night bot" (agent ${second.id}, asset "night menu")`);
  expect(refused.body.error.message).toContain(`(agent ${t.agentId}, asset "menu")`);
  expect(refused.body.error.issues.agents).toHaveLength(2);
  await stack.api.get(`/v1/media/${pdf.id}`).set(auth(t)).expect(200);

  await stack.api.delete(`${assets(t)}/${one.id}`).set(auth(t)).expect(200);
  await stack.api.delete(`/v1/media/${pdf.id}`).set(auth(t)).expect(409);
  // the second agent has no channel: deleting it deletes its assets, and the file is free
  await stack.api.delete(`/v1/agents/${second.id}`).set(auth(t)).send({}).expect(200);
  expect(await stack.core.services.agentAssets.listAgentAssets(t.tenantId, second.id)).toEqual([]);
  expect(two.mediaId).toBe(pdf.id);
  await stack.api.delete(`/v1/media/${pdf.id}`).set(auth(t)).expect(200);
});
