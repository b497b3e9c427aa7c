import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, eq, gt, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { Channel, CircuitState } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { agents, channelAccounts, creditReservations, deadLetters, leadEvents, leads, tenants } from '../db/schema';
import { hashApiKey, type SecretBox } from '../lib/crypto';
import { FailureType } from '../contract/failures';
import { AppError } from '../lib/errors';
import { enqueueWebhookEvent } from './webhook-endpoints';
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

/** A channel that is not deleted: every lookup serving live traffic or the tenant API asks for it. */
const live = isNull(channelAccounts.deletedAt);

/** What a deleted channel was: for the caches that route webhooks and widget calls to it. */
export interface DeletedChannel {
  id: string;
  tenantId: string;
  platform: Platform;
  phoneNumberId: string;
}

/** Leads of a deleted channel, closed: which, and the credits of held reservations given back. */
export interface ClosedLeadsPage {
  leads: { id: string; workflowId: string }[];
  creditsReleased: number;
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

/** How long a deleted channel's account id waits before it can be connected again: twice the webhook routing caches' 30 s. */
export const RECONNECT_AFTER_DELETE_MS = 60_000;

export function createChannelService(db: Db, box: SecretBox) {
  const deletedListeners = new Set<(channel: DeletedChannel) => void>();
  /** How a webhook reaches a channel: its tenant, agent and the app secret that signs its bodies (decrypted). */
  function routingOf(c: typeof channelAccounts.$inferSelect): ChannelRouting {
    return {
      id: c.id,
      tenantId: c.tenantId,
      platform: c.platform,
      phoneNumberId: c.phoneNumberId,
      // routings are read for live channels only, and a live channel has an agent (channel_accounts_live_has_agent)
      agentId: c.agentId!,
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
      .where(and(eq(channelAccounts.platform, platform), inArray(channelAccounts.phoneNumberId, [...new Set(accountIds)]), live));
    for (const c of rows) {
      out.set(c.phoneNumberId, routingOf(c));
    }
    return out;
  }

  return {
    async create(tenantId: string, input: ChannelInput) {
      const [agent] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, input.agentId)));
      if (!agent) throw new AppError('validation_failed', 'agentId does not name an agent of this tenant', [{ path: ['agentId'], message: 'unknown agent' }]);
      if (input.phoneNumberId) {
        // API processes route by account id from a cache (up to 30 s): a number deleted moments ago
        // may still be routed to the deleted channel elsewhere, so it is connected again only later
        const [recent] = await db
          .select({ waitMs: sql<number>`ceil(extract(epoch from (${channelAccounts.deletedAt} + make_interval(secs => ${RECONNECT_AFTER_DELETE_MS / 1000}) - now())) * 1000)::int` })
          .from(channelAccounts)
          .where(and(eq(channelAccounts.platform, input.platform), eq(channelAccounts.phoneNumberId, input.phoneNumberId), sql`${channelAccounts.deletedAt} > now() - make_interval(secs => ${RECONNECT_AFTER_DELETE_MS / 1000})`))
          .limit(1);
        if (recent) {
          const seconds = Math.max(1, Math.ceil(Number(recent.waitMs) / 1000));
          throw new AppError('conflict', `this ${input.platform} account was deleted moments ago; connect it again in ${seconds} s (other API processes may still route it to the deleted channel)`, { retryAfterSeconds: seconds }, 'channel_recently_deleted');
        }
      }
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
        .where(and(eq(channelAccounts.tenantId, tenantId), live, afterCursor(channelAccounts, opts.cursor, 'asc')))
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
      | {
          phoneNumberId: string;
          accessToken: string;
          tenantId: string;
          platform: Platform;
          circuitState: CircuitState;
          messagesPerSecond: number | null;
          markRead: boolean;
          tenantSuspended: boolean;
          /** Deleted: nothing is sent (its token is wiped); the caller fails with channel_deleted. */
          deleted: boolean;
        }
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
        deleted: c.deletedAt !== null,
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
      const [c] = await db.select().from(channelAccounts).where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), live));
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
        .where(and(eq(channelAccounts.platform, 'whatsapp'), inArray(channelAccounts.wabaId, [...new Set(wabaIds)]), live));
      for (const c of rows) {
        const list = out.get(c.wabaId!) ?? [];
        list.push(routingOf(c));
        out.set(c.wabaId!, list);
      }
      return out;
    },

    /** Open the channel's circuit breaker (auth or account error); the first reason is kept. */
    async openCircuit(channelAccountId: string, reason: unknown): Promise<void> {
      await db.transaction(async (tx) => {
        const [opened] = await tx
          .update(channelAccounts)
          .set({ circuitState: 'open', circuitOpenedAt: sql`now()`, circuitReason: reason })
          .where(and(eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'closed')))
          .returning({ tenantId: channelAccounts.tenantId, platform: channelAccounts.platform, openedAt: channelAccounts.circuitOpenedAt });
        // outbound webhooks: channel.circuit_opened when this call opened it (the outbox, in this transaction)
        if (opened) {
          await enqueueWebhookEvent(tx, {
            tenantId: opened.tenantId,
            type: 'channel.circuit_opened',
            eventId: `evt_circuit_${channelAccountId}_${Date.parse(opened.openedAt ?? '') || Date.now()}`,
            data: { channelAccountId, platform: opened.platform, reason: reason ?? null, openedAt: toIso(opened.openedAt) },
          });
        }
      });
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
        .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'open'), live));
      const [c] = before
        ? await db
            .update(channelAccounts)
            .set({ circuitState: 'closed', circuitOpenedAt: null, circuitReason: null })
            .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), eq(channelAccounts.circuitState, 'open'), live))
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
        .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), live))
        .returning();
      return c ? present(c) : undefined;
    },

    async get(tenantId: string, channelAccountId: string) {
      const [c] = await db.select().from(channelAccounts).where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), live));
      return c ? present(c) : undefined;
    },

    /** The channel's agent, and whether the channel is deleted (a lead run refuses to start on a deleted one); undefined for an unknown channel. */
    async agentIdFor(channelAccountId: string): Promise<{ agentId: string | null; deleted: boolean } | undefined> {
      const [c] = await db.select({ agentId: channelAccounts.agentId, deletedAt: channelAccounts.deletedAt }).from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
      return c ? { agentId: c.agentId, deleted: c.deletedAt !== null } : undefined;
    },

    async verifyTokenRegistered(token: string): Promise<boolean> {
      const [c] = await db.select({ id: channelAccounts.id }).from(channelAccounts).where(and(eq(channelAccounts.verifyTokenHash, hashVerifyToken(token)), live)).limit(1);
      return Boolean(c);
    },

    /**
     * Delete a tenant's channel (soft): `deleted_at` set, its secrets wiped (the access token
     * becomes an encrypted empty string, the column is NOT NULL; the app secret goes; the verify
     * token hash becomes one nobody can present), so the row keeps its leads, messages and events
     * readable and its account id can be connected again. `openLeads`: its leads not closed yet
     * (the caller closes them in the background). Undefined for an unknown, another tenant's or an
     * already deleted channel. Listeners (the routing caches of this process) hear of it at once.
     */
    async delete(tenantId: string, channelAccountId: string): Promise<{ channel: ReturnType<typeof present>; openLeads: number } | undefined> {
      const [c] = await db
        .update(channelAccounts)
        .set({
          deletedAt: sql`now()`,
          accessTokenEnc: box.encrypt('', channelSecretContext(channelAccountId, 'access_token')),
          appSecretEnc: null,
          verifyTokenHash: hashVerifyToken(randomBytes(32).toString('base64url')),
        })
        .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, channelAccountId), live))
        .returning();
      if (!c) return undefined;
      const [{ n } = { n: 0 }] = await db
        .select({ n: sql<number>`count(*)::int` })
        .from(leads)
        .where(and(eq(leads.channelAccountId, c.id), ne(leads.mode, 'closed')));
      const gone: DeletedChannel = { id: c.id, tenantId: c.tenantId, platform: c.platform, phoneNumberId: c.phoneNumberId };
      for (const listener of deletedListeners) {
        try {
          listener(gone);
        } catch {
          // a cache that cannot forget expires on its own
        }
      }
      return { channel: present(c), openLeads: Number(n) };
    },

    /** Whether the channel is marked deleted (undefined: no such channel). */
    async isDeleted(channelAccountId: string): Promise<boolean | undefined> {
      const [c] = await db.select({ deletedAt: channelAccounts.deletedAt }).from(channelAccounts).where(eq(channelAccounts.id, channelAccountId)).limit(1);
      return c ? c.deletedAt !== null : undefined;
    },

    /** Hear of every channel this process deletes (the webhook and widget routing caches forget it). */
    onDeleted(listener: (channel: DeletedChannel) => void): void {
      deletedListeners.add(listener);
    },

    /** One page of a deleted channel's open leads (mode not closed), ordered by id after `afterId` (empty for a channel that is not deleted). */
    async deletedChannelLeads(channelAccountId: string, opts: { afterId?: string; limit: number }): Promise<{ id: string; workflowId: string }[]> {
      return db
        .select({ id: leads.id, workflowId: leads.workflowId })
        .from(leads)
        .innerJoin(channelAccounts, and(eq(channelAccounts.id, leads.channelAccountId), sql`${channelAccounts.deletedAt} is not null`))
        .where(and(eq(leads.channelAccountId, channelAccountId), ne(leads.mode, 'closed'), opts.afterId ? gt(leads.id, opts.afterId) : undefined))
        .orderBy(asc(leads.id))
        .limit(opts.limit);
    },

    /**
     * Close these leads of a deleted channel in one transaction: mode `closed`, a
     * `channel_deleted` event on each (once per lead and channel), and the credit reservations
     * their workflows still hold given back to the tenant. Nothing is deleted. Does nothing for a
     * channel that is not deleted. The caller ends the workflows first.
     */
    async closeLeads(channelAccountId: string, leadIds: readonly string[]): Promise<ClosedLeadsPage> {
      if (leadIds.length === 0) return { leads: [], creditsReleased: 0 };
      return db.transaction(async (tx) => {
        const [c] = await tx.select({ tenantId: channelAccounts.tenantId, deletedAt: channelAccounts.deletedAt }).from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
        if (!c?.deletedAt) return { leads: [], creditsReleased: 0 };
        const page = await tx
          .select({ id: leads.id, tenantId: leads.tenantId, workflowId: leads.workflowId, mode: leads.mode })
          .from(leads)
          .where(and(eq(leads.channelAccountId, channelAccountId), inArray(leads.id, [...leadIds])))
          .orderBy(asc(leads.id))
          .for('update');
        if (page.length === 0) return { leads: [], creditsReleased: 0 };
        const ids = page.map((l) => l.id);
        const closedNow = new Set(
          (await tx.update(leads).set({ mode: 'closed', updatedAt: sql`now()` }).where(and(inArray(leads.id, ids), ne(leads.mode, 'closed'))).returning({ id: leads.id })).map((l) => l.id),
        );
        // their open dead letters can never be replayed (the workflows are gone): discarded, not left open
        await tx
          .update(deadLetters)
          .set({ status: 'discarded', resolvedAt: sql`now()`, updatedAt: sql`now()` })
          .where(and(eq(deadLetters.tenantId, c.tenantId), inArray(deadLetters.leadId, ids), eq(deadLetters.status, 'open')));
        const closing = page.filter((l) => closedNow.has(l.id));
        if (closing.length) await tx
          .insert(leadEvents)
          .values(
            closing.map((l) => ({
              tenantId: l.tenantId,
              leadId: l.id,
              type: FailureType.ChannelDeleted,
              data: { channelAccountId, modeBefore: l.mode, deletedAt: toIso(c.deletedAt) },
              dedupKey: `channel_deleted:${channelAccountId}:${l.id}`,
            })),
          )
          .onConflictDoNothing();
        const held = await tx
          .update(creditReservations)
          .set({ status: 'released', updatedAt: sql`now()` })
          .where(and(eq(creditReservations.tenantId, c.tenantId), inArray(creditReservations.workflowId, page.map((l) => l.workflowId)), eq(creditReservations.status, 'held')))
          .returning({ amount: creditReservations.amount });
        const back = held.reduce((a, r) => a + r.amount, 0);
        if (back > 0) await tx.update(tenants).set({ creditBalance: sql`${tenants.creditBalance} + ${back}` }).where(eq(tenants.id, c.tenantId));
        return { leads: closing.map((l) => ({ id: l.id, workflowId: l.workflowId })), creditsReleased: back };
      });
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
