/**
 * Exports and media downloads stream: the extractions CSV is read in keyset pages and written
 * as each page arrives; a stored media object is read in chunks and written chunk by chunk,
 * never loaded whole.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { createExtractionRouter } from '../../api/routes/extractions';
import { createMediaRouter } from '../../api/routes/media';
import { errorHandler } from '../../api/middleware/errors';
import { and, eq } from 'drizzle-orm';
import { extractions, leads, mediaObjects } from '../../db/schema';
import type { Services } from '../../services';
import { createTenant, randomWaId, startStack, type Stack, type TenantFixture } from '../support/stack';

jest.setTimeout(180_000);

let stack: Stack;
let t: TenantFixture;
const LEADS = 230;

beforeAll(async () => {
  stack = await startStack();
  t = await createTenant(stack);
  // many leads with two extraction versions each, in bulk
  const db = stack.core.database.db;
  const rows = Array.from({ length: LEADS }, (_, i) => {
    const contactId = randomWaId();
    return { id: randomUUID(), tenantId: t.tenantId, channelAccountId: t.channelId, channel: 'whatsapp' as const, contactId, name: `Lead ${i}`, workflowId: `lead:${t.channelId}:${contactId}` };
  });
  await db.insert(leads).values(rows);
  const data = (i: number, v: number) => ({ name: `Lead ${i} v${v}`, email: null, company: `Co ${i}`, budget: null, authority: null, need: null, timeline: null, fields: {} });
  await db.insert(extractions).values(rows.flatMap((l, i) => [1, 2].map((v) => ({ tenantId: t.tenantId, leadId: l.id, version: v, data: data(i, v), score: i % 100, model: 'm' }))));
});
afterAll(async () => {
  await stack?.stop();
});

/** The services with one method observed (calls counted, optionally held), everything else as is. */
function observe<K extends keyof Services, M extends keyof Services[K]>(service: K, method: M, before?: (call: number, args: unknown[]) => Promise<void>) {
  const target = stack.core.services[service] as Record<string, unknown>;
  const original = target[method as string] as (...args: unknown[]) => Promise<unknown>;
  const calls: unknown[][] = [];
  const wrapped = {
    ...target,
    [method]: async (...args: unknown[]) => {
      calls.push(args);
      await before?.(calls.length, args);
      return original.apply(target, args);
    },
  };
  return { services: { ...stack.core.services, [service]: wrapped } as Services, calls };
}

describe('GET /v1/extractions.csv streams', () => {
  test('many leads: one row each (latest version), read in pages of the configured size', async () => {
    const { services, calls } = observe('extractions', 'csvPage');
    const app = express().use(createExtractionRouter({ services, csvPageRows: 40 })).use(errorHandler(stack.log));
    const res = await request(app).get('/v1/extractions.csv').set({ authorization: `Bearer ${t.apiKey}` }).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-length']).toBeUndefined(); // chunked: written as it is read
    const lines = res.text.split('\r\n');
    expect(lines.at(-1)).toBe('');
    const body = lines.slice(1, -1);
    expect(body).toHaveLength(LEADS);
    expect(new Set(body.map((l) => l.split(',')[0])).size).toBe(LEADS);
    expect(body.every((l) => /,Lead \d+ v2,/.test(l) && /,2,\d{4}-[\d-]+T[\d:.]+Z$/.test(l))).toBe(true);
    // ordered by extraction time, then lead id
    const keys = body.map((l) => `${l.split(',').at(-1)} ${l.split(',')[0]}`);
    expect([...keys].sort()).toEqual(keys);
    // ceil(230 / 40) = 6 pages, the last one short, each asked for at most 40 rows
    expect(calls).toHaveLength(Math.ceil(LEADS / 40));
    for (const args of calls) expect((args[2] as { limit: number }).limit).toBe(40);
  });

  test('the first rows reach the client before later pages are read', async () => {
    let releaseSecondPage!: () => void;
    const secondPageHeld = new Promise<void>((resolve) => (releaseSecondPage = resolve));
    const { services, calls } = observe('extractions', 'csvPage', async (call) => {
      if (call === 2) await secondPageHeld;
    });
    const app = express().use(createExtractionRouter({ services, csvPageRows: 25 })).use(errorHandler(stack.log));
    let readsWhenFirstPageArrived = 0;
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/v1/extractions.csv', headers: { authorization: `Bearer ${t.apiKey}` } }, (res) => {
          let received = '';
          let released = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            received += chunk;
            if (!released && received.split('\r\n').length - 2 >= 25) {
              // header + a whole first page arrived while the second page is still held
              readsWhenFirstPageArrived = calls.length;
              released = true;
              releaseSecondPage();
            }
          });
          res.on('end', () => (released ? resolve(received) : reject(new Error('the first page never arrived on its own'))));
        });
        req.on('error', reject);
      });
      expect(readsWhenFirstPageArrived).toBe(2);
      expect(text.split('\r\n').length - 2).toBe(LEADS);
    } finally {
      releaseSecondPage();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a client that goes away stops the export: no more pages are read', async () => {
    let releaseSecondPage!: () => void;
    const secondPageHeld = new Promise<void>((resolve) => (releaseSecondPage = resolve));
    const { services, calls } = observe('extractions', 'csvPage', async (call) => {
      if (call === 2) await secondPageHeld;
    });
    const app = express().use(createExtractionRouter({ services, csvPageRows: 5 })).use(errorHandler(stack.log));
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/v1/extractions.csv', headers: { authorization: `Bearer ${t.apiKey}` } }, (res) => {
          res.once('data', () => {
            req.destroy(); // the client leaves after the first rows
            resolve();
          });
        });
        req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      releaseSecondPage();
      await new Promise((resolve) => setTimeout(resolve, 500));
      // page 1, the held page 2, and nothing after it (46 pages if it had gone on)
      expect(calls.length).toBeLessThanOrEqual(3);
    } finally {
      releaseSecondPage();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a lead re-extracted during the export is listed once, with the version it had when the export began', async () => {
    let releaseSecondPage!: () => void;
    const secondPageHeld = new Promise<void>((resolve) => (releaseSecondPage = resolve));
    let reached!: () => void;
    const secondPageReached = new Promise<void>((resolve) => (reached = resolve));
    const { services } = observe('extractions', 'csvPage', async (call) => {
      if (call === 2) {
        reached();
        await secondPageHeld;
      }
    });
    const app = express().use(createExtractionRouter({ services, csvPageRows: 50 })).use(errorHandler(stack.log));
    const done = request(app).get('/v1/extractions.csv').set({ authorization: `Bearer ${t.apiKey}` }).then((r) => r);
    await secondPageReached;
    // while the export runs: a new version for a lead of the first page and one of a later page
    const db = stack.core.database.db;
    const ordered = await db
      .select({ leadId: extractions.leadId })
      .from(extractions)
      .where(and(eq(extractions.tenantId, t.tenantId), eq(extractions.version, 2)))
      .orderBy(extractions.createdAt, extractions.leadId);
    const inOrder = ordered.map((o) => o.leadId);
    const early = inOrder[3]!;
    const late = inOrder[inOrder.length - 3]!;
    for (const leadId of [early, late]) {
      await db.insert(extractions).values({ tenantId: t.tenantId, leadId, version: 3, data: { name: 'Changed v3', email: null, company: null, budget: null, authority: null, need: null, timeline: null, fields: {} }, score: 1, model: 'm' });
    }
    releaseSecondPage();
    const res = await done;
    expect(res.status).toBe(200);
    const body = res.text.split('\r\n').slice(1, -1);
    expect(body).toHaveLength(LEADS);
    expect(new Set(body.map((l) => l.split(',')[0])).size).toBe(LEADS);
    expect(res.text).not.toContain('Changed v3');
    // a new export sees the new versions
    const after = await request(app).get('/v1/extractions.csv').set({ authorization: `Bearer ${t.apiKey}` });
    expect(after.text.split('\r\n').slice(1, -1)).toHaveLength(LEADS);
    expect(after.text.split('Changed v3')).toHaveLength(3);
  });

  test('since filters leads by their latest extraction', async () => {
    const res = await stack.api
      .get('/v1/extractions.csv')
      .query({ since: new Date(Date.now() + 60_000).toISOString() })
      .set({ authorization: `Bearer ${t.apiKey}` })
      .expect(200);
    expect(res.text.split('\r\n')).toHaveLength(2);
  });
});

describe('GET /v1/leads/:id/media/:mediaId streams the stored bytes', () => {
  async function leadWithStoredMedia(size: number) {
    const contactId = randomWaId();
    const s = stack.core.services;
    const lead = await s.leads.ensure({ tenantId: t.tenantId, channelAccountId: t.channelId, channel: 'whatsapp', contactId, workflowId: `lead:${t.channelId}:${contactId}` });
    const mediaId = String(100_000_000_000 + Math.floor(Math.random() * 800_000_000_000));
    await s.leads.recordInbound({
      tenantId: t.tenantId,
      leadId: lead.leadId,
      messages: [{ providerMessageId: `wamid.${randomUUID()}`, channel: 'whatsapp', contactId, sentAt: new Date().toISOString(), type: 'video', text: '[video]', media: { id: mediaId, mimeType: 'video/mp4' } }],
    });
    const bytes = randomBytes(size);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await s.media.store({ tenantId: t.tenantId, channelAccountId: t.channelId, providerMediaId: mediaId, mimeType: 'video/mp4', sha256, data: bytes });
    return { leadId: lead.leadId, mediaId, bytes, sha256 };
  }

  const binary = ((res: http.IncomingMessage, cb: (err: Error | null, body: Buffer) => void) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  }) as unknown as (res: request.Response, cb: (err: Error | null, body: unknown) => void) => void;

  test('a 1 MB object is read in chunks of the configured size and arrives intact', async () => {
    const m = await leadWithStoredMedia(1024 * 1024 + 7);
    const { services, calls } = observe('media', 'readChunk');
    const app = express()
      .use(createMediaRouter({ services, temporal: stack.temporal, log: stack.log, chunkBytes: 96 * 1024 }))
      .use(errorHandler(stack.log));
    const res = await request(app).get(`/v1/leads/${m.leadId}/media/${m.mediaId}`).set({ authorization: `Bearer ${t.apiKey}` }).buffer(true).parse(binary).expect(200);
    expect(Buffer.compare(res.body as Buffer, m.bytes)).toBe(0);
    expect(res.headers['content-length']).toBe(String(m.bytes.length));
    expect(res.headers['content-type']).toBe('video/mp4');
    expect(res.headers.etag).toBe(`"${m.sha256}"`);
    // ceil(1 MB + 7 / 96 kB) = 11 reads, each of at most 96 kB: the whole object is never in memory
    expect(calls).toHaveLength(Math.ceil(m.bytes.length / (96 * 1024)));
    for (const args of calls) expect(args[2]).toBeLessThanOrEqual(96 * 1024);
  });

  test('Range: one byte range is answered 206 with just those bytes; an unsatisfiable one 416', async () => {
    const m = await leadWithStoredMedia(300_001);
    const { services, calls } = observe('media', 'readChunk');
    const app = express()
      .use(createMediaRouter({ services, temporal: stack.temporal, log: stack.log, chunkBytes: 64 * 1024 }))
      .use(errorHandler(stack.log));
    const url = `/v1/leads/${m.leadId}/media/${m.mediaId}`;
    const get = (range?: string) => {
      const r = request(app).get(url).set({ authorization: `Bearer ${t.apiKey}` });
      return (range ? r.set('range', range) : r).buffer(true).parse(binary);
    };
    const full = await get().expect(200);
    expect(full.headers['accept-ranges']).toBe('bytes');

    const cases: [string, number, number][] = [
      ['bytes=1000-2999', 1000, 2999],
      ['bytes=1-1', 1, 1],
      ['bytes=200000-', 200_000, 300_000],
      ['bytes=-500', 299_501, 300_000],
      ['bytes=299999-999999', 299_999, 300_000],
    ];
    for (const [range, first, last] of cases) {
      calls.length = 0;
      const r = await get(range).expect(206);
      expect({ range, header: r.headers['content-range'] }).toEqual({ range, header: `bytes ${first}-${last}/300001` });
      expect(r.headers['content-length']).toBe(String(last - first + 1));
      expect(Buffer.compare(r.body as Buffer, m.bytes.subarray(first, last + 1))).toBe(0);
      // only the chunks that hold the range are read
      expect(calls.length).toBe(Math.ceil((last - first + 1) / (64 * 1024)));
      expect(calls.reduce((n, args) => n + (args[2] as number), 0)).toBe(last - first + 1);
    }
    for (const range of ['bytes=300001-', 'bytes=-0']) {
      const r = await get(range).expect(416);
      expect(r.headers['content-range']).toBe('bytes */300001');
    }
    // several ranges, another unit, an invalid range: the whole object (RFC 9110 lets a server ignore them)
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=abc', 'bytes=500-400']) {
      const r = await get(range).expect(200);
      expect(Buffer.compare(r.body as Buffer, m.bytes)).toBe(0);
    }
  });

  test('an object stored as base64 text (before the bytea column) is moved to bytea on first read, and served', async () => {
    const m = await leadWithStoredMedia(100_000);
    const db = stack.core.database.db;
    const [row] = await db.select({ id: mediaObjects.id }).from(mediaObjects).where(eq(mediaObjects.providerMediaId, m.mediaId));
    await db.update(mediaObjects).set({ data: null, dataBase64: m.bytes.toString('base64') }).where(eq(mediaObjects.id, row!.id));
    const res = await stack.api.get(`/v1/leads/${m.leadId}/media/${m.mediaId}`).set({ authorization: `Bearer ${t.apiKey}` }).buffer(true).parse(binary).expect(200);
    expect(Buffer.compare(res.body as Buffer, m.bytes)).toBe(0);
    const [after] = await db.select({ data: mediaObjects.data, dataBase64: mediaObjects.dataBase64 }).from(mediaObjects).where(eq(mediaObjects.id, row!.id));
    expect(after!.dataBase64).toBeNull();
    expect(Buffer.compare(after!.data!, m.bytes)).toBe(0);
  });

  test('through the whole app: small objects, another tenant still gets 404', async () => {
    for (const size of [1, 3, 4096]) {
      const m = await leadWithStoredMedia(size);
      const res = await stack.api.get(`/v1/leads/${m.leadId}/media/${m.mediaId}`).set({ authorization: `Bearer ${t.apiKey}` }).buffer(true).parse(binary).expect(200);
      expect(Buffer.compare(res.body as Buffer, m.bytes)).toBe(0);
      const other = await createTenant(stack);
      await stack.api.get(`/v1/leads/${m.leadId}/media/${m.mediaId}`).set({ authorization: `Bearer ${other.apiKey}` }).expect(404);
    }
  });
});
