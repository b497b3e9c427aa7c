/**
 * Media library files in rich messages (issue 11): `libraryId` checked at request time (404 / 400),
 * resolved by the rich send activity: WhatsApp gets the Meta media id (uploaded on first use per
 * channel, then reused), Instagram the signed url; a media id Meta no longer knows is uploaded once
 * more and the message resent, at most once per send (a permanently refused id ends failed, no loop);
 * a retried send of an already-sent outbound id neither resolves nor uploads again; sequence steps too.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { libraryMediaHook, mediaResolverFrom } from '../../activities';
import { createRichActivities, type ResolveLibraryMedia } from '../../activities/channels/rich';
import { activityDepsFrom } from '../../composition/worker';
import { instagramTextWebhook } from '../../fakes/meta-webhooks';
import { signMetaBody } from '../../lib/crypto';
import { createVisitorTokens, webChatVisitorSecret } from '../../services/webchat-visitors';
import { samples } from '../support/media-samples';
import { APP_SECRET, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

const PUBLIC_BASE_URL = 'https://parley.test';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ PUBLIC_BASE_URL, LEAD_DELIVERY_MAX_ATTEMPTS: '2' });
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);
/** Every send call to `to`, refused ones included. */
const callsTo = (to: string) => stack.graph.requests.filter((r) => r.channel === 'whatsapp' && (r.body as { to?: string; type?: string }).to === to && (r.body as { type?: string }).type !== undefined);
const uploadsOf = (phoneNumberId: string) => stack.graph.uploadRequests.filter((u) => u.phoneNumberId === phoneNumberId);
const uploadedId = (u: { response: { body: unknown } }) => (u.response.body as { id: string }).id;
const fileOf = (head: Buffer, size = 4096) => Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
const upload = async (t: TenantFixture, data: Buffer, filename: string, contentType: string) =>
  (await stack.api.post('/v1/media').set(auth(t)).attach('file', data, { filename, contentType }).expect(201)).body as { id: string; sha256: string };

async function whatsAppLead(t: TenantFixture) {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, do you have a catalogue?')).expect(200);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
  await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
  await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
  return { from, lead: lead as { id: string } };
}

describe('WhatsApp', () => {
  test('a library image goes out with the Meta id uploaded on first use; the second send reuses it', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    const png = fileOf(samples.png);
    const item = await upload(t, png, 'shoe.png', 'image/png');

    const first = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id, caption: 'The red one' } }).expect(201);
    const uploads = uploadsOf(t.phoneNumberId);
    expect(uploads).toHaveLength(1);
    expect(uploads[0]).toMatchObject({ authorization: `Bearer ${t.accessToken}`, body: { messaging_product: 'whatsapp', type: 'image/png', filename: 'shoe.png', size: png.length, sha256: item.sha256 } });
    const metaId = uploadedId(uploads[0]!);
    expect(metaId).toMatch(/^\d+$/);
    expect(sentTo(from)).toHaveLength(2);
    expect(sentTo(from)[1]!.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: from,
      type: 'image',
      image: { id: metaId, caption: 'The red one' },
      biz_opaque_callback_data: first.body.outboundMessageId,
    });

    const second = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id } }).expect(201);
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(1);
    expect(sentTo(from)[2]!.body).toEqual({ messaging_product: 'whatsapp', recipient_type: 'individual', to: from, type: 'image', image: { id: metaId }, biz_opaque_callback_data: second.body.outboundMessageId });
    // the library shows the upload; the transcript keeps the library id
    const detail = await stack.api.get(`/v1/media/${item.id}`).set(auth(t)).expect(200);
    expect(detail.body.metaUploads).toEqual([{ channelAccountId: t.channelId, uploadedAt: expect.any(String), expiresAt: expect.any(String) }]);
    const messages = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items as { id: string; type: string; content?: unknown }[];
    expect(messages.find((m) => m.id === first.body.outboundMessageId)).toMatchObject({ type: 'media', content: { kind: 'media', media: { type: 'image', libraryId: item.id, caption: 'The red one' } } });
    // a document takes the library file's name unless the message gives one
    const pdf = await upload(t, fileOf(samples.pdf), 'price-list.pdf', 'application/pdf');
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'document', libraryId: pdf.id, caption: 'Prices' } }).expect(201);
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(2);
    expect(sentTo(from)[3]!.body).toMatchObject({ type: 'document', document: { id: uploadedId(uploadsOf(t.phoneNumberId)[1]!), caption: 'Prices', filename: 'price-list.pdf' } });
  });

  test('an id Meta no longer knows: one re-upload and the message resent under the same id', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    const item = await upload(t, fileOf(samples.jpeg), 'box.jpg', 'image/jpeg');
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id } }).expect(201);
    const oldId = uploadedId(uploadsOf(t.phoneNumberId)[0]!);
    stack.graph.expireMedia(oldId); // Meta dropped it early

    const sent = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id, caption: 'Again' } }).expect(201);
    const uploads = uploadsOf(t.phoneNumberId);
    expect(uploads).toHaveLength(2);
    const newId = uploadedId(uploads[1]!);
    expect(newId).not.toBe(oldId);
    const calls = callsTo(from).slice(-2);
    expect(calls.map((c) => c.response.status)).toEqual([400, 200]);
    expect(calls[0]!.response.body).toMatchObject({ error: { code: 100, error_data: { details: "Param image['id'] is not a valid whatsapp business account media attachment ID" } } });
    expect(calls[0]!.body).toMatchObject({ image: { id: oldId, caption: 'Again' }, biz_opaque_callback_data: sent.body.outboundMessageId });
    expect(calls[1]!.body).toEqual({ messaging_product: 'whatsapp', recipient_type: 'individual', to: from, type: 'image', image: { id: newId, caption: 'Again' }, biz_opaque_callback_data: sent.body.outboundMessageId });
    // the next send uses the new id at once
    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id } }).expect(201);
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(2);
    expect(callsTo(from).at(-1)!.body).toMatchObject({ image: { id: newId } });
    expect((await stack.api.get('/v1/credits').set(auth(t))).body).toMatchObject({ balance: 6, reserved: 0 });
  });

  test('an id Meta refuses for good: one re-upload, one resend, then failed like any permanent error (no loop)', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    const item = await upload(t, fileOf(samples.png), 'bad.png', 'image/png');
    stack.graph.failNext({ code: 131053, to: from, times: Infinity, message: 'Media upload error', details: 'Unable to retrieve media' });
    const before = callsTo(from).length;
    const failed = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id } }).expect(502);
    const outboundMessageId = failed.body.error.outboundMessageId as string;
    await new Promise((r) => setTimeout(r, 1000));
    const calls = callsTo(from).slice(before);
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.response.status)).toEqual([400, 400]);
    const uploads = uploadsOf(t.phoneNumberId);
    expect(uploads).toHaveLength(2);
    expect(calls.map((c) => (c.body as { image: { id: string } }).image.id)).toEqual(uploads.map(uploadedId));
    const messages = (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items as { id: string; status: string }[];
    expect(messages.find((m) => m.id === outboundMessageId)).toMatchObject({ status: 'failed' });
    // like other permanent errors: no dead letter, no charge
    expect((await stack.api.get(`/v1/dead-letters?status=open&leadId=${lead.id}`).set(auth(t))).body.items).toEqual([]);
    expect((await stack.api.get('/v1/credits').set(auth(t))).body).toMatchObject({ balance: 9, reserved: 0 });
  });

  test('a retried send of an outbound id already sent neither resolves nor uploads again', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const { from, lead } = await whatsAppLead(t);
    const item = await upload(t, fileOf(samples.png), 'once.png', 'image/png');
    const deps = activityDepsFrom(stack.config, stack.core.services, stack.log);
    const hook = libraryMediaHook(mediaResolverFrom(deps)!);
    const resolved: string[] = [];
    const counting: ResolveLibraryMedia = async (input) => {
      resolved.push(input.libraryId);
      return hook(input);
    };
    const { sendRichMessage } = createRichActivities({ leads: deps.leads, channels: deps.channels, log: stack.log, graphApiUrl: stack.graph.url, graphApiVersion: stack.config.GRAPH_API_VERSION, timeoutMs: 5000, resolveLibraryMedia: counting });
    const input = { tenantId: t.tenantId, leadId: lead.id, channelAccountId: t.channelId, to: from, channel: 'whatsapp' as const, outboundMessageId: crypto.randomUUID(), message: { kind: 'media' as const, media: { type: 'image' as const, libraryId: item.id } } };
    const first = await sendRichMessage(input);
    expect(first.alreadySent).toBe(false);
    expect(resolved).toEqual([item.id]);
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(1);
    const again = await sendRichMessage(input);
    expect(again).toEqual({ ...first, alreadySent: true });
    expect(resolved).toEqual([item.id]);
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(1);
    expect(sentTo(from)).toHaveLength(2);
    // a file of the wrong kind fails for good at send time too (the API refuses it earlier)
    const pdf = await upload(t, fileOf(samples.pdf), 'x.pdf', 'application/pdf');
    await expect(sendRichMessage({ ...input, outboundMessageId: crypto.randomUUID(), message: { kind: 'media', media: { type: 'image', libraryId: pdf.id } } })).rejects.toMatchObject({ type: 'media_kind_mismatch', nonRetryable: true });
    expect(sentTo(from)).toHaveLength(2);
  });

  test('the API checks the library id: another tenant’s or unknown → 404, a kind that does not fit → 400; sequences too', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const other = await createTenant(stack);
    const { from, lead } = await whatsAppLead(t);
    const theirs = await upload(other, fileOf(samples.png), 'theirs.png', 'image/png');
    const pdf = await upload(t, fileOf(samples.pdf), 'p.pdf', 'application/pdf');
    const post = (body: object) => stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send(body);

    const foreign = await post({ media: { type: 'image', libraryId: theirs.id } }).expect(404);
    expect(foreign.body.error).toMatchObject({ code: 'media_not_found', message: expect.stringContaining(`media.libraryId: media ${theirs.id} is not in this tenant's media library`) });
    await post({ media: { type: 'image', libraryId: crypto.randomUUID() } }).expect(404);
    const kind = await post({ media: { type: 'image', libraryId: pdf.id } }).expect(400);
    expect(kind.body.error).toMatchObject({ code: 'media_kind_mismatch', issues: [{ path: 'media.libraryId', message: `media ${pdf.id} is a document (application/pdf); the message sends a image` }] });
    const header = await post({ interactive: { type: 'button', body: 'Like it?', header: { media: { type: 'image', libraryId: pdf.id } }, buttons: [{ id: 'y', title: 'Yes' }] } }).expect(400);
    expect(header.body.error.issues[0].path).toBe('interactive.header.media.libraryId');
    await post({ media: { type: 'image', libraryId: pdf.id, link: 'https://cdn.example/a.png' } }).expect(400);
    await post({ media: { type: 'image', libraryId: 'not-a-uuid' } }).expect(400);
    const seq = await stack.api
      .post('/v1/sequences')
      .set(auth(t))
      .send({ name: 'Foreign', steps: [{ delayMs: 0, kind: 'rich', message: { kind: 'media', media: { type: 'image', libraryId: theirs.id } } }] })
      .expect(404);
    expect(seq.body.error.message).toContain('steps.0.message.media.libraryId');
    const mine = await stack.api.post('/v1/sequences').set(auth(t)).send({ name: 'Mine', steps: [{ delayMs: 0, kind: 'text', text: 'Hello again' }] }).expect(201);
    const patched = await stack.api
      .patch(`/v1/sequences/${mine.body.id}`)
      .set(auth(t))
      .send({ steps: [{ delayMs: 0, kind: 'rich', message: { kind: 'media', media: { type: 'image', libraryId: pdf.id } } }] })
      .expect(400);
    expect(patched.body.error).toMatchObject({ code: 'media_kind_mismatch', issues: [{ path: 'steps.0.message.media.libraryId' }] });
    expect(sentTo(from)).toHaveLength(1);
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(0);
    expect((await stack.api.get('/v1/credits').set(auth(t))).body).toMatchObject({ balance: 9, reserved: 0 });
  });

  test('a sequence step sends a library document with its Meta id', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const pdf = await upload(t, fileOf(samples.pdf), 'catalogue.pdf', 'application/pdf');
    const seq = await stack.api
      .post('/v1/sequences')
      .set(auth(t))
      .send({ name: 'Catalogue', steps: [{ delayMs: 300, kind: 'rich', message: { kind: 'media', media: { type: 'document', libraryId: pdf.id, caption: 'Our catalogue' } } }], stopOn: ['stage_changed'] })
      .expect(201);
    const { from, lead } = await whatsAppLead(t);
    await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
    const sends = await waitFor(() => (sentTo(from).length === 2 ? sentTo(from) : undefined), { what: 'the library step' });
    const uploads = uploadsOf(t.phoneNumberId);
    expect(uploads).toHaveLength(1);
    expect(sends[1]!.body).toMatchObject({ type: 'document', document: { id: uploadedId(uploads[0]!), caption: 'Our catalogue', filename: 'catalogue.pdf' } });
  });
});

describe('Instagram', () => {
  test('a library image goes out as the signed url of this deployment (nothing uploaded to Meta)', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const igAccountId = `178414${randomInt(1_000_000_000, 9_999_999_999)}`;
    await stack.api
      .post('/v1/channels')
      .set(auth(t))
      .send({ platform: 'instagram', phoneNumberId: igAccountId, accessToken: `IGAA${randomBytes(16).toString('hex')}`, verifyToken: `ig-verify-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
      .expect(201);
    const igsid = String(randomInt(1_000_000_000_000, 9_999_999_999_999));
    const raw = JSON.stringify(instagramTextWebhook({ igAccountId, from: igsid, text: 'Show me the hat' }));
    await stack.api.post('/webhooks/instagram').set('content-type', 'application/json').set('x-hub-signature-256', signMetaBody(raw, APP_SECRET)).send(raw).expect(200);
    const igSends = () => stack.graph.instagramSends().filter((r) => (r.body as { recipient: { id: string } }).recipient.id === igsid);
    await waitFor(() => igSends().length === 1, { what: 'AI reply on Instagram', timeoutMs: 30_000 });
    const lead = (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === igsid);
    const jpeg = fileOf(samples.jpeg);
    const item = await upload(t, jpeg, 'hat.jpg', 'image/jpeg');
    const uploadsBefore = stack.graph.uploadRequests.length;

    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id } }).expect(201);
    const sent = igSends()[1]!.body as { message: { attachment: { payload: { url: string } } } };
    expect(sent).toEqual({ recipient: { id: igsid }, message: { attachment: { type: 'image', payload: { url: expect.stringMatching(/^https:\/\/parley\.test\/media\/mu1\./) } } }, messaging_type: 'RESPONSE' });
    expect(stack.graph.uploadRequests.length).toBe(uploadsBefore);
    // the url serves the file to whoever holds it (Instagram's servers)
    const served = await stack.api.get(new URL(sent.message.attachment.payload.url).pathname).buffer(true).expect(200);
    expect(Buffer.compare(served.body as Buffer, jpeg)).toBe(0);
  });
});

describe('web chat', () => {
  test('a library image reaches the widget as a signed url that serves the file', async () => {
    const t = await createTenant(stack, { credits: 10 });
    const ch = await stack.api.post('/v1/channels').set(auth(t)).send({ platform: 'webchat', agentId: t.agentId, displayPhoneNumber: 'Acme support' }).expect(201);
    const widgetKey = ch.body.widgetKey as string;
    const token = (await stack.api.post(`/webchat/${widgetKey}/visitors`).send({}).expect(201)).body.visitorToken as string;
    const contactId = createVisitorTokens(webChatVisitorSecret(stack.config)).verify(ch.body.id, token)!.contactId;
    const visitor = { authorization: `Bearer ${token}` };
    await stack.api.post(`/webchat/${widgetKey}/messages`).set(visitor).send({ text: 'Hello', clientMessageId: 'm-1' }).expect(202);
    const lead = await waitFor(async () => (await stack.api.get('/v1/leads?limit=200').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === contactId), { what: 'web chat lead' });
    await waitFor(async () => (await stack.temporal.leadState(lead.workflowId))?.counters.replies === 1, { what: 'AI reply' });
    const png = fileOf(samples.png);
    const item = await upload(t, png, 'box.png', 'image/png');
    const uploadsBefore = stack.graph.uploadRequests.length;

    await stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ media: { type: 'image', libraryId: item.id, caption: 'Your box' } }).expect(201);
    const history = (await stack.api.get(`/webchat/${widgetKey}/messages`).set(visitor).expect(200)).body.items as { direction: string; rich?: { type: string; imageUrl: string; caption?: string } }[];
    const rich = history.filter((m) => m.direction === 'outbound').at(-1)!.rich!;
    expect(rich).toEqual({ type: 'image', imageUrl: expect.stringMatching(/^https:\/\/parley\.test\/media\/mu1\./), caption: 'Your box' });
    const served = await stack.api.get(new URL(rich.imageUrl).pathname).buffer(true).expect(200);
    expect(Buffer.compare(served.body as Buffer, png)).toBe(0);
    expect(stack.graph.uploadRequests.length).toBe(uploadsBefore);
  });
});
