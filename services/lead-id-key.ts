/**
 * The key of lead workflow ids (lib/lead-ids.ts): 32 random bytes created once per database,
 * stored in `payload_keys` (tenant null, workflow id `*lead-ids*:<master key id at creation>`)
 * wrapped by the master key like the payload data keys (lib/crypto.ts SecretBox, bound to the
 * row id), so `npm run secrets:rewrap` re-wraps it with them and a master-key rotation changes no
 * workflow id. The codec server never hands it out (services/payload-keys.ts `byId`).
 *
 * Read once at start by the API and the worker (composition/core.ts). The oldest live row the
 * configured master keys open is the key; when none opens (a new database, or a database shared
 * with stacks that use other master keys, as tests do) one is created: insert on conflict do
 * nothing, then read again, so processes starting together agree on one key.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, isNull, like } from 'drizzle-orm';
import type { Db } from '../db/client';
import { payloadKeys } from '../db/schema';
import type { SecretBox } from '../lib/crypto';
import { LEAD_ID_KEY_BYTES } from '../lib/lead-ids';

export const LEAD_ID_KEY_PREFIX = '*lead-ids*';

const context = (id: string) => `payload_keys.wrapped_key:${id}`;

async function findLeadIdKey(db: Db, box: SecretBox): Promise<Buffer | undefined> {
  const rows = await db
    .select({ id: payloadKeys.id, wrappedKey: payloadKeys.wrappedKey })
    .from(payloadKeys)
    .where(and(like(payloadKeys.workflowId, `${LEAD_ID_KEY_PREFIX}:%`), isNull(payloadKeys.destroyedAt)))
    .orderBy(asc(payloadKeys.createdAt), asc(payloadKeys.id));
  for (const row of rows) {
    if (!row.wrappedKey) continue;
    let key: Buffer;
    try {
      key = Buffer.from(box.decrypt(row.wrappedKey, context(row.id)), 'base64');
    } catch {
      continue; // another master key's row (a shared test database): not ours
    }
    if (key.length === LEAD_ID_KEY_BYTES) return key;
  }
  return undefined;
}

/** The lead id key, created on first use. */
export async function loadLeadIdKey(db: Db, box: SecretBox): Promise<Buffer> {
  const found = await findLeadIdKey(db, box);
  if (found) return found;
  const id = randomUUID();
  await db
    .insert(payloadKeys)
    .values({ id, tenantId: null, workflowId: `${LEAD_ID_KEY_PREFIX}:${box.keyId}`, wrappedKey: box.encrypt(randomBytes(LEAD_ID_KEY_BYTES).toString('base64'), context(id)) })
    .onConflictDoNothing();
  const created = await findLeadIdKey(db, box);
  if (!created) throw new Error('lead id key: none readable after creating one');
  return created;
}
