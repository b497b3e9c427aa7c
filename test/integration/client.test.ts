/**
 * The typed client (api/client, generated from the OpenAPI document) against the whole stack, as
 * an integrator uses it: the README's day-to-day lifecycle (change the prompt and roll it back,
 * move a channel, give a narrower key and rotate it, suppress a contact, sync templates from
 * Meta, find leads that need a person), with typed errors, and the document the server serves
 * is the one the client was generated from. Every answer is also checked against the document
 * by the server (PARLEY_CHECK_RESPONSES).
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createParleyClient } from '../../api/client';
import { createTenant, postWebhook, randomWaId, stackPerFile, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});

test('the server serves the document the client was generated from, and the reference page', async () => {
  const served = await fetch(`${stack.baseUrl}/openapi.json`);
  expect(served.status).toBe(200);
  const committed = JSON.parse(readFileSync(path.join(__dirname, '../../api/client/openapi.json'), 'utf8'));
  expect(await served.json()).toEqual(committed);
  const page = await fetch(`${stack.baseUrl}/docs`);
  expect(page.headers.get('content-type')).toMatch(/html/);
  expect(await page.text()).toContain('/docs/assets/swagger-ui-bundle.js');
});

test('the day-to-day lifecycle through the typed client', async () => {
  const t = await createTenant(stack, { credits: 10 });
  const parley = stack.client(t.apiKey);

  // change the prompt: a new version; roll back by restoring version 1
  const patched = await parley.PATCH('/v1/agents/{agentId}', { params: { path: { agentId: t.agentId } }, body: { systemPrompt: "You are Acme's sales assistant. Always offer a demo." } });
  expect(patched.error).toBeUndefined();
  expect(patched.data).toMatchObject({ id: t.agentId, version: 2, systemPrompt: "You are Acme's sales assistant. Always offer a demo." });
  const versions = await parley.GET('/v1/agents/{agentId}/versions', { params: { path: { agentId: t.agentId }, query: { limit: 10 } } });
  expect(versions.data?.items.map((v) => v.version)).toEqual([2, 1]);
  const restored = await parley.POST('/v1/agents/{agentId}/versions/{version}/restore', { params: { path: { agentId: t.agentId, version: '1' } }, body: {} });
  expect(restored.data).toMatchObject({ version: 3, systemPrompt: 'You are a helpful sales assistant.' });

  // move the channel to another agent
  const other = await parley.POST('/v1/agents', { body: { name: 'Support bot', systemPrompt: 'You answer support questions.', model: 'gpt-4o-mini' } });
  expect(other.response.status).toBe(201);
  const moved = await parley.PATCH('/v1/channels/{id}', { params: { path: { id: t.channelId } }, body: { agentId: other.data!.id } });
  expect(moved.data).toMatchObject({ id: t.channelId, agentId: other.data!.id });

  // a narrower key for a teammate; rotate it: the old secret keeps working during the grace period
  const created = await parley.POST('/v1/api-keys', { body: { name: 'support desk', role: 'agent' } });
  expect(created.data).toMatchObject({ name: 'support desk', role: 'agent', key: expect.stringMatching(/^pk_/) });
  const rotated = await parley.POST('/v1/api-keys/{keyId}/rotate', { params: { path: { keyId: created.data!.id } }, body: { graceSeconds: 600 } });
  expect(rotated.data?.key).toMatch(/^pk_/);
  expect(rotated.data?.key).not.toBe(created.data!.key);
  for (const key of [created.data!.key, rotated.data!.key]) {
    const asAgent = createParleyClient({ baseUrl: stack.baseUrl, apiKey: key });
    expect((await asAgent.GET('/v1/leads', { params: { query: { limit: 5 } } })).response.status).toBe(200);
    // an agent key may not change the setup: a typed 403
    const refused = await asAgent.PATCH('/v1/agents/{agentId}', { params: { path: { agentId: t.agentId } }, body: { name: 'x' } });
    expect(refused.response.status).toBe(403);
    expect(refused.error?.error.code).toBe('forbidden');
  }

  // suppress a contact by hand
  const contact = randomWaId();
  const suppressed = await parley.POST('/v1/suppressions', { body: { contact, note: 'asked by phone' } });
  expect(suppressed.response.status).toBe(201);
  const list = await parley.GET('/v1/suppressions', { params: { query: { limit: 50 } } });
  expect(list.data?.items.map((s) => s.contact)).toContain(contact);

  // templates from Meta
  const wabaId = `1${String(randomInt(10_000_000_000_000, 99_999_999_999_999))}`;
  stack.graph.setTemplates(wabaId, [
    { name: 'follow_up', language: 'en', status: 'APPROVED', category: 'MARKETING', components: [{ type: 'BODY', text: 'Hi {{1}}, still interested?', example: { body_text: [['Priya']] } }] },
  ]);
  const withWaba = (await parley.PATCH('/v1/channels/{id}', { params: { path: { id: t.channelId } }, body: { wabaId } })).data;
  // the answer is a union by platform: only a WhatsApp channel has a wabaId
  expect(withWaba?.platform === 'whatsapp' ? withWaba.wabaId : undefined).toBe(wabaId);
  const synced = await parley.POST('/v1/channels/{channelId}/templates/sync', { params: { path: { channelId: t.channelId } } });
  expect(synced.response.status).toBe(200);
  const templates = await parley.GET('/v1/templates', { params: { query: { limit: 50 } } });
  expect(templates.data?.items).toEqual([expect.objectContaining({ name: 'follow_up', language: 'en', status: 'APPROVED', approved: true, source: 'meta' })]);

  // a lead that asks for a person shows up among those needing attention
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
  const lead = await waitFor(async () => (await parley.GET('/v1/leads', { params: { query: { limit: 50 } } })).data?.items.find((l) => l.contactId === from), { what: 'the lead' });
  const handoff = await parley.POST('/v1/leads/{leadId}/handoff', { params: { path: { leadId: lead.id } }, body: {} });
  expect(handoff.response.status).toBeLessThan(300);
  const attention = await waitFor(async () => (await parley.GET('/v1/leads', { params: { query: { needsAttention: 'true', limit: 50 } } })).data?.items.find((l) => l.id === lead.id), { what: 'needs attention' });
  expect(attention.id).toBe(lead.id);

  // another tenant's object is a typed 404
  const stranger = await createTenant(stack);
  const hidden = await stack.client(stranger.apiKey).GET('/v1/agents/{agentId}', { params: { path: { agentId: t.agentId } } });
  expect(hidden.response.status).toBe(404);
  expect(hidden.error?.error.code).toBe('not_found');
});
