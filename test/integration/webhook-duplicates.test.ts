/**
 * Meta redelivers and reorders webhooks: every WhatsApp fixture delivered three times in a
 * shuffled order must give the same result as once — each inbound message recorded exactly
 * once, one lead per contact, no 5xx.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { messages } from '../../db/schema';
import { seededShuffle } from '../support/random';
import { createTenant, postWebhook, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

interface Fixture {
  name: string;
  kind: string;
  expect: { inbound: number; statuses: number; ignored: number; valid: boolean };
  body: { entry: { changes: { value: Record<string, unknown> }[] }[] };
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

test('every WhatsApp fixture delivered 3 times, shuffled, records each message exactly once', async () => {
  const t = await createTenant(stack, { credits: 100 });
  const tag = randomBytes(4).toString('hex');
  const fixtures = (JSON.parse(readFileSync(path.join(__dirname, '../fixtures/meta-webhooks.json'), 'utf8')) as Fixture[]).filter(
    (f) => f.kind === 'whatsapp' && f.expect.valid,
  );
  // route every fixture to this test's channel, and make its ids unique to this run
  const bodies = fixtures.map((f) => {
    const body = JSON.parse(JSON.stringify(f.body)) as Fixture['body'];
    for (const e of body.entry) {
      for (const c of e.changes) {
        const v = c.value as { metadata?: { phone_number_id?: string }; messages?: { id: string }[]; statuses?: { id: string }[] };
        if (v.metadata) v.metadata.phone_number_id = t.phoneNumberId;
        for (const m of v.messages ?? []) m.id = `${m.id}.${tag}`;
        for (const s of v.statuses ?? []) s.id = `${s.id}.${tag}`;
      }
    }
    return body;
  });
  const expectedIds = new Set<string>();
  const contacts = new Set<string>();
  for (const b of bodies)
    for (const e of b.entry)
      for (const c of e.changes) {
        for (const m of (c.value.messages as { id: string; from: string }[] | undefined) ?? []) {
          expectedIds.add(m.id);
          contacts.add(m.from);
        }
      }
  expect(expectedIds.size).toBe(fixtures.reduce((n, f) => n + f.expect.inbound, 0));

  const deliveries = seededShuffle([...bodies, ...bodies, ...bodies], 20261122);
  for (const body of deliveries) await postWebhook(stack, body).expect(200);

  const rows = await waitFor(async () => {
    const r = await stack.core.database.db
      .select({ providerMessageId: messages.providerMessageId })
      .from(messages)
      .where(and(eq(messages.tenantId, t.tenantId), eq(messages.direction, 'inbound')));
    return r.length >= expectedIds.size ? r : undefined;
  }, { timeoutMs: 60_000, what: 'every inbound message recorded' });
  // give stragglers a moment: a duplicate recorded late would show up here
  await new Promise((r) => setTimeout(r, 1500));
  const again = await stack.core.database.db
    .select({ providerMessageId: messages.providerMessageId })
    .from(messages)
    .where(and(eq(messages.tenantId, t.tenantId), eq(messages.direction, 'inbound')));
  expect(again.length).toBe(rows.length);
  expect(new Set(again.map((r) => r.providerMessageId))).toEqual(expectedIds);
  expect(again).toHaveLength(expectedIds.size);

  const leads = await stack.api.get('/v1/leads?limit=200').set('authorization', `Bearer ${t.apiKey}`).expect(200);
  expect(new Set(leads.body.items.map((l: { contactId: string }) => l.contactId))).toEqual(contacts);
  expect(leads.body.items).toHaveLength(contacts.size);
  // the workflows saw each message once and dropped the two redeliveries
  const states = await Promise.all([...contacts].map((c) => stack.temporal.leadState(stack.leadWorkflowId(t.channelId, c))));
  expect(states.reduce((n, s) => n + (s?.counters.inbound ?? 0), 0)).toBe(expectedIds.size);
  expect(states.reduce((n, s) => n + (s?.counters.duplicates ?? 0), 0)).toBe(2 * expectedIds.size);
});
