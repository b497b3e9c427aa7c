/**
 * The media library (issue 11) on the whole stack: `POST /v1/media` (multipart) → checks →
 * media_library; list, get, delete, dedup, tenant isolation; the send resolver against the fake
 * Graph API's upload endpoint (once per channel, cached, re-uploaded after expiry or when Meta
 * forgets the id); signed public urls for Instagram and web chat (`GET /media/:token`).
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type { Test } from 'supertest';
import { createMediaResolver, type MediaResolver } from '../../activities/media/resolve';
import { mediaResolverFrom } from '../../activities';
import { activityDepsFrom } from '../../composition/worker';
import { createMediaUrlTokens, mediaUrlSecret } from '../../services/media-url-tokens';
import { ADMIN_TOKEN, createTenant, randomPhoneNumberId, startStack, type Stack, type TenantFixture } from '../support/stack';
import { samples } from '../support/media-samples';

jest.setTimeout(120_000);

const MB = 1024 * 1024;
const TTL_MS = 29 * 24 * 3_600_000;
let stack: Stack;
beforeAll(async () => {
  // two upload slots: one tenant holds at most one upload at a time
  stack = await startStack({ MEDIA_LIBRARY_MAX_BYTES: String(6 * MB), MEDIA_LIBRARY_MAX_ITEMS: '4', MEDIA_LIBRARY_MAX_TENANT_BYTES: String(8 * MB), MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS: '2' });
});
afterAll(async () => {
  await stack?.stop();
});

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
/** A valid file of `size` bytes: the sample's magic bytes, then random bytes (so each call is new content). */
const fileOf = (head: Buffer, size = 2048) => Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
const upload = (t: TenantFixture, data: Buffer, opts: { filename?: string; contentType?: string } = {}) =>
  stack.api
    .post('/v1/media')
    .set(auth(t))
    .attach('file', data, { filename: opts.filename ?? 'file.bin', contentType: opts.contentType ?? 'application/octet-stream' });
const binary = (res: Test): Test =>
  res
    .buffer(true).parse((r, cb) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => cb(null, Buffer.concat(chunks)));
  });

function resolver(opts: { now?: () => Date; publicBaseUrl?: string } = {}): MediaResolver {
  return createMediaResolver({
    mediaLibrary: stack.core.services.mediaLibrary,
    channels: stack.core.services.channels,
    log: stack.log,
    graphApiUrl: stack.graph.url,
    graphApiVersion: stack.config.GRAPH_API_VERSION,
    timeoutMs: 10_000,
    metaIdTtlMs: TTL_MS,
    urlTokens: createMediaUrlTokens(mediaUrlSecret(stack.config)),
    publicBaseUrl: opts.publicBaseUrl ?? stack.baseUrl,
    urlTtlMs: 3_600_000,
    ...(opts.now ? { now: opts.now } : {}),
  });
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

async function secondWhatsAppChannel(t: TenantFixture): Promise<string> {
  const r = await stack.api
    .post('/v1/channels')
    .set(auth(t))
    .send({ platform: 'whatsapp', phoneNumberId: randomPhoneNumberId(), accessToken: `EAAG${randomBytes(16).toString('hex')}`, verifyToken: `v-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
    .expect(201);
  return r.body.id as string;
}

describe('upload, list, get, delete', () => {
  test('a PDF is kept with its facts; the same bytes again answer the stored file (200, same id)', async () => {
    const t = await createTenant(stack);
    const pdf = fileOf(samples.pdf, 30_000);
    const first = await upload(t, pdf, { filename: 'Price list 2026.pdf', contentType: 'application/pdf' }).expect(201);
    expect(first.body).toEqual({
      id: expect.any(String),
      kind: 'document',
      mimeType: 'application/pdf',
      filename: 'Price list 2026.pdf',
      sizeBytes: 30_000,
      sha256: createHash('sha256').update(pdf).digest('hex'),
      createdAt: expect.any(String),
    });
    const again = await upload(t, pdf, { filename: 'copy.pdf', contentType: 'application/pdf' }).expect(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.filename).toBe('Price list 2026.pdf');

    const got = await stack.api.get(`/v1/media/${first.body.id}`).set(auth(t)).expect(200);
    expect(got.body).toEqual({ ...first.body, metaUploads: [] });
    const list = await stack.api.get('/v1/media').set(auth(t)).expect(200);
    expect(list.body).toEqual({ items: [first.body], nextCursor: null });

    const gone = await stack.api.delete(`/v1/media/${first.body.id}`).set(auth(t)).expect(200);
    expect(gone.body.id).toBe(first.body.id);
    await stack.api.get(`/v1/media/${first.body.id}`).set(auth(t)).expect(404);
    await stack.api.delete(`/v1/media/${first.body.id}`).set(auth(t)).expect(404);
    // after the delete the same bytes are a new file
    const back = await upload(t, pdf, { contentType: 'application/pdf' }).expect(201);
    expect(back.body.id).not.toBe(first.body.id);
  });

  test('the list pages newest first and filters by kind', async () => {
    const t = await createTenant(stack);
    const a = await upload(t, fileOf(samples.png), { contentType: 'image/png' }).expect(201);
    const b = await upload(t, fileOf(samples.mp4), { contentType: 'video/mp4' }).expect(201);
    const c = await upload(t, fileOf(samples.jpeg), { contentType: 'image/jpeg' }).expect(201);
    const p1 = await stack.api.get('/v1/media?limit=2').set(auth(t)).expect(200);
    expect(p1.body.items.map((i: { id: string }) => i.id)).toEqual([c.body.id, b.body.id]);
    expect(p1.body.nextCursor).toEqual(expect.any(String));
    const p2 = await stack.api.get(`/v1/media?limit=2&cursor=${p1.body.nextCursor}`).set(auth(t)).expect(200);
    expect(p2.body).toEqual({ items: [a.body], nextCursor: null });
    const images = await stack.api.get('/v1/media?kind=image').set(auth(t)).expect(200);
    expect(images.body.items.map((i: { id: string }) => i.id)).toEqual([c.body.id, a.body.id]);
    await stack.api.get('/v1/media?kind=gif').set(auth(t)).expect(400);
    await stack.api.get('/v1/media?cursor=nope').set(auth(t)).expect(400);
  });

  test("another tenant's file is 404 everywhere, and its same bytes are its own file", async () => {
    const [t1, t2] = await Promise.all([createTenant(stack), createTenant(stack)]);
    const png = fileOf(samples.png);
    const mine = await upload(t1, png, { contentType: 'image/png' }).expect(201);
    await stack.api.get(`/v1/media/${mine.body.id}`).set(auth(t2)).expect(404);
    await stack.api.delete(`/v1/media/${mine.body.id}`).set(auth(t2)).expect(404);
    expect((await stack.api.get('/v1/media').set(auth(t2)).expect(200)).body.items).toEqual([]);
    const theirs = await upload(t2, png, { contentType: 'image/png' }).expect(201);
    expect(theirs.body.id).not.toBe(mine.body.id);
    await stack.api.get('/v1/media/not-a-uuid').set(auth(t1)).expect(404);
    await stack.api.get('/v1/media').expect(401);
  });
});

describe('refusals', () => {
  let t: TenantFixture;
  beforeAll(async () => {
    t = await createTenant(stack);
  });

  test('bytes that are not the declared type: 415 with the reason', async () => {
    const r = await upload(t, fileOf(samples.jpeg), { contentType: 'image/png' }).expect(415);
    expect(r.body.error).toMatchObject({ code: 'media_type_refused', message: expect.stringContaining('not image/png') });
    const html = await upload(t, Buffer.from('<html><script>alert(1)</script></html>'), { contentType: 'text/html' }).expect(415);
    expect(html.body.error.message).toContain('text/html is not a type WhatsApp accepts');
    const gif = await upload(t, Buffer.from('GIF89a......'), { contentType: 'image/gif' }).expect(415);
    expect(gif.body.error.code).toBe('media_type_refused');
    // an unrecognisable octet-stream
    await upload(t, randomBytes(500), { contentType: 'application/octet-stream' }).expect(415);
  });

  test('not multipart: 415; no file, a wrong part name or two files: 400', async () => {
    const json = await stack.api.post('/v1/media').set(auth(t)).send({ file: 'x' }).expect(415);
    expect(json.body.error.message).toContain('multipart/form-data');
    await stack.api.post('/v1/media').set(auth(t)).field('filename', 'x.pdf').expect(400);
    const wrong = await stack.api.post('/v1/media').set(auth(t)).attach('upload', fileOf(samples.pdf), { filename: 'a.pdf', contentType: 'application/pdf' }).expect(400);
    expect(wrong.body.error.message).toContain('`file`');
    await stack.api
      .post('/v1/media')
      .set(auth(t))
      .attach('file', fileOf(samples.pdf), { filename: 'a.pdf', contentType: 'application/pdf' })
      .attach('file', fileOf(samples.pdf), { filename: 'b.pdf', contentType: 'application/pdf' })
      .expect(400);
  });

  test("over WhatsApp's limit for the kind, or over MEDIA_LIBRARY_MAX_BYTES: 413", async () => {
    const image = await upload(t, fileOf(samples.jpeg, 5 * MB + 1), { contentType: 'image/jpeg' }).expect(413);
    expect(image.body.error).toMatchObject({ code: 'media_too_large', message: expect.stringContaining("WhatsApp's limit for image") });
    const big = await upload(t, fileOf(samples.pdf, 6 * MB + 1), { contentType: 'application/pdf' }).expect(413);
    expect(big.body.error).toMatchObject({ code: 'media_too_large', message: expect.stringContaining('MEDIA_LIBRARY_MAX_BYTES') });
    expect((await stack.api.get('/v1/media').set(auth(t)).expect(200)).body.items).toEqual([]);
  });

  test("the tenant's quota: file count and total bytes (409 media_quota_exceeded)", async () => {
    const q = await createTenant(stack);
    await upload(q, fileOf(samples.pdf, 5 * MB), { contentType: 'application/pdf' }).expect(201);
    const bytes = await upload(q, fileOf(samples.pdf, 4 * MB), { contentType: 'application/pdf' }).expect(409);
    expect(bytes.body.error).toMatchObject({ code: 'media_quota_exceeded', message: expect.stringContaining('MEDIA_LIBRARY_MAX_TENANT_BYTES') });
    for (let i = 0; i < 3; i++) await upload(q, fileOf(samples.png), { contentType: 'image/png' }).expect(201);
    const count = await upload(q, fileOf(samples.png), { contentType: 'image/png' }).expect(409);
    expect(count.body.error.message).toContain('MEDIA_LIBRARY_MAX_ITEMS');
  });
});

describe('a slow upload', () => {
  /** A multipart upload over a raw socket: the head and `first` bytes of the file at once, then one byte every `everyMs` (never the end). */
  function trickle(t: TenantFixture, opts: { first: number; everyMs: number }): Promise<{ status: number; body: string; ms: number }> {
    const url = new URL(stack.baseUrl);
    const boundary = `----parley${randomBytes(6).toString('hex')}`;
    const file = fileOf(samples.png, 200_000);
    const head = `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="slow.png"\r\ncontent-type: image/png\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const length = Buffer.byteLength(head) + file.length + Buffer.byteLength(tail);
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname);
      let answer = '';
      let sent = opts.first;
      const timer = setInterval(() => {
        if (sent < file.length && !socket.destroyed) socket.write(file.subarray(sent, ++sent));
      }, opts.everyMs);
      socket.on('connect', () => {
        socket.write(`POST /v1/media HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${t.apiKey}\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\ncontent-length: ${length}\r\n\r\n${head}`);
        socket.write(file.subarray(0, opts.first));
      });
      socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(timer);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
        if (!status) reject(new Error(`no answer (${answer.length} bytes)`));
        else resolve({ status, body: answer.slice(answer.indexOf('\r\n\r\n') + 4), ms: Date.now() - started });
      });
    });
  }

  test('under the byte-rate floor after its first 10 s: 408 upload_too_slow, the connection closed and the slot free again', async () => {
    const t = await createTenant(stack);
    // 1 KB at once, then about 20 bytes a second: far under the default floor of 16 KB/s
    const slow = trickle(t, { first: 1024, everyMs: 50 });
    await new Promise((r) => setTimeout(r, 1000));
    // the trickle holds the tenant's one upload slot
    expect((await upload(t, fileOf(samples.png, 4096), { contentType: 'image/png' }).expect(429)).body.error.message).toContain('uploads in progress');
    const cut = await slow;
    expect(cut.status).toBe(408);
    expect(JSON.parse(cut.body).error).toMatchObject({ code: 'upload_too_slow', message: expect.stringContaining('MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND') });
    expect(cut.ms).toBeGreaterThanOrEqual(10_000);
    expect(cut.ms).toBeLessThan(20_000);
    // this tenant's upload slots were given back: a normal upload goes through at once
    await upload(t, fileOf(samples.png, 4096), { contentType: 'image/png' }).expect(201);
  });
});

describe('resolveMediaForSend', () => {
  test('WhatsApp: uploaded to Meta on first use per channel (once for concurrent sends), then the cached id', async () => {
    const t = await createTenant(stack);
    const data = fileOf(samples.pdf, 20_000);
    const item = (await upload(t, data, { filename: 'brochure.pdf', contentType: 'application/pdf' }).expect(201)).body;
    const r = resolver();
    const uploadsOf = (phoneNumberId: string) => stack.graph.uploadRequests.filter((u) => u.phoneNumberId === phoneNumberId);

    const first = await r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: t.channelId });
    expect(first).toMatchObject({ platform: 'whatsapp', metaMediaId: expect.stringMatching(/^\d+$/), uploaded: true, kind: 'document', mimeType: 'application/pdf', filename: 'brochure.pdf' });
    const sent = uploadsOf(t.phoneNumberId);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      path: `/${stack.config.GRAPH_API_VERSION}/${t.phoneNumberId}/media`,
      authorization: `Bearer ${t.accessToken}`,
      body: { messaging_product: 'whatsapp', type: 'application/pdf', filename: 'brochure.pdf', size: 20_000, sha256: item.sha256 },
      response: { status: 200, body: { id: first.platform === 'whatsapp' ? first.metaMediaId : '' } },
    });
    expect(stack.graph.hasUploadedMedia((first as { metaMediaId: string }).metaMediaId)).toBe(true);

    const second = await r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: t.channelId });
    expect(second).toMatchObject({ metaMediaId: (first as { metaMediaId: string }).metaMediaId, uploaded: false });
    expect(uploadsOf(t.phoneNumberId)).toHaveLength(1);

    // another channel of the tenant: its own upload; three sends at once upload once
    const other = await secondWhatsAppChannel(t);
    const otherPhone = (await stack.core.services.channels.sendCredentials(other))!.phoneNumberId;
    stack.graph.setDelay(150);
    try {
      const three = await Promise.all([0, 1, 2].map(() => r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: other })));
      expect(new Set(three.map((x) => (x as { metaMediaId: string }).metaMediaId)).size).toBe(1);
      expect((three[0] as { metaMediaId: string }).metaMediaId).not.toBe((first as { metaMediaId: string }).metaMediaId);
    } finally {
      stack.graph.setDelay(0);
    }
    expect(uploadsOf(otherPhone)).toHaveLength(1);

    // two resolvers (two worker processes) at once: both may upload, both answer the id recorded first
    const [x, y] = await Promise.all([resolver(), resolver()].map((rr) => rr.resolveMediaForSend({ tenantId: t.tenantId, mediaId: (item as { id: string }).id, channelAccountId: other })));
    expect((x as { metaMediaId: string }).metaMediaId).toBe((y as { metaMediaId: string }).metaMediaId);

    const detail = await stack.api.get(`/v1/media/${item.id}`).set(auth(t)).expect(200);
    expect(detail.body.metaUploads.map((u: { channelAccountId: string }) => u.channelAccountId).sort()).toEqual([t.channelId, other].sort());
    const up = detail.body.metaUploads.find((u: { channelAccountId: string }) => u.channelAccountId === t.channelId);
    expect(new Date(up.expiresAt).getTime() - new Date(up.uploadedAt).getTime()).toBe(TTL_MS);
  });

  test('re-uploaded after the cached id expires, and when the send path reports the id unknown', async () => {
    const t = await createTenant(stack);
    const item = (await upload(t, fileOf(samples.jpeg), { contentType: 'image/jpeg' }).expect(201)).body;
    let now = new Date();
    const r = resolver({ now: () => now });
    const input = { tenantId: t.tenantId, mediaId: item.id as string, channelAccountId: t.channelId };
    const a = (await r.resolveMediaForSend(input)) as { metaMediaId: string; uploaded: boolean };
    expect(a.uploaded).toBe(true);

    now = new Date(now.getTime() + TTL_MS - 60_000); // a minute before: still cached
    expect(await r.resolveMediaForSend(input)).toMatchObject({ metaMediaId: a.metaMediaId, uploaded: false });
    now = new Date(now.getTime() + 60_000); // expired: uploaded again
    const b = (await r.resolveMediaForSend(input)) as { metaMediaId: string; uploaded: boolean; expiresAt: string };
    expect(b).toMatchObject({ uploaded: true });
    expect(b.metaMediaId).not.toBe(a.metaMediaId);
    expect(new Date(b.expiresAt).getTime()).toBe(now.getTime() + TTL_MS);

    // Meta dropped it early (the send got "unknown media id"): forgotten and uploaded again
    stack.graph.expireMedia(b.metaMediaId);
    const c = (await r.resolveMediaForSend({ ...input, staleMetaMediaId: b.metaMediaId })) as { metaMediaId: string; uploaded: boolean };
    expect(c.uploaded).toBe(true);
    expect(c.metaMediaId).not.toBe(b.metaMediaId);
    // a stale id that is no longer the cached one leaves the newer id alone
    expect(await r.resolveMediaForSend({ ...input, staleMetaMediaId: b.metaMediaId })).toMatchObject({ metaMediaId: c.metaMediaId, uploaded: false });
    expect(stack.graph.uploadRequests.filter((u) => u.phoneNumberId === t.phoneNumberId)).toHaveLength(3);
  });

  test("failures: another tenant's file or channel, a deleted file, Graph API errors", async () => {
    const [t, other] = await Promise.all([createTenant(stack), createTenant(stack)]);
    const item = (await upload(t, fileOf(samples.png), { contentType: 'image/png' }).expect(201)).body;
    const r = resolver();
    expect(await failureOf(r.resolveMediaForSend({ tenantId: other.tenantId, mediaId: item.id, channelAccountId: other.channelId }))).toMatchObject({ type: 'media_not_found', nonRetryable: true });
    expect(await failureOf(r.resolveMediaForSend({ tenantId: other.tenantId, mediaId: item.id, channelAccountId: t.channelId }))).toMatchObject({ type: 'channel_not_found', nonRetryable: true });

    stack.graph.failNext({ kind: 'upload', code: 131000, httpStatus: 500, phoneNumberId: t.phoneNumberId });
    expect(await failureOf(r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: t.channelId }))).toMatchObject({ type: 'provider_transient', nonRetryable: false });
    stack.graph.failNext({ kind: 'upload', code: 190, httpStatus: 401, phoneNumberId: t.phoneNumberId });
    expect(await failureOf(r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: t.channelId }))).toMatchObject({ type: 'provider_auth', nonRetryable: true });
    // then it works, and nothing was cached by the failed attempts
    expect(await r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: t.channelId })).toMatchObject({ uploaded: true });

    // an open circuit (a refused token): no upload, the send waits like every send of the channel
    const fresh = (await upload(t, fileOf(samples.jpeg), { contentType: 'image/jpeg' }).expect(201)).body;
    await stack.core.services.channels.openCircuit(t.channelId, { reason: 'test' });
    const before = stack.graph.uploadRequests.length;
    expect(await failureOf(r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: fresh.id, channelAccountId: t.channelId }))).toMatchObject({ type: 'channel_circuit_open', nonRetryable: true });
    expect(stack.graph.uploadRequests).toHaveLength(before);

    await stack.api.delete(`/v1/media/${item.id}`).set(auth(t)).expect(200);
    expect(await failureOf(r.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: t.channelId }))).toMatchObject({ type: 'media_not_found', nonRetryable: true });
  });

  test('the worker wiring builds the resolver from config', () => {
    const deps = activityDepsFrom(stack.config, stack.core.services, stack.log);
    expect(deps.mediaSend).toMatchObject({ metaIdTtlMs: 29 * 24 * 3_600_000, urlTtlMs: 7 * 24 * 3_600_000 });
    expect(mediaResolverFrom(deps)?.resolveMediaForSend).toEqual(expect.any(Function));
  });
});

describe('signed public urls (Instagram, web chat)', () => {
  async function withWebChat(t: TenantFixture): Promise<string> {
    const ch = await stack.api.post('/v1/channels').set(auth(t)).send({ platform: 'webchat', agentId: t.agentId, displayPhoneNumber: 'Acme' }).expect(201);
    return ch.body.id as string;
  }

  test('web chat gets a url that serves the bytes (and ranges) without credentials; tampered, expired and deleted are refused', async () => {
    const t = await createTenant(stack);
    const channel = await withWebChat(t);
    const data = fileOf(samples.png, 10_000);
    const item = (await upload(t, data, { filename: 'menü.png', contentType: 'image/png' }).expect(201)).body;
    const got = await resolver().resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: channel });
    expect(got).toMatchObject({ platform: 'webchat', url: expect.stringMatching(new RegExp(`^${stack.baseUrl}/media/mu1\\.`)), kind: 'image' });
    const path = new URL((got as { url: string }).url).pathname;
    expect(stack.graph.uploadRequests.some((u) => u.body && (u.body as { sha256?: string }).sha256 === item.sha256)).toBe(false);

    const res = await binary(stack.api.get(path)).expect(200);
    expect(Buffer.compare(res.body as Buffer, data)).toBe(0);
    expect(res.headers).toMatchObject({ 'content-type': 'image/png', 'x-content-type-options': 'nosniff', etag: `"${item.sha256}"`, 'content-length': '10000' });
    expect(res.headers['content-disposition']).toBe(`inline; filename="men_.png"; filename*=UTF-8''${encodeURIComponent('menü.png')}`);
    const part = await binary(stack.api.get(path).set('range', 'bytes=100-199')).expect(206);
    expect(Buffer.compare(part.body as Buffer, data.subarray(100, 200))).toBe(0);
    expect(part.headers['content-range']).toBe('bytes 100-199/10000');

    // tampered: one character of the payload or the signature changed
    const token = path.split('/').pop()!;
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    expect((await stack.api.get(`/media/${flip(token, 10)}`).expect(403)).body.error.code).toBe('media_url_invalid');
    expect((await stack.api.get(`/media/${flip(token, token.length - 3)}`).expect(403)).body.error.code).toBe('media_url_invalid');
    await stack.api.get(`/media/${'x'.repeat(4000)}`).expect(403);

    // expired: signed two hours ago with a one-hour lifetime
    const old = await resolver({ now: () => new Date(Date.now() - 2 * 3_600_000) }).resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: channel });
    const expired = await stack.api.get(new URL((old as { url: string }).url).pathname).expect(403);
    expect(expired.body.error).toMatchObject({ code: 'media_url_expired', message: 'this media url has expired' });

    // a suspended tenant's files stop being served with it, and come back with the reactivation
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ suspended: true }).expect(200);
    expect((await stack.api.get(path).expect(403)).body.error.code).toBe('tenant_suspended');
    await stack.api.patch(`/v1/tenants/${t.tenantId}`).set(admin).send({ suspended: false }).expect(200);
    await binary(stack.api.get(path)).expect(200);

    await stack.api.delete(`/v1/media/${item.id}`).set(auth(t)).expect(200);
    await stack.api.get(path).expect(404);
  });

  test('Instagram gets a url too; without PUBLIC_BASE_URL the send fails media_url_not_configured', async () => {
    const t = await createTenant(stack);
    const ig = await stack.api
      .post('/v1/channels')
      .set(auth(t))
      .send({ platform: 'instagram', phoneNumberId: `1784${Date.now()}`.slice(0, 17), accessToken: `IGQ${randomBytes(12).toString('hex')}`, verifyToken: `ig-${randomBytes(6).toString('hex')}`, agentId: t.agentId })
      .expect(201);
    const item = (await upload(t, fileOf(samples.jpeg), { contentType: 'image/jpeg' }).expect(201)).body;
    expect(await resolver().resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: ig.body.id })).toMatchObject({ platform: 'instagram', url: expect.stringContaining('/media/mu1.') });
    const noBase = createMediaResolver({
      mediaLibrary: stack.core.services.mediaLibrary,
      channels: stack.core.services.channels,
      log: stack.log,
      graphApiUrl: stack.graph.url,
      graphApiVersion: 'v21.0',
      timeoutMs: 5000,
      metaIdTtlMs: TTL_MS,
      urlTtlMs: 60_000,
    });
    expect(await failureOf(noBase.resolveMediaForSend({ tenantId: t.tenantId, mediaId: item.id, channelAccountId: ig.body.id }))).toMatchObject({ type: 'media_url_not_configured', nonRetryable: true });
  });
});
