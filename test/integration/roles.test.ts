/**
 * API keys with roles, on the whole stack: every route of the app declares who may call it
 * (api/access.ts), every tenant route answers every role as declared, keys are created, listed
 * without secrets, revoked at once and rotated with a grace period, and every change lands in
 * the audit log without its secrets.
 */
import { randomUUID } from 'node:crypto';
import type { Test } from 'supertest';
import type { AccessRule } from '../../api/access';
import { routesOf } from '../../api/openapi';
import type { ApiKeyRole } from '../../contract/vocabulary';
import { API_KEY_ROLES } from '../../contract/vocabulary';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, bearer, stackPerFile, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});


/** The path with every parameter replaced by a fresh uuid (nothing of this tenant has it). */
const concrete = (path: string) => path.replace(/:[A-Za-z]+/g, () => randomUUID());

function call(method: string, path: string, key?: string) {
  const agent = stack.api as unknown as Record<string, (p: string) => Test>;
  const req = agent[method.toLowerCase()]!(path);
  if (key) req.set(bearer(key));
  return method === 'GET' || method === 'DELETE' ? req : req.send({});
}

async function keyFor(owner: string, role: ApiKeyRole, name = `${role} key`): Promise<{ id: string; key: string }> {
  const r = await stack.api.post('/v1/api-keys').set(bearer(owner)).send({ name, role }).expect(201);
  expect(r.body).toMatchObject({ name, role, prefix: r.body.key.slice(0, 8), revokedAt: null });
  return { id: r.body.id, key: r.body.key };
}

describe('every route declares who may call it', () => {
  test('no route without exactly one access rule; tenant routes name roles, the admin and public ones say so', () => {
    const routes = routesOf(stack.app);
    expect(routes.length).toBeGreaterThan(40);
    const undeclared = routes.filter((r) => r.rules.length !== 1).map((r) => `${r.method} ${r.path} (${r.rules.length} rules)`);
    expect(undeclared).toEqual([]);
    const byPath = (m: string, p: string) => routes.find((r) => r.method === m && r.path === p)?.rules[0];
    expect(byPath('POST', '/v1/tenants')).toEqual({ kind: 'admin' });
    expect(byPath('GET', '/metrics')).toEqual({ kind: 'admin' });
    expect(byPath('POST', '/webhooks/whatsapp')).toMatchObject({ kind: 'public' });
    expect(byPath('POST', '/v1/api-keys')).toEqual({ kind: 'roles', roles: ['owner'] });
    expect(byPath('GET', '/v1/leads')).toEqual({ kind: 'roles', roles: ['owner', 'manager', 'agent', 'readonly'] });
    // the roles table of the README, route by route where each kind of right shows
    const roles = (m: string, p: string) => (byPath(m, p) as { roles?: string[] } | undefined)?.roles;
    expect(roles('POST', '/v1/agents')).toEqual(['owner', 'manager']);
    expect(roles('GET', '/v1/agents')).toEqual(['owner', 'manager', 'readonly']);
    expect(roles('POST', '/v1/leads/:leadId/messages')).toEqual(['owner', 'manager', 'agent']);
    expect(roles('POST', '/v1/leads/:leadId/stage')).toEqual(['owner', 'manager', 'agent']);
    expect(roles('POST', '/v1/leads/:leadId/sequence/pause')).toEqual(['owner', 'manager']);
    expect(roles('GET', '/v1/audit-log')).toEqual(['owner', 'manager']);
    expect(roles('DELETE', '/v1/api-keys/:keyId')).toEqual(['owner']);
    expect(roles('DELETE', '/v1/channels/:id')).toEqual(['owner', 'manager']);
    // every /v1 route is either a tenant role route or a platform-admin route
    const v1Public = routes.filter((r) => r.path.startsWith('/v1') && r.rules[0]?.kind === 'public');
    expect(v1Public).toEqual([]);
  });
});

describe('the role matrix', () => {
  let t: TenantFixture;
  const keys = {} as Record<ApiKeyRole, string>;
  beforeAll(async () => {
    t = await createTenant(stack, { credits: 10 });
    keys.owner = t.apiKey;
    for (const role of API_KEY_ROLES.filter((r) => r !== 'owner')) keys[role] = (await keyFor(t.apiKey, role)).key;
  });

  test('every tenant route, called with a key of every role: 403 exactly for the roles it does not allow', async () => {
    const routes = routesOf(stack.app).filter((r) => r.rules[0]?.kind === 'roles');
    expect(routes.length).toBeGreaterThan(35);
    const wrong: string[] = [];
    for (const route of routes) {
      const allowed = (route.rules[0] as Extract<AccessRule, { kind: 'roles' }>).roles;
      const path = concrete(route.path);
      for (const role of API_KEY_ROLES) {
        const res = await call(route.method, path, keys[role]);
        const ok = allowed.includes(role) ? res.status !== 403 && res.status !== 401 : res.status === 403 && res.body?.error?.code === 'forbidden';
        if (!ok) wrong.push(`${route.method} ${route.path} as ${role}: ${res.status} ${JSON.stringify(res.body).slice(0, 120)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('admin routes refuse every tenant key; tenant routes refuse the admin token', async () => {
    for (const role of API_KEY_ROLES) {
      await stack.api.post('/v1/tenants').set(bearer(keys[role])).send({ name: 'Nope' }).expect(401);
      await stack.api.get('/metrics').set(bearer(keys[role])).expect(401);
    }
    await stack.api.get('/v1/leads').set(bearer(ADMIN_TOKEN)).expect(401);
  });

  test('a real lead: the readonly key reads it, cannot act; the agent key hands it off but cannot pause it', async () => {
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello, who am I talking to?')).expect(200);
    const lead = await waitFor(
      async () => {
        const r = await stack.api.get('/v1/leads?limit=200').set(bearer(keys.readonly)).expect(200);
        return (r.body.items as { id: string; contactId: string }[]).find((l) => l.contactId === from);
      },
      { what: 'the lead' },
    );
    await stack.api.get(`/v1/leads/${lead.id}/messages`).set(bearer(keys.agent)).expect(200);
    const denied = await stack.api.post(`/v1/leads/${lead.id}/messages`).set(bearer(keys.readonly)).send({ text: 'hi' }).expect(403);
    expect(denied.body.error.message).toMatch(/readonly/);
    const pause = await stack.api.post(`/v1/leads/${lead.id}/mode`).set(bearer(keys.agent)).send({ request: 'pause' }).expect(403);
    expect(pause.body.error.message).toMatch(/hand off/);
    const handoff = await stack.api.post(`/v1/leads/${lead.id}/mode`).set(bearer(keys.agent)).send({ request: 'handoff' });
    expect(handoff.status).toBe(200);
    await stack.api.post(`/v1/leads/${lead.id}/handback`).set(bearer(keys.agent)).send({}).expect(200);
    // a manager key may pause; the setup is readable by a readonly key, not by an agent key
    await stack.api.post(`/v1/leads/${lead.id}/mode`).set(bearer(keys.manager)).send({ request: 'pause' }).expect(200);
    await stack.api.get('/v1/channels').set(bearer(keys.readonly)).expect(200);
    await stack.api.get('/v1/channels').set(bearer(keys.agent)).expect(403);
  });
});

describe('rate limits and roles', () => {
  test("a key whose role does not fit spends its own budget, not the tenant's: the owner is never locked out", async () => {
    const t = await createTenant(stack);
    await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(bearer(ADMIN_TOKEN)).send({ apiRequestsPerMinute: 5 }).expect(200);
    const leaked = await keyFor(t.apiKey, 'readonly');
    const answers: number[] = [];
    for (let i = 0; i < 8; i++) answers.push((await stack.api.get('/v1/api-keys').set(bearer(leaked.key))).status);
    expect(answers.slice(0, 5)).toEqual([403, 403, 403, 403, 403]);
    expect(answers.slice(5)).toEqual([429, 429, 429]);
    // the tenant's own budget is untouched: the owner revokes the leaked key
    const revoke = await stack.api.delete(`/v1/api-keys/${leaked.id}`).set(bearer(t.apiKey));
    expect(revoke.status).toBe(200);
    expect(revoke.headers['ratelimit-remaining']).toBe('3');
  });
});

describe('API keys', () => {
  test('create shows the secret once; the list has no secrets and notes the last use', async () => {
    const t = await createTenant(stack);
    const k = await keyFor(t.apiKey, 'readonly', 'dashboard');
    expect(k.key).toMatch(/^pk_/);
    await stack.api.get('/v1/leads').set(bearer(k.key)).expect(200);
    const list = await stack.api.get('/v1/api-keys?limit=10').set(bearer(t.apiKey)).expect(200);
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(k.key);
    expect(text).not.toContain(t.apiKey);
    expect(text).not.toMatch(/keyHash|key_hash/);
    const listed = (list.body.items as { id: string; name: string; role: string; lastUsedAt: string | null }[]).find((i) => i.id === k.id);
    expect(listed).toMatchObject({ name: 'dashboard', role: 'readonly' });
    expect(listed!.lastUsedAt).not.toBeNull();
    // the tenant's first key is an owner key
    expect((list.body.items as { role: string }[])[0]!.role).toBe('owner');
    // paginated
    const page1 = await stack.api.get('/v1/api-keys?limit=1').set(bearer(t.apiKey)).expect(200);
    expect(page1.body.items).toHaveLength(1);
    const page2 = await stack.api.get(`/v1/api-keys?limit=1&cursor=${page1.body.nextCursor}`).set(bearer(t.apiKey)).expect(200);
    expect(page2.body.items[0].id).not.toBe(page1.body.items[0].id);
  });

  test('bad input: unknown role, missing name, extra fields, a grace beyond 7 days → 400 with the reason', async () => {
    const t = await createTenant(stack);
    const role = await stack.api.post('/v1/api-keys').set(bearer(t.apiKey)).send({ name: 'x', role: 'admin' }).expect(400);
    expect(JSON.stringify(role.body.error.issues)).toContain('role');
    await stack.api.post('/v1/api-keys').set(bearer(t.apiKey)).send({ role: 'agent' }).expect(400);
    await stack.api.post('/v1/api-keys').set(bearer(t.apiKey)).send({ name: 'x', role: 'agent', tenantId: randomUUID() }).expect(400);
    const k = await keyFor(t.apiKey, 'agent');
    const grace = await stack.api.post(`/v1/api-keys/${k.id}/rotate`).set(bearer(t.apiKey)).send({ graceSeconds: 8 * 24 * 3600 }).expect(400);
    expect(JSON.stringify(grace.body.error.issues)).toContain('graceSeconds');
  });

  test('revoke takes effect at once; the last owner key cannot be revoked; another tenant\'s key is a 404', async () => {
    const t = await createTenant(stack);
    const other = await createTenant(stack);
    const k = await keyFor(t.apiKey, 'manager');
    await stack.api.get('/v1/agents').set(bearer(k.key)).expect(200);
    await stack.api.delete(`/v1/api-keys/${k.id}`).set(bearer(other.apiKey)).expect(404);
    const revoked = await stack.api.delete(`/v1/api-keys/${k.id}`).set(bearer(t.apiKey)).expect(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    await stack.api.get('/v1/agents').set(bearer(k.key)).expect(401);
    // revoking again is harmless
    await stack.api.delete(`/v1/api-keys/${k.id}`).set(bearer(t.apiKey)).expect(200);

    const list = await stack.api.get('/v1/api-keys').set(bearer(t.apiKey)).expect(200);
    const ownerId = (list.body.items as { id: string; role: string }[]).find((i) => i.role === 'owner')!.id;
    const last = await stack.api.delete(`/v1/api-keys/${ownerId}`).set(bearer(t.apiKey)).expect(409);
    expect(last.body.error.message).toMatch(/last lasting owner/);
    // a key living on a rotation's grace does not count as another owner
    const rotated = await stack.api.post(`/v1/api-keys/${ownerId}/rotate`).set(bearer(t.apiKey)).send({ graceSeconds: 600 }).expect(201);
    await stack.api.delete(`/v1/api-keys/${rotated.body.id}`).set(bearer(t.apiKey)).expect(409);
    await stack.api.delete(`/v1/api-keys/${ownerId}`).set(bearer(rotated.body.key)).expect(200);
    await stack.api.get('/v1/agents').set(bearer(t.apiKey)).expect(401);
    // with a second owner key, the rotated one can go
    const second = await keyFor(rotated.body.key, 'owner');
    await stack.api.delete(`/v1/api-keys/${rotated.body.id}`).set(bearer(second.key)).expect(200);
    await stack.api.get('/v1/agents').set(bearer(rotated.body.key)).expect(401);
  });

  test('rotate: the new key works at once, the old one until its grace ends; a rotated key cannot be rotated twice', async () => {
    const t = await createTenant(stack);
    const k = await keyFor(t.apiKey, 'agent', 'crm sync');
    const rotated = await stack.api.post(`/v1/api-keys/${k.id}/rotate`).set(bearer(t.apiKey)).send({ graceSeconds: 2 }).expect(201);
    expect(rotated.body).toMatchObject({ name: 'crm sync', role: 'agent', previous: { id: k.id, replacedBy: rotated.body.id } });
    expect(rotated.body.key).not.toBe(k.key);
    await stack.api.get('/v1/leads').set(bearer(rotated.body.key)).expect(200);
    await stack.api.get('/v1/leads').set(bearer(k.key)).expect(200);
    const again = await stack.api.post(`/v1/api-keys/${k.id}/rotate`).set(bearer(t.apiKey)).send({}).expect(409);
    expect(again.body.error.message).toMatch(/already rotated/);
    await new Promise((r) => setTimeout(r, 2500));
    await stack.api.get('/v1/leads').set(bearer(k.key)).expect(401);
    await stack.api.get('/v1/leads').set(bearer(rotated.body.key)).expect(200);

    // grace 0: the old key stops at once; the default grace is an hour
    const now = await stack.api.post(`/v1/api-keys/${rotated.body.id}/rotate`).set(bearer(t.apiKey)).send({ graceSeconds: 0 }).expect(201);
    await stack.api.get('/v1/leads').set(bearer(rotated.body.key)).expect(401);
    const dflt = await stack.api.post(`/v1/api-keys/${now.body.id}/rotate`).set(bearer(t.apiKey)).send({}).expect(201);
    const hours = (Date.parse(dflt.body.previous.expiresAt) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(0.95);
    expect(hours).toBeLessThan(1.05);
    await stack.api.get('/v1/leads').set(bearer(now.body.key)).expect(200);
  });
});

describe('audit log', () => {
  test('changes made through the API are listed newest first: key, role, action, ids, before and after, never a secret', async () => {
    const t = await createTenant(stack);
    const manager = await keyFor(t.apiKey, 'manager');
    await stack.api.patch(`/v1/channels/${t.channelId}`).set(bearer(manager.key)).send({ messagesPerSecond: 20 }).expect(200);
    const rotated = await stack.api.post(`/v1/api-keys/${manager.id}/rotate`).set(bearer(t.apiKey)).send({ graceSeconds: 60 }).expect(201);
    // reads and refused calls are not changes
    await stack.api.get('/v1/agents').set(bearer(manager.key)).expect(200);
    await stack.api.post('/v1/api-keys').set(bearer(manager.key)).send({ name: 'x', role: 'owner' }).expect(403);

    const log = await stack.api.get('/v1/audit-log?limit=50').set(bearer(rotated.body.key)).expect(200);
    const items = log.body.items as { actor: { keyId: string; role: string }; action: string; target: Record<string, string>; status: number; request: unknown; before: unknown; after: unknown }[];
    expect(items.map((i) => i.action)).toEqual([
      'POST /v1/api-keys/:keyId/rotate',
      'PATCH /v1/channels/:id',
      'POST /v1/api-keys',
      'POST /v1/channels',
      'POST /v1/agents',
    ]);
    expect(items[1]).toMatchObject({ actor: { keyId: manager.id, role: 'manager' }, target: { id: t.channelId }, status: 200, request: { messagesPerSecond: 20 } });
    expect(items[0]).toMatchObject({ actor: { role: 'owner' }, target: { keyId: manager.id } });
    const text = JSON.stringify(log.body);
    for (const secret of [t.apiKey, manager.key, rotated.body.key, t.accessToken]) expect(text).not.toContain(secret);
    // the channel's token was redacted where it was sent
    expect(JSON.stringify(items[3]!.request)).toContain('[redacted]');
    // readonly and agent keys cannot read it; another tenant sees only its own
    const readonly = await keyFor(t.apiKey, 'readonly');
    await stack.api.get('/v1/audit-log').set(bearer(readonly.key)).expect(403);
    const other = await createTenant(stack);
    const theirs = await stack.api.get('/v1/audit-log?limit=50').set(bearer(other.apiKey)).expect(200);
    expect(JSON.stringify(theirs.body)).not.toContain(t.channelId);
  });
});
