/**
 * Outbound webhooks on the real dev server (issue 12): endpoints registered through the API, the
 * outbox written with the facts (a WhatsApp message → message.received), deliveries by the
 * delivery workflow to a local receiver (node:http) that fails (500), times out and then
 * succeeds, Standard Webhooks signatures checked with our own HMAC, a permanently failing
 * endpoint ending failed and disabled, a final 4xx and a manual retry, the secret shown once and
 * rotated, roles and tenant isolation. Short retry intervals come from the WEBHOOK_* config.
 * The deliveries run on the webhook lane (`<task queue>-webhooks`); one started on the main task
 * queue by an earlier version finishes there and is not started again by the relay.
 */
import { createHmac, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { webhookDeliveries, webhookEndpoints } from '../../db/schema';
import { createSecretBox, parseEncryptionKey } from '../../lib/crypto';
import { rewrapWebhookSecrets, webhookSecretContext } from '../../services/webhook-endpoints';
import { bearer, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack, type TenantFixture } from '../support/stack';
import { WEBHOOK_DELIVERY_WORKFLOW_TYPE, webhookDeliveryWorkflowId, webhookTaskQueue, type webhookDeliveryWorkflow } from '../../workflows/webhook-delivery';

jest.setTimeout(120_000);

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * The receiver: what it answers depends on the path and, for `/flaky`, on the attempt of each
 * webhook-id (1st: 500, 2nd: no answer until the sender times out, 3rd and later: 200).
 */
let receiver: http.Server;
let receiverUrl: string;
const received: Received[] = [];
const behaviour: Record<string, 'ok' | 'flaky' | 'fail' | 'reject'> = {};
beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const mode = behaviour[path] ?? 'ok';
      const attempt = received.filter((r) => r.path === path && r.headers['webhook-id'] === req.headers['webhook-id']).length;
      if (mode === 'fail' || (mode === 'flaky' && attempt === 1)) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`boom ${'x'.repeat(2000)}`);
      } else if (mode === 'flaky' && attempt === 2) {
        setTimeout(() => res.writeHead(200).end('too late'), 5_000).unref();
      } else if (mode === 'reject') {
        res.writeHead(410, { 'content-type': 'text/plain' }).end('gone');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      }
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    // this file registers endpoints: its stack runs the outbox relay (test/support/stack.ts turns it off elsewhere)
    WEBHOOK_RELAY: 'true',
    WEBHOOK_DISPATCH_INTERVAL_MS: '100',
    WEBHOOK_TIMEOUT_MS: '700',
    WEBHOOK_RETRY_INITIAL_MS: '200',
    WEBHOOK_RETRY_MAX_INTERVAL_MS: '500',
    WEBHOOK_RETRY_MAX_DURATION_MS: '4000',
    WEBHOOK_DISABLE_AFTER_FAILURES: '2',
  });
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: TenantFixture) => bearer(t.apiKey);

/** Our own Standard Webhooks check: `v1,` + base64 HMAC-SHA256 over `${id}.${timestamp}.${body}` with the secret's decoded bytes. */
function validSignature(secret: string, r: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${String(r.headers['webhook-id'])}.${String(r.headers['webhook-timestamp'])}.${r.body}`).digest('base64');
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((s) => s === `v1,${expected}`);
}

async function register(t: TenantFixture, path: string, events: string[] = ['message.received']) {
  const r = await stack.api.post('/v1/webhook-endpoints').set(auth(t)).send({ url: `${receiverUrl}${path}`, events, description: `receiver ${path}` }).expect(201);
  return r.body as { id: string; secret: string; enabled: boolean };
}

async function deliveries(t: TenantFixture, endpointId: string) {
  return (await stack.api.get(`/v1/webhook-endpoints/${endpointId}/deliveries`).set(auth(t)).expect(200)).body.items as {
    id: string;
    eventId: string;
    eventType: string;
    status: string;
    attempts: number;
    lastStatus: number | null;
    lastResponse: string | null;
  }[];
}

const inbound = (t: TenantFixture, text: string, from = randomWaId()) => postWebhook(stack, textWebhook(t.phoneNumberId, from, text)).expect(200);

test('a delivery that fails (500) and times out is retried and succeeds, signed; the secret is shown once and rotates', async () => {
  const t = await createTenant(stack);
  const path = `/flaky-${Date.now()}`;
  behaviour[path] = 'flaky';
  const endpoint = await register(t, path, ['message.received', 'lead.created']);
  expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  expect(Buffer.from(endpoint.secret.slice(6), 'base64')).toHaveLength(32);
  // never again: not in the read, the list or the audit log
  const read = await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}`).set(auth(t)).expect(200);
  expect(read.body).not.toHaveProperty('secret');
  expect(read.body).toMatchObject({ url: `${receiverUrl}${path}`, events: ['message.received', 'lead.created'], enabled: true, description: `receiver ${path}` });
  const list = await stack.api.get('/v1/webhook-endpoints?limit=1').set(auth(t)).expect(200);
  expect(list.body).toEqual({ items: [expect.objectContaining({ id: endpoint.id })], nextCursor: null });
  expect(JSON.stringify(list.body)).not.toContain(endpoint.secret);

  await inbound(t, 'Hi there, webhook me');
  const done = await waitFor(
    async () => {
      const ds = await deliveries(t, endpoint.id);
      const msg = ds.find((d) => d.eventType === 'message.received');
      return msg?.status === 'succeeded' && ds.find((d) => d.eventType === 'lead.created')?.status === 'succeeded' ? ds : undefined;
    },
    { what: 'both deliveries succeeded', timeoutMs: 30_000 },
  );
  const msg = done.find((d) => d.eventType === 'message.received')!;
  expect(msg).toMatchObject({ attempts: 3, lastStatus: 200, lastResponse: '{"ok":true}' });

  const attempts = received.filter((r) => r.path === path && r.headers['webhook-id'] === msg.eventId);
  expect(attempts).toHaveLength(3);
  // every attempt: the same webhook-id and body, a fresh timestamp, a valid signature
  for (const a of attempts) {
    expect(a.headers['content-type']).toBe('application/json');
    expect(a.body).toBe(attempts[0]!.body);
    expect(Math.abs(Number(a.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(validSignature(endpoint.secret, a)).toBe(true);
  }
  const body = JSON.parse(attempts[2]!.body) as { type: string; timestamp: string; data: Record<string, unknown> };
  expect(body).toMatchObject({ type: 'message.received', data: { text: 'Hi there, webhook me', type: 'text' } });
  expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
  const created = received.find((r) => r.path === path && JSON.parse(r.body).type === 'lead.created');
  expect(JSON.parse(created!.body).data).toMatchObject({ channel: 'whatsapp', channelAccountId: t.channelId });

  // rotation: a new secret, answered once; the next delivery is signed with it, not the old one
  const rotated = await stack.api.post(`/v1/webhook-endpoints/${endpoint.id}/rotate-secret`).set(auth(t)).expect(201);
  expect(rotated.body.secret).toMatch(/^whsec_/);
  expect(rotated.body.secret).not.toBe(endpoint.secret);
  behaviour[path] = 'ok';
  await inbound(t, 'second message');
  const second = await waitFor(() => received.find((r) => r.path === path && r.body.includes('second message')), { what: 'second delivery' });
  expect(validSignature(rotated.body.secret, second)).toBe(true);
  expect(validSignature(endpoint.secret, second)).toBe(false);
  // secrets are never logged
  const logs = stack.logLines.join('\n');
  expect(logs).not.toContain(endpoint.secret.slice(6));
  expect(logs).not.toContain(rotated.body.secret.slice(6));
});

test('a permanently failing endpoint: deliveries end failed after the retry period, the endpoint is disabled (audited), a 4xx is final, a retry delivers again', async () => {
  const t = await createTenant(stack);
  const failing = `/fail-${Date.now()}`;
  behaviour[failing] = 'fail';
  const endpoint = await register(t, failing);

  await inbound(t, 'first');
  await inbound(t, 'second');
  const failed = await waitFor(
    async () => {
      const ds = await deliveries(t, endpoint.id);
      return ds.length === 2 && ds.every((d) => d.status === 'failed') ? ds : undefined;
    },
    { what: 'two failed deliveries', timeoutMs: 40_000 },
  );
  for (const d of failed) {
    expect(d.attempts).toBeGreaterThan(1);
    expect(d.lastStatus).toBe(500);
    // a short, bounded excerpt of the answer
    expect(d.lastResponse!.startsWith('boom ')).toBe(true);
    expect(d.lastResponse!.length).toBeLessThanOrEqual(500);
  }
  const disabled = await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}`).set(auth(t)).expect(200);
  expect(disabled.body).toMatchObject({ enabled: false, disabledReason: 'failures', consecutiveFailures: 2 });
  const audit = await stack.api.get('/v1/audit-log?limit=50').set(auth(t)).expect(200);
  expect(audit.body.items).toContainEqual(expect.objectContaining({ action: 'webhook_endpoint.disabled', target: { webhookEndpointId: endpoint.id } }));

  // disabled: a new event makes no delivery; a retry is refused until it is enabled again
  const seen = received.filter((r) => r.path === failing).length;
  await inbound(t, 'third');
  await new Promise((r) => setTimeout(r, 1_000));
  expect(await deliveries(t, endpoint.id)).toHaveLength(2);
  await stack.api.post(`/v1/webhook-endpoints/${endpoint.id}/deliveries/${failed[0]!.id}/retry`).set(auth(t)).expect(409);
  await stack.api.patch(`/v1/webhook-endpoints/${endpoint.id}`).set(auth(t)).send({ enabled: true }).expect(200);
  behaviour[failing] = 'ok';
  const retried = await stack.api.post(`/v1/webhook-endpoints/${endpoint.id}/deliveries/${failed[0]!.id}/retry`).set(auth(t)).expect(202);
  expect(retried.body.status).toBe('pending');
  await waitFor(async () => (await deliveries(t, endpoint.id)).find((d) => d.id === failed[0]!.id && d.status === 'succeeded'), { what: 'retried delivery succeeded' });
  expect(received.filter((r) => r.path === failing).length).toBeGreaterThan(seen);
  expect((await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}`).set(auth(t)).expect(200)).body).toMatchObject({ enabled: true, consecutiveFailures: 0 });
  // a delivery still running cannot be retried; an unknown one is a 404
  await stack.api.post(`/v1/webhook-endpoints/${endpoint.id}/deliveries/00000000-0000-4000-8000-000000000000/retry`).set(auth(t)).expect(404);

  // a 4xx (other than 408 and 429) is final: one attempt
  const rejecting = `/reject-${Date.now()}`;
  behaviour[rejecting] = 'reject';
  const gone = await register(t, rejecting);
  await inbound(t, 'fourth');
  const [d] = await waitFor(
    async () => {
      const ds = await deliveries(t, gone.id);
      return ds.length === 1 && ds[0]!.status === 'failed' ? ds : undefined;
    },
    { what: 'a rejected delivery', timeoutMs: 20_000 },
  );
  expect(d).toMatchObject({ attempts: 1, lastStatus: 410, lastResponse: 'gone' });
});

test('registration: event names and urls validated (SSRF rules on the form; link-local refused even in test mode)', async () => {
  const t = await createTenant(stack);
  for (const body of [
    { url: 'ftp://example.com/hook', events: ['lead.created'] },
    { url: 'http://169.254.169.254/latest/meta-data', events: ['lead.created'] },
    { url: 'http://10.0.0.5/hook', events: ['lead.created'] },
    { url: 'https://user:pass@example.com/hook', events: ['lead.created'] },
    { url: 'not a url', events: ['lead.created'] },
    { url: 'https://example.com/hook', events: ['lead.nope'] },
    { url: 'https://example.com/hook', events: [] },
    { url: 'https://example.com/hook', events: ['lead.created'], extra: true },
  ]) {
    const r = await stack.api.post('/v1/webhook-endpoints').set(auth(t)).send(body);
    expect([body, r.status]).toEqual([body, 400]);
  }
  const ok = await stack.api.post('/v1/webhook-endpoints').set(auth(t)).send({ url: 'https://example.com/hook', events: ['lead.qualified', 'channel.circuit_opened'] }).expect(201);
  const patched = await stack.api.patch(`/v1/webhook-endpoints/${ok.body.id}`).set(auth(t)).send({ events: ['dead_letter.opened'], description: null, enabled: false }).expect(200);
  expect(patched.body).toMatchObject({ events: ['dead_letter.opened'], description: null, enabled: false, disabledReason: 'manual' });
  await stack.api.patch(`/v1/webhook-endpoints/${ok.body.id}`).set(auth(t)).send({ url: 'http://192.168.1.1/' }).expect(400);
  await stack.api.delete(`/v1/webhook-endpoints/${ok.body.id}`).set(auth(t)).expect(200);
  await stack.api.get(`/v1/webhook-endpoints/${ok.body.id}`).set(auth(t)).expect(404);
});

test('roles: managers change, setup readers read, agents neither; another tenant gets 404 everywhere', async () => {
  const t = await createTenant(stack);
  const other = await createTenant(stack);
  const endpoint = await register(t, '/roles');
  const keyOf = async (role: string) => (await stack.api.post('/v1/api-keys').set(auth(t)).send({ name: role, role }).expect(201)).body.key as string;
  const [manager, agent, readonly] = [await keyOf('manager'), await keyOf('agent'), await keyOf('readonly')];

  await stack.api.get('/v1/webhook-endpoints').set(bearer(readonly)).expect(200);
  await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}/deliveries`).set(bearer(readonly)).expect(200);
  await stack.api.post('/v1/webhook-endpoints').set(bearer(readonly)).send({ url: `${receiverUrl}/x`, events: ['lead.created'] }).expect(403);
  await stack.api.post(`/v1/webhook-endpoints/${endpoint.id}/rotate-secret`).set(bearer(readonly)).expect(403);
  await stack.api.get('/v1/webhook-endpoints').set(bearer(agent)).expect(403);
  await stack.api.patch(`/v1/webhook-endpoints/${endpoint.id}`).set(bearer(agent)).send({ enabled: false }).expect(403);
  await stack.api.patch(`/v1/webhook-endpoints/${endpoint.id}`).set(bearer(manager)).send({ description: 'by a manager' }).expect(200);

  const o = auth(other);
  await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}`).set(o).expect(404);
  await stack.api.patch(`/v1/webhook-endpoints/${endpoint.id}`).set(o).send({ enabled: false }).expect(404);
  await stack.api.post(`/v1/webhook-endpoints/${endpoint.id}/rotate-secret`).set(o).expect(404);
  await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}/deliveries`).set(o).expect(404);
  await stack.api.delete(`/v1/webhook-endpoints/${endpoint.id}`).set(o).expect(404);
  expect((await stack.api.get('/v1/webhook-endpoints').set(o).expect(200)).body).toEqual({ items: [], nextCursor: null });
  // the owner still has it, unchanged by the other tenant
  expect((await stack.api.get(`/v1/webhook-endpoints/${endpoint.id}`).set(auth(t)).expect(200)).body).toMatchObject({ enabled: true, description: 'by a manager' });
});

test('the lead facts reach the endpoint: lead.created, message.received, message.sent (the AI reply), lead.stage_changed, lead.handoff_requested', async () => {
  const t = await createTenant(stack, { credits: 10 });
  const path = `/lead-${Date.now()}`;
  const endpoint = await register(t, path, ['lead.created', 'message.received', 'message.sent', 'lead.stage_changed', 'lead.handoff_requested']);
  const from = randomWaId();
  await inbound(t, 'Hello, I want a quote', from);
  const typesOf = () => received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });
  await waitFor(() => typesOf().some((e) => e.type === 'message.sent'), { what: 'message.sent', timeoutMs: 30_000 });
  const lead = (await stack.api.get('/v1/leads').set(auth(t)).expect(200)).body.items.find((l: { contactId: string }) => l.contactId === from) as { id: string };
  await stack.api.post(`/v1/leads/${lead.id}/stage`).set(auth(t)).send({ stage: 'Qualified' }).expect(200);
  await stack.api.post(`/v1/leads/${lead.id}/handoff`).set(auth(t)).send({}).expect(200);
  await waitFor(() => typesOf().some((e) => e.type === 'lead.handoff_requested') && typesOf().some((e) => e.type === 'lead.stage_changed'), { what: 'stage and handoff events' });
  const events = typesOf();
  expect(events.map((e) => e.type).sort()).toEqual(['lead.created', 'lead.handoff_requested', 'lead.stage_changed', 'message.received', 'message.sent']);
  for (const e of events) expect(e.data.leadId).toBe(lead.id);
  expect(events.find((e) => e.type === 'lead.stage_changed')!.data).toMatchObject({ from: 'New', to: 'Qualified' });
  expect(events.find((e) => e.type === 'lead.handoff_requested')!.data).toMatchObject({ to: 'human' });
  expect(events.find((e) => e.type === 'message.sent')!.data).toMatchObject({ type: 'text', text: expect.any(String), providerMessageId: expect.any(String) });
  // each event once, each delivered at the first attempt (the receiver sees a POST before its
  // delivery row records the success: wait for the rows)
  await waitFor(async () => (await deliveries(t, endpoint.id)).every((d) => d.status === 'succeeded'), { what: 'the deliveries recorded as succeeded' });
  const ds = await deliveries(t, endpoint.id);
  expect(ds).toHaveLength(5);
  expect(ds.every((d) => d.status === 'succeeded' && d.attempts === 1)).toBe(true);
});

test("lead.qualified: an extraction that raises the lead's score to the agent's qualifiedScore fires it once, with extraction.updated", async () => {
  const t = await createTenant(stack, { credits: 10 });
  const agent = await stack.api.patch(`/v1/agents/${t.agentId}`).set(auth(t)).send({ qualifiedScore: 50 }).expect(200);
  expect(agent.body.qualifiedScore).toBe(50);
  const path = `/qualified-${Date.now()}`;
  await register(t, path, ['lead.qualified', 'extraction.updated']);
  const from = randomWaId();
  await inbound(t, 'I need a CRM for 20 people', from);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads').set(auth(t)).expect(200)).body.items.find((l: { contactId: string }) => l.contactId === from) as { id: string } | undefined, { what: 'lead' });
  // the AI replies first (the fake's default answer); the extractions then get the scripted answers
  await waitFor(async () => (await stack.api.get(`/v1/leads/${lead.id}/messages`).set(auth(t)).expect(200)).body.items.some((m: { direction: string; status: string }) => m.direction === 'outbound' && m.status !== 'pending'), { what: 'AI reply' });
  const extraction = { name: 'Priya Sharma', email: 'priya@acme-retail.in', company: 'Acme Retail', budget: '5 lakh INR per year', authority: 'Head of Sales', need: 'A CRM for 20 people', timeline: null, fields: {}, summary: 'Priya needs a CRM.' };
  stack.llm.script([JSON.stringify(extraction), JSON.stringify({ ...extraction, timeline: 'Q2' })]);
  const events = () => received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });
  await waitFor(async () => {
    const r = await stack.api.post(`/v1/leads/${lead.id}/extract`).set(auth(t)).send({});
    return r.status === 202;
  }, { what: 'extraction scheduled' });
  await waitFor(() => events().some((e) => e.type === 'lead.qualified'), { what: 'lead.qualified', timeoutMs: 30_000 });
  // a second extraction with a higher score: extraction.updated again, no second lead.qualified
  await stack.api.post(`/v1/leads/${lead.id}/extract`).set(auth(t)).send({}).expect(202);
  await waitFor(() => events().filter((e) => e.type === 'extraction.updated').length === 2, { what: 'second extraction', timeoutMs: 30_000 });
  const qualified = events().filter((e) => e.type === 'lead.qualified');
  expect(qualified).toHaveLength(1);
  expect(qualified[0]!.data).toMatchObject({ leadId: lead.id, threshold: 50, previousScore: null, extractionVersion: 1 });
  expect(qualified[0]!.data.score).toBeGreaterThanOrEqual(50);
});

test('the signing secret is encrypted at rest, bound to its row, and rewrapped under a new key', async () => {
  const t = await createTenant(stack);
  const endpoint = await register(t, '/at-rest');
  const db = stack.core.database.db;
  const [row] = await db.select({ secretEnc: webhookEndpoints.secretEnc }).from(webhookEndpoints).where(eq(webhookEndpoints.id, endpoint.id));
  expect(row!.secretEnc.startsWith('v2:')).toBe(true);
  expect(row!.secretEnc).not.toContain(endpoint.secret.slice(6, 20));
  const current = parseEncryptionKey(stack.config.PARLEY_ENCRYPTION_KEY!);
  expect(createSecretBox(current).decrypt(row!.secretEnc, webhookSecretContext(endpoint.id))).toBe(endpoint.secret);
  // bound to its row: the ciphertext does not open as another endpoint's
  expect(() => createSecretBox(current).decrypt(row!.secretEnc, webhookSecretContext('00000000-0000-4000-8000-000000000000'))).toThrow();
  // key rotation: the new key writes, the old one still reads
  const newKey = randomBytes(32);
  const rotated = createSecretBox(newKey, [current]);
  const result = await rewrapWebhookSecrets(db, rotated);
  expect(result.failed).toEqual([]);
  expect(result.rewrapped).toBeGreaterThanOrEqual(1);
  const [after] = await db.select({ secretEnc: webhookEndpoints.secretEnc }).from(webhookEndpoints).where(eq(webhookEndpoints.id, endpoint.id));
  expect(rotated.needsRewrap(after!.secretEnc)).toBe(false);
  expect(rotated.decrypt(after!.secretEnc, webhookSecretContext(endpoint.id))).toBe(endpoint.secret);
  // put it back under the stack's key (the worker decrypts with it)
  expect((await rewrapWebhookSecrets(db, createSecretBox(current, [newKey]))).failed).toEqual([]);
});

test('channel.circuit_opened, dead_letter.opened and message.failed come from where those facts are recorded, once each', async () => {
  const t = await createTenant(stack);
  const path = `/ops-${Date.now()}`;
  const endpoint = await register(t, path, ['channel.circuit_opened', 'dead_letter.opened', 'message.failed']);
  const from = randomWaId();
  await inbound(t, 'hello', from);
  const lead = await waitFor(async () => (await stack.api.get('/v1/leads').set(auth(t)).expect(200)).body.items.find((l: { contactId: string }) => l.contactId === from) as { id: string } | undefined, { what: 'lead' });
  const s = stack.core.services;
  // the circuit: opened twice, one event (the second call changes nothing)
  await s.channels.openCircuit(t.channelId, { httpStatus: 401, code: 190, class: 'auth', message: 'token expired' });
  await s.channels.openCircuit(t.channelId, { httpStatus: 401, code: 190, class: 'auth', message: 'token expired' });
  // the lead events the workflow records (services/leads.ts recordEvent), a retried write included
  const deadLetter = { tenantId: t.tenantId, leadId: lead.id, type: 'dead_letter', data: { deadLetterId: 'dl-1', kind: 'send', purpose: 'reply', attempts: 1 }, dedupKey: `dead_letter:dl-1:1:${lead.id}` };
  await s.leads.recordEvent(deadLetter);
  await s.leads.recordEvent(deadLetter);
  await s.leads.recordEvent({ tenantId: t.tenantId, leadId: lead.id, type: 'delivery_failed', data: { outboundMessageId: 'm-1', errors: [{ code: 131026 }] }, dedupKey: `delivery_failed:m-1:${lead.id}` });
  // not webhook events: a re-parked dead letter, a reply that failed at the LLM
  await s.leads.recordEvent({ tenantId: t.tenantId, leadId: lead.id, type: 'dead_letter', data: { deadLetterId: 'dl-1', attempts: 2 }, dedupKey: `dead_letter:dl-1:2:${lead.id}` });
  await s.leads.recordEvent({ tenantId: t.tenantId, leadId: lead.id, type: 'reply_failed', data: { step: 'llm' } });
  await waitFor(async () => (await deliveries(t, endpoint.id)).filter((d) => d.status === 'succeeded').length === 3, { what: 'three deliveries' });
  const events = received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });
  expect(events.map((e) => e.type).sort()).toEqual(['channel.circuit_opened', 'dead_letter.opened', 'message.failed']);
  expect(events.find((e) => e.type === 'channel.circuit_opened')!.data).toMatchObject({ channelAccountId: t.channelId, platform: 'whatsapp', reason: { code: 190 } });
  expect(events.find((e) => e.type === 'dead_letter.opened')!.data).toMatchObject({ leadId: lead.id, deadLetterId: 'dl-1', kind: 'send' });
  expect(events.find((e) => e.type === 'message.failed')!.data).toMatchObject({ leadId: lead.id, outboundMessageId: 'm-1' });
  await s.channels.closeCircuit(t.tenantId, t.channelId);
});

test('deliveries run on the webhook lane: the delivery workflow and its attempts are on `<task queue>-webhooks`, not the live lane\'s queue', async () => {
  const t = await createTenant(stack);
  const path = `/lane-${Date.now()}`;
  const endpoint = await register(t, path);
  await inbound(t, 'which queue?');
  const [d] = await waitFor(
    async () => {
      const ds = await deliveries(t, endpoint.id);
      return ds.length === 1 && ds[0]!.status === 'succeeded' ? ds : undefined;
    },
    { what: 'the delivery succeeded' },
  );
  const handle = stack.temporal.client.workflow.getHandle(webhookDeliveryWorkflowId(d!.id, 0));
  // the row is marked before the workflow's last task: wait for its end
  await expect(handle.result()).resolves.toEqual({ succeeded: true, endpointDisabled: false });
  const described = await handle.describe();
  expect(described.type).toBe(WEBHOOK_DELIVERY_WORKFLOW_TYPE);
  expect(described.status.name).toBe('COMPLETED');
  expect(described.taskQueue).toBe(`${stack.taskQueue}-webhooks`);
  expect(described.taskQueue).toBe(webhookTaskQueue(stack.taskQueue));
  // its activities name no queue of their own: they follow the workflow onto the lane
  const scheduled = ((await handle.fetchHistory()).events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
  expect(scheduled.map((a) => [a.activityType?.name, a.taskQueue?.name])).toEqual([
    ['deliverWebhook', webhookTaskQueue(stack.taskQueue)],
    ['finishWebhookDelivery', webhookTaskQueue(stack.taskQueue)],
  ]);
  // the worker's third SDK worker is the one polling it
  expect(stack.worker.webhooks.options.taskQueue).toBe(webhookTaskQueue(stack.taskQueue));
});

test('a delivery an earlier version started on the main task queue finishes there, and the relay never starts its row again (first run open, then closed)', async () => {
  const t = await createTenant(stack);
  const path = `/old-queue-${Date.now()}`;
  behaviour[path] = 'fail'; // 500 until the test says otherwise: the old run stays open, retrying
  // subscribed to an event nothing in this test raises: the only delivery is the row below
  const endpoint = await register(t, path, ['lead.qualified']);
  const db = stack.core.database.db;
  const eventId = `evt-old-queue-${randomBytes(6).toString('hex')}`;
  const dispatched = async (id: string) => (await db.select({ at: webhookDeliveries.dispatchedAt }).from(webhookDeliveries).where(eq(webhookDeliveries.id, id)))[0]!.at;
  // the row, hidden from the relay (dispatched) until the old start below has happened
  const [row] = await db
    .insert(webhookDeliveries)
    .values({ tenantId: t.tenantId, endpointId: endpoint.id, eventId, eventType: 'lead.qualified', payload: { type: 'lead.qualified', timestamp: new Date().toISOString(), data: {} }, dispatchedAt: new Date().toISOString() })
    .returning({ id: webhookDeliveries.id });
  const workflowId = webhookDeliveryWorkflowId(row!.id, 0);
  // as the relay of the earlier version started it: on the main task queue (a long retry period, so it stays open while the test holds it)
  const old = await stack.temporal.client.workflow.start<typeof webhookDeliveryWorkflow>(WEBHOOK_DELIVERY_WORKFLOW_TYPE, {
    workflowId,
    taskQueue: stack.taskQueue,
    args: [{ deliveryId: row!.id, timeoutMs: 700, retry: { initialIntervalMs: 200, maximumIntervalMs: 500, maxDurationMs: 60_000 } }],
  });
  // the main lane runs it: attempts reach the receiver
  await waitFor(() => received.some((r) => r.path === path && r.headers['webhook-id'] === eventId), { what: 'an attempt of the old-queue delivery' });

  // the earlier relay "crashed" between its start and its mark: this relay finds the row and tries again
  const relayAgain = async () => {
    await db.update(webhookDeliveries).set({ dispatchedAt: null }).where(eq(webhookDeliveries.id, row!.id));
    await waitFor(async () => (await dispatched(row!.id)) !== null, { what: 'the relay marked the row again' });
  };
  await relayAgain();
  // refused while the first run is open (id conflict, on another queue): still that run, on the main queue
  let described = await old.describe();
  expect([described.runId, described.status.name, described.taskQueue]).toEqual([old.firstExecutionRunId, 'RUNNING', stack.taskQueue]);

  behaviour[path] = 'ok';
  await expect(old.result()).resolves.toEqual({ succeeded: true, endpointDisabled: false });
  expect((await deliveries(t, endpoint.id)).find((d) => d.id === row!.id)).toMatchObject({ status: 'succeeded', lastStatus: 200 });
  const posts = received.filter((r) => r.headers['webhook-id'] === eventId).length;

  // and after it closed (id reuse policy): no second run, no second delivery
  await relayAgain();
  described = await stack.temporal.client.workflow.getHandle(workflowId).describe();
  expect([described.runId, described.status.name, described.taskQueue]).toEqual([old.firstExecutionRunId, 'COMPLETED', stack.taskQueue]);
  await new Promise((r) => setTimeout(r, 500));
  expect(received.filter((r) => r.headers['webhook-id'] === eventId)).toHaveLength(posts);
});
