/**
 * Rich messages end to end on the real dev server: every kind on every channel it exists on,
 * through POST /v1/leads/:leadId/messages and the lead workflow's delivery path, asserting the
 * exact JSON the fake Graph API received; channel limits (400), a closed window (409), a parked
 * send replayed once, a rich sequence step, and option replies (WhatsApp button/list/template
 * quick reply, Instagram quick reply, web chat click) reaching the LLM with their id and title.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createRichActivities } from '../../activities/channels/rich';
import { instagramTextWebhook } from '../../fakes/meta-webhooks';
import { contentText } from '../../fakes/openai';
import { signMetaBody } from '../../lib/crypto';
import { createVisitorTokens, webChatVisitorSecret } from '../../services/webchat-visitors';
import { APP_SECRET, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
beforeAll(async () => {
  // two tries per send, so a failing send is parked within the test
  stack = await startStack({ LEAD_DELIVERY_MAX_ATTEMPTS: '2' });
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
const igSentTo = (igsid: string) => stack.graph.instagramSends().filter((r) => (r.body as { recipient: { id: string } }).recipient.id === igsid);

/** A WhatsApp lead that wrote once and got its AI reply. */
async function whatsAppLead(t: TenantFixture, opts: { timestamp?: number } = {}) {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there', { timestamp: opts.timestamp })).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
  return { from, lead: lead as { id: string; workflowId: string } };
}

/** The WhatsApp envelope of one message as Meta sends it. */
function whatsAppMessageWebhook(phoneNumberId: string, from: string, message: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '230981457709312',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15557320418', phone_number_id: phoneNumberId },
              contacts: [{ profile: { name: 'Priya Sharma' }, wa_id: from }],
              messages: [{ from, id: `wamid.${randomBytes(16).toString('hex')}`, timestamp: String(Math.floor(Date.now() / 1000)), ...message }],
            },
          },
        ],
      },
    ],
  };
}

/** Whether some LLM request's user messages contain `text`. */
function llmSaw(text: string): boolean {
  return stack.llm.requests.some((r) => r.messages.some((m) => m.role === 'user' && contentText(m.content).includes(text)));
}

describe('WhatsApp', () => {
  test('every kind goes out as Meta documents it, once, and the transcript shows its kind and body', async () => {
    const t = await createTenant(stack, { credits: 30 });
    const { from, lead } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });

    const cases: { request: Record<string, unknown>; payload: Record<string, unknown>; type: string; body: string }[] = [
      {
        request: { interactive: { type: 'button', header: { text: 'Delivery' }, body: 'When should we deliver?', footer: 'Reply any time', buttons: [{ id: 'tue', title: 'Tuesday' }, { id: 'wed', title: 'Wednesday' }] } },
        payload: {
          type: 'interactive',
          interactive: {
            type: 'button',
            header: { type: 'text', text: 'Delivery' },
            body: { text: 'When should we deliver?' },
            footer: { text: 'Reply any time' },
            action: { buttons: [{ type: 'reply', reply: { id: 'tue', title: 'Tuesday' } }, { type: 'reply', reply: { id: 'wed', title: 'Wednesday' } }] },
          },
        },
        type: 'interactive',
        body: 'Delivery\nWhen should we deliver?\n1. Tuesday\n2. Wednesday\nReply any time',
      },
      {
        request: { interactive: { type: 'list', body: 'Pick a plan', button: 'See plans', sections: [{ title: 'Monthly', rows: [{ id: 'basic', title: 'Basic', description: '₹499' }] }, { title: 'Yearly', rows: [{ id: 'pro', title: 'Pro' }] }] } },
        payload: {
          type: 'interactive',
          interactive: {
            type: 'list',
            body: { text: 'Pick a plan' },
            action: { button: 'See plans', sections: [{ title: 'Monthly', rows: [{ id: 'basic', title: 'Basic', description: '₹499' }] }, { title: 'Yearly', rows: [{ id: 'pro', title: 'Pro' }] }] },
          },
        },
        type: 'interactive',
        body: 'Pick a plan\nMonthly\n1. Basic — ₹499\nYearly\n2. Pro',
      },
      {
        request: { interactive: { type: 'cta_url', header: { media: { type: 'image', link: 'https://cdn.example/banner.png' } }, body: 'Book online', displayText: 'Book now', url: 'https://shop.example/book' } },
        payload: {
          type: 'interactive',
          interactive: { type: 'cta_url', header: { type: 'image', image: { link: 'https://cdn.example/banner.png' } }, body: { text: 'Book online' }, action: { name: 'cta_url', parameters: { display_text: 'Book now', url: 'https://shop.example/book' } } },
        },
        type: 'interactive',
        body: 'Book online\nBook now: https://shop.example/book',
      },
      { request: { media: { type: 'image', link: 'https://cdn.example/box.jpg', caption: 'Your box' } }, payload: { type: 'image', image: { link: 'https://cdn.example/box.jpg', caption: 'Your box' } }, type: 'media', body: 'Your box\nhttps://cdn.example/box.jpg' },
      {
        request: { media: { type: 'document', id: '1037543291543636', caption: 'Price list', filename: 'prices.pdf' } },
        payload: { type: 'document', document: { id: '1037543291543636', caption: 'Price list', filename: 'prices.pdf' } },
        type: 'media',
        body: 'Price list',
      },
      { request: { media: { type: 'video', link: 'https://cdn.example/demo.mp4' } }, payload: { type: 'video', video: { link: 'https://cdn.example/demo.mp4' } }, type: 'media', body: '[video] https://cdn.example/demo.mp4' },
      { request: { media: { type: 'audio', id: '998877' } }, payload: { type: 'audio', audio: { id: '998877' } }, type: 'media', body: '[audio]' },
      {
        request: { location: { latitude: 18.5204, longitude: 73.8567, name: 'Parley Store', address: 'FC Road, Pune' } },
        payload: { type: 'location', location: { latitude: 18.5204, longitude: 73.8567, name: 'Parley Store', address: 'FC Road, Pune' } },
        type: 'location',
        body: 'Parley Store, FC Road, Pune\nhttps://maps.google.com/?q=18.5204,73.8567',
      },
    ];
    // a reaction to the lead's own message
    const inboundId = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t))).body.items.find((m: { direction: string }) => m.direction === 'inbound').providerMessageId as string;
    cases.push({ request: { reaction: { messageId: inboundId, emoji: '👍' } }, payload: { type: 'reaction', reaction: { message_id: inboundId, emoji: '👍' } }, type: 'reaction', body: `[reaction 👍 to ${inboundId}]` });

    for (const [n, c] of cases.entries()) {
      const res = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send(c.request).expect(201);
      expect(res.body).toMatchObject({ status: 'sent' });
      const sent = sentTo(from);
      expect(sent).toHaveLength(n + 2);
      expect(sent[n + 1]!.body).toEqual({ messaging_product: 'whatsapp', recipient_type: 'individual', to: from, ...c.payload, biz_opaque_callback_data: res.body.outboundMessageId });
      const row = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items.find((m: { id: string }) => m.id === res.body.outboundMessageId);
      expect(row).toMatchObject({ direction: 'outbound', type: c.type, body: c.body, status: 'sent' });
      expect(Object.keys(row.content)).toEqual(['kind', c.type]);
    }
    // one credit per message
    expect((await stack.api.get('/v1/credits').set(auth(t))).body.balance).toBe(30 - 1 - cases.length);
    // quick replies sent to WhatsApp go out as reply buttons
    const qr = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: { type: 'quick_replies', text: 'Size?', replies: [{ title: 'S', payload: 'size_s' }] } }).expect(201);
    expect(sentTo(from).at(-1)!.body).toMatchObject({ type: 'interactive', interactive: { type: 'button', body: { text: 'Size?' }, action: { buttons: [{ type: 'reply', reply: { id: 'size_s', title: 'S' } }] } }, biz_opaque_callback_data: qr.body.outboundMessageId });
    // cards degrade to text
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: { type: 'generic', cards: [{ title: 'Red hat', buttons: [{ type: 'web_url', title: 'View', url: 'https://shop.example/red' }] }] } }).expect(201);
    expect(sentTo(from).at(-1)!.body).toMatchObject({ type: 'text', text: { body: '1. Red hat\nView: https://shop.example/red' } });
  });

  test("limits answer 400 naming the limit, before anything is sent", async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    const post = (body: object) => stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send(body);

    const four = await post({ interactive: { type: 'button', body: 'Pick', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } }).expect(400);
    expect(four.body.error).toMatchObject({ code: 'channel_limit', issues: [{ path: 'interactive.buttons', message: '4 buttons; allowed 1 to 3' }] });
    expect(four.body.error.message).toContain("the message breaks whatsapp's limits");
    const title = await post({ interactive: { type: 'button', body: 'Pick', buttons: [{ id: 'a', title: 'A title far too long!' }] } }).expect(400);
    expect(title.body.error.issues).toEqual([{ path: 'interactive.buttons.0.title', message: 'button title is 21 characters; the limit is 20' }]);
    const rows = Array.from({ length: 11 }, (_, n) => ({ id: `r${n}`, title: `Row ${n}` }));
    const list = await post({ interactive: { type: 'list', body: 'Pick', button: 'Open', sections: [{ title: 'All', rows }] } }).expect(400);
    expect(list.body.error.issues).toEqual([{ path: 'interactive.sections', message: '11 rows in all sections; allowed 1 to 10' }]);
    const caption = await post({ media: { type: 'image', link: 'https://cdn.example/a.png', caption: 'c'.repeat(1025) } }).expect(400);
    expect(caption.body.error.issues).toEqual([{ path: 'media.caption', message: 'caption is 1025 characters; the limit is 1024' }]);
    const fileType = await post({ media: { type: 'document', link: 'https://cdn.example/a.zip' } }).expect(400);
    expect(fileType.body.error.issues[0].message).toContain('a document of type .zip is not supported on whatsapp');
    // structure: zod at the edge
    await post({ media: { type: 'image', link: 'https://cdn.example/a.png', id: '12' } }).expect(400);
    await post({ location: { latitude: 100, longitude: 0 } }).expect(400);
    await post({ interactive: { type: 'carousel' } }).expect(400);
    // nothing went out, nothing was charged
    expect(sentTo(from)).toHaveLength(1);
    expect((await stack.api.get('/v1/credits').set(auth(t))).body).toMatchObject({ balance: 9, reserved: 0 });
  });

  test('outside the 24-hour window a rich message is refused like text', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const twoDaysAgo = Math.floor(Date.now() / 1000) - 2 * 24 * 3600;
    const { from, lead } = await whatsAppLead(t, { timestamp: twoDaysAgo });
    const refused = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: { type: 'button', body: 'Still there?', buttons: [{ id: 'yes', title: 'Yes' }] } }).expect(409);
    expect(refused.body.error.code).toBe('window_closed');
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', link: 'https://cdn.example/a.png' } }).expect(409);
    expect(sentTo(from)).toHaveLength(0);
  });

  test('a rich send whose retries run out is parked; the replay sends the same JSON once under the same id', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    stack.graph.failNext({ code: 131000, to: from, times: 2 });
    const parked = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: { type: 'button', body: 'Confirm?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] } }).expect(502);
    const outboundMessageId = parked.body.error.outboundMessageId as string;
    expect(outboundMessageId).toBeTruthy();
    const dl = await waitFor(async () => (await stack.api.get(`/v1/dead-letters?status=open&leadId=${lead.id}`).set(auth(t))).body.items[0], { what: 'dead letter' });
    expect(dl).toMatchObject({ kind: 'send', outboundMessageId });
    expect(sentTo(from)).toHaveLength(1);
    const replay = await stack.api.post(`/v1/dead-letters/${dl.id}/replay`).set(auth(t)).expect(200);
    expect(replay.body.result).toMatchObject({ status: 'sent', outboundMessageId });
    expect(sentTo(from)).toHaveLength(2);
    expect(sentTo(from)[1]!.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: from,
      type: 'interactive',
      interactive: { type: 'button', body: { text: 'Confirm?' }, action: { buttons: [{ type: 'reply', reply: { id: 'yes', title: 'Yes' } }, { type: 'reply', reply: { id: 'no', title: 'No' } }] } },
      biz_opaque_callback_data: outboundMessageId,
    });
    // the effectively-once lookup: the row is sent once, with its kind and content
    const rows = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t))).body.items.filter((m: { id: string }) => m.id === outboundMessageId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: 'interactive', status: 'sent', content: { kind: 'interactive', interactive: { type: 'button' } } });
    expect((await stack.api.get('/v1/credits').set(auth(t))).body).toMatchObject({ balance: 8, reserved: 0 });
  });

  test('behind an open circuit breaker a rich message is queued (202) and goes out once when it closes', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    stack.graph.failNext({ code: 190, to: from, message: 'Error validating access token' });
    const location = { latitude: 18.5204, longitude: 73.8567, name: 'Parley Store' };
    const queued = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ location }).expect(202);
    expect(queued.body.status).toBe('queued');
    const list = { type: 'list', body: 'Pick one', button: 'Open', sections: [{ rows: [{ id: 'a', title: 'A' }] }] };
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: list }).expect(202);
    // the lead's state shows the queued rich message (its documented schema knows it)
    const state = await waitFor(async () => {
      const r = await stack.api.get(`/v1/leads/${lead.id}/state`).set(auth(t)).expect(200);
      return r.body.outbox?.length ? r.body : undefined;
    }, { what: 'the queued message in the state' });
    expect(state.outbox[0]).toMatchObject({ kind: 'rich', message: { kind: 'interactive', interactive: list } });
    await stack.api.post(`/v1/channels/${t.channelId}/circuit/close`).set(auth(t)).expect(200);
    const sends = await waitFor(() => (sentTo(from).length === 3 ? sentTo(from) : undefined), { what: 'both sent after the circuit closed' });
    expect(sends[1]!.body).toMatchObject({ type: 'location', location });
    expect(sends[2]!.body).toMatchObject({ type: 'interactive', interactive: { type: 'list' } });
    await new Promise((r) => setTimeout(r, 500));
    expect(sentTo(from)).toHaveLength(3);
  });

  test('a sequence step can be rich: checked at creation for every channel, sent natively on WhatsApp', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const bad = await stack.api
      .post('/v1/sequences')
      .set(auth(t))
      .send({ name: 'Too many', steps: [{ delayMs: 0, kind: 'rich', message: { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } } }] })
      .expect(400);
    expect(JSON.stringify(bad.body.error)).toContain('whatsapp: 4 buttons; allowed 1 to 3');
    const message = { kind: 'interactive', interactive: { type: 'list', body: 'Which plan interests you?', button: 'Plans', sections: [{ rows: [{ id: 'basic', title: 'Basic' }, { id: 'pro', title: 'Pro' }] }] } };
    const seq = await stack.api.post('/v1/sequences').set(auth(t)).send({ name: 'Plans', steps: [{ delayMs: 300, kind: 'rich', message }], stopOn: ['stage_changed'] }).expect(201);
    const { from, lead } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
    // the lead's state shows the rich step (its documented schema knows it)
    const state = await stack.api.get(`/v1/leads/${lead.id}/state`).set(auth(t)).expect(200);
    expect(state.body.sequence.def.steps[0]).toMatchObject({ kind: 'rich', message });
    const sends = await waitFor(() => (sentTo(from).length === 2 ? sentTo(from) : undefined), { what: 'the rich step' });
    expect(sends[1]!.body).toMatchObject({
      type: 'interactive',
      interactive: { type: 'list', body: { text: 'Which plan interests you?' }, action: { button: 'Plans', sections: [{ rows: [{ id: 'basic', title: 'Basic' }, { id: 'pro', title: 'Pro' }] }] } },
    });
  });

  test('sendRichMessage is effectively once per outbound id; a media library id is resolved by the one hook', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    const deps = { leads: stack.core.services.leads, channels: stack.core.services.channels, log: stack.log, graphApiUrl: stack.config.GRAPH_API_URL, graphApiVersion: stack.config.GRAPH_API_VERSION, timeoutMs: 5000 };
    const resolved: string[] = [];
    const { sendRichMessage } = createRichActivities({
      ...deps,
      resolveLibraryMedia: async ({ libraryId }) => {
        resolved.push(libraryId);
        return { id: '5550001' };
      },
    });
    const base = { tenantId: t.tenantId, leadId: lead.id, channelAccountId: t.channelId, to: from, channel: 'whatsapp' as const };
    const id = crypto.randomUUID();
    const message = { kind: 'media' as const, media: { type: 'document' as const, libraryId: 'med_price_list', filename: 'prices.pdf' } };
    const first = await sendRichMessage({ ...base, outboundMessageId: id, message });
    expect(first.alreadySent).toBe(false);
    const again = await sendRichMessage({ ...base, outboundMessageId: id, message });
    expect(again).toEqual({ ...first, alreadySent: true });
    expect(sentTo(from)).toHaveLength(2);
    expect(sentTo(from)[1]!.body).toMatchObject({ type: 'document', document: { id: '5550001', filename: 'prices.pdf' }, biz_opaque_callback_data: id });
    expect(resolved).toEqual(['med_price_list']);
    // without the media library: refused for good, nothing sent
    const { sendRichMessage: noLibrary } = createRichActivities(deps);
    await expect(noLibrary({ ...base, outboundMessageId: crypto.randomUUID(), message })).rejects.toMatchObject({ type: 'not_implemented', nonRetryable: true });
    // a broken limit: refused for good before Meta is called
    await expect(
      noLibrary({ ...base, outboundMessageId: crypto.randomUUID(), message: { kind: 'interactive', interactive: { type: 'button', body: 'b', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ id: x, title: x })) } } }),
    ).rejects.toMatchObject({ type: 'provider_permanent', nonRetryable: true });
    expect(sentTo(from)).toHaveLength(2);
  });

  test('a button reply, a list reply and a template quick reply reach the LLM with the option id and title', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const { from } = await whatsAppLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    // Meta's documented webhook payloads (Cloud API, "Messages webhook": interactive, button)
    await postWebhook(stack, whatsAppMessageWebhook(t.phoneNumberId, from, { type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'tue', title: 'Tuesday' } } })).expect(200);
    await waitFor(() => llmSaw('[button] Tuesday (id: tue)'), { what: 'the button reply at the LLM' });
    await postWebhook(stack, whatsAppMessageWebhook(t.phoneNumberId, from, { type: 'interactive', interactive: { type: 'list_reply', list_reply: { id: 'pro', title: 'Pro', description: 'Best value' } } })).expect(200);
    await waitFor(() => llmSaw('[list] Pro — Best value (id: pro)'), { what: 'the list reply at the LLM' });
    await postWebhook(stack, whatsAppMessageWebhook(t.phoneNumberId, from, { type: 'button', button: { payload: 'STOP_PROMOS', text: 'Stop promotions' } })).expect(200);
    await waitFor(() => llmSaw('[button] Stop promotions (id: STOP_PROMOS)'), { what: 'the template quick reply at the LLM' });
  });
});

describe('Instagram', () => {
  async function igLead() {
    const t = await createTenant(stack, { credits: 20 });
    const igAccountId = `178414${randomInt(1_000_000_000, 9_999_999_999)}`;
    await stack.api
      .post('/v1/channels')
      .set(auth(t))
      .send({ platform: 'instagram', phoneNumberId: igAccountId, accessToken: `IGAA${randomBytes(16).toString('hex')}`, verifyToken: `ig-verify-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
      .expect(201);
    const igsid = String(randomInt(1_000_000_000_000, 9_999_999_999_999));
    const postIg = (body: unknown) => {
      const raw = JSON.stringify(body);
      return stack.api.post('/webhooks/instagram').set('content-type', 'application/json').set('x-hub-signature-256', signMetaBody(raw, APP_SECRET)).send(raw);
    };
    await postIg(instagramTextWebhook({ igAccountId, from: igsid, text: 'Do you have hats?' })).expect(200);
    await waitFor(() => igSentTo(igsid).length === 1, { what: 'AI reply on Instagram', timeoutMs: 30_000 });
    const lead = (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === igsid);
    return { t, igsid, lead, igAccountId, postIg };
  }

  test('quick replies, cards and an image go out as the Messaging API documents them; other kinds are converted or degraded', async () => {
    const { t, igsid, lead } = await igLead();
    const cases: { request: Record<string, unknown>; message: Record<string, unknown> }[] = [
      {
        request: { interactive: { type: 'quick_replies', text: 'Which size?', replies: [{ title: 'Small', payload: 'S' }, { title: 'Large', payload: 'L' }] } },
        message: { text: 'Which size?', quick_replies: [{ content_type: 'text', title: 'Small', payload: 'S' }, { content_type: 'text', title: 'Large', payload: 'L' }] },
      },
      {
        request: { interactive: { type: 'generic', cards: [{ title: 'Red hat', subtitle: 'Wool', imageUrl: 'https://shop.example/red.jpg', defaultUrl: 'https://shop.example/red', buttons: [{ type: 'postback', title: 'Buy', payload: 'BUY_RED' }] }] } },
        message: {
          attachment: {
            type: 'template',
            payload: {
              template_type: 'generic',
              elements: [{ title: 'Red hat', subtitle: 'Wool', image_url: 'https://shop.example/red.jpg', default_action: { type: 'web_url', url: 'https://shop.example/red' }, buttons: [{ type: 'postback', title: 'Buy', payload: 'BUY_RED' }] }],
            },
          },
        },
      },
      { request: { media: { type: 'image', link: 'https://cdn.example/hat.png' } }, message: { attachment: { type: 'image', payload: { url: 'https://cdn.example/hat.png' } } } },
      // reply buttons become quick replies
      {
        request: { interactive: { type: 'button', body: 'Deliver when?', buttons: [{ id: 'tue', title: 'Tuesday' }] } },
        message: { text: 'Deliver when?', quick_replies: [{ content_type: 'text', title: 'Tuesday', payload: 'tue' }] },
      },
      // a location becomes text
      { request: { location: { latitude: 18.52, longitude: 73.85, name: 'Store' } }, message: { text: 'Store\nhttps://maps.google.com/?q=18.52,73.85' } },
    ];
    for (const [n, c] of cases.entries()) {
      await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send(c.request).expect(201);
      const sent = igSentTo(igsid);
      expect(sent).toHaveLength(n + 2);
      expect(sent[n + 1]!.body).toEqual({ recipient: { id: igsid }, message: c.message, messaging_type: 'RESPONSE' });
    }
    // Instagram's limits: 14 quick replies, a Meta media id
    const many = await stack.api
      .post(`/v1/leads/${lead.id}/messages`)
      .set(auth(t))
      .send({ interactive: { type: 'quick_replies', text: 'Pick', replies: Array.from({ length: 14 }, (_, k) => ({ title: `o${k}`, payload: `p${k}` })) } })
      .expect(400);
    expect(many.body.error.issues).toEqual([{ path: 'interactive.replies', message: '14 quick replies; allowed 1 to 13' }]);
    const card = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: { type: 'generic', cards: [{ title: 't'.repeat(81) }] } }).expect(400);
    expect(card.body.error.issues).toEqual([{ path: 'interactive.cards.0.title', message: 'card title is 81 characters; the limit is 80' }]);
    expect(igSentTo(igsid)).toHaveLength(cases.length + 1);
  });

  test('rich sequence steps are degraded to Instagram when they are sent', async () => {
    const { t, igsid, lead } = await igLead();
    const seq = await stack.api
      .post('/v1/sequences')
      .set(auth(t))
      .send({
        name: 'IG follow-up',
        steps: [
          { delayMs: 200, kind: 'rich', message: { kind: 'interactive', interactive: { type: 'button', body: 'Still keen on a hat?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] } } },
          { delayMs: 200, kind: 'rich', message: { kind: 'location', location: { latitude: 18.52, longitude: 73.85, name: 'Hat shop' } } },
        ],
        stopOn: ['stage_changed'],
      })
      .expect(201);
    await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
    const sends = await waitFor(() => (igSentTo(igsid).length === 3 ? igSentTo(igsid) : undefined), { what: 'both steps on Instagram' });
    expect(sends[1]!.body).toEqual({
      recipient: { id: igsid },
      message: { text: 'Still keen on a hat?', quick_replies: [{ content_type: 'text', title: 'Yes', payload: 'yes' }, { content_type: 'text', title: 'No', payload: 'no' }] },
      messaging_type: 'RESPONSE',
    });
    expect(sends[2]!.body).toEqual({ recipient: { id: igsid }, message: { text: 'Hat shop\nhttps://maps.google.com/?q=18.52,73.85' }, messaging_type: 'RESPONSE' });
  });

  test('a quick reply reaches the LLM with its payload and title', async () => {
    const { igsid, igAccountId, postIg } = await igLead();
    // Meta's documented quick-reply webhook: the tapped title as text, the payload in quick_reply
    await postIg(instagramTextWebhook({ igAccountId, from: igsid, text: 'Large', quickReplyPayload: 'SIZE_L' })).expect(200);
    await waitFor(() => llmSaw('[quick reply] Large (id: SIZE_L)'), { what: 'the quick reply at the LLM' });
  });
});

describe('web chat', () => {
  test('buttons, lists and images reach the widget; other kinds as text; a clicked option reaches the LLM with its id', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const ch = await stack.api.post('/v1/channels').set(auth(t)).send({ platform: 'webchat', agentId: t.agentId, displayPhoneNumber: 'Acme support' }).expect(201);
    const widgetKey = ch.body.widgetKey as string;
    const token = (await stack.api.post(`/webchat/${widgetKey}/visitors`).send({}).expect(201)).body.visitorToken as string;
    const contactId = createVisitorTokens(webChatVisitorSecret(stack.config)).verify(ch.body.id, token)!.contactId;
    const visitor = { authorization: `Bearer ${token}` };
    await stack.api.post(`/webchat/${widgetKey}/messages`).set(visitor).send({ text: 'Hello', clientMessageId: 'm-1' }).expect(202);
    const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === contactId), { what: 'web chat lead' });
    await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.counters.replies === 1, { what: 'AI reply' });

    const send = (body: object) => stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send(body).expect(201);
    await send({ interactive: { type: 'button', body: 'Deliver when?', buttons: [{ id: 'tue', title: 'Tuesday' }, { id: 'wed', title: 'Wednesday' }] } });
    await send({ interactive: { type: 'list', body: 'Pick a plan', button: 'Plans', sections: [{ title: 'Monthly', rows: [{ id: 'basic', title: 'Basic', description: '₹499' }] }] } });
    await send({ media: { type: 'image', link: 'https://cdn.example/box.png', caption: 'Your box' } });
    await send({ interactive: { type: 'cta_url', body: 'Book online', displayText: 'Book', url: 'https://shop.example/book' } });
    const history = (await stack.api.get(`/webchat/${widgetKey}/messages`).set(visitor).expect(200)).body.items as { direction: string; text: string; rich?: unknown }[];
    const outbound = history.filter((m) => m.direction === 'outbound').slice(1);
    expect(outbound.map((m) => m.rich ?? m.text)).toEqual([
      { type: 'buttons', body: 'Deliver when?', options: [{ id: 'tue', title: 'Tuesday' }, { id: 'wed', title: 'Wednesday' }] },
      { type: 'list', body: 'Pick a plan', button: 'Plans', options: [{ id: 'basic', title: 'Basic', description: '₹499', section: 'Monthly' }] },
      { type: 'image', imageUrl: 'https://cdn.example/box.png', caption: 'Your box' },
      'Book online\nBook: https://shop.example/book',
    ]);
    // limits: web chat shows up to 13 buttons
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ interactive: { type: 'button', body: 'b', buttons: Array.from({ length: 14 }, (_, k) => ({ id: `b${k}`, title: `B${k}` })) } }).expect(400);

    // the visitor clicks "Wednesday": its title is the reply, the LLM gets title and id
    await stack.api.post(`/webchat/${widgetKey}/messages`).set(visitor).send({ text: 'Wednesday', clientMessageId: 'm-2', option: { id: 'wed' } }).expect(202);
    await waitFor(() => llmSaw('[button] Wednesday (id: wed)'), { what: 'the click at the LLM' });
    const after = (await stack.api.get(`/webchat/${widgetKey}/messages`).set(visitor).expect(200)).body.items as { clientMessageId?: string; text: string }[];
    expect(after.find((m) => m.clientMessageId === 'm-2')?.text).toBe('Wednesday');
  });
});
