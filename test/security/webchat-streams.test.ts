/**
 * Web chat abuse without credentials: stream floods, the history route, rotating visitors to
 * get fresh AI conversations, other sites embedding the widget, and the visitor credential.
 * Real database, real Temporal (the stack), real HTTP sockets for the streams.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { createApp } from '../../api/app';
import { errorHandler } from '../../api/middleware/errors';
import { createWebChatRouter } from '../../api/routes/webchat';
import { loadConfig } from '../../config';
import type { LeadService } from '../../services/leads';
import { createStreamHub } from '../../services/webchat-stream-hub';
import { createVisitorTokens, webChatVisitorSecret } from '../../services/webchat-visitors';
import { openSse, type SseStream } from '../support/sse';
import { createTenant, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
const servers: http.Server[] = [];
const streams: SseStream[] = [];

beforeAll(async () => {
  stack = await startStack({ WEBCHAT_POLL_MS: '100' });
});
afterAll(async () => {
  for (const s of streams) s.close();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await stack?.stop();
});

async function listen(app: express.Express): Promise<string> {
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface WebChat {
  tenantId: string;
  apiKey: string;
  channelId: string;
  widgetKey: string;
}
async function createWebChat(extra: Record<string, unknown> = {}): Promise<WebChat> {
  const t = await createTenant(stack, { credits: 10 });
  const ch = await stack.api
    .post('/v1/channels')
    .set('authorization', `Bearer ${t.apiKey}`)
    .send({ platform: 'webchat', agentId: t.agentId, ...extra })
    .expect(201);
  return { tenantId: t.tenantId, apiKey: t.apiKey, channelId: ch.body.id, widgetKey: ch.body.widgetKey };
}

const tokens = () => createVisitorTokens(webChatVisitorSecret(stack.config));
/** A visitor minted with the server key (no new-conversation limit): token and derived contact id. */
function mint(w: WebChat) {
  const v = tokens().issue(w.channelId);
  return { ...v, auth: { authorization: `Bearer ${v.token}` } };
}

/** A conversation with `n` messages for the visitor, written as the workflow would. */
async function seedConversation(w: WebChat, contactId: string, n = 1): Promise<string> {
  const lead = await stack.core.services.leads.ensure({ tenantId: w.tenantId, channelAccountId: w.channelId, channel: 'webchat', contactId, workflowId: stack.leadWorkflowId(w.channelId, contactId) });
  const now = Date.now();
  await stack.core.services.leads.recordInbound({
    tenantId: w.tenantId,
    leadId: lead.leadId,
    messages: Array.from({ length: n }, (_, i) => ({
      providerMessageId: `webchat:${contactId}:seed-${i}`,
      channel: 'webchat' as const,
      contactId,
      sentAt: new Date(now + i).toISOString(),
      type: 'text' as const,
      text: `message ${i}`,
    })),
  });
  return lead.leadId;
}

async function sse(url: string, headers: Record<string, string>): Promise<SseStream> {
  const s = await openSse(url, headers);
  streams.push(s);
  return s;
}

/** The lead service with every call counted (each is one statement or more). */
function countingLeads(): { leads: LeadService; calls: () => number; byName: Map<string, number> } {
  const byName = new Map<string, number>();
  const real = stack.core.services.leads;
  const leads = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        byName.set(String(prop), (byName.get(String(prop)) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { leads, calls: () => [...byName.values()].reduce((a, b) => a + b, 0), byName };
}

/** The web chat routes alone, with a counted lead service and a short grace for streams without a conversation. */
async function routerApp(opts: { graceMs?: number; pollMs?: number } = {}) {
  const counted = countingLeads();
  const pollMs = opts.pollMs ?? 100;
  const hub = createStreamHub({ leads: counted.leads, log: stack.log, pollMs, graceMs: opts.graceMs ?? 300 });
  const app = express();
  app.use(
    createWebChatRouter({
      channels: stack.core.services.channels,
      leads: counted.leads,
      temporal: stack.temporal,
      log: stack.log,
      visitors: tokens(),
      pollMs,
      heartbeatMs: 15_000,
      maxMessagesPerMinute: 100,
      limiter: stack.core.services.rateLimiter,
      maxStreamsPerAddress: 1000,
      hub,
    }),
  );
  app.use(errorHandler(stack.log));
  return { url: await listen(app), ...counted, hub };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('web chat streams', () => {
  test('streams are capped per client address and per process: a clear 429 with the reason', async () => {
    const w = await createWebChat();
    // TRUST_PROXY=loopback: the test client (127.0.0.1) is a trusted proxy, X-Forwarded-For is the client
    const app = createApp({ ...stack, services: stack.core.services, database: stack.core.database, config: { ...stack.config, TRUST_PROXY: ['loopback'], WEBCHAT_MAX_STREAMS_PER_ADDRESS: 3, WEBCHAT_MAX_STREAMS: 5 } });
    const url = await listen(app);
    const from = (ip: string) => ({ ...mint(w).auth, 'x-forwarded-for': ip });
    for (let i = 0; i < 3; i++) expect((await sse(`${url}/webchat/${w.widgetKey}/stream`, from('203.0.113.7'))).status).toBe(200);
    const refused = await request(url).get(`/webchat/${w.widgetKey}/stream`).set(from('203.0.113.7')).expect(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(refused.body.error.message).toMatch(/too many open chat streams from this address \(at most 3\)/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // other addresses still get streams, up to the per-process cap
    expect((await sse(`${url}/webchat/${w.widgetKey}/stream`, from('198.51.100.1'))).status).toBe(200);
    expect((await sse(`${url}/webchat/${w.widgetKey}/stream`, from('198.51.100.2'))).status).toBe(200);
    const full = await request(url).get(`/webchat/${w.widgetKey}/stream`).set(from('198.51.100.3')).expect(429);
    expect(full.body.error.message).toMatch(/this server has too many open chat streams \(at most 5\)/);
    // a closed stream frees its place
    streams.at(-1)!.close();
    await waitFor(async () => (await sse(`${url}/webchat/${w.widgetKey}/stream`, from('198.51.100.3'))).status === 200, { what: 'a freed place' });
  });

  test('without TRUST_PROXY (the default) X-Forwarded-For is ignored: the TCP peer is the address', async () => {
    expect(loadConfig({}).TRUST_PROXY).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '1' }).TRUST_PROXY).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).TRUST_PROXY).toEqual(['loopback', '10.0.0.0/8']);
    expect(() => loadConfig({ TRUST_PROXY: 'everyone please' })).toThrow(/TRUST_PROXY/);
    const w = await createWebChat();
    const app = createApp({ ...stack, services: stack.core.services, database: stack.core.database, config: { ...stack.config, WEBCHAT_MAX_STREAMS_PER_ADDRESS: 2 } });
    const url = await listen(app);
    for (const ip of ['203.0.113.1', '203.0.113.2']) expect((await sse(`${url}/webchat/${w.widgetKey}/stream`, { ...mint(w).auth, 'x-forwarded-for': ip })).status).toBe(200);
    await request(url).get(`/webchat/${w.widgetKey}/stream`).set({ ...mint(w).auth, 'x-forwarded-for': '203.0.113.3' }).expect(429);
  });

  test('one shared read per channel: 40 streams cost what one costs; visitors without a conversation are not read for', async () => {
    const w = await createWebChat();
    const r = await routerApp({ graceMs: 300, pollMs: 100 });
    const withConv = Array.from({ length: 20 }, () => mint(w));
    for (const v of withConv) await seedConversation(w, v.contactId, 2);
    const without = Array.from({ length: 20 }, () => mint(w));
    const open = [...withConv, ...without].map((v) => sse(`${r.url}/webchat/${w.widgetKey}/stream`, v.auth));
    const opened = await Promise.all(open);
    expect(opened.every((s) => s.status === 200)).toBe(true);
    // every stream of a visitor with a conversation got its history
    await waitFor(() => opened.slice(0, 20).every((s) => s.events.length === 2), { what: 'histories' });
    await sleep(500); // past the grace of the new streams
    const c0 = r.calls();
    await sleep(2000);
    const perSecond = (r.calls() - c0) / 2;
    // one statement per poll interval (100 ms) for the whole channel, not one per stream (40 × 10/s)
    expect(perSecond).toBeLessThanOrEqual(12);
    expect(perSecond).toBeGreaterThanOrEqual(5);

    // a channel whose streams have no conversation costs nothing at all
    const w2 = await createWebChat();
    const idle = Array.from({ length: 10 }, () => mint(w2));
    const idleStreams = await Promise.all(idle.map((v) => sse(`${r.url}/webchat/${w2.widgetKey}/stream`, v.auth)));
    await sleep(600);
    const before = r.byName.get('chatChangesForContacts') ?? 0;
    const allBefore = r.calls();
    await sleep(1500);
    // only the first channel's reads went on (≤ 1 per 100 ms)
    expect((r.byName.get('chatChangesForContacts') ?? 0) - before).toBeLessThanOrEqual(17);
    expect(r.calls() - allBefore).toBe((r.byName.get('chatChangesForContacts') ?? 0) - before);
    for (const s of opened) s.close();
    await sleep(300);
    const quiet = r.calls();
    await sleep(800);
    expect(r.calls()).toBe(quiet); // no stream with a conversation left: no reads at all
    expect(r.hub.stats().pollingChannels).toBe(0);

    // the visitor writes (to this process): its stream wakes up and shows the conversation
    const [first] = idle;
    const post = await request(r.url).post(`/webchat/${w2.widgetKey}/messages`).set(first!.auth).send({ text: 'Hello there', clientMessageId: 'c-1' }).expect(202);
    expect(post.body.messageId).toBe(`webchat:${first!.contactId}:c-1`);
    const s = idleStreams[0]!;
    await s.waitFor((e) => (JSON.parse(e.data) as { direction: string }).direction === 'inbound', { what: 'the echo on the woken stream' });
    await s.waitFor((e) => (JSON.parse(e.data) as { direction: string }).direction === 'outbound', { what: 'the reply on the woken stream', timeoutMs: 30_000 });
    expect(idleStreams.slice(1).every((x) => x.events.length === 0)).toBe(true);
  });

  test('history reads and stream opens are limited per client address (in memory, no statement)', async () => {
    const w = await createWebChat();
    const app = createApp({ ...stack, services: stack.core.services, database: stack.core.database, config: { ...stack.config, TRUST_PROXY: ['loopback'], WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS: 3 } });
    const v = mint(w);
    const from = (ip: string) => ({ ...v.auth, 'x-forwarded-for': ip });
    for (let i = 0; i < 3; i++) await request(app).get(`/webchat/${w.widgetKey}/messages`).set(from('203.0.113.20')).expect(200);
    const refused = await request(app).get(`/webchat/${w.widgetKey}/messages`).set(from('203.0.113.20')).expect(429);
    expect(refused.body.error.message).toMatch(/too many chat reads from this address \(at most 3 a minute\)/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    await request(app).get(`/webchat/${w.widgetKey}/stream`).set(from('203.0.113.20')).expect(429);
    await request(app).get(`/webchat/${w.widgetKey}/messages`).set(from('203.0.113.21')).expect(200);
  });

  test('guessing widget keys costs one statement per key, not per request', async () => {
    const key = `wc_${'guess'.repeat(4)}${Date.now()}`;
    // counted at the lookup (other tests' stream readers may be polling the database meanwhile)
    const channels = stack.core.services.channels;
    const original = channels.routingByPhoneNumberId;
    let lookups = 0;
    channels.routingByPhoneNumberId = (...args) => ((lookups += 1), original(...args));
    try {
      for (let i = 0; i < 5; i++) await stack.api.get(`/webchat/${key}/messages`).expect(404);
      await stack.api.get(`/webchat/${key}/stream`).expect(404);
      expect(lookups).toBe(1);
    } finally {
      channels.routingByPhoneNumberId = original;
    }
  });

  test('the history route is capped and paginates', async () => {
    const w = await createWebChat();
    const v = mint(w);
    await seedConversation(w, v.contactId, 230);
    const api = stack.api;
    const tooMany = await api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).query({ limit: 201 }).expect(400);
    expect(tooMany.body.error.issues[0].path).toBe('limit');
    const first = await api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).expect(200);
    expect(first.body.items).toHaveLength(50);
    expect(first.body.items.at(-1).text).toBe('message 229');
    expect(first.body.lastEventId).toBe(first.body.items.at(-1).seq);
    const seen: string[] = first.body.items.map((m: { text: string }) => m.text);
    let cursor: string | null = first.body.nextCursor;
    let pages = 1;
    while (cursor) {
      const page = await api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).query({ limit: 100, before: cursor }).expect(200);
      expect(page.body.items.length).toBeLessThanOrEqual(100);
      expect(page.body.lastEventId).toBeUndefined();
      seen.unshift(...page.body.items.map((m: { text: string }) => m.text));
      cursor = page.body.nextCursor;
      pages += 1;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 230 }, (_, i) => `message ${i}`));
    await api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).query({ before: 'abc' }).expect(400);
  });
});

describe('web chat costs: new conversations', () => {
  test('new visitors are limited per client address and per widget, in the shared buckets', async () => {
    const w = await createWebChat();
    const other = await createWebChat();
    const app = createApp({
      ...stack,
      services: stack.core.services,
      database: stack.core.database,
      config: { ...stack.config, TRUST_PROXY: ['loopback'], WEBCHAT_NEW_CONVERSATIONS_PER_HOUR_PER_ADDRESS: 3, WEBCHAT_NEW_CONVERSATIONS_PER_HOUR: 5 },
    });
    const create = (key: string, ip: string) => request(app).post(`/webchat/${key}/visitors`).set('x-forwarded-for', ip).send({});
    for (let i = 0; i < 3; i++) expect((await create(w.widgetKey, '203.0.113.9')).status).toBe(201);
    const perAddress = await create(w.widgetKey, '203.0.113.9').expect(429);
    expect(perAddress.body.error.message).toMatch(/too many new conversations from this address \(at most 3 an hour\)/);
    expect(Number(perAddress.headers['retry-after'])).toBeGreaterThan(0);
    for (const ip of ['198.51.100.10', '198.51.100.11']) await create(w.widgetKey, ip).expect(201);
    const perWidget = await create(w.widgetKey, '198.51.100.12').expect(429);
    expect(perWidget.body.error.message).toMatch(/this chat has too many new conversations right now \(at most 5 an hour\)/);
    // another tenant's widget is not affected
    await create(other.widgetKey, '203.0.113.9').expect(201);
    // a rotated visitor id is no way around it: a made-up token is refused, without a database read
    const forged = await request(app).post(`/webchat/${w.widgetKey}/messages`).set('authorization', `Bearer vt1.${'A'.repeat(22)}.${'B'.repeat(43)}`).send({ text: 'hi', clientMessageId: 'x' }).expect(401);
    expect(forged.body.error.code).toBe('unauthorized');
  });

  test('an origin allowlist per widget: calls from another origin are a 403; settable through the channels API', async () => {
    const w = await createWebChat({ allowedOrigins: ['https://Shop.example'] });
    const ch = await stack.api.get(`/v1/channels/${w.channelId}`).set('authorization', `Bearer ${w.apiKey}`).expect(200);
    expect(ch.body.allowedOrigins).toEqual(['https://shop.example']);
    const app = () => createApp({ ...stack, services: stack.core.services, database: stack.core.database, config: stack.config });
    const a = app();
    const evil = { origin: 'https://evil.example' };
    const shop = { origin: 'https://shop.example' };
    const denied = await request(a).post(`/webchat/${w.widgetKey}/visitors`).set(evil).send({}).expect(403);
    expect(denied.body.error).toEqual({ code: 'forbidden', message: 'this chat widget does not accept requests from this origin' });
    const created = await request(a).post(`/webchat/${w.widgetKey}/visitors`).set(shop).send({}).expect(201);
    const auth = { authorization: `Bearer ${created.body.visitorToken}` };
    await request(a).post(`/webchat/${w.widgetKey}/messages`).set(auth).set(evil).send({ text: 'hi', clientMessageId: 'x' }).expect(403);
    await request(a).get(`/webchat/${w.widgetKey}/stream`).set(auth).set(evil).expect(403);
    await request(a).get(`/webchat/${w.widgetKey}/messages`).set(auth).set(evil).expect(403);
    await request(a).get(`/webchat/${w.widgetKey}/messages`).set(auth).set(shop).expect(200);
    // "null" (sandboxed frames, file://) is not on the list either
    await request(a).post(`/webchat/${w.widgetKey}/visitors`).set('origin', 'null').send({}).expect(403);

    // bad values are refused; another platform has no such setting
    const bad = await stack.api.patch(`/v1/channels/${w.channelId}`).set('authorization', `Bearer ${w.apiKey}`).send({ allowedOrigins: ['https://shop.example/path'] }).expect(400);
    expect(bad.body.error.issues[0].path).toMatch(/allowedOrigins/);
    const t = await createTenant(stack);
    await stack.api.patch(`/v1/channels/${t.channelId}`).set('authorization', `Bearer ${t.apiKey}`).send({ allowedOrigins: ['https://shop.example'] }).expect(400);
    // lifted: any origin again (a fresh app: the routing cache holds a channel for 30 s)
    const lifted = await stack.api.patch(`/v1/channels/${w.channelId}`).set('authorization', `Bearer ${w.apiKey}`).send({ allowedOrigins: null }).expect(200);
    expect(lifted.body.allowedOrigins).toBeNull();
    await request(app()).post(`/webchat/${w.widgetKey}/visitors`).set(evil).send({}).expect(201);
  });
});

describe('web chat credential', () => {
  test('the visitor token is checked, bound to its widget, and kept out of ids, logs and URLs', async () => {
    const w = await createWebChat();
    const w2 = await createWebChat();
    const created = await stack.api.post(`/webchat/${w.widgetKey}/visitors`).send({}).expect(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const token: string = created.body.visitorToken;
    expect(token).toMatch(/^vt1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const auth = { authorization: `Bearer ${token}` };
    const [, nonce, sig] = token.split('.') as [string, string, string];

    // no token, a forged one, another widget's: 401 everywhere
    await stack.api.post(`/webchat/${w.widgetKey}/messages`).send({ text: 'hi', clientMessageId: 'x' }).expect(401);
    await stack.api.get(`/webchat/${w.widgetKey}/stream`).expect(401);
    await stack.api.get(`/webchat/${w.widgetKey}/messages`).expect(401);
    const forged = `vt1.${nonce}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    await stack.api.get(`/webchat/${w.widgetKey}/messages`).set('authorization', `Bearer ${forged}`).expect(401);
    await stack.api.post(`/webchat/${w2.widgetKey}/messages`).set(auth).send({ text: 'hi', clientMessageId: 'x' }).expect(401);
    // never in a URL: the old query parameters are refused
    await stack.api.get(`/webchat/${w.widgetKey}/messages`).query({ visitorId: token }).set(auth).expect(400);
    await stack.api.get(`/webchat/${w.widgetKey}/stream`).query({ token }).set(auth).expect(400);

    await stack.api.post(`/webchat/${w.widgetKey}/messages`).set(auth).send({ text: 'Hello, token test', clientMessageId: 'c-1' }).expect(202);
    const leads = await waitFor(async () => {
      const l = await stack.api.get('/v1/leads').set('authorization', `Bearer ${w.apiKey}`).expect(200);
      return l.body.items.length ? l.body.items : undefined;
    }, { what: 'the lead' });
    const contactId: string = leads[0].contactId;
    expect(contactId).toMatch(/^wv_[A-Za-z0-9_-]{32}$/);
    expect(leads[0].workflowId).toBe(stack.leadWorkflowId(w.channelId, contactId));
    for (const secret of [nonce, sig]) {
      expect(contactId).not.toContain(secret);
      expect(JSON.stringify(leads)).not.toContain(secret);
      expect(stack.logLines.filter((l) => l.includes(secret))).toEqual([]);
    }
    // the contact id is no credential: it is refused as a token
    await stack.api.get(`/webchat/${w.widgetKey}/messages`).set('authorization', `Bearer ${contactId}`).expect(401);
    // the workflow's state and history carry the contact id only
    const history = await stack.temporal.client.workflow.getHandle(stack.leadWorkflowId(w.channelId, contactId)).fetchHistory();
    expect(JSON.stringify(history)).not.toContain(sig);
  });
});
