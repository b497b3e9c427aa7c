import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Channel, CircuitState } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { agents, channelAccounts, tenants } from '../db/schema';
import { hashApiKey, type SecretBox } from '../lib/crypto';
import { AppError } from '../lib/errors';
import { afterCursor, keyset, PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

/** A channel account's platform: one of the channels. */
export type Platform = Channel;

/**
 * A channel account. `phoneNumberId` is the platform's account key: the WhatsApp
 * phone_number_id, the Instagram professional account id (the webhook's entry.id), or the
 * web chat's public widget key (generated when omitted).
 */
export interface ChannelInput {
  platform: Platform;
  phoneNumberId?: string;
  displayPhoneNumber?: string;
  /** WhatsApp / Instagram access token; web chat has none. */
  accessToken?: string;
  appSecret?: string;
  verifyToken?: string;
  agentId: string;
  messagesPerSecond?: number;
  markRead?: boolean;
  /** Web chat: origins allowed to call the widget's routes (undefined/null = any). */
  allowedOrigins?: string[] | null;
  /** WhatsApp: the WhatsApp Business Account id (template sync and template webhooks). */
  wabaId?: string;
}

/** What the webhook and the delivery activity need to know about a channel account. */
export interface ChannelRouting {
  id: string;
  tenantId: string;
  platform: Platform;
  phoneNumberId: string;
  agentId: string;
  /** Decrypted; only for signature checks, never logged. */
  appSecret?: string;
  /** Web chat: origins allowed to call the widget's routes (null = any). */
  allowedOrigins?: string[] | null;
}

/**
 * The associated data an encrypted channel secret is bound to: its row and its column, so a
 * ciphertext copied to another channel or into the other column does not decrypt.
 */
export function channelSecretContext(channelAccountId: string, column: 'access_token' | 'app_secret'): string {
  return `channel_accounts:${channelAccountId}:${column}`;
}

/** Verify tokens are compared by hash, like API keys. */
export const hashVerifyToken = hashApiKey;

function present(c: typeof channelAccounts.$inferSelect) {
  return {
    id: c.id,
    platform: c.platform,
    phoneNumberId: c.phoneNumberId,
    displayPhoneNumber: c.displayPhoneNumber,
    agentId: c.agentId,
    hasAppSecret: c.appSecretEnc !== null,
    messagesPerSecond: c.messagesPerSecond,
    markRead: c.markRead,
    enabled: c.enabled,
    ...(c.platform === 'whatsapp' ? { wabaId: c.wabaId ?? null } : {}),
    circuit: { state: c.circuitState, openedAt: c.circuitOpenedAt ? toIso(c.circuitOpenedAt) : null, reason: c.circuitReason ?? null },
    ...(c.platform === 'webchat' ? { widgetKey: c.phoneNumberId, allowedOrigins: c.allowedOrigins ?? null } : {}),
    createdAt: toIso(c.createdAt),
  };
}

export function createChannelService(db: Db, box: SecretBox) {
  /** How a webhook reaches a channel: its tenant, agent and the app secret that signs its bodies (decrypted). */
  function routingOf(c: typeof channelAccounts.$inferSelect): ChannelRouting {
    return {
      id: c.id,
      tenantId: c.tenantId,
      platform: c.platform,
      phoneNumberId: c.phoneNumberId,
      agentId: c.agentId,
      appSecret: c.appSecretEnc ? box.decrypt(c.appSecretEnc, channelSecretContext(c.id, 'app_secret')) : undefined,
      allowedOrigins: c.allowedOrigins ?? null,
    };
  }

  async function routingsByAccountIds(platform: Platform, accountIds: readonly string[]): Promise<Map<string, ChannelRouting>> {
    const out = new Map<string, ChannelRouting>();
    if (accountIds.length === 0) return out;
    const rows = await db
      .select()
      .from(channelAccounts)
      .where(and(eq(channelAccounts.platform, platform), inArray(channelAccounts.phoneNumberId, [...new Set(accountIds)])));
    for (const c of rows) {
      out.set(c.phoneNumberId, routingOf(c));
    }
    return out;
  }

  return {
    async create(tenantId: string, input: ChannelInput) {
      const [agent] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, input.agentId)));
      if (!agent) throw new AppError('validation_failed', 'agentId does not name an agent of this tenant', [{ path: ['agentId'], message: 'unknown agent' }]);
      const id = randomUUID(); // chosen here: the secrets are bound to it
      try {
        const [c] = await db
          .insert(channelAccounts)
          .values({
            id,
            tenantId,
            platform: input.platform,
            phoneNumberId: input.phoneNumberId ?? `wc_${randomBytes(12).toString('base64url')}`,
            displayPhoneNumber: input.displayPhoneNumber ?? null,
            accessTokenEnc: box.encrypt(input.accessToken ?? '', channelSecretContext(id, 'access_token')),
            appSecretEnc: input.appSecret ? box.encrypt(input.appSecret, channelSecretContext(id, 'app_secret')) : null,
            // web chat has no webhook: an unguessable hash nobody can present
            verifyTokenHash: hashVerifyToken(input.verifyToken ?? randomBytes(32).toString('base64url')),
            agentId: input.agentId,
            messagesPerSecond: input.messagesPerSecond ?? null,
            markRead: input.markRead ?? true,
            allowedOrigins: input.allowedOrigins ?? null,
            wabaId: input.wabaId ?? null,
          })
          .returning();
        if (!c) throw new Error('channel insert returned nothing');
        return present(c);
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) {
          throw new AppError('conflict', `a ${input.platform} channel with id ${input.phoneNumberId ?? ''} is already registered`);
        }
        throw err;
      }
    },

    /** Oldest first, one keyset page. */
    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(channelAccounts)
        .where(and(eq(channelAccounts.tenantId, tenantId), afterCursor(channelAccounts, opts.cursor, 'asc')))
        .orderBy(asc(channelAccounts.createdAt), asc(channelAccounts.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },

    async routingByPhoneNumberId(platform: Platform, phoneNumberId: string): Promise<ChannelRouting | undefined> {
      return (await routingsByAccountIds(platform, [phoneNumberId])).get(phoneNumberId);
    },

    /**
     * Routings of many account ids of one platform in ONE query (the webhooks look up every
     * account a body names at once); ids with no channel are absent from the map.
     */
    routingsByAccountIds,

    /** For the delivery activity: where to send and with which token. */
    async sendCredentials(
      channelAccountId: string,
    ): Promise<
      | { phoneNumberId: string; accessToken: string; tenantId: string; platform: Platform; circuitState: CircuitState; messagesPerSecond: number | null; markRead: boolean; tenantSuspended: boolean }
      | undefined
    > {
      const [row] = await db
        .select({ c: channelAccounts, suspendedAt: tenants.suspendedAt })
        .from(channelAccounts)
        .innerJoin(tenants, eq(tenants.id, channelAccounts.tenantId))
        .where(eq(channelAccounts.id, channelAccountId));
      if (!row) return undefined;
      const c = row.c;
      return {
        tenantSuspended: row.suspendedAt !== null,
        phoneNumberId: c.phoneNumberId,
        accessToken: box.decrypt(c.accessTokenEnc, channelSecretContext(c.id, 'access_token')),
        tenantId: c.tenantId,
        platform: c.platform,
        circuitState: c.circuitState,
        messagesPerSecond: c.messagesPerSecond,
        markRead: c.markRead,
      };
    },

    /** For the template sync: the tenant's channel, its WhatsApp Business Account id and token (never logged). */
    async syncCredentials(tenantId: string, channelAccountId: string): Promise<{ platform: Platform; wabaId: string | null; accessToken: string } | undefined> {
      const [c] = await db.select().from(channelAccounts).where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId)));
      if (!c) return undefined;
      return { platform: c.platform, wabaId: c.wabaId, accessToken: c.platform === 'webchat' ? '' : box.decrypt(c.accessTokenEnc, channelSecretContext(c.id, 'access_token')) };
    },

    /**
     * The WhatsApp channels of these WhatsApp Business Account ids in ONE query (template
     * webhooks address an account, entry.id, not a phone number): account id → its channels.
     */
    async routingsByWabaIds(wabaIds: readonly string[]): Promise<Map<string, ChannelRouting[]>> {
      const out = new Map<string, ChannelRouting[]>();
      if (wabaIds.length === 0) return out;
      const rows = await db
        .select()
        .from(channelAccounts)
        .where(and(eq(channelAccounts.platform, 'whatsapp'), inArray(channelAccounts.wabaId, [...new Set(wabaIds)])));
      for (const c of rows) {
        const list = out.get(c.wabaId!) ?? [];
        list.push(routingOf(c));
        out.set(c.wabaId!, list);
      }
      return out;
    },

    /** Open the channel's circuit breaker (auth or account error); the first reason is kept. */
    async openCircuit(channelAccountId: string, reason: unknown): Promise<void> {
      await db
        .update(channelAccounts)
        .set({ circuitState: 'open', circuitOpenedAt: sql`now()`, circuitReason: reason })
        .where(and(eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'closed')));
    },

    /**
     * Close the circuit breaker (after the token was replaced), only when it is open: `closed`
     * says whether this call closed it, `openedAt` when the closed opening began. Undefined for
     * an unknown channel or another tenant's.
     */
    async closeCircuit(tenantId: string, channelAccountId: string): Promise<{ channel: ReturnType<typeof present>; closed: boolean; openedAt?: string } | undefined> {
      const [before] = await db
        .select({ openedAt: channelAccounts.circuitOpenedAt })
        .from(channelAccounts)
        .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'open')));
      const [c] = before
        ? await db
            .update(channelAccounts)
            .set({ circuitState: 'closed', circuitOpenedAt: null, circuitReason: null })
            .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'open')))
            .returning()
        : [];
      if (c) return { channel: present(c), closed: true, openedAt: (before?.openedAt ? toIso(before.openedAt) : null) ?? new Date().toISOString() };
      const current = await this.get(tenantId, channelAccountId);
      return current ? { channel: current, closed: false } : undefined;
    },

    /** Replace the access token (and optionally the app secret) of a tenant's channel. */
    async updateCredentials(
      tenantId: string,
      channelAccountId: string,
      input: { accessToken?: string; appSecret?: string; messagesPerSecond?: number | null; markRead?: boolean; allowedOrigins?: string[] | null; agentId?: string; wabaId?: string | null; enabled?: boolean },
    ) {
      const set: Partial<typeof channelAccounts.$inferInsert> = {};
      if (input.agentId !== undefined) {
        // move the channel to another agent of this tenant: replies use it from the next turn
        const [agent] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, input.agentId)));
        if (!agent) throw new AppError('validation_failed', 'agentId does not name an agent of this tenant', [{ path: ['agentId'], message: 'unknown agent' }]);
        set.agentId = input.agentId;
      }
      if (input.accessToken !== undefined) set.accessTokenEnc = box.encrypt(input.accessToken, channelSecretContext(channelAccountId, 'access_token'));
      if (input.appSecret !== undefined) set.appSecretEnc = box.encrypt(input.appSecret, channelSecretContext(channelAccountId, 'app_secret'));
      if (input.messagesPerSecond !== undefined) set.messagesPerSecond = input.messagesPerSecond;
      if (input.markRead !== undefined) set.markRead = input.markRead;
      if (input.allowedOrigins !== undefined) set.allowedOrigins = input.allowedOrigins;
      if (input.wabaId !== undefined) set.wabaId = input.wabaId;
      if (input.enabled !== undefined) set.enabled = input.enabled;
      if (Object.keys(set).length === 0) throw new AppError('validation_failed', 'nothing to change');
      const [c] = await db
        .update(channelAccounts)
        .set(set)
        .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId)))
        .returning();
      return c ? present(c) : undefined;
    },

    async get(tenantId: string, channelAccountId: string) {
      const [c] = await db.select().from(channelAccounts).where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId)));
      return c ? present(c) : undefined;
    },

    async agentIdFor(channelAccountId: string): Promise<string | undefined> {
      const [c] = await db.select({ agentId: channelAccounts.agentId }).from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
      return c?.agentId;
    },

    async verifyTokenRegistered(token: string): Promise<boolean> {
      const [c] = await db.select({ id: channelAccounts.id }).from(channelAccounts).where(eq(channelAccounts.verifyTokenHash, hashVerifyToken(token))).limit(1);
      return Boolean(c);
    },
  };
}

export type ChannelService = ReturnType<typeof createChannelService>;

/**
 * Key rotation and format migration: re-encrypt every channel secret that is not yet in the
 * current format under the current key (legacy v1 values, values of a previous key). Each row
 * is updated only if its values did not change meanwhile. Rows no configured key opens are
 * listed by id and left as they are. Run with `npm run secrets:rewrap` after changing keys.
 */
export async function rewrapChannelSecrets(db: Db, box: SecretBox): Promise<{ checked: number; rewrapped: number; failed: string[] }> {
  const rows = await db
    .select({ id: channelAccounts.id, accessTokenEnc: channelAccounts.accessTokenEnc, appSecretEnc: channelAccounts.appSecretEnc })
    .from(channelAccounts);
  let rewrapped = 0;
  const failed: string[] = [];
  for (const r of rows) {
    const access = box.needsRewrap(r.accessTokenEnc);
    const secret = r.appSecretEnc !== null && box.needsRewrap(r.appSecretEnc);
    if (!access && !secret) continue;
    try {
      const set: Partial<typeof channelAccounts.$inferInsert> = {};
      if (access) set.accessTokenEnc = box.encrypt(box.decrypt(r.accessTokenEnc, channelSecretContext(r.id, 'access_token')), channelSecretContext(r.id, 'access_token'));
      if (secret && r.appSecretEnc !== null) {
        set.appSecretEnc = box.encrypt(box.decrypt(r.appSecretEnc, channelSecretContext(r.id, 'app_secret')), channelSecretContext(r.id, 'app_secret'));
      }
      const updated = await db
        .update(channelAccounts)
        .set(set)
        .where(
          and(
            eq(channelAccounts.id, r.id),
            eq(channelAccounts.accessTokenEnc, r.accessTokenEnc),
            r.appSecretEnc === null ? isNull(channelAccounts.appSecretEnc) : eq(channelAccounts.appSecretEnc, r.appSecretEnc),
          ),
        )
        .returning({ id: channelAccounts.id });
      if (updated.length > 0) rewrapped += 1;
    } catch {
      failed.push(r.id);
    }
  }
  return { checked: rows.length, rewrapped, failed };
}
