/**
 * Inbound media on demand: `GET /v1/leads/:leadId/media/:mediaId` → fetchMediaWorkflow →
 * fetchMedia activity → Graph API media endpoint (fake) → media_objects → the bytes.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { instagramAttachmentWebhook, whatsAppMediaWebhook } from '../../fakes/meta-webhooks';
import { signMetaBody } from '../../lib/crypto';
import { FETCH_MEDIA_WORKFLOW_TYPE, fetchMediaWorkflow, mediaWorkflowId } from '../../workflows/media';
import { APP_SECRET, createTenant, postWebhook, randomWaId, startStack, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

const MAX = 4096;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ MEDIA_MAX_BYTES: String(MAX) });
});
afterAll(async () => {
  await stack?.stop();
});
afterEach(() => {
  stack.graph.setValidTokens(null);
  stack.graph.setDelay(0);
});

const auth = (t: TenantFixture) => ({ authorization: `Bearer ${t.apiKey}` });
const newMediaId = () => String(randomInt(100_000_000_000, 999_999_999_999));
const requestsFor = (id: string) => stack.graph.mediaRequests.filter((r) => r.path.endsWith(`/${encodeURIComponent(id)}`));

/** A WhatsApp image from a new contact; resolves with the lead once its message is recorded. */
async function leadWithImage(t: TenantFixture, mediaId: string, opts: { caption?: string } = {}): Promise<{ id: string; channelAccountId: string }> {
  const from = randomWaId();
  await postWebhook(stack, whatsAppMediaWebhook({ phoneNumberId: t.phoneNumberId, from, type: 'image', mediaId, mimeType: 'image/png', caption: opts.caption })).expect(200);
  return waitFor(async () => {
    const leads = await stack.api.get('/v1/leads').set(auth(t)).expect(200);
    const lead = leads.body.items.find((l: { contactId: string }) => l.contactId === from);
    if (!lead) return undefined;
    const msgs = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200);
    return msgs.body.items.some((m: { direction: string }) => m.direction === 'inbound') ? lead : undefined;
  }, { what: 'the image message recorded' });
}

describe('WhatsApp media', () => {
  test('the first request downloads through the Graph API media endpoint; later ones are served from the database', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const mediaId = newMediaId();
    const bytes = randomBytes(1500);
    stack.graph.setMedia(mediaId, bytes, 'image/png');
    const lead = await leadWithImage(t, mediaId, { caption: 'the damaged box' });

    const msgs = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200);
    expect(msgs.body.items.find((m: { direction: string }) => m.direction === 'inbound')).toMatchObject({ type: 'image', body: '[image] the damaged box' });

    const r = await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(t)).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(Buffer.compare(r.body as Buffer, bytes)).toBe(0);

    // a lookup with the channel's bearer (scoped to its phone number), then the download with it
    const calls = requestsFor(mediaId);
    expect(calls.map((c) => [c.path.startsWith('/__fake/media/') ? 'download' : 'lookup', c.authorization, c.response.status])).toEqual([
      ['lookup', `Bearer ${t.accessToken}`, 200],
      ['download', `Bearer ${t.accessToken}`, 200],
    ]);

    // cached: no second download, same bytes
    const again = await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(t)).expect(200);
    expect(createHash('sha256').update(again.body as Buffer).digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(requestsFor(mediaId)).toHaveLength(2);

    // one workflow run per media id, named media:{channelAccountId}:{mediaId}
    expect(fetchMediaWorkflow.name).toBe(FETCH_MEDIA_WORKFLOW_TYPE);
    const wfId = mediaWorkflowId(lead.channelAccountId, mediaId);
    expect(wfId).toBe(`media:${lead.channelAccountId}:${mediaId}`);
    const d = await stack.temporal.client.workflow.getHandle(wfId).describe();
    expect(d.status.name).toBe('COMPLETED');
  });

  test('concurrent requests for one media share one download', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const mediaId = newMediaId();
    stack.graph.setMedia(mediaId, randomBytes(800), 'image/jpeg');
    const lead = await leadWithImage(t, mediaId);
    stack.graph.setDelay(400);
    const results = await Promise.all([1, 2, 3].map(() => stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(t))));
    expect(results.map((x) => x.status)).toEqual([200, 200, 200]);
    expect(requestsFor(mediaId).filter((c) => c.path.startsWith('/__fake/media/'))).toHaveLength(1);
  });

  test('media over MEDIA_MAX_BYTES is refused without downloading it (413, never retried)', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const mediaId = newMediaId();
    stack.graph.setMedia(mediaId, randomBytes(MAX + 1), 'video/mp4');
    const lead = await leadWithImage(t, mediaId);
    const r = await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(t)).expect(413);
    expect(r.body.error.code).toBe('media_too_large');
    expect(requestsFor(mediaId).map((c) => (c.path.startsWith('/__fake/media/') ? 'download' : 'lookup'))).toEqual(['lookup']);
  });

  test("a refused access token is a 502 provider_auth; the token's secret never reaches the answer", async () => {
    const t = await createTenant(stack, { credits: 5 });
    const mediaId = newMediaId();
    const lead = await leadWithImage(t, mediaId);
    stack.graph.setValidTokens(['some-other-token']);
    const r = await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(t)).expect(502);
    expect(r.body.error.code).toBe('provider_auth');
    expect(JSON.stringify(r.body)).not.toContain(t.accessToken);
    // after the token is fixed, a new request downloads it (a failed run does not block the id)
    stack.graph.setValidTokens(null);
    await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(t)).expect(200);
  });

  test('only media a message of that lead carries, and only for its own tenant', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const other = await createTenant(stack, { credits: 5 });
    const mediaId = newMediaId();
    const lead = await leadWithImage(t, mediaId);
    const otherLead = await leadWithImage(other, newMediaId());

    await stack.api.get(`/v1/leads/${lead.id}/media/${newMediaId()}`).set(auth(t)).expect(404);
    await stack.api.get(`/v1/leads/${otherLead.id}/media/${mediaId}`).set(auth(other)).expect(404);
    await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).set(auth(other)).expect(404);
    await stack.api.get(`/v1/leads/not-a-uuid/media/${mediaId}`).set(auth(t)).expect(404);
    await stack.api.get(`/v1/leads/${lead.id}/media/${mediaId}`).expect(401);
    expect(requestsFor(mediaId)).toHaveLength(0);
  });
});

describe('Instagram media', () => {
  test('an attachment is fetched from its CDN url without a bearer', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const igAccountId = `178414${randomInt(1_000_000_000, 9_999_999_999)}`;
    const ch = await stack.api
      .post('/v1/channels')
      .set(auth(t))
      .send({ platform: 'instagram', phoneNumberId: igAccountId, accessToken: `IGAA${randomBytes(12).toString('hex')}`, verifyToken: 'ig-verify-token-1', agentId: t.agentId })
      .expect(201);
    const asset = `ig-asset-${randomBytes(4).toString('hex')}`;
    const bytes = randomBytes(600);
    stack.graph.setMedia(asset, bytes, 'image/jpeg');
    const url = stack.graph.igCdnUrl(asset);
    const igsid = String(randomInt(1_000_000_000_000, 9_999_999_999_999));
    const raw = JSON.stringify(instagramAttachmentWebhook({ igAccountId, from: igsid, attachments: [{ type: 'image', url }] }));
    await stack.api.post('/webhooks/instagram').set('content-type', 'application/json').set('x-hub-signature-256', signMetaBody(raw, APP_SECRET)).send(raw).expect(200);
    const lead = await waitFor(async () => {
      const leads = await stack.api.get('/v1/leads').set(auth(t)).expect(200);
      const l = leads.body.items.find((x: { contactId: string }) => x.contactId === igsid);
      if (!l) return undefined;
      const msgs = await stack.api.get(`/v1/leads/${l.id}/messages`).set(auth(t)).expect(200);
      return msgs.body.items.some((m: { direction: string }) => m.direction === 'inbound') ? l : undefined;
    }, { what: 'the attachment recorded' });
    expect(lead.channelAccountId).toBe(ch.body.id);

    const r = await stack.api.get(`/v1/leads/${lead.id}/media/${encodeURIComponent(url)}`).set(auth(t)).expect(200);
    expect(r.headers['content-type']).toBe('image/jpeg');
    expect(Buffer.compare(r.body as Buffer, bytes)).toBe(0);
    const downloads = stack.graph.mediaRequests.filter((c) => c.path === `/__fake/ig-cdn/${encodeURIComponent(asset)}`);
    expect(downloads).toHaveLength(1);
    expect(downloads[0]!.authorization).toBeUndefined();
    expect(mediaWorkflowId(lead.channelAccountId, url)).toMatch(new RegExp(`^media:${lead.channelAccountId}:h[0-9a-f]{32}$`));
  });
});
