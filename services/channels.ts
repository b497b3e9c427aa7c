import { randomBytes } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { agents, channelAccounts } from '../db/schema';
import { hashApiKey, type SecretBox } from '../lib/crypto';
import { AppError } from '../lib/errors';
import { PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export type Platform = 'whatsapp' | 'instagram' | 'webchat';

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
}

/** What the webhook and the delivery activity need to know about a channel account. */
export interface ChannelRouting {
  id: string;
  tenantId: string;
  platform: 'whatsapp' | 'instagram' | 'webchat';
  phoneNumberId: string;
  agentId: string;
  /** Decrypted; only for signature checks, never logged. */
  appSecret?: string;
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
    circuit: { state: c.circuitState, openedAt: c.circuitOpenedAt ? toIso(c.circuitOpenedAt) : null, reason: c.circuitReason ?? null },
    ...(c.platform === 'webchat' ? { widgetKey: c.phoneNumberId } : {}),
    createdAt: toIso(c.createdAt),
  };
}

export function createChannelService(db: Db, box: SecretBox) {
  return {
    async create(tenantId: string, input: ChannelInput) {
      const [agent] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, input.agentId)));
      if (!agent) throw new AppError('validation_failed', 'agentId does not name an agent of this tenant', [{ path: ['agentId'], message: 'unknown agent' }]);
      try {
        const [c] = await db
          .insert(channelAccounts)
          .values({
            tenantId,
            platform: input.platform,
            phoneNumberId: input.phoneNumberId ?? `wc_${randomBytes(12).toString('base64url')}`,
            displayPhoneNumber: input.displayPhoneNumber ?? null,
            accessTokenEnc: box.encrypt(input.accessToken ?? ''),
            appSecretEnc: input.appSecret ? box.encrypt(input.appSecret) : null,
            // web chat has no webhook: an unguessable hash nobody can present
            verifyTokenHash: hashVerifyToken(input.verifyToken ?? randomBytes(32).toString('base64url')),
            agentId: input.agentId,
            messagesPerSecond: input.messagesPerSecond ?? null,
            markRead: input.markRead ?? true,
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

    async list(tenantId: string) {
      const rows = await db.select().from(channelAccounts).where(eq(channelAccounts.tenantId, tenantId)).orderBy(channelAccounts.createdAt);
      return rows.map(present);
    },

    async routingByPhoneNumberId(platform: Platform, phoneNumberId: string): Promise<ChannelRouting | undefined> {
      const [c] = await db
        .select()
        .from(channelAccounts)
        .where(and(eq(channelAccounts.platform, platform), eq(channelAccounts.phoneNumberId, phoneNumberId)));
      if (!c) return undefined;
      return {
        id: c.id,
        tenantId: c.tenantId,
        platform: c.platform,
        phoneNumberId: c.phoneNumberId,
        agentId: c.agentId,
        appSecret: c.appSecretEnc ? box.decrypt(c.appSecretEnc) : undefined,
      };
    },

    /**
     * Routings of many account ids of one platform in ONE query (the webhooks look up every
     * account a body names at once); ids with no channel are absent from the map.
     */
    async routingsByAccountIds(platform: Platform, accountIds: readonly string[]): Promise<Map<string, ChannelRouting>> {
      const out = new Map<string, ChannelRouting>();
      if (accountIds.length === 0) return out;
      const rows = await db
        .select()
        .from(channelAccounts)
        .where(and(eq(channelAccounts.platform, platform), inArray(channelAccounts.phoneNumberId, [...new Set(accountIds)])));
      for (const c of rows) {
        out.set(c.phoneNumberId, {
          id: c.id,
          tenantId: c.tenantId,
          platform: c.platform,
          phoneNumberId: c.phoneNumberId,
          agentId: c.agentId,
          appSecret: c.appSecretEnc ? box.decrypt(c.appSecretEnc) : undefined,
        });
      }
      return out;
    },

    /** For the delivery activity: where to send and with which token. */
    async sendCredentials(
      channelAccountId: string,
    ): Promise<{ phoneNumberId: string; accessToken: string; tenantId: string; platform: Platform; circuitState: 'open' | 'closed'; messagesPerSecond: number | null; markRead: boolean } | undefined> {
      const [c] = await db.select().from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
      if (!c) return undefined;
      return {
        phoneNumberId: c.phoneNumberId,
        accessToken: box.decrypt(c.accessTokenEnc),
        tenantId: c.tenantId,
        platform: c.platform,
        circuitState: c.circuitState,
        messagesPerSecond: c.messagesPerSecond,
        markRead: c.markRead,
      };
    },

    /** Open the channel's circuit breaker (auth or account error); the first reason is kept. */
    async openCircuit(channelAccountId: string, reason: unknown): Promise<void> {
      await db
        .update(channelAccounts)
        .set({ circuitState: 'open', circuitOpenedAt: sql`now()`, circuitReason: reason })
        .where(and(eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'closed')));
    },

    /** Close the circuit breaker (after the token was replaced); returns the channel, or undefined. */
    async closeCircuit(tenantId: string, channelAccountId: string) {
      const [c] = await db
        .update(channelAccounts)
        .set({ circuitState: 'closed', circuitOpenedAt: null, circuitReason: null })
        .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId)))
        .returning();
      return c ? present(c) : undefined;
    },

    /** Replace the access token (and optionally the app secret) of a tenant's channel. */
    async updateCredentials(tenantId: string, channelAccountId: string, input: { accessToken?: string; appSecret?: string; messagesPerSecond?: number | null; markRead?: boolean }) {
      const set: Partial<typeof channelAccounts.$inferInsert> = {};
      if (input.accessToken !== undefined) set.accessTokenEnc = box.encrypt(input.accessToken);
      if (input.appSecret !== undefined) set.appSecretEnc = box.encrypt(input.appSecret);
      if (input.messagesPerSecond !== undefined) set.messagesPerSecond = input.messagesPerSecond;
      if (input.markRead !== undefined) set.markRead = input.markRead;
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
