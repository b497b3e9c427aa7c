/**
 * The media library as an attacker sees it (review of the `media` branch): the public signed
 * url route (`GET /media/:token`), what reaches the logs, and the races around a delete.
 * Real database, real HTTP (the stack).
 */
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { createMediaUrlTokens, mediaUrlSecret } from '../../services/media-url-tokens';
import { createTenant, startStack, type Stack, type TenantFixture } from '../support/stack';
import { samples } from '../support/media-samples';

jest.setTimeout(120_000);

const READS_PER_MINUTE = 20;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ MEDIA_URL_READS_PER_MINUTE: String(READS_PER_MINUTE), MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS: '2' });
});
afterAll(async () => {
  jest.restoreAllMocks();
  await stack?.stop();
});
afterEach(() => jest.restoreAllMocks());

const auth = (t: { apiKey: string }) => ({ authorization: `Bearer ${t.apiKey}` });
const fileOf = (head: Buffer, size = 2048) => Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
async function uploaded(t: TenantFixture, data: Buffer, contentType: string): Promise<{ id: string }> {
  const r = await stack.api.post('/v1/media').set(auth(t)).attach('file', data, { filename: 'f.bin', contentType }).expect(201);
  return r.body as { id: string };
}
function tokenFor(t: TenantFixture, mediaId: string): string {
  return createMediaUrlTokens(mediaUrlSecret(stack.config)).sign({ tenantId: t.tenantId, mediaId, expiresAt: new Date(Date.now() + 3_600_000) });
}

test('a signed media url never reaches the logs, even when serving it fails (500)', async () => {
  const t = await createTenant(stack);
  const item = await uploaded(t, fileOf(samples.png), 'image/png');
  const token = tokenFor(t, item.id);
  const lib = stack.core.services.mediaLibrary;
  jest.spyOn(lib, 'findForUrl').mockRejectedValueOnce(new Error('connection terminated unexpectedly'));
  const before = stack.logLines.length;
  const r = await stack.api.get(`/media/${token}`).expect(500);
  expect(r.body.error.code).toBe('internal');
  const lines = stack.logLines.slice(before).join('\n');
  expect(lines).toContain('unhandled error'); // the failure is still logged…
  expect(lines).not.toContain(token.split('.')[2]!); // …without the url's signature (a bearer credential for the file)
});

test('one address cannot read a signed url without limit (each read is database work)', async () => {
  const t = await createTenant(stack);
  const item = await uploaded(t, fileOf(samples.jpeg, 50_000), 'image/jpeg');
  const token = tokenFor(t, item.id);
  const statuses: number[] = [];
  for (let i = 0; i < READS_PER_MINUTE + 5; i++) {
    const r = await stack.api.get(`/media/${token}`).set('range', 'bytes=0-0');
    statuses.push(r.status);
  }
  expect(statuses.slice(0, READS_PER_MINUTE).every((s) => s === 206)).toBe(true);
  expect(statuses.slice(READS_PER_MINUTE)).toEqual(Array(5).fill(429));
  const refused = await stack.api.get(`/media/${token}`).expect(429);
  expect(refused.body.error.message).toMatch(/too many reads/);
  expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  // another file's url from the same address is its own budget (Instagram fetches many files from few addresses)
  const other = await uploaded(t, fileOf(samples.png), 'image/png');
  await stack.api.get(`/media/${tokenFor(t, other.id)}`).expect(200);
  // a forged token is refused before the limiter or the database
  await stack.api.get(`/media/${token.slice(0, -2)}AA`).expect(403);
});

test('a file deleted while its download streams ends the connection instead of leaving the client waiting for bytes promised in Content-Length', async () => {
  const t = await createTenant(stack);
  const data = fileOf(samples.pdf, 600 * 1024); // three 256 KB chunks
  const item = await uploaded(t, data, 'application/pdf');
  const token = tokenFor(t, item.id);
  const lib = stack.core.services.mediaLibrary;
  const real = lib.readChunk.bind(lib);
  let calls = 0;
  jest.spyOn(lib, 'readChunk').mockImplementation(async (id, offset, length) => {
    calls += 1;
    return calls === 1 ? real(id, offset, length) : Buffer.alloc(0); // the row is gone after the first chunk
  });
  const outcome = await new Promise<string>((resolve) => {
    const req = http.get(`${stack.baseUrl}/media/${token}`, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => (got += c.length));
      res.on('aborted', () => resolve(`aborted after ${got}`));
      res.on('error', () => resolve(`error after ${got}`));
      res.on('end', () => resolve(`end after ${got}`));
    });
    req.on('error', () => resolve('request error'));
    const timer = setTimeout(() => {
      req.destroy();
      resolve('hung');
    }, 5_000);
    req.on('close', () => clearTimeout(timer));
  });
  expect(outcome).not.toBe('hung');
  expect(outcome).not.toBe(`end after ${data.length}`);
});

test('a file deleted between its lookup and its first read is a 404, not an empty 200 with a Content-Length it never sends', async () => {
  const t = await createTenant(stack);
  const item = await uploaded(t, fileOf(samples.png), 'image/png');
  jest.spyOn(stack.core.services.mediaLibrary, 'readChunk').mockResolvedValueOnce(Buffer.alloc(0));
  const r = await stack.api.get(`/media/${tokenFor(t, item.id)}`).expect(404);
  expect(r.body.error.code).toBe('not_found');
});

test('a Meta upload recorded after the file was deleted meanwhile answers the fresh id (as documented), not a foreign-key error', async () => {
  const t = await createTenant(stack);
  const item = await uploaded(t, fileOf(samples.png), 'image/png');
  await stack.api.delete(`/v1/media/${item.id}`).set(auth(t)).expect(200);
  const now = new Date();
  const saved = await stack.core.services.mediaLibrary.saveUpload({ mediaId: item.id, channelAccountId: t.channelId, metaMediaId: '1234567890', uploadedAt: now, expiresAt: new Date(now.getTime() + 3_600_000) });
  expect(saved).toEqual({ metaMediaId: '1234567890', expiresAt: new Date(now.getTime() + 3_600_000).toISOString() });
});

test('uploads held in memory at once are bounded: per process, and per tenant (half of it)', async () => {
  const [t1, t2] = await Promise.all([createTenant(stack), createTenant(stack)]);
  // a slow upload of t1: headers and the start of the file part, the rest later
  const boundary = `----parley${randomBytes(8).toString('hex')}`;
  const data = fileOf(samples.pdf, 100_000);
  const head = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="slow.pdf"\r\ncontent-type: application/pdf\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(`${stack.baseUrl}/v1/media`);
  let answer: Promise<{ status: number; body: string }> | undefined;
  const slow = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...auth(t1), 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + data.length + tail.length) } });
  answer = new Promise((resolve, reject) => {
    slow.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    slow.on('error', reject);
  });
  answer.catch(() => undefined);
  try {
  slow.write(Buffer.concat([head, data.subarray(0, 1000)]));
  await new Promise((r) => setTimeout(r, 300)); // the server is reading it now

  // t1 already has its one slot (2 per process, at most half for one tenant)
  const busy = await stack.api.post('/v1/media').set(auth(t1)).attach('file', fileOf(samples.png), { filename: 'p.png', contentType: 'image/png' }).expect(429);
  expect(busy.body.error.message).toMatch(/uploads in progress/);
  expect(Number(busy.headers['retry-after'])).toBeGreaterThan(0);
  // another tenant still gets in
  await stack.api.post('/v1/media').set(auth(t2)).attach('file', fileOf(samples.png), { filename: 'p.png', contentType: 'image/png' }).expect(201);

  slow.end(Buffer.concat([data.subarray(1000), tail]));
  const done = await answer;
  expect(done.status).toBe(201);
  answer = undefined;
  // the slot is given back
  await stack.api.post('/v1/media').set(auth(t1)).attach('file', fileOf(samples.png), { filename: 'p.png', contentType: 'image/png' }).expect(201);
  } finally {
    if (answer) slow.destroy();
  }
});

describe('what holds (checked, no change needed)', () => {
  test('the quota holds under concurrent uploads (per-tenant advisory lock): 8 at once, room for 4', async () => {
    const t = await createTenant(stack);
    const files = Array.from({ length: 8 }, () => fileOf(samples.png));
    const results = await Promise.allSettled(
      files.map((data) =>
        stack.core.services.mediaLibrary.add(t.tenantId, { kind: 'image', mimeType: 'image/png', sha256: createHash('sha256').update(data).digest('hex'), data }, { maxItems: 4, maxTenantBytes: 1024 * 1024 }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.reason)).toEqual(Array(4).fill('media_quota_exceeded'));
    expect((await stack.api.get('/v1/media').set(auth(t)).expect(200)).body.items).toHaveLength(4);
  });

  test('forged, foreign-key, truncated and expired tokens are refused without any database work', async () => {
    const t = await createTenant(stack);
    const item = await uploaded(t, fileOf(samples.png), 'image/png');
    const lib = stack.core.services.mediaLibrary;
    const find = jest.spyOn(lib, 'find');
    const read = jest.spyOn(lib, 'readChunk');
    const good = tokenFor(t, item.id);
    const otherKey = createMediaUrlTokens(randomBytes(32)).sign({ tenantId: t.tenantId, mediaId: item.id, expiresAt: new Date(Date.now() + 3_600_000) });
    const expired = createMediaUrlTokens(mediaUrlSecret(stack.config)).sign({ tenantId: t.tenantId, mediaId: item.id, expiresAt: new Date(Date.now() - 1000) });
    const [, payload, sig] = good.split('.');
    // the payload re-signed by nobody: the tenant id swapped for another one
    const raw = Buffer.from(payload!, 'base64url');
    randomBytes(16).copy(raw, 0);
    for (const bad of [otherKey, `mu1.${raw.toString('base64url')}.${sig}`, good.slice(0, -1), `${good}A`, 'mu1..', `mu2.${payload}.${sig}`]) {
      await stack.api.get(`/media/${bad}`).expect(403);
    }
    expect((await stack.api.get(`/media/${expired}`).expect(403)).body.error.code).toBe('media_url_expired');
    expect(find).not.toHaveBeenCalled();
    expect(read).not.toHaveBeenCalled();
  });

  test("a validly signed token that pairs another tenant with this file is 404: the lookup binds tenant and file", async () => {
    const [t1, t2] = await Promise.all([createTenant(stack), createTenant(stack)]);
    const item = await uploaded(t1, fileOf(samples.png), 'image/png');
    const crossed = createMediaUrlTokens(mediaUrlSecret(stack.config)).sign({ tenantId: t2.tenantId, mediaId: item.id, expiresAt: new Date(Date.now() + 3_600_000) });
    await stack.api.get(`/media/${crossed}`).expect(404);
  });

  test('text that is HTML is kept as text/plain and served as a download the browser may not sniff or run', async () => {
    const t = await createTenant(stack);
    const html = Buffer.from(`<html><body><script>alert(document.domain)</script>${randomBytes(8).toString('hex')}</body></html>`);
    const item = await uploaded(t, html, 'text/plain');
    const res = await stack.api.get(`/media/${tokenFor(t, item.id)}`).expect(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="f\.bin"/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
    // and an upload that declares text/html or image/svg+xml is refused outright
    await stack.api.post('/v1/media').set(auth(t)).attach('file', html, { filename: 'x.svg', contentType: 'image/svg+xml' }).expect(415);
  });
});
