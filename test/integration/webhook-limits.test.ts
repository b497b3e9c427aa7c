/**
 * Content Temporal or the database would refuse, in a signed webhook: one oversized field (a
 * 2 MB text, a 2,000-character contact id, a 12-digit timestamp) is cut, dropped or bounded with
 * a recorded reason, its valid siblings reach their workflows, and the answer is 200 (a 5xx
 * would make Meta redeliver the whole batch, valid messages included, for 7 days). Behind the
 * parsers, a refusal Temporal gives for an item's own content drops that item instead of a 503.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { eq } from 'drizzle-orm';
import express from 'express';
import request from 'supertest';
import { createWhatsAppWebhookRouter } from '../../api/routes/whatsapp-webhook';
import { messages } from '../../db/schema';
import { instagramEvent, instagramMid, instagramWebhook } from '../../fakes/meta-webhooks';
import { signMetaBody } from '../../lib/crypto';
import type { ParleyTemporal } from '../../temporal/client';
import { type InboundMessage } from '../../workflows/lead/definitions';
import { APP_SECRET, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const TWO_MB = 2 * 1024 * 1024;

/** One WhatsApp body carrying these messages for one phone number (contacts as Meta lists them). */
function whatsAppBody(phoneNumberId: string, items: { from: string; text: string; id?: string; timestamp?: string }[]) {
  const body = textWebhook(phoneNumberId, items[0]!.from, items[0]!.text);
  const value = body.entry[0]!.changes[0]!.value as unknown as { contacts: unknown[]; messages: unknown[] };
  value.contacts = items.map((i) => ({ profile: { name: 'Sam' }, wa_id: i.from }));
  value.messages = items.map((i) => ({
    from: i.from,
    id: i.id ?? `wamid.${randomBytes(16).toString('hex')}`,
    timestamp: i.timestamp ?? String(Math.floor(Date.now() / 1000)),
    type: 'text',
    text: { body: i.text },
  }));
  return body;
}

async function messageRow(providerMessageId: string) {
  const [row] = await stack.core.database.db
    .select({ body: messages.body, details: messages.details, sentAt: messages.sentAt })
    .from(messages)
    .where(eq(messages.providerMessageId, providerMessageId));
  return row;
}

const workflowExists = async (channelAccountId: string, contactId: string) =>
  (await stack.temporal.leadState(stack.leadWorkflowId(channelAccountId, contactId))) !== undefined;

describe('WhatsApp', () => {
  let t: TenantFixture;
  beforeAll(async () => {
    t = await createTenant(stack, { credits: 10 });
  });

  test('a 2 MB text is cut to 4,096 characters with a recorded reason; its sibling gets through; 200', async () => {
    const big = { from: randomWaId(), text: 'ab'.repeat(TWO_MB / 2), id: `wamid.${randomBytes(16).toString('hex')}` };
    const ok = { from: randomWaId(), text: 'a normal question', id: `wamid.${randomBytes(16).toString('hex')}` };
    const r = await postWebhook(stack, whatsAppBody(t.phoneNumberId, [big, ok]));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 2, adjusted: 1 });
    await waitFor(async () => (await messageRow(ok.id)) ?? false, { what: 'sibling recorded' });
    expect(await workflowExists(t.channelId, ok.from)).toBe(true);
    const row = await waitFor(async () => (await messageRow(big.id)) ?? false, { what: 'cut message recorded' });
    expect(row.body.length).toBeLessThanOrEqual(4096);
    expect(row.body.startsWith('abab')).toBe(true);
    expect(JSON.stringify(row.details)).toContain(`text.body cut from ${TWO_MB} to 4096 characters`);
    const logged = stack.logLines.find((l) => l.includes('webhook items cut to fit limits') && l.includes('text.body cut'));
    expect(logged).toBeDefined();
  });

  test('a 2,000-character contact id drops that message with a reason; its sibling gets through; 200', async () => {
    const long = { from: '9'.repeat(2000), text: 'from a contact id no account can have', id: `wamid.${randomBytes(16).toString('hex')}` };
    const ok = { from: randomWaId(), text: 'still answered', id: `wamid.${randomBytes(16).toString('hex')}` };
    const r = await postWebhook(stack, whatsAppBody(t.phoneNumberId, [long, ok]));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 1, ignored: 1 });
    await waitFor(async () => (await messageRow(ok.id)) ?? false, { what: 'sibling recorded' });
    expect(await workflowExists(t.channelId, ok.from)).toBe(true);
    expect(await messageRow(long.id)).toBeUndefined();
    const logged = stack.logLines.find((l) => l.includes('webhook items ignored') && l.includes('contact id is 2000 characters'));
    expect(logged).toBeDefined();
  });

  test("a profile name of 256 two-byte characters still starts the lead (Temporal refuses a summary over 400 bytes); 200", async () => {
    const lead = { from: randomWaId(), text: 'my name is long', id: `wamid.${randomBytes(16).toString('hex')}` };
    const body = whatsAppBody(t.phoneNumberId, [lead]);
    const value = body.entry[0]!.changes[0]!.value as unknown as { contacts: { profile: { name: string } }[] };
    value.contacts[0]!.profile.name = 'é'.repeat(256);
    const r = await postWebhook(stack, body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 1 });
    await waitFor(async () => (await messageRow(lead.id)) ?? false, { what: 'message recorded' });
    expect(await workflowExists(t.channelId, lead.from)).toBe(true);
  });

  test('contacts[] forms the identity map cannot hold (a NUL, 20,000 characters) are left out; both BSUID-only senders are answered; 200', async () => {
    const randomBsuid = () => `US.${randomInt(1e9, 9e9)}${randomInt(1e9, 9e9)}`;
    const [b1, b2] = [randomBsuid(), randomBsuid()];
    const [id1, id2] = [`wamid.${randomBytes(16).toString('hex')}`, `wamid.${randomBytes(16).toString('hex')}`];
    const body = whatsAppBody(t.phoneNumberId, [{ from: randomWaId(), text: 'placeholder' }]);
    const value = body.entry[0]!.changes[0]!.value as unknown as { contacts: unknown[]; messages: unknown[] };
    const now = String(Math.floor(Date.now() / 1000));
    // Meta gives no phone number for these users; a hostile or broken contacts[] entry claims one
    value.contacts = [
      { profile: { name: 'Ana' }, user_id: b1, wa_id: '1555\u00000100' },
      { profile: { name: 'Ben' }, user_id: b2, wa_id: randomBytes(15_000).toString('base64') },
    ];
    value.messages = [
      { from_user_id: b1, id: id1, timestamp: now, type: 'text', text: { body: 'hi from Ana' } },
      { from_user_id: b2, id: id2, timestamp: now, type: 'text', text: { body: 'hi from Ben' } },
    ];
    const r = await postWebhook(stack, body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 2 });
    await waitFor(async () => ((await messageRow(id1)) && (await messageRow(id2))) ?? false, { what: 'both messages recorded' });
    expect(await workflowExists(t.channelId, b1)).toBe(true);
    expect(await workflowExists(t.channelId, b2)).toBe(true);
  });

  test('a 12-digit timestamp is replaced by the time of receipt, recorded, and the lead is answered', async () => {
    const before = Date.now();
    const odd = { from: randomWaId(), text: 'my phone clock is broken', id: `wamid.${randomBytes(16).toString('hex')}`, timestamp: '999999999999' };
    const r = await postWebhook(stack, whatsAppBody(t.phoneNumberId, [odd]));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 1, adjusted: 1 });
    const row = await waitFor(async () => (await messageRow(odd.id)) ?? false, { what: 'message recorded' });
    const sentAt = new Date(row.sentAt as unknown as string).getTime();
    expect(sentAt).toBeGreaterThanOrEqual(before - 1000);
    expect(sentAt).toBeLessThanOrEqual(Date.now());
    expect(JSON.stringify(row.details)).toContain('outside the plausible range');
    // the lead's loop goes on: the AI reply is sent
    await waitFor(() => stack.graph.sentMessages().some((s) => (s.body as { to?: string }).to === odd.from), { what: 'reply to the lead' });
  });

  test('Temporal refusing one item for good (payload too large) drops it; the sibling gets through; 200', async () => {
    // a hand-off that slipped past the parser's limits: inflate one message after parsing
    const inflating: ParleyTemporal = {
      ...stack.temporal,
      signalInbound: (target, message: InboundMessage) =>
        stack.temporal.signalInbound(target, message.text === 'inflate me' ? { ...message, details: { blob: 'x'.repeat(2_100_000) } } : message),
    };
    const app = express().use(
      createWhatsAppWebhookRouter({ channels: stack.core.services.channels, leads: stack.core.services.leads, temporal: inflating, log: stack.log, appSecret: APP_SECRET }),
    );
    const bad = { from: randomWaId(), text: 'inflate me' };
    const ok = { from: randomWaId(), text: 'an ordinary message', id: `wamid.${randomBytes(16).toString('hex')}` };
    const raw = JSON.stringify(whatsAppBody(t.phoneNumberId, [bad, ok]));
    const r = await request(app).post('/webhooks/whatsapp').set('content-type', 'application/json').set('x-hub-signature-256', signMetaBody(raw, APP_SECRET)).send(raw);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 1, dropped: 1 });
    expect(await workflowExists(t.channelId, ok.from)).toBe(true);
    expect(await workflowExists(t.channelId, bad.from)).toBe(false);
    expect(stack.logLines.some((l) => l.includes('refused by Temporal for good') && l.includes('Blob data size exceeds limit'))).toBe(true);
  });
});

describe('Instagram', () => {
  test('a 2 MB text is cut to 1,000 bytes, a 2,000-character sender id is dropped, the sibling gets through; 200', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const igAccountId = `178414${randomInt(1_000_000_000, 9_999_999_999)}`;
    const channel = await stack.api
      .post('/v1/channels')
      .set('authorization', `Bearer ${t.apiKey}`)
      .send({ platform: 'instagram', phoneNumberId: igAccountId, accessToken: `IGAA${randomBytes(16).toString('hex')}`, verifyToken: `v-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
      .expect(201);
    const channelId = channel.body.id as string;
    const igsid = () => String(randomInt(1_000_000_000_000, 9_999_999_999_999));
    const bigFrom = igsid();
    const okFrom = igsid();
    const bigMid = instagramMid();
    const okMid = instagramMid();
    const body = instagramWebhook(igAccountId, [
      instagramEvent({ igAccountId, from: bigFrom }, { message: { mid: bigMid, text: 'é'.repeat(TWO_MB / 2) } }),
      instagramEvent({ igAccountId, from: '7'.repeat(2000) }, { message: { mid: instagramMid(), text: 'from nobody' } }),
      instagramEvent({ igAccountId, from: okFrom }, { message: { mid: okMid, text: 'hello there' } }),
    ]);
    const raw = JSON.stringify(body);
    const r = await stack.api.post('/webhooks/instagram').set('content-type', 'application/json').set('x-hub-signature-256', signMetaBody(raw, APP_SECRET)).send(raw);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ received: 2, ignored: 1, adjusted: 1 });
    await waitFor(async () => (await messageRow(okMid)) ?? false, { what: 'sibling recorded' });
    expect(await workflowExists(channelId, okFrom)).toBe(true);
    const row = await waitFor(async () => (await messageRow(bigMid)) ?? false, { what: 'cut message recorded' });
    expect(Buffer.byteLength(row.body, 'utf8')).toBeLessThanOrEqual(1000);
    expect(row.body.startsWith('éé')).toBe(true);
    expect(JSON.stringify(row.details)).toContain('message.text cut from');
  });
});
