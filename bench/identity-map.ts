/**
 * What the WhatsApp webhook's identity map costs per body (services/contact-identities.ts):
 * database statements and time for a body of N senders (each with phone + BSUID), first with
 * nothing known (every form new: read + insert in one statement), then the same forms again
 * from a fresh process (known, not cached: one read-only statement), then cached (no statement).
 *
 *   npx tsx bench/identity-map.ts                  # embedded PGlite in memory
 *   DATABASE_URL=postgres://… npx tsx bench/identity-map.ts   # PostgreSQL (a scratch database: it migrates)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { agents, channelAccounts, tenants } from '../db/schema';
import { migrateDatabase, openDatabase } from '../db/client';
import { createContactIdentityService, type IdentityQuery } from '../services/contact-identities';

async function main() {
  const database = await openDatabase({ url: process.env.DATABASE_URL, pgliteDataDir: 'memory://' });
  await migrateDatabase(database);
  const { db } = database;
  const tenantId = randomUUID();
  await db.insert(tenants).values({ id: tenantId, name: 'bench' });
  const agentId = randomUUID();
  await db.insert(agents).values({ id: agentId, tenantId, name: 'bench', systemPrompt: 'x', model: 'gpt-4o-mini' });
  const channelAccountId = randomUUID();
  await db.insert(channelAccounts).values({ id: channelAccountId, tenantId, platform: 'whatsapp', phoneNumberId: String(Date.now()), accessTokenEnc: 'x', verifyTokenHash: 'x', agentId });

  const rows: Record<string, unknown>[] = [];
  for (const n of [1, 10, 100, 1000]) {
    const body: IdentityQuery[] = Array.from({ length: n }, () => {
      const phone = `91${Math.floor(1e9 + Math.random() * 9e9)}`;
      const bsuid = `IN.${BigInt(`0x${randomBytes(8).toString('hex')}`)}`;
      return { channelAccountId, forms: [{ identity: phone, kind: 'phone' as const }, { identity: bsuid, kind: 'bsuid' as const }], fallback: phone };
    });
    const runs: [string, ReturnType<typeof createContactIdentityService>][] = [];
    const warm = createContactIdentityService(db);
    runs.push(['new forms (read + insert)', warm], ['known, other process (read)', createContactIdentityService(db)], ['cached (this process)', warm]);
    for (const [what, svc] of runs) {
      const t0 = process.hrtime.bigint();
      const r = await svc.resolve(body);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      rows.push({ senders: n, case: what, statements: r.queries, ms: Math.round(ms * 100) / 100 });
    }
  }
  console.table(rows);
  console.log(`database: ${database.kind}`);
  await database.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
