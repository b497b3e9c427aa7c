import { eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { tenants } from '../db/schema';
import { createApiKeyService } from './api-keys';
import { createPipelineService } from './pipelines';

export function createTenantService(db: Db, opts: { defaultCreditsPerReply: number }) {
  const pipelines = createPipelineService(db);
  const keys = createApiKeyService(db);
  return {
    /** Creates the tenant, its first API key (an owner key) and the default pipeline; the key is returned once and stored hashed. */
    async create(input: { name: string; creditsPerReply?: number }): Promise<{ id: string; name: string; apiKey: string; apiKeyId: string; creditsPerReply: number }> {
      return db.transaction(async (tx) => {
        const [t] = await tx
          .insert(tenants)
          .values({ name: input.name, creditsPerReply: input.creditsPerReply ?? opts.defaultCreditsPerReply })
          .returning();
        if (!t) throw new Error('tenant insert returned nothing');
        const key = await keys.insertKey(t.id, { name: 'owner', role: 'owner' }, tx);
        await pipelines.createDefault(t.id, tx);
        return { id: t.id, name: t.name, apiKey: key.key, apiKeyId: key.id, creditsPerReply: t.creditsPerReply };
      });
    },

    async exists(tenantId: string): Promise<boolean> {
      const [t] = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
      return Boolean(t);
    },

    /** The caller behind a (non-revoked, unexpired) API key: its tenant, key id and role. */
    authenticate: keys.authenticate,
  };
}

export type TenantService = ReturnType<typeof createTenantService>;
