import { and, desc, eq, getTableColumns, gt, gte, ilike, inArray, isNull, like, lt, or, sql } from 'drizzle-orm';
import type { InboundMessage } from '../contract/messages';
import type { Channel, LeadMode } from '../contract/vocabulary';
import type { Db, DbTransaction } from '../db/client';
import { channelAccounts, deadLetters, leadEvents, leads, messages } from '../db/schema';
import { AppError } from '../lib/errors';
import { enqueueWebhookEvent, webhookEventOfLeadEvent, webhookEventsCte } from './webhook-endpoints';
import { afterCursor, decodeCursor, decodeSeqCursor, encodeSeqCursor, boundedTimestamp, forDatabase, inTransaction, isUuid, keyset, PG_UNIQUE_VIOLATION, pgErrorCode, rowsOf, toIso, withoutNul } from './db-util';

/** The channel of a lead to create is deleted (or not the tenant's): no lead starts on it. */
export class ChannelNotLive extends Error {
  constructor(readonly channelAccountId: string) {
    super(`channel account ${channelAccountId} is deleted or not the tenant's: no lead starts on it`);
    this.name = 'ChannelNotLive';
  }
}

type LeadRow = typeof leads.$inferSelect;
type MessageRow = typeof messages.$inferSelect;

/** The filters of GET /v1/leads (see `list`). */
export interface LeadListOptions {
  limit: number;
  cursor?: string;
  stage?: string;
  mode?: LeadMode;
  channelId?: string;
  minScore?: number;
  needsAttention?: boolean;
  updatedSince?: string;
  q?: string;
}

/** `value` matched literally inside a LIKE pattern (its %, _ and \\ escaped). */
function likeEscape(value: string): string {
  return value.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

function presentLead(l: LeadRow) {
  return {
    id: l.id,
    channelAccountId: l.channelAccountId,
    channel: l.channel,
    contactId: l.contactId,
    name: l.name,
    /** WhatsApp: the phone number and business-scoped user id as last seen (a username user may have no phone). */
    phone: l.phone,
    bsuid: l.bsuid,
    parentBsuid: l.parentBsuid,
    username: l.username,
    stage: l.stage,
    mode: l.mode,
    blocked: l.blocked,
    /** The latest extraction's score (`?minScore=` filters on it), null before one. */
    score: l.score,
    timeZone: l.timeZone,
    workflowId: l.workflowId,
    lastInboundAt: toIso(l.lastInboundAt),
    lastOutboundAt: toIso(l.lastOutboundAt),
    createdAt: toIso(l.createdAt),
    updatedAt: toIso(l.updatedAt),
  };
}

function presentMessage(m: MessageRow) {
  return {
    id: m.id,
    direction: m.direction,
    providerMessageId: m.providerMessageId,
    type: m.type,
    body: m.body,
    content: richContent(m.details),
    knowledge: knowledgeUsed(m.details),
    status: m.status,
    error: m.error,
    sentAt: toIso(m.sentAt),
    createdAt: toIso(m.createdAt),
  };
}

/** An outbound rich message as it went out (contract/rich.ts RichMessage, kept in `details.rich`), else null. */
function richContent(details: unknown): Record<string, unknown> | null {
  const rich = details && typeof details === 'object' ? (details as { rich?: unknown }).rich : undefined;
  return rich && typeof rich === 'object' ? (rich as Record<string, unknown>) : null;
}

/** The knowledge-base passages an outbound reply was written from (`details.knowledge`: activities/llm/knowledge-context.ts), else []. */
function knowledgeUsed(details: unknown): { chunkId: string; documentId: string; title: string; score: number }[] {
  const used = details && typeof details === 'object' ? (details as { knowledge?: unknown }).knowledge : undefined;
  if (!Array.isArray(used)) return [];
  return used.flatMap((k: unknown) => {
    if (!k || typeof k !== 'object') return [];
    const { chunkId, documentId, title, score } = k as Record<string, unknown>;
    return typeof chunkId === 'string' && typeof documentId === 'string' && typeof title === 'string' && typeof score === 'number' ? [{ chunkId, documentId, title, score }] : [];
  });
}

const chatColumns = {
  id: messages.id,
  seq: messages.seq,
  direction: messages.direction,
  providerMessageId: messages.providerMessageId,
  type: messages.type,
  body: messages.body,
  status: messages.status,
  createdAt: messages.createdAt,
  /** An outbound rich message (the widget renders buttons, lists, images). */
  rich: sql<unknown>`${messages.details}->'rich'`,
  /** A visitor's click on an option: `{ id, title }`. */
  option: sql<unknown>`${messages.details}->'option'`,
};

/** One message as a chat widget needs it (web chat stream and history). */
export interface ChatMessage {
  id: string;
  seq: number;
  direction: 'inbound' | 'outbound';
  providerMessageId: string | null;
  type: string;
  body: string;
  status: string;
  createdAt: string;
  /** details.rich (outbound rich message) and details.option (a web chat option click), when present. */
  rich?: unknown;
  option?: unknown;
}

/** A row as the widget gets it: ISO time, a numeric seq, and no null `rich` / `option`. */
function presentChatMessage(m: ChatMessage): ChatMessage {
  const { rich, option, ...rest } = m;
  return { ...rest, seq: Number(m.seq), createdAt: toIso(m.createdAt) ?? m.createdAt, ...(rich != null ? { rich } : {}), ...(option != null ? { option } : {}) };
}

/** Status order for outbound messages: a status only moves forward; failed is terminal. */
export const OUTBOUND_STATUS_RANK: Record<string, number> = { pending: 0, sent: 1, delivered: 2, read: 3, played: 3, failed: 9 };

/** markSendAttempt's answer: this attempt may call the provider, or the row as another attempt left it. */
export type SendClaim =
  | { claimed: true; attemptAt: string }
  | { claimed: false; providerMessageId: string | null; status: string | null; attemptAgeMs: number | null };

export function createLeadService(db: Db) {
  /** A lead's events, newest first, paged. */
  async function eventPage(tenantId: string, leadId: string, opts: { limit: number; cursor?: string }) {
    const rows = await db
      .select()
      .from(leadEvents)
      .where(and(eq(leadEvents.tenantId, tenantId), eq(leadEvents.leadId, leadId), afterCursor(leadEvents, opts.cursor, 'desc')))
      .orderBy(desc(leadEvents.createdAt), desc(leadEvents.id))
      .limit(opts.limit + 1);
    const { page, nextCursor } = keyset(rows, opts.limit);
    return { items: page.map((e) => ({ id: e.id, type: e.type, data: e.data, createdAt: toIso(e.createdAt) })), nextCursor };
  }

  return {
    /**
     * Create or find the lead of this contact on this channel. The row is inserted only while the
     * channel is live and the tenant's, in the same statement that reads the channel with a share
     * lock: a channel delete (an UPDATE of that row) either waits for this transaction, so the
     * close that follows it finds the new lead, or commits first, and then no lead is created
     * ({@link ChannelNotLive}). Checking the channel and inserting in two steps left a lead created
     * at the moment of the delete open behind the close's page cursor.
     */
    async ensure(raw: { tenantId: string; channelAccountId: string; channel: Channel; contactId: string; name?: string; workflowId: string }) {
      const input = withoutNul(raw);
      // outbound webhooks: lead.created goes into the outbox in the upsert's transaction
      return db.transaction(async (tx) => {
        const rows = rowsOf<{ id: string; stage: string; mode: LeadMode; blocked: boolean; time_zone: string | null; created: boolean }>(
          await tx.execute(sql`
            insert into ${leads} (tenant_id, channel_account_id, channel, contact_id, name, workflow_id)
            select c.tenant_id, c.id, ${input.channel}, ${input.contactId}, ${input.name ?? null}::text, ${input.workflowId}
              from ${channelAccounts} c
             where c.id = ${input.channelAccountId}::uuid and c.tenant_id = ${input.tenantId}::uuid and c.deleted_at is null
               for share
            on conflict (channel_account_id, contact_id) do update set name = coalesce(excluded.name, ${leads}.name), updated_at = now()
            returning id, stage, mode, blocked, time_zone, (xmax = 0) as created`),
        );
        const row = rows[0];
        if (!row) throw new ChannelNotLive(input.channelAccountId);
        // created: xmax is 0 for a freshly inserted row, the updating transaction's id otherwise
        const l = { id: row.id, stage: row.stage, mode: row.mode, blocked: row.blocked, timeZone: row.time_zone, created: row.created };
        if (l.created) {
          await enqueueWebhookEvent(tx, {
            tenantId: input.tenantId,
            type: 'lead.created',
            eventId: `evt_lead_${l.id}`,
            data: { leadId: l.id, channelAccountId: input.channelAccountId, channel: input.channel, contactId: input.contactId, name: input.name ?? null, stage: l.stage },
          });
        }
        return { leadId: l.id, stage: l.stage, mode: l.mode, blocked: l.blocked, timeZone: l.timeZone ?? undefined, created: Boolean(l.created) };
      });
    },

    /**
     * Record inbound messages once each (unique provider id). Returns the ids newly stored:
     * the database, not a window of recent ids, decides whether a message is new. `batchId`
     * (the caller's idempotency key, kept in `details.recordedBy`) makes a retried call report
     * the rows its earlier attempt stored as new too, and a redelivery recorded by another call
     * as old. `opts.tx`: run in the caller's transaction.
     */
    async recordInbound(raw: { tenantId: string; leadId: string; messages: InboundMessage[]; batchId?: string }, opts: { tx?: DbTransaction } = {}): Promise<{ stored: string[] }> {
      const now = new Date();
      // a provider timestamp PostgreSQL would refuse (Meta's 12-digit seconds) or far in the future becomes now
      const input = forDatabase({ ...raw, messages: raw.messages.map((m) => ({ ...m, sentAt: boundedTimestamp(m.sentAt, now) })) });
      if (input.messages.length === 0) return { stored: [] };
      return inTransaction(db, opts.tx, async (tx) => {
        const rows = await tx
          .insert(messages)
          .values(
            input.messages.map((m) => ({
              tenantId: input.tenantId,
              leadId: input.leadId,
              direction: 'inbound' as const,
              providerMessageId: m.providerMessageId,
              type: m.type,
              body: m.text,
              status: 'received',
              details: {
                ...(m.details ?? {}),
                ...(m.media ? { media: m.media } : {}),
                ...(m.replyToProviderId ? { replyTo: m.replyToProviderId } : {}),
                ...(input.batchId ? { recordedBy: input.batchId } : {}),
              },
              sentAt: m.sentAt,
            })),
          )
          .onConflictDoNothing()
          .returning({ id: messages.id, providerMessageId: messages.providerMessageId, type: messages.type, body: messages.body, sentAt: messages.sentAt });
        // outbound webhooks: message.received for each message stored now, written by the lead's update below (a CTE)
        const outbox = webhookEventsCte(
          tx,
          input.tenantId,
          rows.map((r) => ({
            type: 'message.received' as const,
            eventId: `evt_msg_${r.id}_received`,
            data: { leadId: input.leadId, messageId: r.id, providerMessageId: r.providerMessageId, type: r.type, text: r.body, sentAt: toIso(r.sentAt) },
          })),
        );
        const latest = input.messages.reduce((a, m) => (m.sentAt > a ? m.sentAt : a), input.messages[0]!.sentAt);
        const name = input.messages.find((m) => m.contactName)?.contactName;
        // the contact's current forms (WhatsApp phone number, BSUID, username), latest message last
        const who: { phone?: string; bsuid?: string; parentBsuid?: string; username?: string } = {};
        for (const m of input.messages) {
          const id = m.identity;
          if (!id) continue;
          if (id.phone) who.phone = id.phone;
          if (id.bsuid) who.bsuid = id.bsuid;
          if (id.parentBsuid) who.parentBsuid = id.parentBsuid;
          if (id.username) who.username = id.username;
        }
        await (outbox ? tx.with(outbox) : tx)
          .update(leads)
          .set({
            lastInboundAt: sql`greatest(${leads.lastInboundAt}, ${latest}::timestamptz)`,
            ...(name ? { name } : {}),
            ...who,
            updatedAt: sql`now()`,
          })
          .where(eq(leads.id, input.leadId));
        const stored = rows.map((r) => r.providerMessageId!).filter(Boolean);
        if (input.batchId && stored.length < input.messages.length) {
          // an earlier attempt of this same call may have stored the rest (its answer was lost)
          const mine = await tx
            .select({ providerMessageId: messages.providerMessageId })
            .from(messages)
            .where(
              and(
                eq(messages.leadId, input.leadId),
                inArray(messages.providerMessageId, input.messages.map((m) => m.providerMessageId)),
                sql`${messages.details}->>'recordedBy' = ${input.batchId}`,
              ),
            );
          for (const r of mine) if (r.providerMessageId && !stored.includes(r.providerMessageId)) stored.push(r.providerMessageId);
        }
        return { stored };
      });
    },

    async recordEvent(raw: { tenantId: string; leadId: string; type: string; data?: unknown; dedupKey?: string }): Promise<void> {
      const input = withoutNul(raw);
      const insert = (tx: Pick<Db, 'insert'>) =>
        tx
          .insert(leadEvents)
          .values({ tenantId: input.tenantId, leadId: input.leadId, type: input.type, data: input.data ?? null, dedupKey: input.dedupKey ?? null })
          .onConflictDoNothing()
          .returning({ id: leadEvents.id, createdAt: leadEvents.createdAt });
      const hook = webhookEventOfLeadEvent(input.type, input.data);
      if (!hook) {
        await insert(db);
        return;
      }
      // outbound webhooks: the outbox rows in the event's transaction, only when the event is new (a retry adds none)
      await db.transaction(async (tx) => {
        const [row] = await insert(tx);
        if (!row) return;
        const data = input.data && typeof input.data === 'object' && !Array.isArray(input.data) ? (input.data as Record<string, unknown>) : {};
        await enqueueWebhookEvent(tx, { tenantId: input.tenantId, type: hook, eventId: `evt_${row.id}`, at: toIso(row.createdAt) ?? undefined, data: { leadId: input.leadId, ...data } });
      });
    },

    /** Mirror the workflow's stage and mode into the database (the API lists from here). */
    async updateState(input: { leadId: string; stage?: string; mode?: LeadMode }): Promise<void> {
      const set: Partial<typeof leads.$inferInsert> = {};
      if (input.stage !== undefined) set.stage = input.stage;
      if (input.mode !== undefined) set.mode = input.mode;
      if (Object.keys(set).length === 0) return;
      // a lead its deleted channel's close closed stays closed (an activity still in flight then must not reopen it)
      await db
        .update(leads)
        .set({ ...set, updatedAt: sql`now()` })
        .where(and(eq(leads.id, input.leadId), sql`not (leads.mode = 'closed' and exists (select 1 from channel_accounts c where c.id = leads.channel_account_id and c.deleted_at is not null))`));
    },

    async setBlocked(input: { leadId: string; blocked: boolean }): Promise<void> {
      await db.update(leads).set({ blocked: input.blocked, updatedAt: sql`now()` }).where(eq(leads.id, input.leadId));
    },

    /**
     * Outbound intent, recorded before the provider call under the workflow's deterministic id.
     * Also says how long ago an unconfirmed attempt of it called the provider (database clock;
     * null when none did or its answer was stored), see markSendAttempt.
     */
    async createOutbound(raw: { id: string; tenantId: string; leadId: string; body: string; type?: string; details?: Record<string, unknown> }): Promise<
      MessageRow & { unconfirmedAttemptAgeMs: number | null; leadPhone: string | null; leadBsuid: string | null; channelEnabled: boolean | null; channelDeleted: boolean | null }
    > {
      const input = withoutNul(raw);
      const extra = {
        unconfirmedAttemptAgeMs: sql<number | null>`case when ${messages.providerMessageId} is null and ${messages.details} ? 'sendAttemptAt'
            then (extract(epoch from (now() - (${messages.details}->>'sendAttemptAt')::timestamptz)) * 1000)::float8 end`,
        // where the lead is reached now (WhatsApp: its current phone number, else its BSUID)
        leadPhone: sql<string | null>`(select ${leads.phone} from ${leads} where ${leads.id} = ${messages.leadId})`,
        leadBsuid: sql<string | null>`(select ${leads.bsuid} from ${leads} where ${leads.id} = ${messages.leadId})`,
        // false while the lead's channel is disabled: the send waits (as for an open circuit)
        channelEnabled: sql<boolean | null>`(select c.enabled from channel_accounts c join leads l on l.channel_account_id = c.id where l.id = ${messages.leadId})`,
        // true once the lead's channel is deleted: nothing goes out on it again
        channelDeleted: sql<boolean | null>`(select c.deleted_at is not null from channel_accounts c join leads l on l.channel_account_id = c.id where l.id = ${messages.leadId})`,
      };
      // a first attempt inserts and reads the row in one statement; a retry finds it already there
      const [created] = await db
        .insert(messages)
        .values({ id: input.id, tenantId: input.tenantId, leadId: input.leadId, direction: 'outbound', type: input.type ?? 'text', body: input.body, status: 'pending', ...(input.details ? { details: input.details } : {}) })
        .onConflictDoNothing()
        .returning({ ...getTableColumns(messages), ...extra });
      const [row] = created
        ? [created]
        : await db
            .select({ ...getTableColumns(messages), ...extra })
            .from(messages)
            .where(eq(messages.id, input.id));
      if (!row) throw new Error(`outbound message ${input.id} vanished`);
      return row;
    },

    /** An outbound message as recorded: the body that goes (or went) out, its status and, once sent, the provider's id. */
    async outbound(id: string): Promise<{ id: string; leadId: string; body: string; status: string; providerMessageId: string | null } | undefined> {
      if (!isUuid(id)) return undefined;
      const [row] = await db
        .select({ id: messages.id, leadId: messages.leadId, body: messages.body, status: messages.status, providerMessageId: messages.providerMessageId })
        .from(messages)
        .where(and(eq(messages.id, id), eq(messages.direction, 'outbound')));
      return row;
    },

    /** The provider took the message: store its id and mark it sent, and the lead's last outbound time, in one statement. */
    async markOutboundSent(raw: { id: string; leadId: string; providerMessageId: string }): Promise<void> {
      const input = withoutNul(raw);
      // outbound webhooks: message.sent in the same statement, only when this call marked it sent (a retry finds it sent already)
      await db.execute(sql`
        WITH sent AS (
          UPDATE messages SET provider_message_id = ${input.providerMessageId}, status = 'sent', sent_at = now(), updated_at = now()
          WHERE id = ${input.id} AND status = 'pending'
          RETURNING id, tenant_id, type, body
        ), lead AS (
          UPDATE leads SET last_outbound_at = now(), updated_at = now() WHERE id = ${input.leadId}
        )
        INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, payload)
        SELECT e.tenant_id, e.id, 'evt_msg_' || sent.id || '_sent', 'message.sent',
          jsonb_build_object('type', 'message.sent', 'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'data', jsonb_build_object('leadId', ${input.leadId}::text, 'messageId', sent.id, 'providerMessageId', ${input.providerMessageId}::text, 'type', sent.type, 'text', sent.body))
        FROM sent JOIN webhook_endpoints e ON e.tenant_id = sent.tenant_id AND e.disabled_at IS NULL AND 'message.sent' = ANY(e.events)
        ON CONFLICT (endpoint_id, event_id) DO NOTHING`);
    },

    /**
     * Claim the provider call of this send: an attempt notes when it calls the provider (the
     * database's clock), so a retry after a crash knows the message may already have gone out.
     * A compare-and-set: it succeeds only while the message is pending without a provider id
     * and no other attempt noted a call, or the noted one is at least `staleAfterMs` old (the
     * unconfirmed wait, SEND_UNCONFIRMED_WAIT_MS, after which a retry may send again). The row
     * lock serializes two attempts: of a reply turn whose heartbeat timed out and the careful
     * deliver started beside it, one claims, the other does not call the provider.
     * Claimed: `attemptAt`, the mark, for clearSendAttempt. Not claimed: the row as it is now.
     */
    async markSendAttempt(id: string, opts: { staleAfterMs: number }): Promise<SendClaim> {
      const attemptAt = sql`(${messages.details}->>'sendAttemptAt')::timestamptz`;
      const [claimed] = await db
        .update(messages)
        .set({ details: sql`coalesce(${messages.details}, '{}'::jsonb) || jsonb_build_object('sendAttemptAt', now())`, updatedAt: sql`now()` })
        .where(
          and(
            eq(messages.id, id),
            isNull(messages.providerMessageId),
            eq(messages.status, 'pending'),
            sql`(${messages.details} is null or not (${messages.details} ? 'sendAttemptAt') or ${attemptAt} <= now() - (${opts.staleAfterMs}::double precision * interval '1 millisecond'))`,
          ),
        )
        .returning({ attemptAt: sql<string>`${messages.details}->>'sendAttemptAt'` });
      if (claimed) return { claimed: true, attemptAt: claimed.attemptAt };
      // another attempt claimed (or sent, or failed it) first: the row as that left it
      const [row] = await db
        .select({
          providerMessageId: messages.providerMessageId,
          status: messages.status,
          attemptAgeMs: sql<number | null>`(extract(epoch from (now() - ${attemptAt})) * 1000)::float8`,
        })
        .from(messages)
        .where(eq(messages.id, id));
      return { claimed: false, providerMessageId: row?.providerMessageId ?? null, status: row?.status ?? null, attemptAgeMs: row?.attemptAgeMs ?? null };
    },

    /** The provider answered with an error: that attempt (its claim's `attemptAt`) certainly did not send. */
    async clearSendAttempt(id: string, attemptAt: string): Promise<void> {
      await db
        .update(messages)
        .set({ details: sql`${messages.details} - 'sendAttemptAt'` })
        .where(and(eq(messages.id, id), isNull(messages.providerMessageId), sql`${messages.details}->>'sendAttemptAt' = ${attemptAt}`));
    },

    async markOutboundFailed(raw: { id: string; error: unknown }): Promise<void> {
      const input = withoutNul(raw);
      await db
        .update(messages)
        .set({ status: 'failed', error: input.error, updatedAt: sql`now()` })
        .where(and(eq(messages.id, input.id), inArray(messages.status, ['pending'])));
    },

    /**
     * Apply a provider status to an outbound message, only forward (sent < delivered < read;
     * failed terminal). The message is found by its provider id, or by our own id (sent as
     * biz_opaque_callback_data) when the provider id was never stored: then it is stored now,
     * so a retried send sees the message as sent. Only messages of the channel account (and
     * tenant) the status webhook came for are touched: a tenant signing its own webhooks
     * cannot name another tenant's send. Returns whether anything changed.
     */
    async applyStatus(raw: { tenantId: string; channelAccountId: string; providerMessageId: string; status: string; error?: unknown; outboundMessageId?: string }): Promise<boolean> {
      const input = withoutNul(raw);
      if (!isUuid(input.tenantId) || !isUuid(input.channelAccountId)) return false;
      const rank = OUTBOUND_STATUS_RANK[input.status];
      if (rank === undefined) return false;
      const ranks = sql.raw(
        `case ${messages.status.name} ${Object.entries(OUTBOUND_STATUS_RANK)
          .map(([s, r]) => `when '${s}' then ${r}`)
          .join(' ')} else 0 end`,
      );
      const ofChannel = db
        .select({ id: leads.id })
        .from(leads)
        .where(and(eq(leads.channelAccountId, input.channelAccountId), eq(leads.tenantId, input.tenantId)));
      const forward = and(
        eq(messages.tenantId, input.tenantId),
        inArray(messages.leadId, ofChannel),
        eq(messages.direction, 'outbound'),
        sql`${ranks} < ${rank}`,
        sql`${messages.status} <> 'failed'`,
      );
      const set = { status: input.status, ...(input.error ? { error: input.error } : {}), updatedAt: sql`now()` };
      const rows = await db
        .update(messages)
        .set(set)
        .where(and(eq(messages.providerMessageId, input.providerMessageId), forward))
        .returning({ id: messages.id });
      if (rows.length > 0) return true;
      if (input.outboundMessageId && isUuid(input.outboundMessageId)) {
        try {
          const byOurId = await db
            .update(messages)
            .set({ ...set, providerMessageId: input.providerMessageId })
            .where(and(eq(messages.id, input.outboundMessageId), isNull(messages.providerMessageId), forward))
            .returning({ id: messages.id });
          return byOurId.length > 0;
        } catch (err) {
          // the provider id is already on another row: nothing to reconcile
          if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) return false;
          throw err;
        }
      }
      return false;
    },

    /** The last `limit` messages, oldest first: the LLM's context. */
    /** `transcript` and the lead's running summary (`leads.summary`) in one statement. */
    async transcriptAndSummary(leadId: string, limit: number) {
      const recent = db
        .select({ direction: messages.direction, body: messages.body, status: messages.status, createdAt: messages.createdAt, seq: messages.seq })
        .from(messages)
        .where(eq(messages.leadId, leadId))
        .orderBy(desc(messages.seq))
        .limit(limit)
        .as('recent');
      const rows = await db
        .select({ summary: leads.summary, direction: recent.direction, body: recent.body, status: recent.status, createdAt: recent.createdAt })
        .from(leads)
        .leftJoin(recent, sql`true`)
        .where(eq(leads.id, leadId))
        .orderBy(recent.seq);
      const transcript = rows.flatMap((r) => (r.direction === null || r.body === null || r.status === null || r.createdAt === null ? [] : [{ direction: r.direction, body: r.body, status: r.status, createdAt: r.createdAt }]));
      return { transcript, summary: rows[0]?.summary ?? null };
    },

    async transcript(leadId: string, limit: number) {
      const rows = await db
        .select({ direction: messages.direction, body: messages.body, status: messages.status, createdAt: messages.createdAt })
        .from(messages)
        .where(eq(messages.leadId, leadId))
        .orderBy(desc(messages.seq))
        .limit(limit);
      return rows.reverse();
    },

    /**
     * Newest first, with optional filters (all must hold): `stage`, `mode`, `channelId`,
     * `minScore`, `needsAttention` (handed to a human, blocked for credit, or an open dead
     * letter; false = none of these), `updatedSince`, and `q`: a prefix of the name (any case)
     * or of the phone number, contact id or username.
     */
    async list(tenantId: string, opts: LeadListOptions) {
      const c = opts.cursor ? decodeCursor(opts.cursor) : undefined;
      if (opts.cursor && !c) throw new AppError('bad_request', 'invalid cursor');
      const attention = sql`(${leads.mode} = 'human' OR ${leads.blocked} OR EXISTS (SELECT 1 FROM ${deadLetters} d WHERE d.lead_id = ${leads.id} AND d.status = 'open'))`;
      const prefix = opts.q !== undefined ? `${likeEscape(withoutNul(opts.q))}%` : undefined;
      const rows = await db
        .select()
        .from(leads)
        .where(
          and(
            eq(leads.tenantId, tenantId),
            c ? or(lt(leads.createdAt, c.createdAt), and(eq(leads.createdAt, c.createdAt), lt(leads.id, c.id))) : undefined,
            opts.stage !== undefined ? eq(leads.stage, withoutNul(opts.stage)) : undefined,
            opts.mode !== undefined ? eq(leads.mode, opts.mode) : undefined,
            opts.channelId !== undefined ? eq(leads.channelAccountId, opts.channelId) : undefined,
            opts.minScore !== undefined ? gte(leads.score, opts.minScore) : undefined,
            opts.needsAttention === true ? attention : opts.needsAttention === false ? sql`NOT ${attention}` : undefined,
            opts.updatedSince !== undefined ? gte(leads.updatedAt, opts.updatedSince) : undefined,
            prefix !== undefined
              ? or(ilike(leads.name, prefix), like(leads.phone, prefix), like(leads.contactId, prefix), ilike(leads.username, prefix))
              : undefined,
          ),
        )
        .orderBy(desc(leads.createdAt), desc(leads.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(presentLead), nextCursor };
    },

    /** The tenant's messages across leads, newest first, filtered by direction, status and time. */
    async tenantMessages(tenantId: string, opts: { limit: number; cursor?: string; direction?: 'inbound' | 'outbound'; status?: string; since?: string }) {
      const rows = await db
        .select()
        .from(messages)
        .where(
          and(
            eq(messages.tenantId, tenantId),
            afterCursor(messages, opts.cursor, 'desc'),
            opts.direction !== undefined ? eq(messages.direction, opts.direction) : undefined,
            opts.status !== undefined ? eq(messages.status, withoutNul(opts.status)) : undefined,
            opts.since !== undefined ? gte(messages.createdAt, opts.since) : undefined,
          ),
        )
        .orderBy(desc(messages.createdAt), desc(messages.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return {
        items: page.map((m) => ({
          id: m.id,
          leadId: m.leadId,
          direction: m.direction,
          type: m.type,
          body: m.body,
          status: m.status,
          providerMessageId: m.providerMessageId,
          error: m.error ?? null,
          sentAt: toIso(m.sentAt),
          createdAt: toIso(m.createdAt),
        })),
        nextCursor,
      };
    },

    async get(tenantId: string, leadId: string) {
      const [l] = await db.select().from(leads).where(and(eq(leads.tenantId, tenantId), eq(leads.id, leadId)));
      return l ? presentLead(l) : undefined;
    },

    /** Newest first, in transcript order (`seq`); the cursor is the last seq seen. */
    async messages(tenantId: string, leadId: string, opts: { limit: number; cursor?: string }) {
      const before = opts.cursor !== undefined ? decodeSeqCursor(opts.cursor) : undefined;
      if (opts.cursor !== undefined && before === undefined) throw new AppError('bad_request', 'invalid cursor');
      const rows = await db
        .select()
        .from(messages)
        .where(and(eq(messages.tenantId, tenantId), eq(messages.leadId, leadId), before !== undefined ? lt(messages.seq, before) : undefined))
        .orderBy(desc(messages.seq))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return { items: page.map(presentMessage), nextCursor: rows.length > opts.limit && last ? encodeSeqCursor(last.seq) : null };
    },

    async events(tenantId: string, leadId: string, limit = 100) {
      return (await eventPage(tenantId, leadId, { limit })).items;
    },

    /** A lead's events, newest first, paged. */
    eventPage,

    /** The lead of one contact on one channel account (web chat: the visitor), once the workflow made it. */
    async findByContact(channelAccountId: string, contactId: string): Promise<{ id: string; tenantId: string } | undefined> {
      const [l] = await db
        .select({ id: leads.id, tenantId: leads.tenantId })
        .from(leads)
        .where(and(eq(leads.channelAccountId, channelAccountId), eq(leads.contactId, withoutNul(contactId))));
      return l;
    },

    /**
     * A conversation as a chat widget shows it, in transcript order (seq): the messages after
     * `afterSeq`, plus, with `lookBack`, those after `lookBack.afterSeq` changed in the last
     * `lookBack.recentMs` — an outbound row gets its seq while pending and turns sent later,
     * possibly after newer rows were already read.
     */
    async chatMessagesAfter(leadId: string, opts: { afterSeq: number; limit: number; lookBack?: { afterSeq: number; recentMs: number } }): Promise<ChatMessage[]> {
      const after = gt(messages.seq, opts.afterSeq);
      const lb = opts.lookBack;
      const rows = await db
        .select(chatColumns)
        .from(messages)
        .where(
          and(
            eq(messages.leadId, leadId),
            lb && lb.recentMs > 0 && lb.afterSeq < opts.afterSeq
              ? or(after, and(gt(messages.seq, lb.afterSeq), sql`${messages.updatedAt} > now() - (${lb.recentMs}::double precision * interval '1 millisecond')`))
              : after,
          ),
        )
        .orderBy(messages.seq)
        .limit(opts.limit);
      return rows.map(presentChatMessage);
    },

    /** The last `limit` messages of a conversation (before seq `beforeSeq` when given), oldest first (a chat widget's history). */
    async chatHistory(leadId: string, limit: number, beforeSeq?: number): Promise<ChatMessage[]> {
      const rows = await db
        .select(chatColumns)
        .from(messages)
        .where(and(eq(messages.leadId, leadId), beforeSeq !== undefined ? lt(messages.seq, beforeSeq) : undefined))
        .orderBy(desc(messages.seq))
        .limit(limit);
      return rows.reverse().map(presentChatMessage);
    },

    /**
     * ONE statement for every open web chat stream of a channel: the messages of these contacts'
     * conversations changed in the last `recentMs` (new rows and replies that turned sent),
     * in change order. Contacts without a conversation match nothing.
     */
    async chatChangesForContacts(channelAccountId: string, contactIds: string[], opts: { recentMs: number; limit: number }): Promise<(ChatMessage & { contactId: string; leadId: string })[]> {
      if (contactIds.length === 0) return [];
      const rows = await db
        .select({ ...chatColumns, contactId: leads.contactId, leadId: leads.id })
        .from(leads)
        .innerJoin(messages, eq(messages.leadId, leads.id))
        .where(
          and(
            eq(leads.channelAccountId, channelAccountId),
            inArray(leads.contactId, contactIds),
            sql`${messages.updatedAt} > now() - (${opts.recentMs}::double precision * interval '1 millisecond')`,
          ),
        )
        .orderBy(messages.updatedAt, messages.seq)
        .limit(opts.limit);
      return rows.map((r) => ({ ...presentChatMessage(r), contactId: r.contactId, leadId: r.leadId }));
    },
  };
}

export type LeadService = ReturnType<typeof createLeadService>;
