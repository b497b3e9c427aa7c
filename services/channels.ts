import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { agents, channelAccounts } from '../db/schema';
import { hashApiKey, type SecretBox } from '../lib/crypto';
import { AppError } from '../lib/errors';
import { PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export interface ChannelInput {
  platform: 'whatsapp';
  phoneNumberId: string;
  displayPhoneNumber?: string;
  accessToken: string;
  appSecret?: string;
  verifyToken: string;
  agentId: string;
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
            phoneNumberId: input.phoneNumberId,
            displayPhoneNumber: input.displayPhoneNumber ?? null,
            accessTokenEnc: box.encrypt(input.accessToken),
            appSecretEnc: input.appSecret ? box.encrypt(input.appSecret) : null,
            verifyTokenHash: hashVerifyToken(input.verifyToken),
            agentId: input.agentId,
          })
          .returning();
        if (!c) throw new Error('channel insert returned nothing');
        return present(c);
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) {
          throw new AppError('conflict', `a ${input.platform} channel with phoneNumberId ${input.phoneNumberId} is already registered`);
        }
        throw err;
      }
    },

    async list(tenantId: string) {
      const rows = await db.select().from(channelAccounts).where(eq(channelAccounts.tenantId, tenantId)).orderBy(channelAccounts.createdAt);
      return rows.map(present);
    },

    async routingByPhoneNumberId(platform: 'whatsapp', phoneNumberId: string): Promise<ChannelRouting | undefined> {
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

    /** For the delivery activity: where to send and with which token. */
    async sendCredentials(channelAccountId: string): Promise<{ phoneNumberId: string; accessToken: string; tenantId: string } | undefined> {
      const [c] = await db.select().from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
      if (!c) return undefined;
      return { phoneNumberId: c.phoneNumberId, accessToken: box.decrypt(c.accessTokenEnc), tenantId: c.tenantId };
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
