/**
 * Memory of the two big downloads: the extractions CSV of a tenant with many leads and a stored
 * media object of MEDIA_MAX_BYTES. Serves each through its real router (real database, a real
 * HTTP client that reads slowly) and samples the process's memory every 2 ms (BENCH_LIVE=1: live
 * memory, after a full GC, every 5 ms); prints the peak growth over the baseline (heap +
 * external + array buffers, and RSS). Needs --expose-gc.
 *
 *   node --expose-gc --import tsx bench/streaming-memory.ts                  # embedded PGlite in memory
 *   DATABASE_URL=postgres://… node --expose-gc --import tsx bench/streaming-memory.ts   # a scratch database: it migrates
 *   BENCH_LEADS=20000 BENCH_MEDIA_MB=16 node --expose-gc --import tsx bench/streaming-memory.ts
 *
 * Runs against any commit whose routers take `{ services, temporal, log }` (before and after
 * streaming), so the same script measures both.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import express from 'express';
import { createExtractionRouter } from '../api/routes/extractions';
import { createMediaRouter } from '../api/routes/media';
import { errorHandler } from '../api/middleware/errors';
import { migrateDatabase, openDatabase } from '../db/client';
import { agents, extractions, leads, messages } from '../db/schema';
import { createSecretBox } from '../lib/crypto';
import { createLogger } from '../lib/logger';
import { createServices } from '../services';
import type { ParleyTemporal } from '../temporal/client';

const LEADS = Number(process.env.BENCH_LEADS ?? 20_000);
const MEDIA_BYTES = Number(process.env.BENCH_MEDIA_MB ?? 16) * 1024 * 1024;

function used(): { js: number; rss: number } {
  const m = process.memoryUsage();
  return { js: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
}

/** GET path from a local server, reading slowly (a 2 ms pause per chunk); the peak memory growth while it ran. */
async function measure(app: express.Express, path: string, apiKey: string): Promise<{ bytes: number; ms: number; peakJsMB: number; peakRssMB: number; status: number }> {
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  (globalThis as { gc?: () => void }).gc?.();
  const base = used();
  let peak = { js: 0, rss: 0 };
  const timer = setInterval(() => {
    // BENCH_LIVE=1: live memory (a full GC before each sample); otherwise what the process holds, garbage included
    if (process.env.BENCH_LIVE === '1') (globalThis as { gc?: () => void }).gc?.();
    const u = used();
    peak = { js: Math.max(peak.js, u.js - base.js), rss: Math.max(peak.rss, u.rss - base.rss) };
  }, process.env.BENCH_LIVE === '1' ? 5 : 2);
  const started = Date.now();
  const { port } = server.address() as AddressInfo;
  const result = await new Promise<{ bytes: number; status: number }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${apiKey}` } }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          res.pause();
          setTimeout(() => res.resume(), 2);
        });
        res.on('end', () => resolve({ bytes, status: res.statusCode ?? 0 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  clearInterval(timer);
  await new Promise((resolve) => server.close(resolve));
  const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
  return { ...result, ms: Date.now() - started, peakJsMB: mb(peak.js), peakRssMB: mb(peak.rss) };
}

async function main(): Promise<void> {
  const database = await openDatabase({ url: process.env.DATABASE_URL });
  await migrateDatabase(database);
  const db = database.db;
  const services = createServices(db, createSecretBox(randomBytes(32)), { defaultCreditsPerReply: 1 });
  const log = createLogger({ level: 'warn' });
  const tenant = await services.tenants.create({ name: `bench streaming ${randomUUID()}` });
  const [agent] = await db.insert(agents).values({ tenantId: tenant.id, name: 'a', systemPrompt: 'p', model: 'm' }).returning();
  const channel = await services.channels.create(tenant.id, { platform: 'webchat', agentId: agent!.id });

  for (let done = 0; done < LEADS; done += 1000) {
    const rows = Array.from({ length: Math.min(1000, LEADS - done) }, (_, i) => {
      const contactId = `v_bench${done + i}_${randomUUID()}`;
      return { id: randomUUID(), tenantId: tenant.id, channelAccountId: channel.id, channel: 'webchat' as const, contactId, name: `Lead ${done + i}`, summary: 'Wants a quote for 40 seats; follow up next week.', workflowId: `lead:${channel.id}:${contactId}` };
    });
    await db.insert(leads).values(rows);
    await db.insert(extractions).values(
      rows.map((l, i) => ({
        tenantId: tenant.id,
        leadId: l.id,
        version: 1,
        data: { name: `Lead ${done + i}`, email: `lead${done + i}@example.com`, company: 'Example Ltd', budget: '5k', authority: 'yes', need: 'CRM', timeline: 'Q3', fields: { seats: '40' } },
        score: 70,
        model: 'm',
      })),
    );
  }

  const mediaLead = (await db.select({ id: leads.id }).from(leads).where(eq(leads.tenantId, tenant.id)).limit(1))[0]!;
  const mediaId = `bench-${randomUUID()}`;
  await db.insert(messages).values({ tenantId: tenant.id, leadId: mediaLead.id, direction: 'inbound', providerMessageId: `wamid.${randomUUID()}`, type: 'video', body: '[video]', status: 'received', details: { media: { id: mediaId } } });
  const bytes = randomBytes(MEDIA_BYTES);
  await services.media.store({ tenantId: tenant.id, channelAccountId: channel.id, providerMediaId: mediaId, mimeType: 'video/mp4', sha256: createHash('sha256').update(bytes).digest('hex'), data: bytes });

  const app = express()
    .use(createExtractionRouter({ services }))
    .use(createMediaRouter({ services, temporal: {} as ParleyTemporal, log }))
    .use(errorHandler(log));
  const csv = await measure(app, '/v1/extractions.csv', tenant.apiKey);
  const media = await measure(app, `/v1/leads/${mediaLead.id}/media/${mediaId}`, tenant.apiKey);
  console.log(JSON.stringify({ database: database.kind, leads: LEADS, mediaBytes: MEDIA_BYTES, csv, media }, null, 2));
  await database.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
