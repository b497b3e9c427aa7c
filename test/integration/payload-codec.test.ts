/**
 * Private payloads on the whole stack: a lead's history read straight from Temporal (no codec)
 * holds neither the conversation's text nor the contact's number in any payload; the codec
 * server decodes it for the right tenant and the admin, refuses another tenant, answers CORS
 * only for the Web UI's origins; after the contact's erasure the payloads no longer decode.
 */
import express from 'express';
import request from 'supertest';
import type { temporal } from '@temporalio/proto';
import { errorHandler } from '../../api/middleware/errors';
import { createCodecRouter } from '../../api/routes/codec';
import { ADMIN_TOKEN, bearer, createTenant, postWebhook, randomWaId, stackPerFile, textWebhook, waitFor, type Stack } from '../support/stack';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../temporal/payload-codec';
import { readableHistory } from '../../temporal/readable-history';
import { randomBytes, randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { createSecretBox, parseEncryptionKey, type SecretBox } from '../../lib/crypto';
import { createLeadIds } from '../../lib/lead-ids';
import { LEAD_ID_KEY_PREFIX, loadLeadIdKey } from '../../services/lead-id-key';
import { rewrapPayloadKeys } from '../../services/payload-keys';
import { payloadKeys } from '../../db/schema';

jest.setTimeout(180_000);

const getStack = stackPerFile();
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});

type WirePayload = { metadata: Record<string, string>; data: string };

/** Every Payload of a history (a plain object from the proto), found by walking it. */
function payloadsOf(history: temporal.api.history.v1.IHistory): temporal.api.common.v1.IPayload[] {
  const out: temporal.api.common.v1.IPayload[] = [];
  const walk = (v: unknown, key?: string): void => {
    if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
    if (Array.isArray(v)) return v.forEach((x) => walk(x, key));
    const o = v as Record<string, unknown>;
    if ('metadata' in o && 'data' in o && (o.data instanceof Uint8Array || o.data === undefined || o.data === null)) {
      out.push(o as temporal.api.common.v1.IPayload);
      return;
    }
    for (const [k, x] of Object.entries(o)) {
      // search attributes are indexed in clear by design (no personal data in them)
      if (k === 'searchAttributes') continue;
      walk(x, k);
    }
  };
  walk(history);
  return out;
}

const toWire = (p: temporal.api.common.v1.IPayload): WirePayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});
const metaOf = (p: WirePayload, k: string) => Buffer.from(p.metadata[k] ?? '', 'base64').toString('utf8');
const dataOf = (p: WirePayload) => Buffer.from(p.data, 'base64').toString('utf8');

async function rawHistory(workflowId: string): Promise<temporal.api.history.v1.IHistory> {
  // the raw gRPC service: no data converter, no codec
  const res = await stack.temporal.client.workflowService.getWorkflowExecutionHistory({ namespace: stack.config.TEMPORAL_NAMESPACE, execution: { workflowId } });
  return res.history ?? {};
}

test('a lead history holds no text or number in clear; the codec server decodes it for its tenant and the admin only; erasure shreds it', async () => {
  const t = await createTenant(stack, { credits: 10 });
  const other = await createTenant(stack, { credits: 1 });
  const from = randomWaId();
  const text = `Quote for 40 chairs to Lotus Lane ${Date.now()}`;
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, text, { name: 'Asha Verma' })).expect(200);
  await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string }).to === from) || undefined, { what: 'the reply' });
  const workflowId = stack.leadWorkflowId(t.channelId, from);
  // the workflow id names no contact (lib/lead-ids.ts): not the lead's row, not the Web UI's list
  expect(workflowId).toMatch(new RegExp(`^lead:${t.channelId}:[A-Za-z0-9_-]{22}$`));
  expect(workflowId).not.toContain(from.slice(-6));
  // finding the lead by its number goes through the API, which gives its workflow id
  const found = await stack.api.get('/v1/leads').query({ q: from }).set(bearer(t.apiKey)).expect(200);
  expect((found.body as { items: { workflowId: string }[] }).items.map((l) => l.workflowId)).toEqual([workflowId]);
  const listed = await waitFor(async () => {
    const out: { workflowId: string; runId: string }[] = [];
    for await (const wf of stack.temporal.client.workflow.list({ query: `ChannelAccountId = '${t.channelId}'` })) out.push({ workflowId: wf.workflowId, runId: wf.runId });
    return out.length > 0 ? out : undefined;
  }, { what: 'the lead in the Web UI list' });
  expect(listed.map((w) => w.workflowId)).toEqual([workflowId]);
  expect(JSON.stringify(listed)).not.toContain(from.slice(-6));

  const history = await rawHistory(workflowId);
  const all = payloadsOf(history);
  expect(all.length).toBeGreaterThan(5);
  const bytes = Buffer.concat(all.flatMap((p) => [Buffer.from(p.data ?? []), ...Object.values(p.metadata ?? {}).map((v) => Buffer.from(v))])).toString('latin1');
  expect(bytes).not.toContain('Lotus Lane');
  expect(bytes).not.toContain(from);
  expect(bytes).not.toContain('Asha');
  const every = all.map(toWire);
  // every payload is encrypted but the SDK's own local activity markers (sequence number,
  // attempt, activity type and times: written by the SDK core, not through the codec) and the
  // trace context headers (`_tracer-data`: a W3C traceparent, ids only; headers skip the codec)
  const [wire, inClear] = [every.filter((p) => metaOf(p, 'encoding') === ENCRYPTED_ENCODING), every.filter((p) => metaOf(p, 'encoding') !== ENCRYPTED_ENCODING)];
  const traceHeaders = inClear.filter((p) => Object.keys(JSON.parse(dataOf(p)) as object).join() === 'traceparent');
  // tracing is not configured here: the ids still travel (unsampled, flags 00) from the request to the activities
  expect(traceHeaders.length).toBeGreaterThan(1);
  for (const p of traceHeaders) expect(JSON.parse(dataOf(p))).toEqual({ traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/) });
  const clearMarkers = inClear.filter((p) => !traceHeaders.includes(p));
  expect(clearMarkers.length).toBeGreaterThan(0);
  for (const p of clearMarkers) expect(Object.keys(JSON.parse(dataOf(p)) as object).sort()).toEqual(['activity_id', 'activity_type', 'attempt', 'backoff', 'complete_time', 'original_schedule_time', 'seq']);
  expect(wire.length).toBeGreaterThan(5);
  const keyIds = new Set(wire.map((p) => metaOf(p, KEY_ID_METADATA)));
  expect(keyIds.size).toBe(1); // one key: the lead's

  // the signal that carried the message, decoded by the tenant's key
  const signaled = history.events?.find((e) => e.workflowExecutionSignaledEventAttributes)?.workflowExecutionSignaledEventAttributes;
  const signalPayloads = (signaled?.input?.payloads ?? []).map(toWire);
  expect(signalPayloads.length).toBeGreaterThan(0);
  const origin = 'http://localhost:8233';
  const decoded = await stack.api
    .post('/codec/decode')
    .set(bearer(t.apiKey))
    .set('x-namespace', stack.config.TEMPORAL_NAMESPACE)
    .set('origin', origin)
    .send({ payloads: signalPayloads })
    .expect(200);
  expect(decoded.headers['access-control-allow-origin']).toBe(origin);
  const plain = decoded.body.payloads as WirePayload[];
  expect(metaOf(plain[0]!, 'encoding')).toBe('json/plain');
  expect(dataOf(plain[0]!)).toContain(text);

  // the whole history, decoded by the admin token, has the text, the reply and the number
  const everything = await stack.api.post('/codec/decode').set(bearer(ADMIN_TOKEN)).send({ payloads: wire }).expect(200);
  const clear = (everything.body.payloads as WirePayload[]).map(dataOf).join('\n');
  expect(clear).toContain(text);
  expect(clear).toContain(from);

  // another tenant's key is refused (the whole request); no key, a bad key, a foreign origin too
  await stack.api.post('/codec/decode').set(bearer(other.apiKey)).send({ payloads: signalPayloads }).expect(403);
  await stack.api.post('/codec/decode').send({ payloads: signalPayloads }).expect(401);
  await stack.api.post('/codec/decode').set(bearer('pk_not_a_key')).send({ payloads: signalPayloads }).expect(401);
  await stack.api.post('/codec/decode').set(bearer(t.apiKey)).set('origin', 'https://evil.example').send({ payloads: signalPayloads }).expect(403);
  await stack.api.post('/codec/decode').set(bearer(t.apiKey)).set('x-namespace', 'someone-else').send({ payloads: signalPayloads }).expect(400);
  // unencrypted payloads come back as they are, for any tenant
  const clearIn = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"hi"').toString('base64') };
  expect((await stack.api.post('/codec/decode').set(bearer(other.apiKey)).send({ payloads: [clearIn] }).expect(200)).body).toEqual({ payloads: [clearIn] });

  // encode (the UI sending an update) round-trips through decode for the admin
  // the temporal CLI's query without input sends `{}` (proto3 JSON omits an empty list): nothing to do, not a 400
  expect((await stack.api.post('/codec/encode').set(bearer(t.apiKey)).send({}).expect(200)).body).toEqual({ payloads: [] });
  expect((await stack.api.post('/codec/decode').set(bearer(t.apiKey)).send({}).expect(200)).body).toEqual({ payloads: [] });
  const encoded = await stack.api.post('/codec/encode').set(bearer(t.apiKey)).send({ payloads: [clearIn] }).expect(200);
  expect(metaOf(encoded.body.payloads[0], 'encoding')).toBe(ENCRYPTED_ENCODING);
  expect((await stack.api.post('/codec/decode').set(bearer(ADMIN_TOKEN)).send(encoded.body).expect(200)).body).toEqual({ payloads: [clearIn] });

  // CORS preflight: the Web UI's origin only
  const pre = await stack.api.options('/codec/decode').set('origin', origin).set('access-control-request-method', 'POST').set('access-control-request-headers', 'authorization,content-type,x-namespace').expect(204);
  expect(pre.headers['access-control-allow-origin']).toBe(origin);
  expect(pre.headers['access-control-allow-headers']).toMatch(/x-namespace/);
  const refused = await stack.api.options('/codec/decode').set('origin', 'https://evil.example').set('access-control-request-method', 'POST').expect(403);
  expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  // bounded: at most 1,000 payloads
  await stack.api.post('/codec/decode').set(bearer(ADMIN_TOKEN)).send({ payloads: Array.from({ length: 1001 }, () => clearIn) }).expect(400);

  // erasure: the workflow ends, its key is destroyed, its payloads no longer decode for anyone
  await stack.api.delete(`/v1/contacts/${from}`).set(bearer(t.apiKey)).expect(200);
  const after = await stack.api.post('/codec/decode').set(bearer(ADMIN_TOKEN)).send({ payloads: wire }).expect(200);
  for (const p of after.body.payloads as WirePayload[]) {
    expect(metaOf(p, 'encoding')).toBe(ENCRYPTED_ENCODING);
    expect(dataOf(p)).not.toContain('Lotus Lane');
  }
  await expect(stack.core.services.payloadKeys.byId([...keyIds][0]!)).rejects.toThrow(/destroyed/);
});

test('with NODE_ENV=development only, the dev server UI (an allowed origin, no credential) decodes as the admin', async () => {
  const t = await createTenant(stack, { credits: 1 });
  const enc = await stack.api
    .post('/codec/encode')
    .set(bearer(t.apiKey))
    .send({ payloads: [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"dev"').toString('base64') }] })
    .expect(200);
  const appFor = (development: boolean) => {
    const app = express();
    app.use(createCodecRouter({ services: stack.core.services, adminToken: ADMIN_TOKEN, origins: ['http://localhost:8233'], namespace: stack.config.TEMPORAL_NAMESPACE, development, log: stack.log }));
    app.use(errorHandler(stack.log));
    return request(app);
  };
  const dev = await appFor(true).post('/codec/decode').set('origin', 'http://localhost:8233').send(enc.body).expect(200);
  expect(dataOf(dev.body.payloads[0])).toBe('"dev"');
  // no origin (not the browser UI), or outside development: a credential is needed
  await appFor(true).post('/codec/decode').send(enc.body).expect(401);
  await appFor(false).post('/codec/decode').set('origin', 'http://localhost:8233').send(enc.body).expect(401);
  // the live stack runs with NODE_ENV=test
  await stack.api.post('/codec/decode').set('origin', 'http://localhost:8233').send(enc.body).expect(401);
});

/** Every Failure of a history (an object with a failure-info field or encoded attributes), found by walking it. */
function failuresOf(history: temporal.api.history.v1.IHistory): temporal.api.failure.v1.IFailure[] {
  const out: temporal.api.failure.v1.IFailure[] = [];
  const walk = (v: unknown): void => {
    if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
    if (Array.isArray(v)) return v.forEach(walk);
    const o = v as Record<string, unknown>;
    if (Object.keys(o).some((k) => k.endsWith('FailureInfo') && o[k]) || o.encodedAttributes) out.push(o as temporal.api.failure.v1.IFailure);
    for (const x of Object.values(o)) walk(x);
  };
  walk(history);
  return out;
}

test('a failure in a lead history (a send Meta refused) shows no message text in clear; decoded, its message is back', async () => {
  const t = await createTenant(stack, { credits: 3 });
  const from = randomWaId();
  // Meta's error text can name the recipient: it must not reach Temporal in clear. Refused twice
  // (transient): the reply turn holds the reply, its send activity fails once and is retried by
  // Temporal, whose history keeps that attempt's failure (the retried attempt's last failure)
  const marker = `Recipient ${from} cannot be reached at Lotus Lane ${Date.now()}`;
  stack.graph.failNext({ code: 131000, to: from, message: marker, times: 2 });
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Price list please')).expect(200);
  await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string }).to === from) || undefined, { what: 'the reply, sent on the third try', timeoutMs: 60_000 });
  const workflowId = stack.leadWorkflowId(t.channelId, from);
  const history = await waitFor(async () => {
    const h = await rawHistory(workflowId);
    return failuresOf(h).length > 0 ? h : undefined;
  }, { what: 'a failure in the lead history', timeoutMs: 30_000 });

  const failures = failuresOf(history);
  for (const f of failures) {
    // the common attributes are encoded: a fixed message, no stack trace, the text in an encrypted payload
    expect(f.message).toBe('Encoded failure');
    expect(f.stackTrace ?? '').toBe('');
    expect(Buffer.from(f.encodedAttributes?.metadata?.encoding ?? []).toString('utf8')).toBe(ENCRYPTED_ENCODING);
  }
  const raw = JSON.stringify(history);
  // nor the number: the workflow id holds a keyed digest of it (lib/lead-ids.ts)
  for (const clearText of [marker, 'Lotus Lane', 'Graph API error', from]) expect(raw).not.toContain(clearText);
  expect(JSON.stringify(failures)).not.toContain(from);
  const payloadBytes = Buffer.concat(payloadsOf(history).map((p) => Buffer.from(p.data ?? []))).toString('latin1');
  expect(payloadBytes).not.toContain('Lotus Lane');

  // decoded with the codec (what the client and the Web UI do), the message is Meta's error again
  const readable = await readableHistory(history, stack.core.payloadCodec);
  const messages = failuresOf(readable).map((f) => f.message ?? '');
  expect(messages.some((m) => m.includes('Graph API error 131000') && m.includes(marker))).toBe(true);
  expect(messages).not.toContain('Encoded failure');
});

test('the lead id key is created once per database, survives restarts and master-key rotations, and is never a payload key', async () => {
  const db = stack.core.database.db;
  const channel = randomUUID();
  const idOf = async (box: SecretBox) => createLeadIds(await loadLeadIdKey(db, box)).workflowId(channel, '919812345678');
  // a restart (the same database, the same master key) names every lead as before
  expect(await idOf(createSecretBox(parseEncryptionKey(stack.config.PARLEY_ENCRYPTION_KEY!)))).toBe(stack.leadWorkflowId(channel, '919812345678'));
  // another master key on a shared database (other test stacks) cannot open that key: it gets its own, once, even when processes start together
  const [masterA, masterB] = [randomBytes(32), randomBytes(32)];
  const together = await Promise.all(Array.from({ length: 4 }, () => idOf(createSecretBox(masterA))));
  expect(new Set(together).size).toBe(1);
  const idA = together[0]!;
  expect(idA).not.toBe(stack.leadWorkflowId(channel, '919812345678'));
  const name = `${LEAD_ID_KEY_PREFIX}:${createSecretBox(masterA).keyId}`;
  expect(await db.select().from(payloadKeys).where(eq(payloadKeys.workflowId, name))).toHaveLength(1);
  // a master-key rotation (the old key kept to read) changes no id, nor does `npm run secrets:rewrap`, after which the old key may go
  const rotated = createSecretBox(masterB, [masterA]);
  expect(await idOf(rotated)).toBe(idA);
  expect((await rewrapPayloadKeys(db, rotated)).rewrapped).toBeGreaterThan(0);
  const [row] = await db.select().from(payloadKeys).where(eq(payloadKeys.workflowId, name));
  expect(rotated.needsRewrap(row!.wrappedKey!)).toBe(false);
  expect(await idOf(createSecretBox(masterB))).toBe(idA);
  // the codec server never hands it out as a payload key
  await expect(stack.core.services.payloadKeys.byId(row!.id)).rejects.toThrow(/unknown/);
});
