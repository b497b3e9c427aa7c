import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import { apiKeys, tenants } from '../db/schema';
import { generateApiKey, hashApiKey } from '../lib/crypto';
import { createPipelineService } from './pipelines';

export function createTenantService(db: Db, opts: { defaultCreditsPerReply: number }) {
  const pipelines = createPipelineService(db);
  return {
    /** Creates the tenant, its first API key and the default pipeline; the key is returned once and stored hashed. */
    async create(input: { name: string; creditsPerReply?: number }): Promise<{ id: string; name: string; apiKey: string; creditsPerReply: number }> {
      const apiKey = generateApiKey();
      return db.transaction(async (tx) => {
        const [t] = await tx
          .insert(tenants)
          .values({ name: input.name, creditsPerReply: input.creditsPerReply ?? opts.defaultCreditsPerReply })
          .returning();
        if (!t) throw new Error('tenant insert returned nothing');
        await tx.insert(apiKeys).values({ tenantId: t.id, keyHash: hashApiKey(apiKey), prefix: apiKey.slice(0, 8) });
        await pipelines.createDefault(t.id, tx);
        return { id: t.id, name: t.name, apiKey, creditsPerReply: t.creditsPerReply };
      });
    },

    async exists(tenantId: string): Promise<boolean> {
      const [t] = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
      return Boolean(t);
    },

    /** The tenant a (non-revoked) API key belongs to. */
    async authenticate(apiKey: string): Promise<string | undefined> {
      const [row] = await db
        .select({ tenantId: apiKeys.tenantId })
        .from(apiKeys)
        .where(and(eq(apiKeys.keyHash, hashApiKey(apiKey)), isNull(apiKeys.revokedAt)));
      return row?.tenantId;
    },
  };
}

export type TenantService = ReturnType<typeof createTenantService>;
