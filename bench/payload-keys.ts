/**
 * What creating a lead's payload key costs (services/payload-keys.ts, `forWorkflow` of a new
 * lead: the work the payload codec adds to a new lead's webhook). Alone, without Temporal or the
 * rest of Parley: `n` fresh lead workflow ids one after another (latency and CPU of each), then
 * the same at an offered rate (open loop); and the CPU the codec spends encrypting and decrypting
 * one payload of a turn's typical size (280 bytes of JSON) once its key is cached.
 *
 *   DATABASE_URL=postgres://… npx tsx bench/payload-keys.ts [--n 300] [--rate 50] [--seconds 4]
 *
 * Without DATABASE_URL it runs on in-memory PGlite. Prints one JSON object.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { migrateDatabase, openDatabase } from '../db/client';
import { createSecretBox } from '../lib/crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { createPayloadKeyService } from '../services/payload-keys';
import { createPayloadCodec } from '../temporal/payload-codec';
import { summarize } from './stats';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

async function main() {
  const n = arg('n', 300);
  const rate = arg('rate', 50);
  const seconds = arg('seconds', 4);
  const database = await openDatabase({ url: process.env.DATABASE_URL });
  await migrateDatabase(database);
  const { db } = database;
  // a tenant and a (deleted: no agent needed) channel, so that key creation finds its tenant as in production
  const tenantId = randomUUID();
  const channelId = randomUUID();
  await db.execute(sql`insert into tenants (id, name) values (${tenantId}, 'bench payload keys')`);
  await db.execute(
    sql`insert into channel_accounts (id, tenant_id, platform, phone_number_id, access_token_enc, verify_token_hash, deleted_at) values (${channelId}, ${tenantId}, 'whatsapp', ${`bench-${channelId}`}, 'x', 'x', now())`,
  );
  const keys = createPayloadKeyService(db, createSecretBox(randomBytes(32)));
  const wid = () => `lead:${channelId}:9199${randomBytes(4).readUInt32BE(0)}`;
  // warm-up: the channel's tenant is cached, connections open
  for (let i = 0; i < 20; i++) await keys.forWorkflow(wid());

  const seq: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await keys.forWorkflow(wid());
    seq.push(performance.now() - s);
  }
  const seqWallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);

  const open: number[] = [];
  const count = Math.round(rate * seconds);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await keys.forWorkflow(wid());
      open.push(performance.now() - due);
    }),
  );
  // the codec's own work per payload (the key cached): encode and decode a turn-sized JSON payload
  const codec = createPayloadCodec(keys);
  const lead = wid();
  const ctx = { type: 'workflow' as const, namespace: 'default', workflowId: lead };
  const payload = defaultPayloadConverter.toPayload({ text: 'x'.repeat(200), leadId: randomUUID(), at: new Date().toISOString() });
  const [enc0] = await codec.encode([payload], ctx);
  const rounds = 20_000;
  const e0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) await codec.encode([payload], ctx);
  const eUs = process.cpuUsage(e0);
  const d0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) await codec.decode([enc0!]);
  const dUs = process.cpuUsage(d0);
  const perUs = (u: NodeJS.CpuUsage) => Math.round(((u.user + u.system) / rounds) * 10) / 10;

  const out = {
    database: database.describe,
    codecPerPayload: { plainBytes: (payload.data?.length ?? 0), encodeCpuUs: perUs(eUs), decodeCpuUs: perUs(dUs) },
    sequential: { n, latencyMs: summarize(seq), keysPerS: Math.round((n / seqWallMs) * 1000), cpuMsPerKey: Math.round(((cpu.user + cpu.system) / 1000 / n) * 100) / 100 },
    openLoop: { rate, seconds, latencyMs: summarize(open) },
  };
  console.log(JSON.stringify(out, null, 2));
  await db.execute(sql`delete from payload_keys where tenant_id = ${tenantId}`);
  await db.execute(sql`delete from channel_accounts where id = ${channelId}`);
  await db.execute(sql`delete from tenants where id = ${tenantId}`);
  await database.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
