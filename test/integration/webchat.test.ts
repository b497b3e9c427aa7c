/**
 * Web chat through the whole stack: the public routes, the lead workflow on the dev server, the
 * real worker and activities, the fake LLM, and the SSE stream read over a real HTTP socket.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { createWebChatActivities } from '../../activities/channels/webchat';
import { createApp } from '../../api/app';
import { OFFLINE_REPLY_MARKER } from '../../fakes/openai';
import type { ParleyTemporal } from '../../temporal/client';
import { createVisitorTokens, webChatVisitorSecret } from '../../services/webchat-visitors';
import { openSse, type SseStream } from '../support/sse';
import { createTenant, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
let server: http.Server;
let baseUrl: string;
const streams: SseStream[] = [];

beforeAll(async () => {
  stack = await startStack({ WEBCHAT_POLL_MS: '100' });
  server = http.createServer(stack.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of streams) s.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await stack?.stop();
});

interface WebChat {
  tenantId: string;
  apiKey: string;
  channelId: string;
  widgetKey: string;
}

async function createWebChat(credits = 20): Promise<WebChat> {
  const t = await createTenant(stack, { credits });
  const ch = await stack.api
    .post('/v1/channels')
    .set('authorization', `Bearer ${t.apiKey}`)
    .send({ platform: 'webchat', agentId: t.agentId, displayPhoneNumber: 'Acme support' })
    .expect(201);
  expect(ch.body.widgetKey).toMatch(/^wc_/);
  return { tenantId: t.tenantId, apiKey: t.apiKey, channelId: ch.body.id, widgetKey: ch.body.widgetKey };
}

/** A new visitor of the widget: its token (the credential) and the contact id the server derives from it. */
interface Visitor {
  token: string;
  contactId: string;
  auth: { authorization: string };
}
async function visitorOf(w: WebChat): Promise<Visitor> {
  const r = await stack.api.post(`/webchat/${w.widgetKey}/visitors`).send({}).expect(201);
  const token = r.body.visitorToken as string;
  expect(token).toMatch(/^vt1\./);
  const contactId = createVisitorTokens(webChatVisitorSecret(stack.config)).verify(w.channelId, token)!.contactId;
  return { token, contactId, auth: { authorization: `Bearer ${token}` } };
}

async function stream(widgetKey: string, v: Visitor, headers: Record<string, string> = {}, query = ''): Promise<SseStream> {
  const s = await openSse(`${baseUrl}/webchat/${widgetKey}/stream${query ? `?${query.replace(/^&/, '')}` : ''}`, { ...v.auth, ...headers });
  streams.push(s);
  return s;
}

const parsed = (e: { data: string }) => JSON.parse(e.data) as { id: string; seq: number; direction: string; text: string; clientMessageId?: string; at: string };

describe('web chat', () => {
  test('a visitor writes: the reply arrives on the stream and in the history; a resumed stream continues after Last-Event-ID', async () => {
    const w = await createWebChat();
    const v = await visitorOf(w);
    const s = await stream(w.widgetKey, v);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(s.headers['access-control-allow-origin']).toBe('*');
    expect(s.headers['cache-control']).toContain('no-cache');

    const text = `Do you deliver to Lisbon? ${randomBytes(4).toString('hex')}`;
    const res = await stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ text: `  ${text}  `, clientMessageId: 'm-1' }).expect(202);
    expect(res.body).toEqual({ messageId: `webchat:${v.contactId}:m-1` });
    expect(res.headers['access-control-allow-origin']).toBe('*');

    const inboundEvent = await s.waitFor((e) => parsed(e).direction === 'inbound', { what: 'the visitor message echoed' });
    const replyEvent = await s.waitFor((e) => parsed(e).direction === 'outbound', { what: 'the AI reply' });
    const inbound = parsed(inboundEvent);
    const reply = parsed(replyEvent);
    expect(inbound).toMatchObject({ direction: 'inbound', text, clientMessageId: 'm-1' });
    expect(reply.text).toContain(OFFLINE_REPLY_MARKER);
    expect(reply.text).toContain('Do you deliver to Lisbon?');
    expect(reply.seq).toBeGreaterThan(inbound.seq);
    expect(Number(inboundEvent.id)).toBe(inbound.seq);
    expect(Number(replyEvent.id)).toBe(reply.seq);
    expect(s.retry).toBe(2000);

    // the lead is a web chat lead of that workflow, its reply recorded as sent
    const leads = await stack.api.get('/v1/leads').set('authorization', `Bearer ${w.apiKey}`).expect(200);
    expect(leads.body.items[0]).toMatchObject({ channel: 'webchat', contactId: v.contactId, workflowId: stack.leadWorkflowId(w.channelId, v.contactId) });
    // the credential is in no id the tenant or Temporal sees
    expect(JSON.stringify(leads.body)).not.toContain(v.token.split('.')[1]);
    const msgs = await stack.api.get(`/v1/leads/${leads.body.items[0].id}/messages`).set('authorization', `Bearer ${w.apiKey}`).expect(200);
    const out = msgs.body.items.find((m: { direction: string }) => m.direction === 'outbound');
    expect(out).toMatchObject({ id: reply.id, status: 'sent', providerMessageId: `webchat:${reply.id}` });

    const history = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).expect(200);
    expect(history.body.items).toEqual([inbound, reply]);
    expect(history.body.lastEventId).toBe(reply.seq);
    expect(history.headers['access-control-allow-origin']).toBe('*');

    // a reconnect resumes after the last event it saw, as EventSource does
    const resumed = await stream(w.widgetKey, v, { 'last-event-id': String(inbound.seq) });
    const again = await resumed.waitFor(() => true, { what: 'the reply after the resume point' });
    expect(parsed(again)).toEqual(reply);
    // the header wins over the query parameter (the browser's newer position)
    const caughtUp = await stream(w.widgetKey, v, { 'last-event-id': String(reply.seq) }, `lastEventId=${inbound.seq}`);
    // a fresh stream without a resume point starts with the recent history
    const fresh = await stream(w.widgetKey, v);
    await fresh.waitFor((e) => parsed(e).id === reply.id, { what: 'history on a fresh stream' });
    expect(fresh.events.map(parsed)).toEqual([inbound, reply]);
    await new Promise((r) => setTimeout(r, 600));
    expect(caughtUp.events).toEqual([]);
    expect(resumed.events).toHaveLength(1);

    // a second message: only the new messages arrive on the open stream
    await stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ text: 'And to Porto?', clientMessageId: 'm-2' }).expect(202);
    const second = await s.waitFor((e) => parsed(e).direction === 'outbound' && parsed(e).text.includes('And to Porto?'), { what: 'second reply' });
    expect(s.events.map((e) => parsed(e).id)).toEqual([inbound.id, reply.id, expect.any(String), parsed(second).id]);
    // the message text is never logged at info
    expect(stack.logLines.filter((l) => l.includes('Lisbon') || l.includes('Porto'))).toEqual([]);
    expect(stack.logLines.some((l) => l.includes('web chat message accepted'))).toBe(true);
    // nor the visitor's credential, at any level
    expect(stack.logLines.filter((l) => l.includes(v.token.split('.')[1]!) || l.includes(v.token.split('.')[2]!))).toEqual([]);
  });

  test('the same clientMessageId posted twice is recorded once and answered once', async () => {
    const w = await createWebChat();
    const v = await visitorOf(w);
    const msg = { text: `Is the blue one in stock? ${randomBytes(4).toString('hex')}`, clientMessageId: 'dup-1' };
    const [a, b] = await Promise.all([
      stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send(msg).expect(202),
      stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send(msg).expect(202),
    ]);
    expect(a.body.messageId).toBe(b.body.messageId);
    await waitFor(async () => {
      const h = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth);
      return h.body.items.some((m: { direction: string }) => m.direction === 'outbound');
    }, { what: 'the reply' });
    // a retry after the reply is still the same message
    await stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send(msg).expect(202);
    // a later, different message proves the workflow handled everything before it
    await stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ ...msg, text: 'Thanks!', clientMessageId: 'dup-2' }).expect(202);
    const items = await waitFor(async () => {
      const h = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth);
      const out = h.body.items.filter((m: { direction: string }) => m.direction === 'outbound');
      return out.length === 2 ? h.body.items : undefined;
    }, { what: 'the second reply' });
    expect(items.map((m: { direction: string; clientMessageId?: string }) => [m.direction, m.clientMessageId])).toEqual([
      ['inbound', 'dup-1'],
      ['outbound', undefined],
      ['inbound', 'dup-2'],
      ['outbound', undefined],
    ]);
    // the reply is visible once sent; the workflow counts it after capturing the credit
    const state = await waitFor(async () => {
      const st = await stack.temporal.leadState(stack.leadWorkflowId(w.channelId, v.contactId));
      return st && st.counters.replies === 2 ? st : undefined;
    }, { what: 'two replies counted' });
    expect(state.counters).toMatchObject({ inbound: 2, replies: 2 });
    expect(state.counters.duplicates).toBeGreaterThanOrEqual(2);
  });

  test('bad input is a 4xx with reasons', async () => {
    const w = await createWebChat(0);
    const path = `/webchat/${w.widgetKey}/messages`;
    const v = await visitorOf(w);
    const bad = async (body: unknown, status = 400) => {
      const r = await stack.api.post(path).set(v.auth).send(body as object).expect(status);
      expect(r.headers['access-control-allow-origin']).toBe('*');
      return r.body.error as { code: string; message: string; issues?: { path: string; message: string }[] };
    };
    const paths = (e: { issues?: { path: string }[] }) => (e.issues ?? []).map((i) => i.path).sort();

    let e = await bad({});
    expect(e.code).toBe('validation_failed');
    expect(paths(e)).toEqual(['clientMessageId', 'text']);
    e = await bad({ text: '   \n ', clientMessageId: 'x' });
    expect(e.issues).toEqual([expect.objectContaining({ path: 'text', message: 'must not be empty' })]);
    e = await bad({ text: 'x'.repeat(4097), clientMessageId: 'x' });
    expect(e.issues).toEqual([expect.objectContaining({ path: 'text', message: 'must be at most 4096 characters' })]);
    e = await bad({ text: 'hi', clientMessageId: 'x'.repeat(101) });
    expect(paths(e)).toEqual(['clientMessageId']);
    e = await bad({ text: 'hi', clientMessageId: '' });
    expect(paths(e)).toEqual(['clientMessageId']);
    e = await bad({ text: 'hi', clientMessageId: 'x', name: 'Eve' });
    expect(e.issues?.[0]?.message).toMatch(/unrecognized/i);
    // the old visitor id in the body is no credential any more
    e = await bad({ visitorId: 'v_0123456789abcdefghij', text: 'hi', clientMessageId: 'x' });
    expect(e.issues?.[0]?.message).toMatch(/unrecognized/i);
    e = await bad({ text: 42, clientMessageId: 'x' });
    expect(paths(e)).toEqual(['text']);

    const notJson = await stack.api.post(path).set(v.auth).set('content-type', 'application/json').send('{"text":').expect(400);
    expect(notJson.body.error.code).toBe('invalid_json');
    const plain = await stack.api.post(path).set(v.auth).set('content-type', 'text/plain').send('hello').expect(415);
    expect(plain.body.error.code).toBe('unsupported_media_type');
    const big = await stack.api.post(path).set(v.auth).set('content-type', 'application/json').send(JSON.stringify({ text: 'x'.repeat(20_000), clientMessageId: 'x' })).expect(413);
    expect(big.body.error.code).toBe('payload_too_large');

    const badResume = await stack.api.get(`/webchat/${w.widgetKey}/stream`).set(v.auth).set('last-event-id', 'abc').expect(400);
    expect(badResume.body.error.message).toMatch(/Last-Event-ID/);
    const badLimit = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).query({ limit: 500 }).expect(400);
    expect(badLimit.body.error.issues.map((i: { path: string }) => i.path)).toEqual(['limit']);
    const extra = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).query({ admin: 1 }).expect(400);
    expect(extra.body.error.code).toBe('validation_failed');
    const badVisitorBody = await stack.api.post(`/webchat/${w.widgetKey}/visitors`).send({ visitorId: 'v_0123456789abcdefghij' }).expect(400);
    expect(badVisitorBody.body.error.code).toBe('validation_failed');
  });

  test('an unknown widget key is a 404 everywhere', async () => {
    const w = await createWebChat(0);
    const v = await visitorOf(w);
    for (const key of ['wc_doesnotexist000', 'not-a-key']) {
      const post = await stack.api.post(`/webchat/${key}/messages`).set(v.auth).send({ text: 'hi', clientMessageId: 'x' }).expect(404);
      expect(post.body.error).toEqual({ code: 'not_found', message: 'unknown widget key' });
      await stack.api.get(`/webchat/${key}`).expect(404);
      await stack.api.post(`/webchat/${key}/visitors`).send({}).expect(404);
      await stack.api.get(`/webchat/${key}/messages`).set(v.auth).expect(404);
      await stack.api.get(`/webchat/${key}/stream`).set(v.auth).expect(404);
    }
    // a WhatsApp channel's phone_number_id is no widget key
    const t = await createTenant(stack);
    await stack.api.get(`/webchat/wc_${t.phoneNumberId}`).expect(404);
  });

  test('the page, the script and CORS preflight', async () => {
    const w = await createWebChat(0);
    const page = await stack.api.get(`/webchat/${w.widgetKey}`).expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(`data-widget-key="${w.widgetKey}"`);
    expect(page.text).toContain('src="widget.js"');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const js = await stack.api.get('/webchat/widget.js').expect(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['access-control-allow-origin']).toBe('*');
    expect(js.text).toContain('getReader');
    const preflight = await stack.api
      .options(`/webchat/${w.widgetKey}/messages`)
      .set('origin', 'https://shop.example')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization, content-type')
      .expect(204);
    expect(preflight.headers).toMatchObject({ 'access-control-allow-origin': '*', 'access-control-allow-methods': expect.stringContaining('POST') });
    expect(preflight.headers['access-control-allow-headers']).toContain('content-type');
    expect(preflight.headers['access-control-allow-headers']).toContain('authorization');
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
    // a visitor with no conversation yet has an empty history
    const empty = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set((await visitorOf(w)).auth).expect(200);
    expect(empty.body).toEqual({ items: [], lastEventId: 0, nextCursor: null });
  });

  test('Temporal unavailable is a 503; a visitor over the per-minute limit gets a 429', async () => {
    const w = await createWebChat(0);
    const v = await visitorOf(w);
    const down = { ...stack.temporal, signalInbound: () => Promise.reject(new Error('14 UNAVAILABLE: connection refused')) } as ParleyTemporal;
    const app = createApp({ config: stack.config, log: stack.log, database: stack.core.database, services: stack.core.services, temporal: down });
    const r = await request(app).post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ text: 'hello?', clientMessageId: 'x' }).expect(503);
    expect(r.body.error.code).toBe('unavailable');
    expect(r.body.error.message).not.toContain('connection refused');

    const accepted: string[] = [];
    const up = { ...stack.temporal, signalInbound: async (_t: unknown, m: { providerMessageId: string }) => (accepted.push(m.providerMessageId), { workflowId: 'x' }) } as unknown as ParleyTemporal;
    const limited = createApp({ config: { ...stack.config, WEBCHAT_MAX_MESSAGES_PER_MINUTE: 2 }, log: stack.log, database: stack.core.database, services: stack.core.services, temporal: up });
    for (const id of ['a', 'b']) await request(limited).post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ text: 'hi', clientMessageId: id }).expect(202);
    const third = await request(limited).post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ text: 'hi', clientMessageId: 'c' }).expect(429);
    expect(third.body.error.code).toBe('rate_limited');
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    // another visitor is not limited
    await request(limited).post(`/webchat/${w.widgetKey}/messages`).set((await visitorOf(w)).auth).send({ text: 'hi', clientMessageId: 'a' }).expect(202);
    expect(accepted).toHaveLength(3);
    // many visitors from one address: limited there too (five times the visitor limit); tokens
    // minted directly here, past the new-conversation limit that POST /visitors applies
    const w2 = await createWebChat(0);
    const tokens = createVisitorTokens(webChatVisitorSecret(stack.config));
    const fresh = async () => (await request(limited).post(`/webchat/${w2.widgetKey}/messages`).set('authorization', `Bearer ${tokens.issue(w2.channelId).token}`).send({ text: 'hi', clientMessageId: 'a' })).status;
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push(await fresh());
    expect(statuses.slice(0, 10).every((st) => st === 202)).toBe(true);
    expect(statuses[10]).toBe(429);
  });

  test('sendWebChatText is effectively once: a retry returns the stored id', async () => {
    const w = await createWebChat();
    const v = await visitorOf(w);
    await stack.api.post(`/webchat/${w.widgetKey}/messages`).set(v.auth).send({ text: 'Hello', clientMessageId: 'h' }).expect(202);
    const lead = await waitFor(() => stack.core.services.leads.findByContact(w.channelId, v.contactId), { what: 'lead' });
    const { sendWebChatText } = createWebChatActivities({ leads: stack.core.services.leads });
    const s = await stream(w.widgetKey, v);
    const input = { tenantId: w.tenantId, leadId: lead.id, channelAccountId: w.channelId, outboundMessageId: crypto.randomUUID(), to: v.contactId, text: 'A human here: how can I help?' };
    const first = await sendWebChatText(input);
    expect(first).toEqual({ outboundMessageId: input.outboundMessageId, providerMessageId: `webchat:${input.outboundMessageId}`, alreadySent: false });
    const retry = await sendWebChatText({ ...input, text: 'something else' });
    expect(retry).toEqual({ ...first, alreadySent: true });
    await s.waitFor((e) => parsed(e).id === input.outboundMessageId, { what: 'the sent message on the stream' });
    const h = await stack.api.get(`/webchat/${w.widgetKey}/messages`).set(v.auth).expect(200);
    const mine = h.body.items.filter((m: { id: string }) => m.id === input.outboundMessageId);
    expect(mine).toEqual([expect.objectContaining({ direction: 'outbound', text: 'A human here: how can I help?' })]);
  });
});
