/**
 * Tenant API keys: created with a name and a role, shown once, stored as a SHA-256 hash;
 * listed without secrets; revoked at once; rotated with a grace period during which the old
 * key still works. Authentication answers the key's tenant, id and role in one statement, and
 * notes the key's last use at most once a minute (no write per request).
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { ApiKeyRole } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { apiKeys } from '../db/schema';
import { generateApiKey, hashApiKey } from '../lib/crypto';
import { AppError } from '../lib/errors';
import { afterCursor, isUuid, keyset, rowsOf, toIso } from './db-util';

/** How long a rotated key keeps working when the caller does not say (1 hour). */
export const DEFAULT_ROTATION_GRACE_SECONDS = 3600;
/** The longest grace a rotation may give the old key (7 days). */
export const MAX_ROTATION_GRACE_SECONDS = 7 * 24 * 3600;
/** A key's last use is written when the stored one is older than this. */
export const LAST_USED_RESOLUTION_SECONDS = 60;

/** Who is calling: what `authenticate` answers and the routes read from `res.locals.apiKey`. */
export interface ApiKeyPrincipal {
  tenantId: string;
  keyId: string;
  role: ApiKeyRole;
  /** The platform admin suspended the tenant: the key is valid, but the API answers 403. */
  suspended?: boolean;
}

type ApiKeyRow = typeof apiKeys.$inferSelect;

/** A key as the API shows it: never its hash or secret. */
function present(row: ApiKeyRow) {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    createdAt: toIso(row.createdAt),
    lastUsedAt: toIso(row.lastUsedAt),
    expiresAt: toIso(row.expiresAt),
    replacedBy: row.replacedBy,
    revokedAt: toIso(row.revokedAt),
  };
}
export type ApiKeyView = ReturnType<typeof present>;

/** The one-time answer of a create or a rotation: the key view plus the secret. */
export type NewApiKey = ApiKeyView & { key: string };

export function createApiKeyService(db: Db) {
  async function insertKey(tenantId: string, input: { name: string; role: ApiKeyRole }, tx: Pick<Db, 'insert'> = db): Promise<NewApiKey> {
    const key = generateApiKey();
    const [row] = await tx.insert(apiKeys).values({ tenantId, name: input.name, role: input.role, keyHash: hashApiKey(key), prefix: key.slice(0, 8) }).returning();
    if (!row) throw new Error('api key insert returned nothing');
    return { ...present(row), key };
  }

  /**
   * Another owner key of the tenant that stays valid (not revoked, no expiry: a key living on a
   * rotation's grace does not count)? Locks the tenant's owner keys, so two revocations of the
   * last two owners cannot both pass.
   */
  async function anotherLastingOwner(tx: Pick<Db, 'select'>, tenantId: string, exceptId: string): Promise<boolean> {
    const owners = await tx
      .select({ id: apiKeys.id, revokedAt: apiKeys.revokedAt, expiresAt: apiKeys.expiresAt })
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.role, 'owner')))
      .for('update');
    return owners.some((k) => k.id !== exceptId && k.revokedAt === null && k.expiresAt === null);
  }

  return {
    insertKey,

    async create(tenantId: string, input: { name: string; role: ApiKeyRole }): Promise<NewApiKey> {
      return insertKey(tenantId, input);
    },

    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.tenantId, tenantId), afterCursor(apiKeys, opts.cursor, 'asc')))
        .orderBy(asc(apiKeys.createdAt), asc(apiKeys.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },

    async get(tenantId: string, keyId: string): Promise<ApiKeyView | undefined> {
      if (!isUuid(keyId)) return undefined;
      const [row] = await db.select().from(apiKeys).where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, keyId)));
      return row ? present(row) : undefined;
    },

    /**
     * Revoke at once (idempotent). The tenant's last lasting owner key cannot be revoked: nobody
     * could manage keys any more (409).
     */
    async revoke(tenantId: string, keyId: string): Promise<ApiKeyView> {
      if (!isUuid(keyId)) throw new AppError('not_found', 'API key not found');
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(apiKeys).where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, keyId)));
        if (!row) throw new AppError('not_found', 'API key not found');
        if (row.revokedAt) return present(row);
        if (row.role === 'owner' && !(await anotherLastingOwner(tx, tenantId, keyId))) {
          throw new AppError('conflict', 'this is the last lasting owner key (another owner key without an expiry is needed): create another owner key before revoking it');
        }
        const [updated] = await tx
          .update(apiKeys)
          .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
          .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, keyId)))
          .returning();
        return present(updated ?? row);
      });
    },

    /**
     * A new secret for the key: a new key (same name and role) is created and answered once; the
     * old one keeps working for `graceSeconds` (0 = ends now) and then stops. A revoked key, or
     * one already rotated, cannot be rotated (409).
     */
    async rotate(tenantId: string, keyId: string, graceSeconds: number): Promise<{ key: NewApiKey; previous: ApiKeyView }> {
      if (!isUuid(keyId)) throw new AppError('not_found', 'API key not found');
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(apiKeys).where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, keyId))).for('update');
        if (!row) throw new AppError('not_found', 'API key not found');
        if (row.revokedAt) throw new AppError('conflict', 'this API key is revoked');
        if (row.replacedBy) throw new AppError('conflict', `this API key was already rotated (replaced by ${row.replacedBy})`);
        const key = await insertKey(tenantId, { name: row.name, role: row.role }, tx);
        const [previous] = await tx
          .update(apiKeys)
          .set({
            replacedBy: key.id,
            // an earlier expiry (none today) is kept if it comes first
            expiresAt: sql`least(coalesce(${apiKeys.expiresAt}, 'infinity'::timestamptz), now() + make_interval(secs => ${graceSeconds}))`,
          })
          .where(eq(apiKeys.id, keyId))
          .returning();
        return { key, previous: present(previous ?? row) };
      });
    },

    /** The caller behind a key: active (not revoked, not past its grace), in one statement that also notes its use. */
    async authenticate(apiKey: string): Promise<ApiKeyPrincipal | undefined> {
      const result = await db.execute(sql`
        WITH k AS (
          SELECT a.id, a.tenant_id, a.role, a.last_used_at, t.suspended_at IS NOT NULL AS suspended
          FROM api_keys a JOIN tenants t ON t.id = a.tenant_id
          WHERE a.key_hash = ${hashApiKey(apiKey)} AND a.revoked_at IS NULL AND (a.expires_at IS NULL OR a.expires_at > now())
        ), used AS (
          UPDATE api_keys SET last_used_at = now() FROM k
          WHERE api_keys.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => ${LAST_USED_RESOLUTION_SECONDS}))
        )
        SELECT id, tenant_id, role, suspended FROM k`);
      const [row] = rowsOf<{ id: string; tenant_id: string; role: ApiKeyRole; suspended: boolean }>(result);
      return row ? { tenantId: row.tenant_id, keyId: row.id, role: row.role, ...(row.suspended ? { suspended: true } : {}) } : undefined;
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
