/**
 * Finding leads and messages through the tenant API: the lead list's filters, a lead's events
 * page by page, and the tenant's messages across leads.
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { leads } from '../../db/schema';
import { createTenant, postWebhook, randomWaId, bearer, stackPerFile, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});


async function leadFrom(t: TenantFixture, from: string, text: string, name: string): Promise<{ id: string; contactId: string }> {
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, text, { name })).expect(200);
  return waitFor(
    async () => {
      const r = await stack.api.get('/v1/leads?limit=200').set(bearer(t.apiKey)).expect(200);
      return (r.body.items as { id: string; contactId: string }[]).find((l) => l.contactId === from);
    },
    { what: `lead ${from}` },
  );
}

const ids = (body: { items: { id: string }[] }) => body.items.map((i) => i.id).sort();

describe('lead list filters, events and tenant-wide messages', () => {
  let t: TenantFixture;
  let other: TenantFixture;
  let priya: { id: string; contactId: string };
  let rahul: { id: string; contactId: string };
  let maria: { id: string; contactId: string };
  const since = new Date(Date.now() - 1000).toISOString();

  beforeAll(async () => {
    t = await createTenant(stack, { credits: 20 });
    other = await createTenant(stack, { credits: 5 });
    priya = await leadFrom(t, `91987${randomWaId().slice(-7)}`, 'Price for 20 seats?', 'Priya Sharma');
    rahul = await leadFrom(t, `91912${randomWaId().slice(-7)}`, 'Do you integrate with Zoho?', 'Rahul_Verma');
    // a number outside the 919… prefixes the q= phone filters look for (randomWaId() may start with 919)
    maria = await leadFrom(t, `34${randomWaId().slice(-9)}`, 'Hola, información por favor', 'María López');
    await leadFrom(other, priya.contactId, 'Same number, other business', 'Priya Sharma');
    // each first message is answered before the stage and mode change
    await waitFor(
      async () => {
        const r = await stack.api.get('/v1/messages?direction=outbound&limit=200').set(bearer(t.apiKey)).expect(200);
        return r.body.items.length >= 3 || undefined;
      },
      { what: 'three replies' },
    );
    await stack.api.post(`/v1/leads/${priya.id}/stage`).set(bearer(t.apiKey)).send({ stage: 'Qualified' }).expect(200);
    await stack.api.post(`/v1/leads/${rahul.id}/handoff`).set(bearer(t.apiKey)).send({}).expect(200);
    await stack.core.database.db.update(leads).set({ score: 80 }).where(eq(leads.id, priya.id));
    await stack.core.database.db.update(leads).set({ score: 30 }).where(eq(leads.id, maria.id));
  });

  test('each filter narrows the list, filters combine, and another tenant never shows', async () => {
    const get = async (q: string) => (await stack.api.get(`/v1/leads?${q}`).set(bearer(t.apiKey)).expect(200)).body;
    expect(ids(await get('limit=200'))).toEqual([priya.id, rahul.id, maria.id].sort());
    expect(ids(await get('stage=Qualified'))).toEqual([priya.id]);
    expect(ids(await get('mode=human'))).toEqual([rahul.id]);
    expect(ids(await get('mode=ai'))).toEqual([priya.id, maria.id].sort());
    expect(ids(await get('minScore=50'))).toEqual([priya.id]);
    expect(ids(await get('minScore=10'))).toEqual([priya.id, maria.id].sort());
    expect(ids(await get('needsAttention=true'))).toEqual([rahul.id]);
    expect(ids(await get('needsAttention=false'))).toEqual([priya.id, maria.id].sort());
    expect(ids(await get(`channelId=${t.channelId}&limit=200`))).toHaveLength(3);
    expect(ids(await get(`channelId=${other.channelId}`))).toEqual([]);
    expect(ids(await get(`updatedSince=${encodeURIComponent(since)}&limit=200`))).toHaveLength(3);
    expect(ids(await get(`updatedSince=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`))).toEqual([]);
    // q: a name prefix in any case (accents as written), a phone prefix, a username prefix
    expect(ids(await get('q=priya'))).toEqual([priya.id]);
    expect(ids(await get(`q=${encodeURIComponent('MARÍA')}`))).toEqual([maria.id]);
    expect(ids(await get('q=91912'))).toEqual([rahul.id]);
    expect(ids(await get('q=9191'))).toEqual([rahul.id]);
    expect(ids(await get('q=919'))).toEqual([priya.id, rahul.id].sort());
    // LIKE wildcards are literal: "_" matches only an underscore
    expect(ids(await get('q=Rahul_'))).toEqual([rahul.id]);
    expect(ids(await get('q=Priya_'))).toEqual([]);
    expect(ids(await get('q=%25'))).toEqual([]);
    // combined
    expect(ids(await get('q=91&stage=Qualified&minScore=50'))).toEqual([priya.id]);
    expect(ids(await get('q=91&stage=Qualified&mode=human'))).toEqual([]);
    // paging keeps the filter
    const page1 = await get('mode=ai&limit=1');
    const page2 = await get(`mode=ai&limit=1&cursor=${page1.nextCursor}`);
    expect([...ids(page1), ...ids(page2)].sort()).toEqual([priya.id, maria.id].sort());
    expect(page2.nextCursor).toBeNull();
  });

  test('bad filters are a 400 naming the parameter', async () => {
    for (const [q, param] of [
      ['mode=robot', 'mode'],
      ['minScore=101', 'minScore'],
      ['minScore=abc', 'minScore'],
      ['needsAttention=yes', 'needsAttention'],
      ['updatedSince=yesterday', 'updatedSince'],
      ['channelId=not-a-uuid', 'channelId'],
      [`q=${'x'.repeat(101)}`, 'q'],
      ['score=5', ''],
    ] as const) {
      const r = await stack.api.get(`/v1/leads?${q}`).set(bearer(t.apiKey)).expect(400);
      expect(JSON.stringify(r.body.error.issues)).toContain(param);
    }
    await stack.api.get('/v1/messages?direction=sideways').set(bearer(t.apiKey)).expect(400);
    await stack.api.get('/v1/messages?since=now').set(bearer(t.apiKey)).expect(400);
  });

  test("a lead's events, newest first, page by page; another tenant's lead is a 404", async () => {
    for (const stage of ['Nurture', 'Converted']) await stack.api.post(`/v1/leads/${maria.id}/stage`).set(bearer(t.apiKey)).send({ stage }).expect(200);
    const all = await waitFor(
      async () => {
        const r = await stack.api.get(`/v1/leads/${maria.id}/events?limit=200`).set(bearer(t.apiKey)).expect(200);
        return (r.body.items as { type: string }[]).filter((e) => e.type === 'stage_changed').length === 2 ? r : undefined;
      },
      { what: 'two stage events' },
    );
    expect(all.body.items.length).toBeGreaterThanOrEqual(2);
    const seen: string[] = [];
    let cursor = '';
    for (let i = 0; i < 50; i++) {
      const page = await stack.api.get(`/v1/leads/${maria.id}/events?limit=1&cursor=${cursor}`).set(bearer(t.apiKey)).expect(200);
      seen.push(...(page.body.items as { id: string }[]).map((e) => e.id));
      if (!page.body.nextCursor) break;
      cursor = page.body.nextCursor;
    }
    expect(seen).toEqual((all.body.items as { id: string }[]).map((e) => e.id));
    await stack.api.get(`/v1/leads/${maria.id}/events`).set(bearer(other.apiKey)).expect(404);
    await stack.api.get(`/v1/leads/${randomUUID()}/events`).set(bearer(t.apiKey)).expect(404);
  });

  test('tenant-wide messages filter by direction, status and time, newest first, only this tenant', async () => {
    const inbound = await stack.api.get('/v1/messages?direction=inbound&limit=200').set(bearer(t.apiKey)).expect(200);
    const bodies = (inbound.body.items as { body: string; leadId: string }[]).map((m) => m.body);
    expect(bodies).toEqual(expect.arrayContaining(['Price for 20 seats?', 'Do you integrate with Zoho?', 'Hola, información por favor']));
    expect(bodies).not.toContain('Same number, other business');
    const times = (inbound.body.items as { createdAt: string }[]).map((m) => Date.parse(m.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const sent = await stack.api.get('/v1/messages?direction=outbound&status=sent&limit=200').set(bearer(t.apiKey)).expect(200);
    expect(sent.body.items.length).toBeGreaterThanOrEqual(3);
    for (const m of sent.body.items as { direction: string; status: string }[]) expect(m).toMatchObject({ direction: 'outbound', status: 'sent' });
    const future = await stack.api.get(`/v1/messages?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`).set(bearer(t.apiKey)).expect(200);
    expect(future.body.items).toEqual([]);
  });

  test('extract now: 202 at once, the extraction runs without waiting for the quiet period', async () => {
    const extraction = { name: 'Priya Sharma', email: null, company: 'Acme', budget: null, authority: null, need: '20 seats', timeline: null, fields: {}, summary: 'Priya asks about 20 seats.' };
    stack.llm.script([JSON.stringify(extraction)]);
    const r = await stack.api.post(`/v1/leads/${priya.id}/extract`).set(bearer(t.apiKey)).send({}).expect(202);
    expect(Date.parse(r.body.extractionDueAt)).not.toBeNaN();
    const done = await waitFor(
      async () => {
        const e = await stack.api.get(`/v1/leads/${priya.id}/extractions`).set(bearer(t.apiKey)).expect(200);
        return e.body.items.length > 0 ? e.body.items : undefined;
      },
      { what: 'the extraction' },
    );
    expect(done[0]).toMatchObject({ version: 1, data: expect.objectContaining({ company: 'Acme', need: '20 seats' }) });
    await stack.api.post(`/v1/leads/${priya.id}/extract`).set(bearer(other.apiKey)).send({}).expect(404);
    await stack.api.post(`/v1/leads/${priya.id}/extract`).set(bearer(t.apiKey)).send({ now: true }).expect(400);
  });
});
