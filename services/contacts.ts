/**
 * A contact's data across the tenant's channels (data rights): find every lead of one person
 * by any form they wrote under (the contact id a lead was started with, the phone number, the
 * business-scoped user id, its parent, or a form contact_identities maps to a lead's contact id;
 * not a username: users change them and others take them up), export all of it, or erase it.
 */
import { and, asc, desc, eq, inArray, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { auditLog, channelAccounts, contactIdentities, creditReservations, extractions, leadEvents, leads, mediaObjects, messages, rateBuckets, tenants } from '../db/schema';
import { toIso } from './db-util';

/** A contact's messages per lead that an export includes at most (the newest are kept; the rest are counted). */
export const EXPORT_MAX_MESSAGES_PER_LEAD = 10_000;

export interface ErasedContact {
  leads: number;
  messages: number;
  media: number;
  workflowIds: string[];
}

export function createContactService(db: Db) {
  /** The tenant's leads of this contact, in any of its forms. */
  async function leadsOf(tenantId: string, contactId: string) {
    const mapped = db
      .select({ contactId: contactIdentities.contactId })
      .from(contactIdentities)
      .innerJoin(channelAccounts, eq(channelAccounts.id, contactIdentities.channelAccountId))
      .where(and(eq(channelAccounts.tenantId, tenantId), eq(contactIdentities.identity, contactId)));
    return db
      .select()
      .from(leads)
      .where(
        and(
          eq(leads.tenantId, tenantId),
          or(
            eq(leads.contactId, contactId),
            eq(leads.phone, contactId),
            eq(leads.bsuid, contactId),
            eq(leads.parentBsuid, contactId),
            inArray(leads.contactId, mapped),
          ),
        ),
      )
      .orderBy(asc(leads.createdAt), asc(leads.id));
  }

  return {
    leadsOf,

    /** Everything stored about the contact: its leads, each with messages, extractions and events. Undefined when the tenant has no lead of it. */
    async export(tenantId: string, contactId: string) {
      const found = await leadsOf(tenantId, contactId);
      if (found.length === 0) return undefined;
      const out = [];
      for (const lead of found) {
        const [msgs, exts, events, [{ total } = { total: 0 }]] = await Promise.all([
          db.select().from(messages).where(eq(messages.leadId, lead.id)).orderBy(desc(messages.seq)).limit(EXPORT_MAX_MESSAGES_PER_LEAD),
          db.select().from(extractions).where(eq(extractions.leadId, lead.id)).orderBy(asc(extractions.version)),
          db.select().from(leadEvents).where(eq(leadEvents.leadId, lead.id)).orderBy(asc(leadEvents.createdAt), asc(leadEvents.id)),
          db.select({ total: sql<number>`count(*)::int` }).from(messages).where(eq(messages.leadId, lead.id)),
        ]);
        out.push({
          lead: {
            id: lead.id,
            channelAccountId: lead.channelAccountId,
            channel: lead.channel,
            contactId: lead.contactId,
            name: lead.name,
            phone: lead.phone,
            bsuid: lead.bsuid,
            parentBsuid: lead.parentBsuid,
            username: lead.username,
            stage: lead.stage,
            mode: lead.mode,
            score: lead.score,
            attributes: lead.attributes,
            summary: lead.summary,
            timeZone: lead.timeZone,
            lastInboundAt: toIso(lead.lastInboundAt),
            lastOutboundAt: toIso(lead.lastOutboundAt),
            createdAt: toIso(lead.createdAt),
            updatedAt: toIso(lead.updatedAt),
          },
          messages: msgs.reverse().map((m) => ({
            id: m.id,
            direction: m.direction,
            type: m.type,
            body: m.body,
            status: m.status,
            providerMessageId: m.providerMessageId,
            details: m.details ?? null,
            sentAt: toIso(m.sentAt),
            createdAt: toIso(m.createdAt),
          })),
          messagesOmitted: Math.max(0, Number(total) - msgs.length),
          extractions: exts.map((e) => ({ version: e.version, data: e.data, score: e.score, model: e.model, createdAt: toIso(e.createdAt) })),
          events: events.map((e) => ({ type: e.type, data: e.data, createdAt: toIso(e.createdAt) })),
        });
      }
      return { contactId, exportedAt: new Date().toISOString(), leads: out };
    },

    /**
     * Erase the contact: its leads' rows go (messages, events, extractions, dead letters with
     * them, by the foreign keys), the media its messages carried, the identities that mapped its
     * forms, its send pacing buckets; earlier audit entries about its leads keep only the action
     * and the time; credit reservations of its workflows forget the workflow (a held one is
     * released). LLM cost rows stay, without the lead (spend limits still count them); credit
     * ledger rows stay (they name message ids, no personal data). The caller ends the leads'
     * workflows before and after (`workflowIds`), so that nothing writes them again.
     */
    async erase(tenantId: string, contactId: string, found?: { id: string; channelAccountId: string; contactId: string; phone: string | null; bsuid: string | null; parentBsuid: string | null; username: string | null; workflowId: string }[]): Promise<ErasedContact> {
      const targets = found ?? (await leadsOf(tenantId, contactId));
      if (targets.length === 0) return { leads: 0, messages: 0, media: 0, workflowIds: [] };
      const ids = targets.map((l) => l.id);
      return db.transaction(async (tx) => {
        // the rows stay locked until the commit: a turn in flight cannot add to them meanwhile
        await tx.select({ id: leads.id }).from(leads).where(and(eq(leads.tenantId, tenantId), inArray(leads.id, ids))).for('update');
        const mediaRefs = await tx
          .select({ media: sql<string | null>`${messages.details}->'media'->>'id'`, leadId: messages.leadId })
          .from(messages)
          .where(and(inArray(messages.leadId, ids), sql`${messages.details} ? 'media'`));
        const [{ count } = { count: 0 }] = await tx.select({ count: sql<number>`count(*)::int` }).from(messages).where(inArray(messages.leadId, ids));
        let media = 0;
        for (const lead of targets) {
          const own = mediaRefs.filter((m) => m.leadId === lead.id && m.media).map((m) => m.media!);
          if (own.length === 0) continue;
          const gone = await tx
            .delete(mediaObjects)
            .where(and(eq(mediaObjects.tenantId, tenantId), eq(mediaObjects.channelAccountId, lead.channelAccountId), inArray(mediaObjects.providerMediaId, own)))
            .returning({ id: mediaObjects.id });
          media += gone.length;
        }
        const forms = [...new Set(targets.flatMap((l) => [l.contactId, l.phone, l.bsuid, l.parentBsuid].filter((f): f is string => Boolean(f))))];
        const accounts = [...new Set(targets.map((l) => l.channelAccountId))];
        if (forms.length) await tx.delete(contactIdentities).where(and(inArray(contactIdentities.channelAccountId, accounts), or(inArray(contactIdentities.identity, forms), inArray(contactIdentities.contactId, forms))));
        // what points at the contact from outside the lead's rows: the send pacing buckets keyed by its
        // number, credit reservations naming its workflow (a held one goes back to the tenant), and
        // earlier audit entries about its leads (their bodies may quote it)
        const pairKeys = accounts.flatMap((a) => forms.map((f) => `pair:${a}:${f}`));
        if (pairKeys.length) await tx.delete(rateBuckets).where(inArray(rateBuckets.key, pairKeys));
        const workflowIds = targets.map((l) => l.workflowId);
        const held = await tx
          .update(creditReservations)
          .set({ status: 'released', updatedAt: sql`now()` })
          .where(and(eq(creditReservations.tenantId, tenantId), inArray(creditReservations.workflowId, workflowIds), eq(creditReservations.status, 'held')))
          .returning({ amount: creditReservations.amount });
        const back = held.reduce((a, r) => a + r.amount, 0);
        if (back > 0) await tx.update(tenants).set({ creditBalance: sql`${tenants.creditBalance} + ${back}` }).where(eq(tenants.id, tenantId));
        await tx.update(creditReservations).set({ workflowId: null }).where(and(eq(creditReservations.tenantId, tenantId), inArray(creditReservations.workflowId, workflowIds)));
        await tx
          .update(auditLog)
          .set({ target: { leadId: '[erased]' }, request: null, before: null, after: null })
          .where(and(eq(auditLog.tenantId, tenantId), inArray(sql`${auditLog.target}->>'leadId'`, ids)));
        await tx.delete(leads).where(and(eq(leads.tenantId, tenantId), inArray(leads.id, ids)));
        return { leads: targets.length, messages: Number(count), media, workflowIds: targets.map((l) => l.workflowId) };
      });
    },
  };
}

export type ContactService = ReturnType<typeof createContactService>;
