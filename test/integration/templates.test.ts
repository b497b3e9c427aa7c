/**
 * Templates in sync with Meta, on the real dev server and a real fake Graph API: the sync (every
 * page, upsert, DELETED marking, tenant scoping), the three template webhooks, the checks before
 * a template send, PATCH / DELETE, and a paused template's sequence step.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { FakeMessageTemplate } from '../../fakes/graph-api';
import { whatsAppTemplateStatusWebhook } from '../../fakes/meta-webhooks';
import { createTemplateSync } from '../../services/template-sync';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const randomWabaId = () => `1${String(randomInt(10_000_000_000_000, 99_999_999_999_999))}`;
const sentTo = (to: string) => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === to);

/** Five templates as Meta lists them: text/media headers, footers, every common button type, three statuses. */
function metaTemplates(): Omit<FakeMessageTemplate, 'id'>[] {
  return [
    {
      name: 'order_update',
      language: 'en_US',
      status: 'APPROVED',
      category: 'UTILITY',
      parameter_format: 'POSITIONAL',
      components: [
        { type: 'HEADER', format: 'TEXT', text: 'Order {{1}}', example: { header_text: ['#123'] } },
        { type: 'BODY', text: 'Hi {{1}}, your order ships on {{2}}.', example: { body_text: [['Priya', 'Monday']] } },
        { type: 'FOOTER', text: 'Acme Shop' },
        {
          type: 'BUTTONS',
          buttons: [
            { type: 'URL', text: 'Track', url: 'https://shop.example/track/{{1}}', example: ['https://shop.example/track/abc'] },
            { type: 'PHONE_NUMBER', text: 'Call us', phone_number: '+15550001111' },
          ],
        },
      ],
    },
    {
      name: 'summer_sale',
      language: 'en_US',
      status: 'APPROVED',
      category: 'MARKETING',
      components: [
        { type: 'HEADER', format: 'IMAGE', example: { header_handle: ['4::aW1hZ2U='] } },
        { type: 'BODY', text: 'Summer sale! Use the code below.' },
        { type: 'BUTTONS', buttons: [{ type: 'COPY_CODE', example: 'SAVE30' }, { type: 'QUICK_REPLY', text: 'Not interested' }] },
      ],
    },
    { name: 'follow_up', language: 'en', status: 'APPROVED', category: 'MARKETING', components: [{ type: 'BODY', text: 'Hi {{1}}, still interested?', example: { body_text: [['Priya']] } }] },
    { name: 'follow_up', language: 'es', status: 'PENDING', category: 'MARKETING', components: [{ type: 'BODY', text: 'Hola {{1}}, ¿sigues interesado?' }] },
    {
      name: 'login_code',
      language: 'en_US',
      status: 'REJECTED',
      category: 'AUTHENTICATION',
      rejected_reason: 'INVALID_FORMAT',
      components: [{ type: 'BODY', text: '*{{1}}* is your verification code.' }, { type: 'BUTTONS', buttons: [{ type: 'OTP', otp_type: 'COPY_CODE', text: 'Copy code' }] }],
    },
  ];
}

interface TemplateItem {
  id: string;
  name: string;
  language: string;
  category: string;
  source: string;
  status: string;
  approved: boolean;
  components: Record<string, unknown>;
  qualityScore: string | null;
  statusReason: string | null;
  events: Record<string, Record<string, unknown>>;
  metaTemplateId: string | null;
}

async function templatesOf(t: { apiKey: string }): Promise<TemplateItem[]> {
  return (await stack.api.get('/v1/templates?limit=200').set(auth(t)).expect(200)).body.items;
}
async function templateOf(t: { apiKey: string }, name: string, language: string): Promise<TemplateItem> {
  const found = (await templatesOf(t)).find((x) => x.name === name && x.language === language);
  if (!found) throw new Error(`no template ${name} ${language}`);
  return found;
}

/** A tenant whose WhatsApp channel names a WhatsApp Business Account holding metaTemplates(), synced once. */
async function syncedTenant(opts: { appSecret?: string; pageSize?: number } = {}): Promise<TenantFixture & { wabaId: string }> {
  const t = await createTenant(stack, { credits: 20, ...(opts.appSecret ? { appSecret: opts.appSecret } : {}) });
  const wabaId = randomWabaId();
  stack.graph.setTemplates(wabaId, metaTemplates(), { maxPageSize: opts.pageSize ?? 2 });
  await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId }).expect(200);
  await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200);
  return { ...t, wabaId };
}

describe('channel wabaId', () => {
  test('is taken on create and PATCH, digits only, WhatsApp only', async () => {
    const t = await createTenant(stack);
    const wabaId = randomWabaId();
    const created = await stack.api
      .post('/v1/channels')
      .set(auth(t))
      .send({ platform: 'whatsapp', phoneNumberId: String(randomInt(100_000_000_000, 999_999_999_999)), accessToken: `EAAG${randomBytes(8).toString('hex')}`, verifyToken: 'verify-123456', agentId: t.agentId, wabaId })
      .expect(201);
    expect(created.body.wabaId).toBe(wabaId);
    const bad = await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId: 'abc' }).expect(400);
    expect(JSON.stringify(bad.body)).toContain('WhatsApp Business Account id');
    expect((await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId }).expect(200)).body.wabaId).toBe(wabaId);
    expect((await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId: null }).expect(200)).body.wabaId).toBeNull();
    const webchat = await stack.api.post('/v1/channels').set(auth(t)).send({ platform: 'webchat', agentId: t.agentId }).expect(201);
    await stack.api.patch(`/v1/channels/${webchat.body.id}`).set(auth(t)).send({ wabaId }).expect(400);
    await stack.api.post('/v1/channels').set(auth(t)).send({ platform: 'webchat', agentId: t.agentId, wabaId }).expect(400);
  });
});

describe('POST /v1/channels/:channelId/templates/sync', () => {
  test('reads every page, stores the components, upserts, and marks a template Meta no longer lists DELETED', async () => {
    const t = await createTenant(stack);
    const wabaId = randomWabaId();
    stack.graph.setTemplates(wabaId, metaTemplates(), { maxPageSize: 2 });
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId }).expect(200);
    // a local template of the same name and language becomes the synced one
    await stack.api.post('/v1/templates').set(auth(t)).send({ name: 'follow_up', language: 'en', category: 'utility', body: 'old {{1}}', approved: false }).expect(201);

    const before = stack.graph.templateRequests.length;
    const first = await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200);
    expect(first.body).toEqual({ channelId: t.channelId, wabaId, pages: 3, fetched: 5, inserted: 4, updated: 1, markedDeleted: 0, skipped: 0 });
    const reads = stack.graph.templateRequests.slice(before);
    expect(reads).toHaveLength(3);
    // paged by cursor against the configured Graph url, with the channel's own token
    expect(reads.every((r) => r.authorization === `Bearer ${t.accessToken}` && r.path.startsWith(`/v21.0/${wabaId}/message_templates?`))).toBe(true);
    expect(reads.filter((r) => r.path.includes('after=')).length).toBe(2);

    const items = await templatesOf(t);
    expect(items.map((i) => `${i.name}/${i.language}`)).toEqual(['follow_up/en', 'follow_up/es', 'login_code/en_US', 'order_update/en_US', 'summer_sale/en_US']);
    const order = items.find((i) => i.name === 'order_update')!;
    expect(order).toMatchObject({ source: 'meta', status: 'APPROVED', approved: true, category: 'utility' });
    expect(order.metaTemplateId).toMatch(/^\d+$/);
    expect(order.components).toEqual({
      header: { format: 'TEXT', text: 'Order {{1}}', variables: 1 },
      body: { text: 'Hi {{1}}, your order ships on {{2}}.', variables: 2 },
      footer: { text: 'Acme Shop' },
      buttons: [
        { index: 0, type: 'URL', text: 'Track', url: 'https://shop.example/track/{{1}}', parameter: 'url_suffix' },
        { index: 1, type: 'PHONE_NUMBER', text: 'Call us', phoneNumber: '+15550001111', parameter: 'none' },
      ],
    });
    const sale = items.find((i) => i.name === 'summer_sale')!;
    expect(sale.components).toMatchObject({ header: { format: 'IMAGE', variables: 0 }, buttons: [{ type: 'COPY_CODE', parameter: 'coupon_code' }, { type: 'QUICK_REPLY', parameter: 'payload' }] });
    expect(items.find((i) => i.name === 'login_code')).toMatchObject({ status: 'REJECTED', approved: false, statusReason: 'INVALID_FORMAT', category: 'authentication' });
    expect(items.find((i) => i.name === 'follow_up' && i.language === 'en')).toMatchObject({ source: 'meta', status: 'APPROVED', approved: true, category: 'marketing' });
    expect(items.find((i) => i.language === 'es')).toMatchObject({ status: 'PENDING', approved: false });

    // Meta drops summer_sale and approves the Spanish follow_up
    const next = metaTemplates().filter((x) => x.name !== 'summer_sale');
    next.find((x) => x.language === 'es')!.status = 'APPROVED';
    stack.graph.setTemplates(wabaId, next);
    const second = await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200);
    expect(second.body).toMatchObject({ pages: 2, fetched: 4, inserted: 0, updated: 4, markedDeleted: 1 });
    const after = await templatesOf(t);
    expect(after.find((i) => i.name === 'summer_sale')).toMatchObject({ status: 'DELETED', approved: false });
    expect(after.find((i) => i.language === 'es')).toMatchObject({ status: 'APPROVED', approved: true });
    // already marked: not counted again
    expect((await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200)).body.markedDeleted).toBe(0);

    // the channel moves to another account: the first account's templates are no longer kept approved
    const moved = randomWabaId();
    stack.graph.setTemplates(moved, metaTemplates().slice(0, 1));
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId: moved }).expect(200);
    const third = await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200);
    expect(third.body).toMatchObject({ fetched: 1, inserted: 0, updated: 1, markedDeleted: 3 });
    const final = await templatesOf(t);
    expect(final.filter((i) => i.approved).map((i) => i.name)).toEqual(['order_update']);
    expect(final.find((i) => i.name === 'follow_up' && i.language === 'en')).toMatchObject({ status: 'DELETED', statusReason: 'its WhatsApp Business Account is no longer on any channel' });
  });

  test('tenant scoped (404), needs a WhatsApp channel with a wabaId (409 with a reason), Meta refusing the account is 502 and changes nothing', async () => {
    const a = await syncedTenant();
    const b = await createTenant(stack);
    await stack.api.post(`/v1/channels/${a.channelId}/templates/sync`).set(auth(b)).expect(404);
    await stack.api.post('/v1/channels/not-a-uuid/templates/sync').set(auth(b)).expect(400);
    await stack.api.post(`/v1/channels/${a.channelId}/templates/sync`).expect(401);
    const noWaba = await stack.api.post(`/v1/channels/${b.channelId}/templates/sync`).set(auth(b)).expect(409);
    expect(noWaba.body.error.code).toBe('waba_id_missing');
    const webchat = await stack.api.post('/v1/channels').set(auth(b)).send({ platform: 'webchat', agentId: b.agentId }).expect(201);
    expect((await stack.api.post(`/v1/channels/${webchat.body.id}/templates/sync`).set(auth(b)).expect(409)).body.error.code).toBe('not_whatsapp');

    // b names a's account, but b's token cannot read it
    stack.graph.setAccountOwner(a.wabaId, [a.accessToken]);
    await stack.api.patch(`/v1/channels/${b.channelId}`).set(auth(b)).send({ wabaId: a.wabaId }).expect(200);
    const refused = await stack.api.post(`/v1/channels/${b.channelId}/templates/sync`).set(auth(b)).expect(502);
    expect(refused.body.error.message).toContain('refused to list the templates');
    expect(await templatesOf(b)).toEqual([]);
    // no token in any log line
    expect(stack.logLines.join('\n')).not.toContain(a.accessToken);
    expect(stack.logLines.join('\n')).not.toContain(b.accessToken);
    stack.graph.setAccountOwner(a.wabaId, null);
  });

  test('an unknown status is stored as sent and not sendable; an item that is no template is skipped', async () => {
    const t = await createTenant(stack);
    const wabaId = randomWabaId();
    const junk = { foo: 1 } as unknown as Omit<FakeMessageTemplate, 'id'>;
    stack.graph.setTemplates(wabaId, [{ ...metaTemplates()[2]!, status: 'SOME_NEW_STATE' }, junk]);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(auth(t)).send({ wabaId }).expect(200);
    const r = await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200);
    expect(r.body).toMatchObject({ fetched: 1, inserted: 1, skipped: 1 });
    expect(await templateOf(t, 'follow_up', 'en')).toMatchObject({ status: 'SOME_NEW_STATE', approved: false });
  });

  test('stops at its page bound and changes nothing', async () => {
    const t = await syncedTenant({ pageSize: 1 });
    stack.graph.setTemplates(t.wabaId, metaTemplates().slice(0, 1));
    const sync = createTemplateSync({
      channels: stack.core.services.channels,
      templates: stack.core.services.templates,
      graphApiUrl: stack.graph.url,
      graphApiVersion: 'v21.0',
      timeoutMs: 5000,
      log: stack.log,
      maxPages: 2,
    });
    stack.graph.setTemplates(t.wabaId, metaTemplates());
    await expect(sync.sync(t.tenantId, t.channelId)).rejects.toMatchObject({ reason: 'too_many_pages' });
    expect((await templatesOf(t)).filter((i) => i.status === 'DELETED')).toEqual([]);
  });
});

describe('template webhooks', () => {
  test('status, quality and category changes update the stored template; other tenants are untouched', async () => {
    const t = await syncedTenant();
    const other = await createTenant(stack);
    await stack.api.post('/v1/templates').set(auth(other)).send({ name: 'order_update', language: 'en_US', category: 'utility', body: 'Hi {{1}}', approved: true }).expect(201);

    const paused = await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'PAUSED', 'Low quality: customers blocked it')).expect(200);
    expect(paused.body.templates).toEqual({ changes: 1, updated: 1, unmatched: 0, unknownAccounts: 0 });
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({
      status: 'PAUSED',
      approved: false,
      statusReason: 'Low quality: customers blocked it',
      events: { message_template_status_update: expect.objectContaining({ field: 'message_template_status_update', event: 'PAUSED', status: 'PAUSED', at: expect.any(String) }) },
    });
    expect(await templateOf(other, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED', approved: true, source: 'local' });

    await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'REINSTATED')).expect(200);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED', approved: true, statusReason: null });
    await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'follow_up', 'en', 'DISABLED', 'Quality')).expect(200);
    expect(await templateOf(t, 'follow_up', 'en')).toMatchObject({ status: 'DISABLED', approved: false });

    await postWebhook(stack, stack.graph.templateQualityEvent(t.wabaId, 'order_update', 'en_US', 'RED')).expect(200);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ qualityScore: 'RED', status: 'APPROVED' });

    await postWebhook(stack, stack.graph.templateCategoryEvent(t.wabaId, 'summer_sale', 'en_US', 'UTILITY')).expect(200);
    expect(await templateOf(t, 'summer_sale', 'en_US')).toMatchObject({ category: 'utility', events: { template_category_update: expect.objectContaining({ previousCategory: 'MARKETING', newCategory: 'UTILITY' }) } });
    // every field keeps its own last event
    expect(Object.keys((await templateOf(t, 'order_update', 'en_US')).events).sort()).toEqual(['message_template_quality_update', 'message_template_status_update']);
  });

  test('unknown events, unknown fields, broken values and unknown accounts are acknowledged, not applied', async () => {
    const t = await syncedTenant();
    const target = { wabaId: t.wabaId, id: stack.graph.templates(t.wabaId).find((x) => x.name === 'order_update')!.id, name: 'order_update', language: 'en_US' };
    const unknownEvent = await postWebhook(stack, whatsAppTemplateStatusWebhook(target, { event: 'SOMETHING_NEW' })).expect(200);
    expect(unknownEvent.body).toMatchObject({ ignored: 0, templates: { changes: 1, updated: 1 } });
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED', events: { message_template_status_update: expect.objectContaining({ event: 'SOMETHING_NEW', status: null }) } });

    const envelope = (field: string, value: unknown, wabaId = t.wabaId) => ({ object: 'whatsapp_business_account', entry: [{ id: wabaId, time: 1, changes: [{ field, value }] }] });
    expect((await postWebhook(stack, envelope('message_template_components_update', { message_template_id: 1 })).expect(200)).body).toMatchObject({ ignored: 1, received: 0 });
    expect((await postWebhook(stack, envelope('message_template_status_update', { event: 'PAUSED' })).expect(200)).body).toMatchObject({ ignored: 1 });
    expect((await postWebhook(stack, envelope('message_template_status_update', 'PAUSED')).expect(200)).body).toMatchObject({ ignored: 1 });
    expect((await postWebhook(stack, envelope('message_template_quality_update', { message_template_id: 5, new_quality_score: 42 })).expect(200)).body).toMatchObject({ ignored: 1 });
    const unknownAccount = await postWebhook(stack, whatsAppTemplateStatusWebhook({ ...target, wabaId: randomWabaId() }, { event: 'PAUSED' })).expect(200);
    expect(unknownAccount.body.templates).toMatchObject({ updated: 0, unknownAccounts: 1 });
    const unknownTemplate = await postWebhook(stack, whatsAppTemplateStatusWebhook({ ...target, id: '99', name: 'nope' }, { event: 'PAUSED' })).expect(200);
    expect(unknownTemplate.body.templates).toMatchObject({ updated: 0, unmatched: 1 });
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED' });
    // a template body is signed like any other
    await postWebhook(stack, whatsAppTemplateStatusWebhook(target, { event: 'PAUSED' }), { secret: 'not-the-app-secret-000' }).expect(401);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED' });
  });

  test('Meta redelivers out of order: an older status change never overwrites a newer one', async () => {
    const t = await syncedTenant();
    const at = (body: unknown, seconds: number) => {
      (body as { entry: { time: number }[] }).entry[0]!.time = seconds;
      return body;
    };
    const now = Math.floor(Date.now() / 1000);
    const paused = at(stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'PAUSED'), now - 600);
    const reinstated = at(stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'REINSTATED'), now - 60);
    await postWebhook(stack, reinstated).expect(200);
    const late = await postWebhook(stack, paused).expect(200);
    expect(late.body.templates).toMatchObject({ updated: 0, unmatched: 1 });
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED', approved: true });
    // a quality change of the same template is another field: older than the status change, still applied
    await postWebhook(stack, at(stack.graph.templateQualityEvent(t.wabaId, 'order_update', 'en_US', 'YELLOW'), now - 300)).expect(200);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ qualityScore: 'YELLOW', status: 'APPROVED' });
    // the same change delivered twice is applied twice, harmlessly
    await postWebhook(stack, reinstated).expect(200);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED' });
  });

  test("a channel on its own app secret: its template webhooks are signed with that secret; the deployment's secret alone does not reach it", async () => {
    const own = `own-secret-${randomBytes(6).toString('hex')}`;
    const t = await syncedTenant({ appSecret: own });
    const plain = await syncedTenant();
    const r = await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'PAUSED')).expect(200);
    expect(r.body.templates).toMatchObject({ updated: 0, unknownAccounts: 1 });
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED' });

    const signed = await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'DISABLED'), { secret: own }).expect(200);
    expect(signed.body.templates).toMatchObject({ updated: 1 });
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'DISABLED' });
    // that secret reaches only its own channels: a body it signs naming another account changes nothing there
    const both = stack.graph.templateStatusEvent(t.wabaId, 'follow_up', 'en', 'PAUSED') as { entry: unknown[] };
    both.entry.push(...(stack.graph.templateStatusEvent(plain.wabaId, 'follow_up', 'en', 'PAUSED') as { entry: unknown[] }).entry);
    const mixed = await postWebhook(stack, both, { secret: own }).expect(200);
    expect(mixed.body.templates).toMatchObject({ changes: 2, updated: 1, unknownAccounts: 1 });
    expect(await templateOf(plain, 'follow_up', 'en')).toMatchObject({ status: 'APPROVED' });
    // any other secret: refused
    await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'APPROVED'), { secret: 'some-other-secret-123' }).expect(401);
    // a body naming more accounts than any real one does is not looked up: refused, even by the right secret
    const many = stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'APPROVED') as { entry: { id: string }[] };
    for (let i = 0; i < 101; i += 1) many.entry.push({ ...many.entry[0]!, id: randomWabaId() });
    await postWebhook(stack, many, { secret: own }).expect(401);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'DISABLED' });
  });
});

describe('sending a template', () => {
  async function activeLead(t: TenantFixture) {
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi there')).expect(200);
    const lead = await waitFor(async () => (await stack.api.get('/v1/leads').set(auth(t))).body.items.find((l: { contactId: string }) => l.contactId === from), { what: 'lead' });
    await waitFor(async () => (await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from)))?.counters.turns === 1, { what: 'first turn' });
    return { from, lead };
  }

  test('only an APPROVED template, with header, body and button parameters that fit its components, reaches Meta', async () => {
    const t = await syncedTenant();
    const { from, lead } = await activeLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    const send = (template: Record<string, unknown>) => stack.api.post(`/v1/leads/${lead.id}/messages`).set(auth(t)).send({ template });
    const order = { name: 'order_update', language: 'en_US' };

    const refusals: [Record<string, unknown>, string][] = [
      [{ ...order, variables: ['Priya', 'Monday'], buttons: [{ index: 0, value: 'abc' }] }, 'the header takes 1 text parameter'],
      [{ ...order, header: { text: '#123' }, variables: ['Priya'], buttons: [{ index: 0, value: 'abc' }] }, 'the body takes 2 variable(s), got 1'],
      [{ ...order, header: { text: '#123' }, variables: ['Priya', 'Monday'] }, 'button 0 (URL) needs a value'],
      [{ ...order, header: { text: '#123' }, variables: ['Priya', 'Monday'], buttons: [{ index: 0, value: 'abc' }, { index: 1, value: 'x' }] }, 'button 1 (PHONE_NUMBER) takes no parameter'],
      [{ ...order, header: { media: { link: 'https://cdn.example/a.png' } }, variables: ['Priya', 'Monday'], buttons: [{ index: 0, value: 'abc' }] }, 'the header takes 1 text parameter'],
      [{ name: 'summer_sale', language: 'en_US', buttons: [{ index: 0, value: 'SAVE30' }] }, 'the header is IMAGE: give header.media'],
      [{ name: 'summer_sale', language: 'en_US', header: { media: { id: '12345' } } }, 'button 0 (COPY_CODE) needs a value'],
      [{ name: 'login_code', language: 'en_US', variables: ['123456'], buttons: [{ index: 0, value: '123456' }] }, 'is REJECTED, not APPROVED (INVALID_FORMAT)'],
      [{ name: 'follow_up', language: 'fr', variables: ['Priya'] }, 'is not registered'],
    ];
    for (const [template, reason] of refusals) {
      const r = await send(template).expect(502);
      expect(r.body.error.message).toContain(reason);
    }
    expect(sentTo(from)).toHaveLength(1); // nothing reached Meta
    // the edge refuses a header with two kinds of parameter
    await send({ ...order, header: { text: 'x', media: { id: '1' } }, variables: ['a', 'b'] }).expect(400);

    await send({ ...order, header: { text: '#123' }, variables: ['Priya', 'Monday'], buttons: [{ index: 0, value: 'abc' }] }).expect(201);
    await send({ name: 'summer_sale', language: 'en_US', header: { media: { link: 'https://cdn.example/sale.png' } }, buttons: [{ index: 0, value: 'SAVE30' }, { index: 1, value: 'no-thanks' }] }).expect(201);
    const [orderSent, saleSent] = sentTo(from).slice(1).map((r) => (r.body as { template: unknown }).template);
    expect(orderSent).toEqual({
      name: 'order_update',
      language: { code: 'en_US' },
      components: [
        { type: 'header', parameters: [{ type: 'text', text: '#123' }] },
        { type: 'body', parameters: [{ type: 'text', text: 'Priya' }, { type: 'text', text: 'Monday' }] },
        { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'abc' }] },
      ],
    });
    expect(saleSent).toEqual({
      name: 'summer_sale',
      language: { code: 'en_US' },
      components: [
        { type: 'header', parameters: [{ type: 'image', image: { link: 'https://cdn.example/sale.png' } }] },
        { type: 'button', sub_type: 'copy_code', index: '0', parameters: [{ type: 'coupon_code', coupon_code: 'SAVE30' }] },
        { type: 'button', sub_type: 'quick_reply', index: '1', parameters: [{ type: 'payload', payload: 'no-thanks' }] },
      ],
    });
    const msgs = await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200);
    expect(msgs.body.items.map((m: { body: string }) => m.body)).toContain('Order #123\nHi Priya, your order ships on Monday.\nAcme Shop');

    // paused by Meta: refused before the call
    await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'order_update', 'en_US', 'PAUSED')).expect(200);
    const r = await send({ ...order, header: { text: '#123' }, variables: ['Priya', 'Monday'], buttons: [{ index: 0, value: 'abc' }] }).expect(502);
    expect(r.body.error.message).toContain('is PAUSED, not APPROVED');
    expect(sentTo(from)).toHaveLength(3);
  });

  test('a template paused by Meta before its sequence step is due: the step is skipped and recorded, the sequence goes on', async () => {
    const t = await syncedTenant();
    const seq = await stack.api
      .post('/v1/sequences')
      .set(auth(t))
      .send({
        name: 'Paused template',
        steps: [
          { delayMs: 2500, kind: 'template', template: { name: 'follow_up', language: 'en', variables: ['Priya'] } },
          { delayMs: 500, kind: 'text', text: 'Still there?' },
        ],
      })
      .expect(201);
    const { from, lead } = await activeLead(t);
    await waitFor(() => sentTo(from).length === 1, { what: 'AI reply' });
    await stack.api.post(`/v1/leads/${lead.id}/sequence/enroll`).set(auth(t)).send({ sequenceId: seq.body.id }).expect(200);
    await postWebhook(stack, stack.graph.templateStatusEvent(t.wabaId, 'follow_up', 'en', 'PAUSED', 'Low quality')).expect(200);

    const sends = await waitFor(() => (sentTo(from).length === 2 ? sentTo(from) : undefined), { what: 'step 2', timeoutMs: 30_000 });
    expect((sends[1]!.body as { type: string; text?: { body: string } }).text?.body).toBe('Still there?');
    expect(sends.some((s) => (s.body as { type: string }).type === 'template')).toBe(false);
    type Ev = { type: string; data: Record<string, unknown> };
    // the step's event is written right after its send
    const events = await waitFor(async () => {
      const evs = (await stack.api.get(`/v1/leads/${lead.id}`).set(auth(t)).expect(200)).body.events as Ev[];
      return evs.some((e) => e.type === 'sequence_step' && e.data.stepIndex === 1) ? evs : undefined;
    }, { what: 'step 2 recorded' });
    expect(events.find((e) => e.type === 'reply_failed')?.data).toMatchObject({ type: 'template_not_approved', purpose: 'sequence step 1' });
    expect(events.filter((e) => e.type === 'sequence_step').map((e) => e.data)).toEqual(
      expect.arrayContaining([expect.objectContaining({ stepIndex: 0, status: 'failed' }), expect.objectContaining({ stepIndex: 1, status: 'sent' })]),
    );
    // the credit of the skipped step was released: one AI reply and one text step charged
    expect((await stack.api.get('/v1/credits').set(auth(t)).expect(200)).body.balance).toBe(18);
  });
});

describe('PATCH and DELETE /v1/templates/:templateId', () => {
  test('a local template changes; a synced one is Meta\'s (409); tenant scoped; strict bodies', async () => {
    const t = await syncedTenant();
    const other = await createTenant(stack);
    const local = await stack.api.post('/v1/templates').set(auth(t)).send({ name: 'local_one', language: 'en', category: 'utility', body: 'Hi {{1}}', approved: false }).expect(201);
    expect(local.body).toMatchObject({ source: 'local', status: 'PENDING', approved: false, variables: 1 });

    const patched = await stack.api.patch(`/v1/templates/${local.body.id}`).set(auth(t)).send({ body: 'Hi {{1}}, see you {{2}}', approved: true }).expect(200);
    expect(patched.body).toMatchObject({ body: 'Hi {{1}}, see you {{2}}', approved: true, status: 'APPROVED', variables: 2 });
    await stack.api.patch(`/v1/templates/${local.body.id}`).set(auth(other)).send({ approved: false }).expect(404);
    await stack.api.patch(`/v1/templates/${local.body.id}`).set(auth(t)).send({}).expect(400);
    await stack.api.patch(`/v1/templates/${local.body.id}`).set(auth(t)).send({ status: 'APPROVED' }).expect(400);
    await stack.api.patch('/v1/templates/nope').set(auth(t)).send({ approved: true }).expect(400);

    const synced = await templateOf(t, 'order_update', 'en_US');
    expect((await stack.api.get(`/v1/templates/${synced.id}`).set(auth(t)).expect(200)).body).toEqual(synced);
    await stack.api.get(`/v1/templates/${synced.id}`).set(auth(other)).expect(404);
    const conflict = await stack.api.patch(`/v1/templates/${synced.id}`).set(auth(t)).send({ approved: true }).expect(409);
    expect(conflict.body.error.code).toBe('synced_template');

    await stack.api.delete(`/v1/templates/${local.body.id}`).set(auth(other)).expect(404);
    await stack.api.delete(`/v1/templates/${local.body.id}`).set(auth(t)).expect(200);
    await stack.api.delete(`/v1/templates/${local.body.id}`).set(auth(t)).expect(404);
    await stack.api.delete(`/v1/templates/${synced.id}`).set(auth(t)).expect(200);
    expect((await templatesOf(t)).map((i) => i.name)).not.toContain('local_one');
    expect((await templatesOf(t)).find((i) => i.name === 'order_update')).toBeUndefined();
    // a synced template comes back with the next sync while Meta lists it
    await stack.api.post(`/v1/channels/${t.channelId}/templates/sync`).set(auth(t)).expect(200);
    expect(await templateOf(t, 'order_update', 'en_US')).toMatchObject({ status: 'APPROVED' });
    // admin token is not a tenant key
    await stack.api.delete(`/v1/templates/${synced.id}`).set('authorization', `Bearer ${ADMIN_TOKEN}`).expect(401);
  });
});
