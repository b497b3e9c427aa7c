/**
 * Data keys of the payload codec (temporal/payload-codec.ts). Granularity: one key per lead
 * workflow id, so that erasing a contact destroys exactly its conversations' keys
 * (crypto-shredding); every other workflow (circuit fan-out, credit sweep, channel close,
 * webhook delivery, media) shares one platform key (tenant null).
 *
 * A data key is 32 random bytes, stored wrapped by the master key PARLEY_ENCRYPTION_KEY (the
 * SecretBox of lib/crypto.ts, bound to the row id; old master keys still unwrap, and
 * `npm run secrets:rewrap` re-wraps). Keys are cached in-process after first use (bounded LRU,
 * 10 minutes, so that a key destroyed by another process stops decoding there too).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { payloadKeys } from '../db/schema';
import { rowsOf } from './db-util';
import type { SecretBox } from '../lib/crypto';
import { LEAD_ID_KEY_PREFIX } from './lead-id-key';

/**
 * The workflow id of the platform key's row: one per master key (`*platform*:<master key id>`),
 * so deployments (or test stacks) sharing a database with different master keys never meet on
 * a row they cannot unwrap, and a master key rotation starts a new platform key.
 */
export const PLATFORM_KEY_PREFIX = '*platform*';
export const platformKeyWorkflowId = (box: Pick<SecretBox, 'keyId'>) => `${PLATFORM_KEY_PREFIX}:${box.keyId}`;

export interface PayloadKey {
  id: string;
  /** Null: the platform key (only the admin token decodes its payloads through the codec server). */
  tenantId: string | null;
  key: Buffer;
}

/** A payload whose key was destroyed (crypto-shredded) or never existed. */
export class PayloadKeyUnavailable extends Error {
  constructor(
    public readonly keyId: string,
    public readonly reason: 'unknown' | 'destroyed',
  ) {
    super(reason === 'destroyed' ? `payload key ${keyId} was destroyed (the contact was erased): this payload can no longer be decoded` : `payload key ${keyId} is unknown: this payload cannot be decoded`);
    this.name = 'PayloadKeyUnavailable';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The channel account a lead workflow id names (`lead:<channel account id>:<keyed digest of the contact>`, lib/lead-ids.ts). */
export function leadChannelOf(workflowId: string): string | undefined {
  if (!workflowId.startsWith('lead:')) return undefined;
  const channel = workflowId.split(':')[1];
  return channel && UUID.test(channel) ? channel.toLowerCase() : undefined;
}

/** A small LRU with a time to live. */
class Lru<V> {
  private readonly map = new Map<string, { v: V; at: number }>();
  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
  ) {}
  get(k: string): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    this.map.delete(k);
    if (Date.now() - e.at > this.ttlMs) return undefined;
    this.map.set(k, e);
    return e.v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, { v, at: Date.now() });
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  delete(k: string): void {
    this.map.delete(k);
  }
}

export function createPayloadKeyService(db: Db, box: SecretBox, opts: { cacheSize?: number; cacheTtlMs?: number } = {}) {
  const size = opts.cacheSize ?? 10_000;
  const ttl = opts.cacheTtlMs ?? 10 * 60_000;
  /** Live keys by their row's name (storedName): filled by creation and by any read of a live key (a worker's first decode). */
  const byWorkflow = new Lru<PayloadKey>(size, ttl);
  const byId = new Lru<PayloadKey>(size, ttl);
  const pending = new Map<string, Promise<PayloadKey>>();
  const platform = platformKeyWorkflowId(box);

  const context = (id: string) => `payload_keys.wrapped_key:${id}`;
  // a lead's row is named by a hash of its workflow id: no contact number in the table, and any
  // workflow id (a webhook's contact id may hold bytes PostgreSQL text refuses, e.g. NUL) is storable
  const storedName = (workflowId: string) => (workflowId.startsWith(PLATFORM_KEY_PREFIX) ? workflowId : `sha256:${createHash('sha256').update(workflowId, 'utf8').digest('hex')}`);
  const unwrap = (row: { id: string; tenantId: string | null; wrappedKey: string }): PayloadKey => ({
    id: row.id,
    tenantId: row.tenantId,
    key: Buffer.from(box.decrypt(row.wrappedKey, context(row.id)), 'base64'),
  });
  const remember = (k: PayloadKey, name?: string) => {
    byId.set(k.id, k);
    if (name) byWorkflow.set(name, k);
    return k;
  };

  /**
   * Create the workflow's key, or find the live one another caller created first, in one
   * statement (one round trip on the webhook's path): the insert takes the lead's tenant from its
   * channel account in the same statement, and the row comes back from RETURNING, or, when a live
   * key already existed, from the union's select. The key is used only once this statement has
   * committed, so no payload is ever encrypted with a key that is not durably stored.
   *
   * A key inserted by a concurrent statement that commits while this one waits on the unique
   * index is not in this statement's snapshot: then (rarely) a second select reads it.
   */
  async function load(workflowId: string): Promise<PayloadKey> {
    // a lead whose channel is unknown still gets its own key, without a tenant (only the admin token decodes it)
    const channel = leadChannelOf(workflowId) ?? null;
    const id = randomUUID();
    const name = storedName(workflowId);
    const wrapped = box.encrypt(randomBytes(32).toString('base64'), context(id));
    const [row] = rowsOf<{ id: string; tenant_id: string | null; wrapped_key: string | null }>(
      await db.execute(sql`
        with ins as (
          insert into payload_keys (id, tenant_id, workflow_id, wrapped_key)
          values (${id}, (select tenant_id from channel_accounts where id = ${channel}::uuid), ${name}, ${wrapped})
          on conflict (workflow_id) where destroyed_at is null do nothing
          returning id, tenant_id, wrapped_key
        )
        select id, tenant_id, wrapped_key from ins
        union all
        select id, tenant_id, wrapped_key from payload_keys where workflow_id = ${name} and destroyed_at is null
        limit 1`),
    );
    const found =
      row ??
      (
        await db
          .select({ id: payloadKeys.id, tenant_id: payloadKeys.tenantId, wrapped_key: payloadKeys.wrappedKey })
          .from(payloadKeys)
          .where(and(eq(payloadKeys.workflowId, name), isNull(payloadKeys.destroyedAt)))
      )[0];
    if (!found?.wrapped_key) throw new Error(`payload key for ${workflowId}: none after insert`);
    return remember(unwrap({ id: found.id, tenantId: found.tenant_id, wrappedKey: found.wrapped_key }), name);
  }

  return {
    /** The key new payloads of this workflow are encrypted with (created on first use); no workflow id: the platform key. */
    async forWorkflow(workflowId: string | undefined): Promise<PayloadKey> {
      const wid = workflowId && leadChannelOf(workflowId) ? workflowId : platform;
      const name = storedName(wid);
      // cached by creation here, or by the decode of a payload under this key (a worker that
      // first decodes a new lead's signal then encrypts its replies with the same key, no query)
      const cached = byWorkflow.get(name);
      if (cached) return cached;
      let p = pending.get(name);
      if (!p) {
        p = load(wid).finally(() => pending.delete(name));
        pending.set(name, p);
      }
      const k = await p;
      byWorkflow.set(name, k);
      return k;
    },

    /** The key a payload names; PayloadKeyUnavailable when it was destroyed or never existed. */
    async byId(keyId: string): Promise<PayloadKey> {
      const cached = byId.get(keyId);
      if (cached) return cached;
      if (!UUID.test(keyId)) throw new PayloadKeyUnavailable(keyId, 'unknown');
      const [row] = await db
        .select({ id: payloadKeys.id, tenantId: payloadKeys.tenantId, wrappedKey: payloadKeys.wrappedKey, name: payloadKeys.workflowId })
        .from(payloadKeys)
        .where(eq(payloadKeys.id, keyId));
      // the lead id key (services/lead-id-key.ts) shares the table but is no payload key
      if (!row || row.name.startsWith(LEAD_ID_KEY_PREFIX)) throw new PayloadKeyUnavailable(keyId, 'unknown');
      if (!row.wrappedKey) throw new PayloadKeyUnavailable(keyId, 'destroyed');
      // a live key is its workflow's current key: remembered for encoding too
      return remember(unwrap({ ...row, wrappedKey: row.wrappedKey }), row.name);
    },

    /**
     * Crypto-shred: destroy the live keys of these lead workflow ids (after their workflows ended).
     * Their histories can no longer be decoded. Returns how many keys were destroyed.
     */
    async destroy(workflowIds: string[]): Promise<number> {
      const ids = workflowIds.filter((w) => !w.startsWith(PLATFORM_KEY_PREFIX));
      if (ids.length === 0) return 0;
      const gone = await db
        .update(payloadKeys)
        .set({ wrappedKey: null, destroyedAt: sql`now()` })
        .where(and(inArray(payloadKeys.workflowId, ids.map(storedName)), isNull(payloadKeys.destroyedAt)))
        .returning({ id: payloadKeys.id });
      for (const w of ids) byWorkflow.delete(storedName(w));
      for (const g of gone) byId.delete(g.id);
      return gone.length;
    },
  };
}

export type PayloadKeyService = ReturnType<typeof createPayloadKeyService>;

/** Re-wrap every live data key under the current master key (`npm run secrets:rewrap`). */
export async function rewrapPayloadKeys(db: Db, box: SecretBox): Promise<{ checked: number; rewrapped: number; failed: string[] }> {
  const rows = await db.select({ id: payloadKeys.id, wrappedKey: payloadKeys.wrappedKey }).from(payloadKeys).where(isNull(payloadKeys.destroyedAt));
  let rewrapped = 0;
  const failed: string[] = [];
  for (const row of rows) {
    if (!row.wrappedKey || !box.needsRewrap(row.wrappedKey)) continue;
    const ctx = `payload_keys.wrapped_key:${row.id}`;
    try {
      const fresh = box.encrypt(box.decrypt(row.wrappedKey, ctx), ctx);
      await db.update(payloadKeys).set({ wrappedKey: fresh }).where(and(eq(payloadKeys.id, row.id), eq(payloadKeys.wrappedKey, row.wrappedKey)));
      rewrapped += 1;
    } catch {
      failed.push(row.id);
    }
  }
  return { checked: rows.length, rewrapped, failed };
}
