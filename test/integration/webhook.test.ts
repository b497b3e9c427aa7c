/**
 * The WhatsApp webhook against a whole stack: Meta's handshake, signatures (deployment and
 * per-channel secrets), every recorded Meta payload, malformed and hostile bodies, and a
 * canary that no secret used here ever reaches a log line.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { signMetaBody } from '../../lib/crypto';
import {
  ADMIN_TOKEN,
  APP_SECRET,
  VERIFY_TOKEN,
  createTenant,
  postWebhook,
  randomPhoneNumberId,
  randomWaId,
  startStack,
  textWebhook,
  waitFor,
  type Stack,
  type TenantFixture,
} from '../support/stack';

jest.setTimeout(120_000);

interface Fixture {
  name: string;
  kind: 'whatsapp' | 'instagram' | 'malformed';
  expect: { inbound: number; statuses: number; ignored: number; valid: boolean };
  body: unknown;
}
const fixtures: Fixture[] = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/meta-webhooks.json'), 'utf8'));
const whatsappFixtures = fixtures.filter((f) => f.kind === 'whatsapp');
const FIXTURE_TENANT_NAME = 'webhook.test.ts fixtures';

function phoneNumberIdsIn(body: unknown): string[] {
  const ids = new Set<string>();
  for (const e of (body as { entry?: { changes?: { value?: { metadata?: { phone_number_id?: string } } }[] }[] }).entry ?? []) {
    for (const c of e.changes ?? []) if (c.value?.metadata?.phone_number_id) ids.add(c.value.metadata.phone_number_id);
  }
  return [...ids];
}
const fixturePhoneNumberIds = [...new Set(whatsappFixtures.flatMap((f) => phoneNumberIdsIn(f.body)))];

/** Every secret handed to the stack in this file, for the canary at the end. */
const secretsUsed = new Set<string>([APP_SECRET, ADMIN_TOKEN, VERIFY_TOKEN]);

let stack: Stack;
/** One tenant owns every phone_number_id the recorded fixtures use. */
let fixtureTenant: { tenantId: string; apiKey: string; agentId: string };

beforeAll(async () => {
  stack = await startStack();
  secretsUsed.add(stack.config.OPENAI_API_KEY!).add(stack.config.PARLEY_ENCRYPTION_KEY!);
  // A persistent PostgreSQL keeps the fixtures' channels from an earlier run of this file: drop them.
  await stack.core.database.db.execute(sql`
    delete from tenants
    where name = ${FIXTURE_TENANT_NAME}
      and id in (select tenant_id from channel_accounts where platform = 'whatsapp' and phone_number_id in (${sql.join(
        fixturePhoneNumberIds.map((id) => sql`${id}`),
        sql`, `,
      )}))`);
  const t = await stack.api.post('/v1/tenants').set('authorization', `Bearer ${ADMIN_TOKEN}`).send({ name: FIXTURE_TENANT_NAME }).expect(201);
  const agent = await stack.api
    .post('/v1/agents')
    .set('authorization', `Bearer ${t.body.apiKey}`)
    .send({ name: 'Fixture bot', systemPrompt: 'You answer recorded webhooks.', model: 'gpt-4o-mini' })
    .expect(201);
  fixtureTenant = { tenantId: t.body.id, apiKey: t.body.apiKey, agentId: agent.body.id };
  secretsUsed.add(t.body.apiKey);
  for (const phoneNumberId of fixturePhoneNumberIds) {
    await addChannel(fixtureTenant, { phoneNumberId });
  }
});
afterAll(async () => {
  await stack?.stop();
});

async function tenant(opts: Parameters<typeof createTenant>[1] = {}): Promise<TenantFixture> {
  const t = await createTenant(stack, opts);
  secretsUsed.add(t.apiKey).add(t.accessToken);
  if (opts.appSecret) secretsUsed.add(opts.appSecret);
  return t;
}

/** Register a WhatsApp channel for a tenant, with known secrets. */
async function addChannel(t: { apiKey: string; agentId: string }, opts: { phoneNumberId?: string; appSecret?: string; verifyToken?: string } = {}) {
  const phoneNumberId = opts.phoneNumberId ?? randomPhoneNumberId();
  const accessToken = `EAAG${randomBytes(16).toString('hex')}`;
  const verifyToken = opts.verifyToken ?? `verify-${randomBytes(8).toString('hex')}`;
  secretsUsed.add(accessToken).add(verifyToken);
  if (opts.appSecret) secretsUsed.add(opts.appSecret);
  const r = await stack.api
    .post('/v1/channels')
    .set('authorization', `Bearer ${t.apiKey}`)
    .send({ platform: 'whatsapp', phoneNumberId, accessToken, verifyToken, agentId: t.agentId, ...(opts.appSecret ? { appSecret: opts.appSecret } : {}) })
    .expect(201);
  return { id: r.body.id as string, phoneNumberId, accessToken, verifyToken };
}

async function leadsOf(apiKey: string): Promise<{ id: string; contactId: string; channelAccountId: string }[]> {
  const r = await stack.api.get('/v1/leads?limit=200').set('authorization', `Bearer ${apiKey}`).expect(200);
  return r.body.items;
}

/** True when the lead workflow exists in Temporal (the webhook's only side effect). */
async function workflowExists(channelAccountId: string, contactId: string): Promise<boolean> {
  return (await stack.temporal.leadState(stack.leadWorkflowId(channelAccountId, contactId))) !== undefined;
}

function handshake(query: Record<string, string | string[]>) {
  return stack.api.get('/webhooks/whatsapp').query(query);
}

function postRaw(raw: string | Buffer, signature?: string) {
  const req = stack.api.post('/webhooks/whatsapp').set('content-type', 'application/json');
  if (signature !== undefined) req.set('x-hub-signature-256', signature);
  // superagent would JSON-serialize a Buffer sent as application/json: send its bytes as they are
  if (Buffer.isBuffer(raw)) req.serialize((b: Buffer) => b as unknown as string);
  return req.send(raw);
}

describe('subscription handshake', () => {
  test('the deployment verify token echoes the challenge as plain text', async () => {
    const r = await handshake({ 'hub.mode': 'subscribe', 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': '1158201444' }).expect(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.text).toBe('1158201444');
  });

  test('a registered channel\'s verify token is accepted too', async () => {
    const t = await tenant();
    const channel = await addChannel(t, { verifyToken: `chan-verify-${randomBytes(6).toString('hex')}` });
    const r = await handshake({ 'hub.mode': 'subscribe', 'hub.verify_token': channel.verifyToken, 'hub.challenge': 'abc-123' }).expect(200);
    expect(r.text).toBe('abc-123');
  });

  test('a wrong token, a wrong mode or a missing part is a 403', async () => {
    const cases: Record<string, string | string[]>[] = [
      { 'hub.mode': 'subscribe', 'hub.verify_token': 'not-the-token', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': `${VERIFY_TOKEN}x`, 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': '', 'hub.challenge': '1' },
      { 'hub.mode': 'unsubscribe', 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': '1' },
      { 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.challenge': '1' },
      { 'hub.mode': 'subscribe', 'hub.verify_token': VERIFY_TOKEN },
      { 'hub.mode': 'subscribe', 'hub.verify_token': [VERIFY_TOKEN, 'other'], 'hub.challenge': '1' },
      {},
    ];
    for (const query of cases) {
      const r = await handshake(query);
      expect([query, r.status]).toEqual([query, 403]);
      expect(r.text).not.toContain('1158201444');
    }
  });
});

describe('signatures', () => {
  test('no signature, or a wrong one, is a 401 and nothing reaches Temporal or the database', async () => {
    const t = await tenant({ credits: 1 });
    const from = randomWaId();
    const body = textWebhook(t.phoneNumberId, from, 'forged message');
    const raw = JSON.stringify(body);
    const signatures: (string | undefined)[] = [
      undefined,
      '',
      signMetaBody(raw, 'some-other-secret'),
      signMetaBody(`${raw} `, APP_SECRET),
      signMetaBody(raw, APP_SECRET).replace('sha256=', 'sha1='),
      signMetaBody(raw, APP_SECRET).slice(0, -2),
      'sha256=',
      'sha256=zz',
      `sha256=${'0'.repeat(64)}`,
    ];
    for (const sig of signatures) {
      const r = await postRaw(raw, sig);
      expect([sig, r.status]).toEqual([sig, 401]);
      expect(r.body.error.code).toBe('invalid_signature');
    }
    // the webhook answers only after signalWithStart returned, so a leak would already be visible
    expect(await workflowExists(t.channelId, from)).toBe(false);
    // the same body, signed right, does get through (the test above could have failed)
    const other = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, other, 'genuine message')).expect(200);
    await waitFor(async () => (await leadsOf(t.apiKey)).some((l) => l.contactId === other), { what: 'genuine lead' });
    expect((await leadsOf(t.apiKey)).map((l) => l.contactId)).toEqual([other]);
    expect(await workflowExists(t.channelId, from)).toBe(false);
    const stored = await stack.core.database.db.execute(sql`select count(*)::int as n from messages where body = 'forged message'`);
    expect(JSON.stringify(stored)).toContain('"n":0');
  });

  test('a channel\'s own app secret signs its webhooks, and the deployment secret no longer does', async () => {
    const t = await tenant();
    const ownSecret = `own-app-secret-${randomBytes(8).toString('hex')}`;
    const channel = await addChannel(t, { appSecret: ownSecret });
    const rejected = randomWaId();
    const accepted = randomWaId();

    await postWebhook(stack, textWebhook(channel.phoneNumberId, rejected, 'signed by the deployment')).expect(401);
    expect(await workflowExists(channel.id, rejected)).toBe(false);

    const ok = await postWebhook(stack, textWebhook(channel.phoneNumberId, accepted, 'signed by the channel'), { secret: ownSecret }).expect(200);
    expect(ok.body).toMatchObject({ received: 1, unknownChannels: 0 });
    await waitFor(async () => (await leadsOf(t.apiKey)).some((l) => l.contactId === accepted && l.channelAccountId === channel.id), { what: 'lead on own-secret channel' });
    expect(await workflowExists(channel.id, rejected)).toBe(false);

    // the channel's secret does not sign for channels on the deployment secret
    const elsewhere = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, elsewhere, 'wrong secret for this channel'), { secret: ownSecret }).expect(401);
    expect(await workflowExists(t.channelId, elsewhere)).toBe(false);
  });

  test('a batch mixing a deployment channel and an own-secret channel cannot pass with either secret', async () => {
    const t = await tenant();
    const ownSecret = `own-app-secret-${randomBytes(8).toString('hex')}`;
    const channel = await addChannel(t, { appSecret: ownSecret });
    const a = textWebhook(t.phoneNumberId, randomWaId(), 'to the deployment channel');
    const b = textWebhook(channel.phoneNumberId, randomWaId(), 'to the own-secret channel');
    const mixed = { ...a, entry: [...a.entry, ...b.entry] };
    await postWebhook(stack, mixed).expect(401);
    await postWebhook(stack, mixed, { secret: ownSecret }).expect(401);
    const from = b.entry[0]!.changes[0]!.value.contacts[0]!.wa_id;
    expect(await workflowExists(channel.id, from)).toBe(false);
  });

  test('an own-secret channel cannot be reached by burying its change deep in a batch signed with the deployment secret', async () => {
    const t = await tenant();
    const ownSecret = `own-app-secret-${randomBytes(8).toString('hex')}`;
    const channel = await addChannel(t, { appSecret: ownSecret });
    const filler = (i: number) => ({
      id: String(i),
      changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: randomPhoneNumberId() }, statuses: [] } }],
    });
    // past the entries the signature check looks at
    const fromA = randomWaId();
    const deepEntries = textWebhook(channel.phoneNumberId, fromA, 'smuggled past the per-channel secret');
    const bodyA = { object: 'whatsapp_business_account', entry: [...Array.from({ length: 120 }, (_, i) => filler(i)), ...deepEntries.entry] };
    const rA = await postWebhook(stack, bodyA);
    expect(rA.status).toBe(401);
    expect(await workflowExists(channel.id, fromA)).toBe(false);

    // past the changes of one entry the signature check looks at
    const fromB = randomWaId();
    const deepChange = textWebhook(channel.phoneNumberId, fromB, 'smuggled in change 120').entry[0]!.changes[0]!;
    const bodyB = {
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [...Array.from({ length: 120 }, (_, i) => filler(i).changes[0]!), deepChange] }],
    };
    const rB = await postWebhook(stack, bodyB);
    expect(rB.status).toBe(401);
    expect(await workflowExists(channel.id, fromB)).toBe(false);

    // the depth itself is fine: the same deep body for a channel on the deployment secret gets through
    const fromC = randomWaId();
    const deepOk = textWebhook(t.phoneNumberId, fromC, 'deep but properly signed').entry[0]!.changes[0]!;
    const bodyC = {
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [...Array.from({ length: 120 }, (_, i) => filler(i).changes[0]!), deepOk] }],
    };
    const ok = await postWebhook(stack, bodyC).expect(200);
    expect(ok.body).toMatchObject({ received: 1, unknownChannels: 120 });
    expect(await workflowExists(t.channelId, fromC)).toBe(true);
  });
});

describe('bodies', () => {
  test('invalid JSON, signed, is a 400 with a reason', async () => {
    for (const raw of ['{"object": "whatsapp_business_account", "entry": [', '', 'not json', '{\'a\': 1}']) {
      const r = await postWebhook(stack, undefined, { raw });
      expect([raw, r.status]).toEqual([raw, 400]);
      expect(r.body.error.code).toBe('invalid_json');
      expect(r.body.error.message).toEqual(expect.stringContaining('JSON'));
    }
  });

  test.each(whatsappFixtures.map((f) => [f.name, f] as const))('recorded payload %s is accepted as expected', async (_name, fixture) => {
    const r = await postWebhook(stack, fixture.body);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ received: fixture.expect.inbound, statuses: fixture.expect.statuses, ignored: fixture.expect.ignored, unknownChannels: 0 });
  });

  test('the recorded inbound messages reach their leads', async () => {
    const contacts = new Set<string>();
    for (const f of whatsappFixtures.filter((x) => x.expect.inbound > 0)) {
      await postWebhook(stack, f.body).expect(200);
      for (const e of (f.body as { entry: { changes: { value: { messages?: { from: string }[] } }[] }[] }).entry) {
        for (const c of e.changes) for (const m of c.value.messages ?? []) contacts.add(m.from);
      }
    }
    const leads = await waitFor(
      async () => {
        const items = await leadsOf(fixtureTenant.apiKey);
        return [...contacts].every((c) => items.some((l) => l.contactId === c)) ? items : undefined;
      },
      { what: 'fixture leads' },
    );
    expect(new Set(leads.map((l) => l.contactId))).toEqual(contacts);
  });

  test.each(fixtures.filter((f) => f.kind === 'malformed').map((f) => [f.name, f] as const))('malformed payload %s is a 4xx with a reason', async (_name, fixture) => {
    const r = await postWebhook(stack, fixture.body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.error.message).toEqual(expect.any(String));
    expect(r.body.error.message.length).toBeGreaterThan(0);
  });

  test.each(fixtures.filter((f) => f.kind === 'instagram').map((f) => [f.name, f] as const))('Instagram payload %s on the WhatsApp endpoint is a 400', async (_name, fixture) => {
    const r = await postWebhook(stack, fixture.body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_payload');
  });

  test('an unknown phone_number_id is acknowledged, dropped and logged as a warning', async () => {
    const phoneNumberId = randomPhoneNumberId();
    const r = await postWebhook(stack, textWebhook(phoneNumberId, randomWaId(), 'nobody owns this number')).expect(200);
    expect(r.body).toEqual({ received: 0, statuses: 0, ignored: 0, unknownChannels: 1 });
    const warning = stack.logLines.map((l) => JSON.parse(l) as { level: number; msg: string; phoneNumberId?: string }).find((l) => l.phoneNumberId === phoneNumberId);
    expect(warning).toMatchObject({ level: 40 });
    expect(warning!.msg).toMatch(/unknown phone_number_id/);
  });

  test('a body over the limit is a 413; one just under it is read', async () => {
    const pad = (size: number) => {
      const body = textWebhook(randomPhoneNumberId(), randomWaId(), 'padded');
      return JSON.stringify({ ...body, padding: 'x'.repeat(size) });
    };
    const big = pad(4 * 1024 * 1024);
    const r = await postWebhook(stack, undefined, { raw: big });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('payload_too_large');

    const underLimit = pad(2.5 * 1024 * 1024);
    const ok = await postWebhook(stack, undefined, { raw: underLimit }).expect(200);
    expect(ok.body).toMatchObject({ unknownChannels: 1 });
  });

  test('one broken message in a batch is ignored and its valid sibling reaches its lead', async () => {
    const t = await tenant();
    const good = randomWaId();
    const bad = randomWaId();
    const body = textWebhook(t.phoneNumberId, good, 'the valid one');
    const value = body.entry[0]!.changes[0]!.value;
    value.contacts.push({ profile: { name: 'Broken' }, wa_id: bad });
    (value.messages as unknown[]).unshift({ from: bad, id: `wamid.BROKEN${randomBytes(6).toString('hex')}`, type: 'text', text: { body: 'no timestamp' } });
    const r = await postWebhook(stack, body).expect(200);
    expect(r.body).toEqual({ received: 1, statuses: 0, ignored: 1, unknownChannels: 0 });
    const leads = await waitFor(async () => {
      const items = await leadsOf(t.apiKey);
      return items.some((l) => l.contactId === good) ? items : undefined;
    }, { what: 'valid sibling lead' });
    expect(leads.map((l) => l.contactId)).toEqual([good]);
    expect(await workflowExists(t.channelId, bad)).toBe(false);
    expect(stack.logLines.some((l) => l.includes('webhook items ignored') && l.includes('messages[0]'))).toBe(true);
  });

  test('random bytes, signed, are a 400 and never a 5xx', async () => {
    for (let i = 0; i < 50; i++) {
      const raw = randomBytes(randomInt(1, 4096));
      // a random buffer that happens to be JSON would still be no webhook: 400 either way
      const r = await postRaw(raw, signMetaBody(raw, APP_SECRET));
      expect([i, r.status]).toEqual([i, 400]);
      expect(r.body.error).toBeDefined();
    }
  });

  test('hostile but well-formed JSON, signed, never gets a 5xx', async () => {
    const known = fixturePhoneNumberIds[0]!;
    const value = (extra: Record<string, unknown>) => ({ messaging_product: 'whatsapp', metadata: { phone_number_id: known }, ...extra });
    const wrap = (v: unknown) => ({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value: v }] }] });
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const bodies: string[] = [
      'null',
      '0',
      '"whatsapp_business_account"',
      '[]',
      '{}',
      JSON.stringify({ object: 'whatsapp_business_account', entry: [] }),
      JSON.stringify({ object: 'whatsapp_business_account', entry: [null, 1, 'x', []] }),
      JSON.stringify({ object: 'whatsapp_business_account', entry: [{ changes: [null, 1, { field: 7 }, { field: 'messages' }] }] }),
      JSON.stringify({ object: 'whatsapp_business_account', entry: 'nope' }),
      JSON.stringify(wrap(null)),
      JSON.stringify(wrap(value({ metadata: { phone_number_id: 12345 } }))),
      JSON.stringify(wrap(value({ messages: 'not an array', statuses: {} }))),
      JSON.stringify(wrap(value({ messages: [null, 1, 'x', [], {}, { from: {}, id: [], timestamp: 1, type: null }] }))),
      JSON.stringify(wrap(value({ messages: [{ from: '1', id: `wamid.X${randomBytes(6).toString('hex')}`, timestamp: '99999999999999999999', type: 'text', text: { body: 'far future' } }] }))),
      JSON.stringify(wrap(value({ messages: [{ from: '1', id: `wamid.X${randomBytes(6).toString('hex')}`, timestamp: '1760172000', type: 'text', text: { body: 7 } }] }))),
      JSON.stringify(wrap(value({ statuses: [null, { id: 'wamid.none', status: 'read' }, { id: 5, status: {}, timestamp: 'x' }] }))),
      JSON.stringify(wrap(value({ contacts: 'x', messages: [{ from: '1', id: `wamid.X${randomBytes(6).toString('hex')}`, timestamp: '1760172000', type: 'sticker' }] }))),
      `{"__proto__": {"polluted": true}, "object": "whatsapp_business_account", "entry": [{"__proto__": null, "changes": []}]}`,
      `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "${known}"}, "messages": [{"from": "1", "id": "wamid.D${randomBytes(6).toString('hex')}", "timestamp": "1760172000", "type": "text", "text": {"body": "deep"}, "extra": ${deep(2000)}}]}}]}]}`,
      deep(100_000),
      `{"object": "whatsapp_business_account", "entry": [${'{"changes": []},'.repeat(10_000)}{"changes": []}]}`,
    ];
    for (const raw of bodies) {
      const r = await postRaw(raw, signMetaBody(raw, APP_SECRET));
      const label = raw.slice(0, 80);
      expect([label, r.status < 500]).toEqual([label, true]);
      expect([label, [200, 400, 413]]).toEqual([label, expect.arrayContaining([r.status])]);
    }
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });
});

describe('secrets in logs', () => {
  // Runs last in this file on purpose: it checks every line the tests above produced.
  test('no secret used in this file appears in any log line', async () => {
    // make sure the rejection paths have logged at least once
    await postRaw('{}', signMetaBody('{}', 'wrong-secret')).expect(401);
    await handshake({ 'hub.mode': 'subscribe', 'hub.verify_token': 'unknown-token', 'hub.challenge': '1' }).expect(403);
    expect(stack.logLines.length).toBeGreaterThan(0);
    const secrets = [...secretsUsed].filter((s) => s.length >= 8);
    const leaks = stack.logLines.filter((line) => secrets.some((s) => line.includes(s)));
    expect(leaks).toEqual([]);
  });

  test('every log line names its module once (a router has its own logger, not a child of the API logger)', () => {
    const webhookLines = stack.logLines.filter((l) => l.includes('"module":"webhook.whatsapp"') || l.includes('"module":"auth-guard"'));
    expect(webhookLines.length).toBeGreaterThan(0);
    const twice = stack.logLines.filter((l) => (l.match(/"module":/g) ?? []).length > 1);
    expect(twice).toEqual([]);
  });
});
