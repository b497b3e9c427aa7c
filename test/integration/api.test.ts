/**
 * The REST API against a whole stack: authentication, validation, tenant isolation,
 * credits, pagination, health, and secrets at rest.
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Response } from 'supertest';
import { apiKeys, channelAccounts } from '../../db/schema';
import { hashApiKey } from '../../lib/crypto';
import { ADMIN_TOKEN, createTenant, postWebhook, randomPhoneNumberId, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

interface Issue {
  path: string;
  message: string;
  code: string;
}
const issuesOf = (body: { error?: { issues?: Issue[] } }): Issue[] => body.error?.issues ?? [];

/** Every secret a test handed to the API, for the log canary at the end. */
const secretsUsed = new Set<string>([ADMIN_TOKEN]);
async function tenant(opts: Parameters<typeof createTenant>[1] = {}): Promise<TenantFixture> {
  const t = await createTenant(stack, opts);
  secretsUsed.add(t.apiKey);
  secretsUsed.add(t.accessToken);
  if (opts.appSecret) secretsUsed.add(opts.appSecret);
  return t;
}

/** Send one inbound text from `from` and wait until the lead exists. */
async function leadFrom(t: TenantFixture, from: string, text = 'Hello there') {
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, text)).expect(200);
  return waitFor(
    async () => {
      const r = await stack.api.get('/v1/leads?limit=200').set(bearer(t.apiKey)).expect(200);
      return (r.body.items as { id: string; contactId: string }[]).find((l) => l.contactId === from);
    },
    { what: `lead ${from}` },
  );
}

describe('platform admin authentication', () => {
  test('missing, wrong, or tenant tokens get 401; the admin token creates a tenant', async () => {
    const missing = await stack.api.post('/v1/tenants').send({ name: 'No auth' }).expect(401);
    expect(missing.body.error.code).toBe('unauthorized');
    await stack.api.post('/v1/tenants').set(bearer('not-the-admin-token')).send({ name: 'Wrong' }).expect(401);
    await stack.api.post('/v1/tenants').set({ authorization: ADMIN_TOKEN }).send({ name: 'No scheme' }).expect(401);
    await stack.api.post('/v1/tenants').set(bearer(`${ADMIN_TOKEN}x`)).send({ name: 'Longer' }).expect(401);
    const t = await tenant();
    await stack.api.post('/v1/tenants').set(bearer(t.apiKey)).send({ name: 'Tenant key as admin' }).expect(401);
    await stack.api
      .post(`/v1/tenants/${t.tenantId}/credits`)
      .set(bearer(t.apiKey))
      .send({ amount: 1000, reference: 'self-service-topup' })
      .expect(401);

    const created = await stack.api.post('/v1/tenants').set(admin).send({ name: 'Globex', creditsPerReply: 2 }).expect(201);
    expect(created.body).toMatchObject({ name: 'Globex', creditsPerReply: 2 });
    expect(created.body.id).toEqual(expect.any(String));
    expect(created.body.apiKey).toMatch(/^pk_[A-Za-z0-9_-]{20,}$/);
    secretsUsed.add(created.body.apiKey);

    // the key works as a tenant key
    const credits = await stack.api.get('/v1/credits').set(bearer(created.body.apiKey)).expect(200);
    expect(credits.body).toEqual({ balance: 0, reserved: 0, creditsPerReply: 2 });
  });

  test('the API key is stored only as its hash', async () => {
    const created = await stack.api.post('/v1/tenants').set(admin).send({ name: 'Hashed' }).expect(201);
    const { id, apiKey } = created.body as { id: string; apiKey: string };
    secretsUsed.add(apiKey);
    const rows = await stack.core.database.db.select().from(apiKeys).where(eq(apiKeys.tenantId, id));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.keyHash).toBe(hashApiKey(apiKey));
    expect(rows[0]!.keyHash).not.toContain(apiKey);
    expect(JSON.stringify(rows)).not.toContain(apiKey);
    // the visible prefix is short enough to be useless as a credential
    expect(apiKey.startsWith(rows[0]!.prefix)).toBe(true);
    expect(rows[0]!.prefix.length).toBeLessThanOrEqual(12);
  });
});

describe('tenant authentication', () => {
  test.each(['/v1/credits', '/v1/credits/ledger', '/v1/leads', '/v1/agents', '/v1/channels', `/v1/leads/${randomUUID()}`])(
    'GET %s needs a valid tenant key',
    async (path) => {
      const none = await stack.api.get(path).expect(401);
      expect(none.body.error.code).toBe('unauthorized');
      await stack.api.get(path).set(bearer('pk_thisisnotarealkeyatall0000000000')).expect(401);
      await stack.api.get(path).set(admin).expect(401);
      await stack.api.get(path).set({ authorization: 'Basic dXNlcjpwYXNz' }).expect(401);
    },
  );

  test('POST routes need a tenant key before anything is validated or written', async () => {
    await stack.api.post('/v1/agents').send({ name: 'x', systemPrompt: 'y', model: 'z' }).expect(401);
    await stack.api.post('/v1/channels').set(bearer('pk_wrong')).send({}).expect(401);
  });
});

describe('request validation', () => {
  test('unknown fields are rejected and named (no mass assignment)', async () => {
    const t = await tenant();
    const tenantExtra = await stack.api.post('/v1/tenants').set(admin).send({ name: 'Sneaky', creditBalance: 1_000_000 }).expect(400);
    expect(tenantExtra.body.error.code).toBe('validation_failed');
    expect(issuesOf(tenantExtra.body).some((i) => i.code === 'unrecognized_keys' && i.message.includes('creditBalance'))).toBe(true);

    const agentExtra = await stack.api
      .post('/v1/agents')
      .set(bearer(t.apiKey))
      .send({ name: 'Bot', systemPrompt: 'Be nice', model: 'gpt-4o-mini', tenantId: randomUUID() })
      .expect(400);
    expect(issuesOf(agentExtra.body).some((i) => i.message.includes('tenantId'))).toBe(true);

    const channelExtra = await stack.api
      .post('/v1/channels')
      .set(bearer(t.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId: randomPhoneNumberId(), accessToken: 'EAAGxxxxxxxxxxxx', verifyToken: 'verify-123456', agentId: t.agentId, id: randomUUID() })
      .expect(400);
    expect(issuesOf(channelExtra.body).some((i) => i.message.includes('"id"'))).toBe(true);

    const topUpExtra = await stack.api
      .post(`/v1/tenants/${t.tenantId}/credits`)
      .set(admin)
      .send({ amount: 5, reference: 'extra-field', kind: 'debit' })
      .expect(400);
    expect(issuesOf(topUpExtra.body).some((i) => i.message.includes('kind'))).toBe(true);

    // nothing was applied
    const credits = await stack.api.get('/v1/credits').set(bearer(t.apiKey)).expect(200);
    expect(credits.body.balance).toBe(0);
    const agents = await stack.api.get('/v1/agents').set(bearer(t.apiKey)).expect(200);
    expect(agents.body.items).toHaveLength(1);
  });

  test('invalid types answer 400 with the issues and their paths', async () => {
    const t = await tenant();
    const agent = await stack.api
      .post('/v1/agents')
      .set(bearer(t.apiKey))
      .send({ name: 42, systemPrompt: 'Be nice', model: 'gpt-4o-mini', temperature: 'hot' })
      .expect(400);
    expect(agent.body.error).toMatchObject({ code: 'validation_failed', message: expect.any(String) });
    expect(issuesOf(agent.body).map((i) => i.path).sort()).toEqual(['name', 'temperature']);

    const missing = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).send({}).expect(400);
    expect(issuesOf(missing.body).map((i) => i.path).sort()).toEqual(['model', 'name', 'systemPrompt']);

    const topUp = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: -5, reference: '' }).expect(400);
    expect(issuesOf(topUp.body).map((i) => i.path).sort()).toEqual(['amount', 'reference']);
    const fractional = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 1.5, reference: 'frac' }).expect(400);
    expect(issuesOf(fractional.body).map((i) => i.path)).toEqual(['amount']);
    const stringly = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: '5', reference: 'str' }).expect(400);
    expect(issuesOf(stringly.body).map((i) => i.path)).toEqual(['amount']);

    const channel = await stack.api
      .post('/v1/channels')
      .set(bearer(t.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId: '+1 555 0100', accessToken: 'short', verifyToken: 'verify-123456', agentId: 'not-a-uuid' })
      .expect(400);
    expect(issuesOf(channel.body).map((i) => i.path).sort()).toEqual(['accessToken', 'agentId', 'phoneNumberId']);
    // an unknown platform is named as such (the other fields depend on the platform)
    const telegram = await stack.api
      .post('/v1/channels')
      .set(bearer(t.apiKey))
      .send({ platform: 'telegram', phoneNumberId: '15550100', accessToken: 'EAAGxxxxxxxxxxxx', verifyToken: 'verify-123456', agentId: t.agentId })
      .expect(400);
    expect(issuesOf(telegram.body).map((i) => i.path)).toEqual(['platform']);

    const badLimit = await stack.api.get('/v1/leads?limit=0').set(bearer(t.apiKey)).expect(400);
    expect(issuesOf(badLimit.body).map((i) => i.path)).toEqual(['limit']);
    await stack.api.get('/v1/leads?limit=abc').set(bearer(t.apiKey)).expect(400);
    await stack.api.get('/v1/leads?limit=1000').set(bearer(t.apiKey)).expect(400);
    await stack.api.get('/v1/credits/ledger?limit=-1').set(bearer(t.apiKey)).expect(400);
  });

  test('a body that is not an object is a 400, never a 500', async () => {
    const t = await tenant();
    for (const raw of ['[]', '"agent"', '42', 'null']) {
      const r = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).set('content-type', 'application/json').send(raw);
      expect([r.status, raw]).toEqual([400, raw]);
      expect(r.body.error.code).toEqual(expect.any(String));
    }
  });

  test('invalid JSON is a 400 JSON error', async () => {
    const t = await tenant();
    const r = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).set('content-type', 'application/json').send('{"name": "Bot",').expect(400);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(r.body.error.code).toBe('invalid_json');
    const a = await stack.api.post('/v1/tenants').set(admin).set('content-type', 'application/json').send('{name: Bot}').expect(400);
    expect(a.body.error.code).toBe('invalid_json');
  });

  test('a JSON body sent without its Content-Type is a 415 that says so, not a list of missing fields', async () => {
    const t = await tenant();
    const body = JSON.stringify({ name: 'Bot', systemPrompt: 'Help.', model: 'gpt-4o-mini' });
    // curl -d without -H: application/x-www-form-urlencoded
    const form = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).set('content-type', 'application/x-www-form-urlencoded').send(body).expect(415);
    expect(form.body.error).toMatchObject({ code: 'unsupported_media_type', message: expect.stringContaining('Content-Type: application/json (got "application/x-www-form-urlencoded")') });
    const text = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).set('content-type', 'text/plain').send(body).expect(415);
    expect(text.body.error.message).toContain('(got "text/plain")');
    // the same body as JSON is fine, with a charset too
    await stack.api.post('/v1/agents').set(bearer(t.apiKey)).set('content-type', 'application/json; charset=utf-8').send(body).expect(201);
    // no body at all (Content-Length: 0) is judged by the schema, as before
    const empty = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).expect(400);
    expect(empty.body.error.code).toBe('validation_failed');
  });

  test('a body over the API limit is a 413 JSON error', async () => {
    const t = await tenant();
    const raw = JSON.stringify({ name: 'Big', systemPrompt: 'x'.repeat(2 * 1024 * 1024), model: 'gpt-4o-mini' });
    const r = await stack.api.post('/v1/agents').set(bearer(t.apiKey)).set('content-type', 'application/json').send(raw).expect(413);
    expect(r.body.error.code).toBe('payload_too_large');
    expect((await stack.api.get('/v1/agents').set(bearer(t.apiKey))).body.items).toHaveLength(1);
  });

  test('an unknown route is a 404 JSON error', async () => {
    const r = await stack.api.get('/v1/nothing-here').expect(404);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(r.body.error.code).toBe('not_found');
    await stack.api.delete('/v1/tenants').set(admin).expect(404);
    await stack.api.post('/nope').send({ a: 1 }).expect(404);
  });
});

describe('credits', () => {
  test('a top-up is idempotent by reference; the same reference with another amount is a 409', async () => {
    const t = await tenant();
    const auth = bearer(t.apiKey);
    const first = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 25, reference: 'invoice-1001' }).expect(201);
    expect(first.body).toMatchObject({ applied: true, balance: 25, reference: 'invoice-1001' });
    const replay = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 25, reference: 'invoice-1001' }).expect(200);
    expect(replay.body).toMatchObject({ applied: false, balance: 25, reference: 'invoice-1001' });
    const conflict = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 30, reference: 'invoice-1001' }).expect(409);
    expect(conflict.body.error.code).toBe('conflict');

    // concurrent replays apply once too
    const burst = await Promise.all(
      Array.from({ length: 5 }, () => stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 7, reference: 'invoice-1002' })),
    );
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);

    const credits = await stack.api.get('/v1/credits').set(auth).expect(200);
    expect(credits.body).toEqual({ balance: 32, reserved: 0, creditsPerReply: 1 });
    const ledger = await stack.api.get('/v1/credits/ledger').set(auth).expect(200);
    expect(ledger.body.items.map((e: { kind: string; amount: number; reference: string }) => [e.kind, e.amount, e.reference]).sort()).toEqual([
      ['topup', 25, 'invoice-1001'],
      ['topup', 7, 'invoice-1002'],
    ]);
    expect(ledger.body.nextCursor).toBeNull();
  });

  test('the same reference is independent per tenant', async () => {
    const a = await tenant();
    const b = await tenant();
    await stack.api.post(`/v1/tenants/${a.tenantId}/credits`).set(admin).send({ amount: 3, reference: 'shared-ref' }).expect(201);
    await stack.api.post(`/v1/tenants/${b.tenantId}/credits`).set(admin).send({ amount: 4, reference: 'shared-ref' }).expect(201);
    expect((await stack.api.get('/v1/credits').set(bearer(a.apiKey))).body.balance).toBe(3);
    expect((await stack.api.get('/v1/credits').set(bearer(b.apiKey))).body.balance).toBe(4);
  });

  test('a top-up for an unknown tenant is a 404', async () => {
    const r = await stack.api.post(`/v1/tenants/${randomUUID()}/credits`).set(admin).send({ amount: 5, reference: 'ghost' }).expect(404);
    expect(r.body.error.code).toBe('not_found');
    await stack.api.post('/v1/tenants/not-a-uuid/credits').set(admin).send({ amount: 5, reference: 'ghost' }).expect(404);
  });

  test('the ledger pages with a keyset cursor', async () => {
    const t = await tenant();
    for (let i = 0; i < 5; i++) {
      await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: i + 1, reference: `page-${i}` }).expect(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const r: Response = await stack.api
        .get('/v1/credits/ledger')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(bearer(t.apiKey))
        .expect(200);
      expect(r.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.items.map((e: { reference: string }) => e.reference));
      cursor = r.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(['page-4', 'page-3', 'page-2', 'page-1', 'page-0']);
  });
});

describe('channels', () => {
  test('a channel naming another tenant\'s agent is refused and not created', async () => {
    const a = await tenant();
    const b = await tenant();
    const phoneNumberId = randomPhoneNumberId();
    const r = await stack.api
      .post('/v1/channels')
      .set(bearer(b.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId, accessToken: 'EAAGstolenagent0000', verifyToken: 'verify-stolen-1', agentId: a.agentId });
    expect([400, 404]).toContain(r.status);
    const list = await stack.api.get('/v1/channels').set(bearer(b.apiKey)).expect(200);
    expect(list.body.items.map((c: { phoneNumberId: string }) => c.phoneNumberId)).toEqual([b.phoneNumberId]);
    const rows = await stack.core.database.db.select().from(channelAccounts).where(eq(channelAccounts.phoneNumberId, phoneNumberId));
    expect(rows).toHaveLength(0);
    // an agent id that exists nowhere
    const ghost = await stack.api
      .post('/v1/channels')
      .set(bearer(b.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId, accessToken: 'EAAGghostagent00000', verifyToken: 'verify-ghost-1', agentId: randomUUID() });
    expect([400, 404]).toContain(ghost.status);
  });

  test('a phoneNumberId already registered (by anyone) is a 409', async () => {
    const a = await tenant();
    const b = await tenant();
    const body = { platform: 'whatsapp', phoneNumberId: a.phoneNumberId, accessToken: 'EAAGdupdupdupdup00', verifyToken: 'verify-dup-123', agentId: b.agentId };
    const r = await stack.api.post('/v1/channels').set(bearer(b.apiKey)).send(body).expect(409);
    expect(r.body.error.code).toBe('conflict');
    await stack.api.post('/v1/channels').set(bearer(a.apiKey)).send({ ...body, agentId: a.agentId }).expect(409);
    const rows = await stack.core.database.db.select().from(channelAccounts).where(eq(channelAccounts.phoneNumberId, a.phoneNumberId));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.tenantId).toBe(a.tenantId);
  });

  test('the access token and app secret are stored encrypted and never returned', async () => {
    const t = await tenant();
    const accessToken = `EAAGsecret${randomUUID().replace(/-/g, '')}`;
    const appSecret = `appsecret-${randomUUID()}`;
    const verifyToken = `verify-${randomUUID()}`;
    secretsUsed.add(accessToken).add(appSecret).add(verifyToken);
    const phoneNumberId = randomPhoneNumberId();
    const created = await stack.api
      .post('/v1/channels')
      .set(bearer(t.apiKey))
      .send({ platform: 'whatsapp', phoneNumberId, accessToken, appSecret, verifyToken, agentId: t.agentId })
      .expect(201);
    const listed = await stack.api.get('/v1/channels').set(bearer(t.apiKey)).expect(200);
    for (const text of [created.text, listed.text]) {
      expect(text).not.toContain(accessToken);
      expect(text).not.toContain(appSecret);
      expect(text).not.toContain(verifyToken);
    }
    expect(created.body).toMatchObject({ id: expect.any(String), phoneNumberId, agentId: t.agentId, hasAppSecret: true });

    const [row] = await stack.core.database.db.select().from(channelAccounts).where(eq(channelAccounts.id, created.body.id));
    expect(row).toBeDefined();
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(accessToken);
    expect(stored).not.toContain(appSecret);
    expect(stored).not.toContain(verifyToken);
    expect(row!.accessTokenEnc).toMatch(/^v2:/);
    expect(row!.appSecretEnc).toMatch(/^v2:/);
    // encrypted, not hashed: the worker can still read them back
    const creds = await stack.core.services.channels.sendCredentials(created.body.id);
    expect(creds?.accessToken).toBe(accessToken);
    const routing = await stack.core.services.channels.routingByPhoneNumberId('whatsapp', phoneNumberId);
    expect(routing?.appSecret).toBe(appSecret);
  });
});

describe('leads', () => {
  test('another tenant cannot see a lead, its messages or its state', async () => {
    const a = await tenant();
    const b = await tenant();
    const lead = await leadFrom(a, randomWaId(), 'Only tenant A may read this');
    const authA = bearer(a.apiKey);
    const authB = bearer(b.apiKey);
    await stack.api.get(`/v1/leads/${lead.id}`).set(authA).expect(200);
    await waitFor(async () => (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(authA)).body.items?.length > 0, { what: 'inbound recorded' });

    for (const path of [`/v1/leads/${lead.id}`, `/v1/leads/${lead.id}/messages`, `/v1/leads/${lead.id}/state`]) {
      const r = await stack.api.get(path).set(authB);
      expect([path, r.status]).toEqual([path, 404]);
      expect(r.text).not.toContain('Only tenant A');
    }
    const listB = await stack.api.get('/v1/leads').set(authB).expect(200);
    expect(listB.body).toEqual({ items: [], nextCursor: null });
    const ledgerB = await stack.api.get('/v1/credits/ledger').set(authB).expect(200);
    expect(ledgerB.body.items).toEqual([]);
  });

  test('a lead id that is not a uuid, or unknown, is a 404', async () => {
    const t = await tenant();
    const auth = bearer(t.apiKey);
    for (const id of ['123', 'not-a-uuid', "1' or '1'='1", randomUUID()]) {
      const r = await stack.api.get(`/v1/leads/${encodeURIComponent(id)}`).set(auth);
      expect([id, r.status]).toEqual([id, 404]);
      expect(r.body.error.code).toBe('not_found');
      const m = await stack.api.get(`/v1/leads/${encodeURIComponent(id)}/messages`).set(auth);
      expect([id, m.status]).toEqual([id, 404]);
    }
  });

  test('leads page with limit and cursor, each lead exactly once', async () => {
    const t = await tenant();
    const contacts = Array.from({ length: 5 }, () => randomWaId());
    for (const from of contacts) await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi')).expect(200);
    const auth = bearer(t.apiKey);
    const all = await waitFor(
      async () => {
        const r = await stack.api.get('/v1/leads?limit=200').set(auth).expect(200);
        return r.body.items.length === contacts.length ? (r.body.items as { id: string; contactId: string; createdAt: string }[]) : undefined;
      },
      { what: 'five leads' },
    );
    expect(all.map((l) => l.contactId).sort()).toEqual([...contacts].sort());

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: Response = await stack.api
        .get('/v1/leads')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(auth)
        .expect(200);
      pages += 1;
      expect(r.body.items.length).toBeGreaterThan(0);
      expect(r.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.items.map((l: { id: string }) => l.id));
      cursor = r.body.nextCursor;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(all.map((l) => l.id));
  });

  test('a bad cursor is a 400', async () => {
    const t = await tenant();
    const auth = bearer(t.apiKey);
    const forged = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
    const cursors = [
      'garbage!!',
      'bm90IGpzb24',
      forged({ createdAt: '2025-01-01', id: randomUUID() }),
      forged(['not a time', 'not a uuid']),
      forged(['2025-01-01T00:00:00.000Z', 'not-a-uuid']),
      forged(['not a time', randomUUID()]),
      forged(['2025-02-30 10:00:00+00', randomUUID()]),
      forged(['2025-01-01 25:00:00+00', randomUUID()]),
      forged(['2025-01-01 10:00:00+99', randomUUID()]),
      forged(['2025-01-01 10:00:00+00', randomUUID(), 'extra']),
      'x'.repeat(501),
    ];
    for (const cursor of cursors) {
      for (const path of ['/v1/leads', '/v1/credits/ledger']) {
        const r = await stack.api.get(path).query({ cursor }).set(auth);
        expect([path, cursor, r.status]).toEqual([path, cursor, 400]);
        expect(r.body.error.code).toEqual(expect.any(String));
      }
    }
    // a well-formed cursor older than everything is simply an empty page
    for (const when of ['2000-01-01 00:00:00.123456+00', '2000-01-01T00:00:00.000Z']) {
      const ok = await stack.api.get('/v1/leads').query({ cursor: forged([when, randomUUID()]) }).set(auth).expect(200);
      expect(ok.body).toEqual({ items: [], nextCursor: null });
    }
    const lead = await leadFrom(t, randomWaId());
    const m = await stack.api.get(`/v1/leads/${lead.id}/messages`).query({ cursor: forged(['nope', 'nope']) }).set(auth);
    expect(m.status).toBe(400);
  });
});

describe('health', () => {
  test('healthz answers 200', async () => {
    const r = await stack.api.get('/healthz').expect(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  test('readyz answers 200 with the database and Temporal checks', async () => {
    const r = await stack.api.get('/readyz').expect(200);
    expect(r.body).toEqual({ status: 'ok', checks: { database: 'ok', temporal: 'ok' } });
  });
});

describe('secrets in logs', () => {
  test('no key, token or secret used in this file appears in any log line', () => {
    expect(stack.logLines.length).toBeGreaterThan(0);
    const leaks = stack.logLines.filter((line) => [...secretsUsed].some((s) => line.includes(s)));
    expect(leaks).toEqual([]);
  });
});
