/**
 * Instagram Messaging against a whole stack: Meta's handshake, signed webhooks into the lead
 * workflow, the AI reply out through the fake Graph API's Instagram send endpoint exactly
 * once, signatures, redelivery, echoes/read receipts, and the HUMAN_AGENT tag for a human's
 * reply outside the 24-hour window.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { messages } from '../../db/schema';
import {
  instagramEchoWebhook,
  instagramEvent,
  instagramMid,
  instagramPostbackWebhook,
  instagramReactionWebhook,
  instagramReadWebhook,
  instagramTextWebhook,
  instagramWebhook,
} from '../../fakes/meta-webhooks';
import { OFFLINE_REPLY_MARKER } from '../../fakes/openai';
import { signMetaBody } from '../../lib/crypto';
import { APP_SECRET, VERIFY_TOKEN, createTenant, startStack, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

interface IgTenant extends TenantFixture {
  igChannelId: string;
  igAccountId: string;
  igAccessToken: string;
}

const randomIgAccountId = () => `178414${randomInt(1_000_000_000, 9_999_999_999)}`;
const randomIgsid = () => String(randomInt(1_000_000_000_000, 9_999_999_999_999));

/** A tenant with credits, an agent, and an Instagram channel made through the public API. */
async function igTenant(opts: { credits?: number; appSecret?: string } = {}): Promise<IgTenant> {
  const t = await createTenant(stack, { credits: opts.credits ?? 10 });
  const igAccountId = randomIgAccountId();
  const igAccessToken = `IGAA${randomBytes(16).toString('hex')}`;
  const r = await stack.api
    .post('/v1/channels')
    .set('authorization', `Bearer ${t.apiKey}`)
    .send({
      platform: 'instagram',
      phoneNumberId: igAccountId,
      accessToken: igAccessToken,
      verifyToken: `ig-verify-${randomBytes(6).toString('hex')}`,
      agentId: t.agentId,
      ...(opts.appSecret ? { appSecret: opts.appSecret } : {}),
    })
    .expect(201);
  return { ...t, igChannelId: r.body.id, igAccountId, igAccessToken };
}

function postIg(body: unknown, opts: { secret?: string; signature?: string | null } = {}) {
  const raw = JSON.stringify(body);
  const req = stack.api.post('/webhooks/instagram').set('content-type', 'application/json');
  const signature = opts.signature === undefined ? signMetaBody(raw, opts.secret ?? APP_SECRET) : opts.signature;
  if (signature !== null) req.set('x-hub-signature-256', signature);
  return req.send(raw);
}

const igSendsTo = (igsid: string) => stack.graph.instagramSends().filter((r) => r.to === igsid);

async function workflowExists(channelAccountId: string, contactId: string): Promise<boolean> {
  return (await stack.temporal.leadState(stack.leadWorkflowId(channelAccountId, contactId))) !== undefined;
}

async function inboundRows(tenantId: string) {
  return stack.core.database.db
    .select({ providerMessageId: messages.providerMessageId, type: messages.type, body: messages.body })
    .from(messages)
    .where(and(eq(messages.tenantId, tenantId), eq(messages.direction, 'inbound')));
}

describe('subscription handshake', () => {
  test('the verify token echoes the challenge; a wrong one is a 403', async () => {
    const ok = await stack.api.get('/webhooks/instagram').query({ 'hub.mode': 'subscribe', 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': '8841' }).expect(200);
    expect(ok.text).toBe('8841');
    await stack.api.get('/webhooks/instagram').query({ 'hub.mode': 'subscribe', 'hub.verify_token': 'nope', 'hub.challenge': '8841' }).expect(403);
  });
});

describe('a DM, end to end', () => {
  test('a signed text DM reaches its lead and the AI reply goes out once through the Instagram send API', async () => {
    const t = await igTenant();
    const igsid = randomIgsid();
    const res = await postIg(instagramTextWebhook({ igAccountId: t.igAccountId, from: igsid, text: 'Do you ship order #IG77 to Pune?' })).expect(200);
    expect(res.body).toEqual({ received: 1, ignored: 0, unknownChannels: 0 });

    const [sent] = await waitFor(() => (igSendsTo(igsid).length ? igSendsTo(igsid) : undefined), { what: 'reply at the fake Instagram send API', timeoutMs: 30_000 });
    expect(sent!.path).toBe(`/v21.0/${t.igAccountId}/messages`);
    expect(sent!.authorization).toBe(`Bearer ${t.igAccessToken}`);
    const body = sent!.body as { recipient: { id: string }; message: { text: string }; messaging_type: string; tag?: string };
    expect(body.recipient).toEqual({ id: igsid });
    expect(body.messaging_type).toBe('RESPONSE');
    expect(body.tag).toBeUndefined();
    expect(body.message.text).toContain(OFFLINE_REPLY_MARKER);
    expect(body.message.text).toContain('#IG77');

    const auth = { authorization: `Bearer ${t.apiKey}` };
    const leads = await stack.api.get('/v1/leads').set(auth).expect(200);
    const lead = leads.body.items.find((l: { contactId: string }) => l.contactId === igsid);
    expect(lead).toMatchObject({ channel: 'instagram', channelAccountId: t.igChannelId, workflowId: stack.leadWorkflowId(t.igChannelId, igsid) });

    const mid = (sent!.response.body as { message_id: string }).message_id;
    const msgs = await waitFor(async () => {
      const r = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth).expect(200);
      return r.body.items.some((m: { status: string }) => m.status === 'sent') ? r.body.items : undefined;
    });
    expect(msgs.find((m: { direction: string }) => m.direction === 'outbound')).toMatchObject({ providerMessageId: mid, status: 'sent' });
    expect(msgs.find((m: { direction: string }) => m.direction === 'inbound')).toMatchObject({ body: 'Do you ship order #IG77 to Pune?', status: 'received' });

    // exactly once: nothing else goes to this user, and no WhatsApp-shaped send was attempted for it
    await new Promise((r) => setTimeout(r, 1500));
    expect(igSendsTo(igsid)).toHaveLength(1);
    expect(stack.graph.requests.filter((r) => r.to === igsid)).toHaveLength(1);
  });

  test('a quick reply, a postback and a reaction reach the lead as readable messages', async () => {
    const t = await igTenant();
    const igsid = randomIgsid();
    const who = { igAccountId: t.igAccountId, from: igsid };
    await postIg(instagramTextWebhook({ ...who, text: 'Book a call', quickReplyPayload: 'BOOK_CALL' })).expect(200);
    await postIg(instagramPostbackWebhook({ ...who, title: 'Shipping info', payload: 'SHIPPING', timestamp: Date.now() + 1 })).expect(200);
    await postIg(instagramReactionWebhook({ ...who, mid: instagramMid(), emoji: '👍', timestamp: Date.now() + 2 })).expect(200);
    const rows = await waitFor(async () => {
      const r = await inboundRows(t.tenantId);
      return r.length >= 3 ? r : undefined;
    }, { what: 'three inbound messages recorded' });
    expect(rows.map((r) => [r.type, r.body.replace(/ to .*$/, '')]).sort()).toEqual(
      [
        ['button', '[quick reply] Book a call (id: BOOK_CALL)'],
        ['interactive', '[button] Shipping info (id: SHIPPING)'],
        ['reaction', '[reaction 👍'],
      ].sort(),
    );
  });
});

describe('signatures', () => {
  test('a missing or wrong signature is a 401 and nothing reaches Temporal', async () => {
    const t = await igTenant();
    const igsid = randomIgsid();
    const body = instagramTextWebhook({ igAccountId: t.igAccountId, from: igsid, text: 'forged' });
    const missing = await postIg(body, { signature: null }).expect(401);
    expect(missing.body.error.code).toBe('invalid_signature');
    await postIg(body, { secret: 'not-the-app-secret' }).expect(401);
    await postIg(body, { signature: `sha256=${'0'.repeat(64)}` }).expect(401);
    expect(await workflowExists(t.igChannelId, igsid)).toBe(false);
  });

  test("a channel's own app secret signs its webhooks, and the deployment secret no longer does", async () => {
    const ownSecret = `ig-own-secret-${randomBytes(6).toString('hex')}`;
    const t = await igTenant({ appSecret: ownSecret });
    const a = randomIgsid();
    await postIg(instagramTextWebhook({ igAccountId: t.igAccountId, from: a, text: 'signed by the deployment' })).expect(401);
    expect(await workflowExists(t.igChannelId, a)).toBe(false);
    const ok = await postIg(instagramTextWebhook({ igAccountId: t.igAccountId, from: a, text: 'signed by the channel' }), { secret: ownSecret }).expect(200);
    expect(ok.body).toMatchObject({ received: 1 });
  });
});

describe('redelivery and events that are not messages', () => {
  test('the same webhook delivered three times is recorded once (messages and reactions)', async () => {
    const t = await igTenant();
    const igsid = randomIgsid();
    const who = { igAccountId: t.igAccountId, from: igsid, timestamp: Date.now() };
    const text = instagramTextWebhook({ ...who, text: 'only once please' });
    const reaction = instagramReactionWebhook({ ...who, mid: instagramMid(), emoji: '❤️', timestamp: who.timestamp + 5 });
    for (let i = 0; i < 3; i++) {
      await postIg(text).expect(200);
      await postIg(reaction).expect(200);
    }
    await waitFor(async () => ((await inboundRows(t.tenantId)).length >= 2 ? true : undefined), { what: 'both recorded' });
    await new Promise((r) => setTimeout(r, 1500));
    const rows = await inboundRows(t.tenantId);
    expect(rows).toHaveLength(2);
    expect(new Set(rows.map((r) => r.type))).toEqual(new Set(['text', 'reaction']));
  });

  test('echoes and read receipts are acknowledged and start nothing', async () => {
    const t = await igTenant();
    const igsid = randomIgsid();
    const who = { igAccountId: t.igAccountId, from: igsid };
    const body = instagramWebhook(t.igAccountId, [
      ...instagramEchoWebhook({ ...who, text: 'our own reply' }).entry[0]!.messaging,
      ...instagramReadWebhook({ ...who, mid: instagramMid() }).entry[0]!.messaging,
      instagramEvent(who, { delivery: { mids: [instagramMid()], watermark: Date.now() } }),
    ]);
    const logsBefore = stack.logLines.length;
    const r = await postIg(body).expect(200);
    expect(r.body).toEqual({ received: 0, ignored: 3, unknownChannels: 0 });
    expect(await workflowExists(t.igChannelId, igsid)).toBe(false);
    expect(await workflowExists(t.igChannelId, t.igAccountId)).toBe(false);
    // expected events are not warnings
    expect(stack.logLines.slice(logsBefore).some((l) => l.includes('webhook items ignored'))).toBe(false);
  });

  test('a broken event is skipped and its valid sibling reaches its lead', async () => {
    const t = await igTenant();
    const good = randomIgsid();
    const bad = randomIgsid();
    const body = instagramWebhook(t.igAccountId, [
      instagramEvent({ igAccountId: t.igAccountId, from: bad }, { message: { text: 'no mid' } }),
      instagramEvent({ igAccountId: t.igAccountId, from: good }, { message: { mid: instagramMid(), text: 'valid' } }),
    ]);
    const r = await postIg(body).expect(200);
    expect(r.body).toEqual({ received: 1, ignored: 1, unknownChannels: 0 });
    await waitFor(async () => ((await inboundRows(t.tenantId)).length === 1 ? true : undefined), { what: 'the valid message recorded' });
    expect(await workflowExists(t.igChannelId, bad)).toBe(false);
    expect(stack.logLines.some((l) => l.includes('webhook items ignored') && l.includes('messaging[0]'))).toBe(true);
  });

  test('an unknown Instagram account is acknowledged, dropped and logged as a warning; a bad envelope is a 400', async () => {
    const r = await postIg(instagramTextWebhook({ igAccountId: randomIgAccountId(), from: randomIgsid(), text: 'nobody owns this account' })).expect(200);
    expect(r.body).toEqual({ received: 0, ignored: 0, unknownChannels: 1 });
    expect(stack.logLines.some((l) => l.includes('unknown Instagram account id'))).toBe(true);
    const wrong = await postIg({ object: 'whatsapp_business_account', entry: [] }).expect(400);
    expect(wrong.body.error.code).toBe('invalid_payload');
  });
});

describe('the 24-hour window and the HUMAN_AGENT tag', () => {
  test('outside 24 h the AI stays silent; a human reply within 7 days goes out tagged HUMAN_AGENT', async () => {
    const t = await igTenant();
    const igsid = randomIgsid();
    const twoDaysAgo = Date.now() - 2 * 24 * 3600 * 1000;
    await postIg(instagramTextWebhook({ igAccountId: t.igAccountId, from: igsid, text: 'sent two days ago', timestamp: twoDaysAgo })).expect(200);
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const lead = await waitFor(async () => {
      const r = await stack.api.get('/v1/leads').set(auth).expect(200);
      return r.body.items.find((l: { contactId: string; lastInboundAt: string | null }) => l.contactId === igsid && l.lastInboundAt);
    }, { what: 'the lead recorded' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(igSendsTo(igsid)).toHaveLength(0);

    const sent = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth).send({ text: 'Sorry for the wait, a human here!' });
    // (the body is in the assertion so a refusal shows its reason)
    expect([sent.status, sent.body]).toEqual([201, expect.objectContaining({ status: 'sent' })]);
    const [out] = await waitFor(() => (igSendsTo(igsid).length ? igSendsTo(igsid) : undefined), { what: 'the human reply' });
    expect(out!.body).toEqual({ recipient: { id: igsid }, message: { text: 'Sorry for the wait, a human here!' }, messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' });
  });
});
