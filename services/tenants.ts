import { asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { tenants } from '../db/schema';
import { AppError } from '../lib/errors';
import { createApiKeyService } from './api-keys';
import { afterCursor, isUuid, keyset, toIso } from './db-util';
import { createPipelineService } from './pipelines';

type TenantRow = typeof tenants.$inferSelect;

/** A tenant as the platform admin sees it (its limits come from the limit service). */
function present(row: TenantRow) {
  return {
    id: row.id,
    name: row.name,
    suspended: row.suspendedAt !== null,
    suspendedAt: toIso(row.suspendedAt),
    creditBalance: row.creditBalance,
    creditsPerReply: row.creditsPerReply,
    createdAt: toIso(row.createdAt),
  };
}
export type TenantView = ReturnType<typeof present>;

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

    /** Every tenant, oldest first (platform admin). */
    async list(opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(tenants)
        .where(afterCursor(tenants, opts.cursor, 'asc'))
        .orderBy(asc(tenants.createdAt), asc(tenants.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },

    async get(tenantId: string): Promise<TenantView | undefined> {
      if (!isUuid(tenantId)) return undefined;
      const [row] = await db.select().from(tenants).where(eq(tenants.id, tenantId));
      return row ? present(row) : undefined;
    },

    /** Rename and/or suspend (true) or reactivate (false); a second suspend keeps the first time. */
    async update(tenantId: string, patch: { name?: string; suspended?: boolean }): Promise<TenantView> {
      const set: Partial<typeof tenants.$inferInsert> = {};
      if (patch.name !== undefined) set.name = patch.name;
      if (patch.suspended !== undefined) set.suspendedAt = patch.suspended ? sql`coalesce(${tenants.suspendedAt}, now())` as unknown as string : null;
      if (!isUuid(tenantId)) throw new AppError('not_found', 'tenant not found');
      const [row] = Object.keys(set).length
        ? await db.update(tenants).set(set).where(eq(tenants.id, tenantId)).returning()
        : await db.select().from(tenants).where(eq(tenants.id, tenantId));
      if (!row) throw new AppError('not_found', 'tenant not found');
      return present(row);
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
