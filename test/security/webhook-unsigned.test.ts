/**
 * Abuse of the Meta webhooks without credentials: a POST with a bad X-Hub-Signature-256 must
 * cost a bounded, small amount of database work whatever it names, must not write the ids it
 * names into the logs, and an address that keeps sending them is refused (429) before any
 * database work. Meta's own deliveries, signed with the deployment's secret, still get through
 * from such an address, and a channel's own app secret keeps working.
 */
import { randomBytes, randomInt } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../../api/app';
import { signMetaBody } from '../../lib/crypto';
import { countQueries, type QueryCounter } from '../support/query-counter';
import { APP_SECRET, createTenant, randomPhoneNumberId, randomWaId, startStack, textWebhook, VERIFY_TOKEN, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
let queries: QueryCounter;

beforeAll(async () => {
  stack = await startStack();
  queries = countQueries(stack.core.database.db);
});
afterAll(async () => {
  queries?.restore();
  await stack?.stop();
});

/** A WhatsApp body naming `n` distinct phone_number_ids (100 changes per entry, as Meta nests them). */
function bodyNaming(ids: string[]): string {
  const entry: unknown[] = [];
  for (let e = 0; e * 100 < ids.length; e++) {
    entry.push({
      id: String(randomInt(1e13, 9e13)),
      changes: ids.slice(e * 100, (e + 1) * 100).map((id) => ({
        field: 'messages',
        value: { messaging_product: 'whatsapp', metadata: { phone_number_id: id, display_phone_number: '15550000000' }, messages: [] },
      })),
    });
  }
  return JSON.stringify({ object: 'whatsapp_business_account', entry });
}

const randomIds = (n: number) => Array.from({ length: n }, () => randomPhoneNumberId());
const badSignature = () => `sha256=${randomBytes(32).toString('hex')}`;

/**
 * A client address of its own per call (the failed-auth bucket is shared by every process on one
 * database, so a reused address would start out blocked): never the same twice in this file, from
 * the 65,536 addresses of 198.18.0.0/16 so another run on the same database rarely meets one either.
 */
const usedIps = new Set<string>();
function randomClientIp(): string {
  for (;;) {
    const ip = `198.18.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    if (!usedIps.has(ip)) {
      usedIps.add(ip);
      return ip;
    }
  }
}

/** An app on the stack's services whose client address comes from X-Forwarded-For (as behind a proxy). */
function appBehindProxy(authFailuresPerMinute: number) {
  const app = createApp({ config: { ...stack.config, AUTH_FAILURES_PER_MINUTE: authFailuresPerMinute }, log: stack.log, database: stack.core.database, services: stack.core.services, temporal: stack.temporal });
  app.set('trust proxy', 'loopback');
  return request(app);
}

/** Statements the database ran for one request, including the failed-auth count taken after the response. */
async function queriesFor(send: () => Promise<{ status: number }>): Promise<{ status: number; queries: number }> {
  // settle what an earlier request may still be doing
  await new Promise((r) => setTimeout(r, 50));
  queries.reset();
  const res = await send();
  let last = -1;
  while (last !== queries.count) {
    last = queries.count;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { status: res.status, queries: queries.count };
}

function post(api: ReturnType<typeof request>, path: string, raw: string, signature: string, ip?: string) {
  const req = api.post(path).set('content-type', 'application/json').set('x-hub-signature-256', signature);
  if (ip) req.set('x-forwarded-for', ip);
  return req.send(raw);
}

describe('a bad signature costs a bounded amount of database work', () => {
  test('10,000 distinct phone_number_ids: 401 without a lookup per id', async () => {
    const api = appBehindProxy(100_000);
    const r = await queriesFor(() => post(api, '/webhooks/whatsapp', bodyNaming(randomIds(10_000)), badSignature(), randomClientIp()));
    expect(r.status).toBe(401);
    // at most one routing query and the failed-auth count
    expect(r.queries).toBeLessThanOrEqual(2);
  });

  test('100 distinct ids (the cap): one query for all of them, plus the failed-auth count', async () => {
    const api = appBehindProxy(100_000);
    const r = await queriesFor(() => post(api, '/webhooks/whatsapp', bodyNaming(randomIds(100)), badSignature(), randomClientIp()));
    expect(r.status).toBe(401);
    expect(r.queries).toBeLessThanOrEqual(2);
  });

  test('the same unknown ids again are answered from the negative cache', async () => {
    const api = appBehindProxy(100_000);
    const ids = randomIds(20);
    const ip = randomClientIp();
    const first = await queriesFor(() => post(api, '/webhooks/whatsapp', bodyNaming(ids), badSignature(), ip));
    const second = await queriesFor(() => post(api, '/webhooks/whatsapp', bodyNaming(ids), badSignature(), ip));
    expect([first.status, second.status]).toEqual([401, 401]);
    // the second costs only the failed-auth count
    expect(second.queries).toBeLessThanOrEqual(1);
  });

  test('Instagram: 10,000 distinct account ids are refused the same way', async () => {
    const api = appBehindProxy(100_000);
    const entry = randomIds(10_000).map((id) => ({ id, time: Date.now(), messaging: [] }));
    const r = await queriesFor(() => post(api, '/webhooks/instagram', JSON.stringify({ object: 'instagram', entry }), badSignature(), randomClientIp()));
    expect(r.status).toBe(401);
    expect(r.queries).toBeLessThanOrEqual(2);
  });

  test('the rejection is logged with counts, never with the list of ids', async () => {
    const api = appBehindProxy(100_000);
    const ids = randomIds(50);
    const before = stack.logLines.length;
    await post(api, '/webhooks/whatsapp', bodyNaming(ids), badSignature(), randomClientIp()).expect(401);
    const lines = stack.logLines.slice(before);
    const rejected = lines.filter((l) => l.includes('bad signature'));
    expect(rejected.length).toBe(1);
    for (const id of ids) expect(lines.join('\n')).not.toContain(id);
    expect(JSON.parse(rejected[0]!)).toMatchObject({ accountIds: 50 });
  });
});

describe('an address that keeps failing', () => {
  test('gets 429 after repeated 401s, and the 429 costs no database work', async () => {
    const api = appBehindProxy(5);
    const ip = randomClientIp();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push((await post(api, '/webhooks/whatsapp', bodyNaming(randomIds(3)), badSignature(), ip)).status);
      await new Promise((r) => setTimeout(r, 30)); // the failure is counted after the response
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(-1)).toEqual([429]);
    const blocked = await queriesFor(() => post(api, '/webhooks/whatsapp', bodyNaming(randomIds(10_000)), badSignature(), ip));
    expect(blocked.status).toBe(429);
    expect(blocked.queries).toBe(0);
    // Instagram shares the address's budget
    const ig = await post(api, '/webhooks/instagram', JSON.stringify({ object: 'instagram', entry: [{ id: randomPhoneNumberId(), time: Date.now(), messaging: [] }] }), badSignature(), ip);
    expect(ig.status).toBe(429);
    expect(ig.headers['retry-after']).toBeDefined();
    // another address is not affected
    await post(api, '/webhooks/whatsapp', bodyNaming(randomIds(1)), badSignature(), randomClientIp()).expect(401);
  });

  test('the letter case of the path does not get around the limit (Express routes ignore it)', async () => {
    const api = appBehindProxy(3);
    const ip = randomClientIp();
    const statuses: number[] = [];
    for (const p of ['/WEBHOOKS/WHATSAPP', '/Webhooks/WhatsApp', '/webhooks/WHATSAPP', '/WEBHOOKS/INSTAGRAM']) {
      statuses.push((await post(api, p, bodyNaming(randomIds(2)), badSignature(), ip)).status);
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    // the failures are counted after each response, in the database: under load that can lag a
    // fixed pause, so probe until the address is blocked. A probe refused with 401 counts too, so
    // allow at most two of them: had the mixed-case failures not counted, four 401s would come
    // before the first 429 (burst 3).
    let refusedProbes = 0;
    for (let i = 0; i < 20; i++) {
      const status = (await post(api, '/Webhooks/whatsapp', bodyNaming(randomIds(2)), badSignature(), ip)).status;
      if (status === 429) break;
      expect(status).toBe(401);
      refusedProbes += 1;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(refusedProbes).toBeLessThanOrEqual(2);
    expect((await post(api, '/webhooks/whatsapp', bodyNaming(randomIds(2)), badSignature(), ip)).status).toBe(429);
  });

  test('wrong verify tokens on the subscription handshake are limited per address too, and the 429 costs no database work', async () => {
    const api = appBehindProxy(4);
    const ip = randomClientIp();
    const handshake = (token: string, from = ip) =>
      api.get('/webhooks/whatsapp').query({ 'hub.mode': 'subscribe', 'hub.verify_token': token, 'hub.challenge': '1158201444' }).set('x-forwarded-for', from);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push((await handshake(`guess-${i}`)).status);
      await new Promise((r) => setTimeout(r, 30)); // the failure is counted after the response
    }
    expect(statuses.slice(0, 4)).toEqual([403, 403, 403, 403]);
    expect(statuses.slice(-1)).toEqual([429]);
    const blocked = await queriesFor(() => handshake('another-guess'));
    expect(blocked.status).toBe(429);
    expect(blocked.queries).toBe(0);
    // another address still completes the handshake with the right token
    const ok = await handshake(VERIFY_TOKEN, randomClientIp()).expect(200);
    expect(ok.text).toBe('1158201444');
  });

  test("Meta's deliveries signed with the deployment secret still get through from a blocked address", async () => {
    const api = appBehindProxy(3);
    const ip = randomClientIp();
    // get the address blocked (each failure is counted after its response, in the database:
    // under load that can take longer than a fixed pause, so keep failing until it is)
    let status = 0;
    for (let i = 0; i < 40 && status !== 429; i++) {
      status = (await post(api, '/webhooks/whatsapp', bodyNaming(randomIds(1)), badSignature(), ip)).status;
      if (status !== 429) await new Promise((r) => setTimeout(r, 30 + 20 * i));
    }
    expect(status).toBe(429);
    const t = await createTenant(stack);
    const from = randomWaId();
    const raw = JSON.stringify(textWebhook(t.phoneNumberId, from, 'genuine, from a busy address'));
    const ok = await post(api, '/webhooks/whatsapp', raw, signMetaBody(raw, APP_SECRET), ip);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ received: 1 });
    expect(await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from))).toBeDefined();
  });
});

describe("a channel's own app secret", () => {
  test('signs its webhooks (one lookup); the deployment secret does not sign for it', async () => {
    const ownSecret = `own-app-secret-${randomBytes(8).toString('hex')}`;
    const t = await createTenant(stack, { appSecret: ownSecret });
    const api = appBehindProxy(100_000);
    const ip = randomClientIp();
    const from = randomWaId();
    const raw = JSON.stringify(textWebhook(t.phoneNumberId, from, 'signed by the channel'));
    const own = await queriesFor(() => post(api, '/webhooks/whatsapp', raw, signMetaBody(raw, ownSecret), ip));
    expect(own.status).toBe(200);
    const forged = randomWaId();
    const rawForged = JSON.stringify(textWebhook(t.phoneNumberId, forged, 'signed by the deployment'));
    await post(api, '/webhooks/whatsapp', rawForged, signMetaBody(rawForged, APP_SECRET), ip).expect(401);
    expect(await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, forged))).toBeUndefined();
    expect(await stack.temporal.leadState(stack.leadWorkflowId(t.channelId, from))).toBeDefined();
  });
});
