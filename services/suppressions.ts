/**
 * The tenant's suppression list (opt-out). A suppression names a contact and holds every
 * identity form of it known when it was made: the lead's contact id, its phone number, BSUID and
 * parent BSUID (the forms services/contact-identities.ts maps, per channel account). A lead is
 * suppressed when any of its own forms is among a suppression's forms, on whichever channel of
 * the tenant it writes: a STOP on one WhatsApp number holds for the same person on another.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { suppressions } from '../db/schema';
import { afterCursor, keyset, rowsOf, toIso } from './db-util';

type Row = typeof suppressions.$inferSelect;

function present(s: Row) {
  return {
    id: s.id,
    contact: s.contact,
    forms: s.forms,
    source: s.source,
    keyword: s.keyword,
    note: s.note,
    leadId: s.leadId,
    createdAt: toIso(s.createdAt),
  };
}

export type Suppression = ReturnType<typeof present>;

/** A lead's identity (the channel account it writes to and its contact id there). */
export interface ContactRef {
  tenantId: string;
  channelAccountId: string;
  contactId: string;
}

const asArray = (forms: string[]) => sql`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(forms)}::jsonb))`;

/** The forms of one lead's contact: its contact id, what contact_identities maps to it, the lead row's phone and BSUIDs. */
const formsOfLead = (c: ContactRef) => sql`
  SELECT ${c.contactId}::text AS f
  UNION SELECT ci.identity FROM contact_identities ci WHERE ci.channel_account_id = ${c.channelAccountId}::uuid AND ci.contact_id = ${c.contactId}
  UNION SELECT unnest(ARRAY[l.phone, l.bsuid, l.parent_bsuid]) FROM leads l WHERE l.channel_account_id = ${c.channelAccountId}::uuid AND l.contact_id = ${c.contactId}`;

export function createSuppressionService(db: Db) {
  async function leadForms(c: ContactRef): Promise<string[]> {
    const rows = rowsOf<{ f: string | null }>(await db.execute(sql`SELECT f FROM (${formsOfLead(c)}) x WHERE f IS NOT NULL`));
    return [...new Set(rows.map((r) => r.f).filter((f): f is string => typeof f === 'string' && f.length > 0))];
  }

  /** Every form the tenant knows for the person behind `contact` (any form), `contact` included. */
  async function tenantForms(tenantId: string, contact: string): Promise<string[]> {
    const rows = rowsOf<{ f: string | null }>(
      await db.execute(sql`
        WITH ids AS (
          SELECT ci.channel_account_id, ci.contact_id FROM contact_identities ci
            JOIN channel_accounts ca ON ca.id = ci.channel_account_id
            WHERE ca.tenant_id = ${tenantId}::uuid AND ci.identity = ${contact}
          UNION SELECT l.channel_account_id, l.contact_id FROM leads l
            WHERE l.tenant_id = ${tenantId}::uuid AND ${contact} IN (l.contact_id, l.phone, l.bsuid, l.parent_bsuid)
        )
        SELECT f FROM (
          SELECT ${contact}::text AS f
          UNION SELECT ci.identity FROM contact_identities ci JOIN ids USING (channel_account_id, contact_id)
          UNION SELECT unnest(ARRAY[l.contact_id, l.phone, l.bsuid, l.parent_bsuid]) FROM leads l JOIN ids USING (channel_account_id, contact_id)
        ) x WHERE f IS NOT NULL`),
    );
    return [...new Set([contact, ...rows.map((r) => r.f).filter((f): f is string => typeof f === 'string' && f.length > 0)])];
  }

  /** Insert a suppression unless one already covers these forms; `created` tells which. */
  async function add(tenantId: string, values: { contact: string; forms: string[]; source: 'keyword' | 'api'; keyword?: string; note?: string; leadId?: string }) {
    const [existing] = await db
      .select()
      .from(suppressions)
      .where(and(eq(suppressions.tenantId, tenantId), sql`${suppressions.forms} && ${asArray(values.forms)}`))
      .orderBy(asc(suppressions.createdAt))
      .limit(1);
    if (existing) return { suppression: present(existing), created: false };
    const [row] = await db
      .insert(suppressions)
      .values({ tenantId, contact: values.contact, forms: values.forms, source: values.source, keyword: values.keyword ?? null, note: values.note ?? null, leadId: values.leadId ?? null })
      .onConflictDoNothing()
      .returning();
    if (row) return { suppression: present(row), created: true };
    // the same contact was suppressed meanwhile (unique per tenant and contact)
    const [raced] = await db.select().from(suppressions).where(and(eq(suppressions.tenantId, tenantId), eq(suppressions.contact, values.contact)));
    if (!raced) throw new Error('suppression insert returned nothing');
    return { suppression: present(raced), created: false };
  }

  /** The tenant's leads whose forms meet `forms` (every channel). */
  async function leadsOf(tenantId: string, forms: string[]): Promise<string[]> {
    const rows = rowsOf<{ id: string }>(
      await db.execute(sql`
        SELECT l.id FROM leads l
        WHERE l.tenant_id = ${tenantId}::uuid
          AND (ARRAY[l.contact_id, l.phone, l.bsuid, l.parent_bsuid] && ${asArray(forms)}
            OR EXISTS (SELECT 1 FROM contact_identities ci WHERE ci.channel_account_id = l.channel_account_id AND ci.contact_id = l.contact_id AND ci.identity = ANY(${asArray(forms)})))`),
    );
    return rows.map((r) => r.id);
  }

  return {
    leadForms,
    tenantForms,
    leadsOf,

    /** The suppression that covers this lead's contact, if any (one statement). */
    async find(c: ContactRef): Promise<Suppression | undefined> {
      const rows = rowsOf<{ id: string }>(
        await db.execute(sql`
          WITH forms AS (${formsOfLead(c)})
          SELECT s.id FROM suppressions s
          WHERE s.tenant_id = ${c.tenantId}::uuid AND s.forms && ARRAY(SELECT f FROM forms WHERE f IS NOT NULL)
          ORDER BY s.created_at LIMIT 1`),
      );
      const id = rows[0]?.id;
      if (!id) return undefined;
      const [row] = await db.select().from(suppressions).where(eq(suppressions.id, id));
      return row ? present(row) : undefined;
    },

    /** Whether a suppression covers this lead's contact (one statement): asked before every send that needs consent. */
    async covers(c: ContactRef): Promise<boolean> {
      const rows = rowsOf<{ n: number | string }>(
        await db.execute(sql`
          WITH forms AS (${formsOfLead(c)})
          SELECT count(*) AS n FROM (SELECT 1 FROM suppressions s
          WHERE s.tenant_id = ${c.tenantId}::uuid AND s.forms && ARRAY(SELECT f FROM forms WHERE f IS NOT NULL) LIMIT 1) x`),
      );
      return Number(rows[0]?.n ?? 0) > 0;
    },

    /** The contact wrote a stop phrase: suppress it (with every form known now). */
    async optOut(c: ContactRef & { leadId?: string; keyword?: string }) {
      const forms = await leadForms(c);
      return add(c.tenantId, { contact: c.contactId, forms, source: 'keyword', keyword: c.keyword, leadId: c.leadId });
    },

    /** The contact wrote a start phrase: every suppression that covers it goes. Returns the ids removed. */
    async optIn(c: ContactRef): Promise<string[]> {
      const forms = await leadForms(c);
      const rows = await db
        .delete(suppressions)
        .where(and(eq(suppressions.tenantId, c.tenantId), sql`${suppressions.forms} && ${asArray(forms)}`))
        .returning({ id: suppressions.id });
      return rows.map((r) => r.id);
    },

    /** The API adds a contact (any of its forms); an existing suppression that covers it is returned as is. */
    async create(tenantId: string, input: { contact: string; note?: string }) {
      const forms = await tenantForms(tenantId, input.contact);
      return add(tenantId, { contact: input.contact, forms, source: 'api', note: input.note });
    },

    async get(tenantId: string, id: string): Promise<Suppression | undefined> {
      const [row] = await db.select().from(suppressions).where(and(eq(suppressions.tenantId, tenantId), eq(suppressions.id, id)));
      return row ? present(row) : undefined;
    },

    async remove(tenantId: string, id: string): Promise<Suppression | undefined> {
      const [row] = await db.delete(suppressions).where(and(eq(suppressions.tenantId, tenantId), eq(suppressions.id, id))).returning();
      return row ? present(row) : undefined;
    },

    /** Oldest first, one keyset page. */
    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(suppressions)
        .where(and(eq(suppressions.tenantId, tenantId), afterCursor(suppressions, opts.cursor, 'asc')))
        .orderBy(asc(suppressions.createdAt), asc(suppressions.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },
  };
}

export type SuppressionService = ReturnType<typeof createSuppressionService>;
