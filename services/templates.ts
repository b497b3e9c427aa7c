import { and, asc, eq, inArray, isNull, ne, notInArray, or, sql } from 'drizzle-orm';
import type { TemplateCategory } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { channelAccounts, templates } from '../db/schema';
import { AppError } from '../lib/errors';
import { localComponents, type TemplateComponents } from './template-components';
import { decodeTextCursor, encodeTextCursor, PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export interface TemplateInput {
  name: string;
  language: string;
  category: TemplateCategory;
  body: string;
  approved: boolean;
}

/** A template as Meta lists it, normalized (services/template-sync.ts). */
export interface MetaTemplate {
  metaTemplateId: string;
  name: string;
  language: string;
  category: string;
  status: string;
  body: string;
  components: TemplateComponents;
  qualityScore?: string;
  statusReason?: string;
}

/** A template webhook's change (api/webhooks/whatsapp-payload.ts ParsedTemplateChange, applied per tenant). */
export interface TemplateChange {
  field: string;
  /** Meta's time of the change (ISO): an older change than the one applied for this field is not applied. */
  at: string;
  metaTemplateId?: string;
  name?: string;
  language?: string;
  /** message_template_status_update: the new status (null: an event that changes no status). */
  status?: string | null;
  reason?: string;
  qualityScore?: string;
  category?: string;
  /** What is recorded on the template as this field's last event. */
  event: Record<string, unknown>;
}

/** The status Meta sends that lets a template be sent. */
export const APPROVED = 'APPROVED';

/** How many positional variables ({{1}}, {{2}}, ...) a template body uses. */
export function templateVariableCount(body: string): number {
  let max = 0;
  for (const m of body.matchAll(/\{\{\s*(\d+)\s*\}\}/g)) max = Math.max(max, Number(m[1]));
  return max;
}

/** Fill {{n}} placeholders, for transcripts (Meta renders the real message). */
export function renderTemplate(body: string, variables: string[]): string {
  return body.replace(/\{\{\s*(\d+)\s*\}\}/g, (whole, n: string) => variables[Number(n) - 1] ?? whole);
}

/** Meta's categories are upper case (MARKETING, UTILITY, AUTHENTICATION); ours lower case. Others are kept as sent, lower-cased. */
export function categoryFromMeta(category: string): TemplateCategory {
  return category.toLowerCase() as TemplateCategory;
}

/** Meta writes a language as en_US (the API) or en-US (some webhooks): ours is Meta's API form. */
export function normalizeLanguage(language: string): string {
  return language.replace('-', '_');
}

function present(t: typeof templates.$inferSelect) {
  const components = (t.components as TemplateComponents | null) ?? localComponents(t.body);
  return {
    id: t.id,
    name: t.name,
    language: t.language,
    category: t.category,
    /** 'local': created through the API, approved by hand; 'meta': synced, its status is Meta's. */
    source: t.source,
    status: t.status ?? (t.approved ? APPROVED : 'PENDING'),
    approved: t.approved,
    body: t.body,
    variables: components.body?.variables ?? templateVariableCount(t.body),
    components,
    channelId: t.channelAccountId,
    wabaId: t.wabaId,
    metaTemplateId: t.metaTemplateId,
    qualityScore: t.qualityScore,
    statusReason: t.statusReason,
    /** The last template webhook applied, per field (message_template_status_update, ...). */
    events: t.events ?? {},
    syncedAt: toIso(t.syncedAt),
    updatedAt: toIso(t.updatedAt),
    createdAt: toIso(t.createdAt),
  };
}

export type TemplateView = ReturnType<typeof present>;

export interface TemplatePatch {
  category?: TemplateCategory;
  body?: string;
  approved?: boolean;
}

export function createTemplateService(db: Db) {
  return {
    async create(tenantId: string, input: TemplateInput): Promise<TemplateView> {
      try {
        const [t] = await db.insert(templates).values({ tenantId, ...input }).returning();
        if (!t) throw new Error('template insert returned nothing');
        return present(t);
      } catch (err) {
        if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) {
          throw new AppError('conflict', `template ${input.name} (${input.language}) already exists`);
        }
        throw err;
      }
    },
    /** By name and language, one keyset page (the cursor is the last (name, language) seen). */
    async list(tenantId: string, opts: { limit: number; cursor?: string }): Promise<{ items: TemplateView[]; nextCursor: string | null }> {
      const after = opts.cursor !== undefined ? decodeTextCursor(opts.cursor, 2) : undefined;
      const rows = await db
        .select()
        .from(templates)
        .where(and(eq(templates.tenantId, tenantId), after ? sql`(${templates.name}, ${templates.language}) > (${after[0]}, ${after[1]})` : undefined))
        .orderBy(asc(templates.name), asc(templates.language))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return { items: page.map(present), nextCursor: rows.length > opts.limit && last ? encodeTextCursor([last.name, last.language]) : null };
    },
    async find(tenantId: string, name: string, language: string): Promise<TemplateView | undefined> {
      const [t] = await db
        .select()
        .from(templates)
        .where(and(eq(templates.tenantId, tenantId), eq(templates.name, name), eq(templates.language, language)));
      return t ? present(t) : undefined;
    },
    async get(tenantId: string, id: string): Promise<TemplateView | undefined> {
      const [t] = await db.select().from(templates).where(and(eq(templates.tenantId, tenantId), eq(templates.id, id)));
      return t ? present(t) : undefined;
    },

    /**
     * Change a local template (category, body, approved). A synced template belongs to Meta
     * (edit it in WhatsApp Manager, then sync): 409.
     */
    async update(tenantId: string, id: string, patch: TemplatePatch): Promise<TemplateView | undefined> {
      const current = await this.get(tenantId, id);
      if (!current) return undefined;
      if (current.source === 'meta') {
        throw new AppError('conflict', 'this template is synced from Meta: its content and status are Meta\'s (edit it in WhatsApp Manager, then POST /v1/channels/:channelId/templates/sync)', undefined, 'synced_template');
      }
      const [t] = await db
        .update(templates)
        .set({ ...patch, updatedAt: sql`now()` })
        .where(and(eq(templates.tenantId, tenantId), eq(templates.id, id), eq(templates.source, 'local')))
        .returning();
      return t ? present(t) : undefined;
    },

    /** Delete the tenant's copy (a synced template comes back with the next sync while Meta lists it). */
    async remove(tenantId: string, id: string): Promise<boolean> {
      const rows = await db.delete(templates).where(and(eq(templates.tenantId, tenantId), eq(templates.id, id))).returning({ id: templates.id });
      return rows.length > 0;
    },

    /**
     * Upsert the templates one sync page listed, by (tenant, name, language): a local template
     * of the same name and language becomes the synced one (its status is Meta's from now on).
     */
    async upsertFromMeta(tenantId: string, channelAccountId: string, wabaId: string, items: MetaTemplate[]): Promise<{ inserted: number; updated: number }> {
      let inserted = 0;
      let updated = 0;
      // 200 rows a statement: an account's few thousand templates in a few round trips
      for (let i = 0; i < items.length; i += 200) {
        const values = items.slice(i, i + 200).map((m) => ({
          tenantId,
          channelAccountId,
          wabaId,
          source: 'meta' as const,
          name: m.name,
          language: m.language,
          category: categoryFromMeta(m.category),
          body: m.body,
          status: m.status,
          approved: m.status === APPROVED,
          metaTemplateId: m.metaTemplateId,
          components: m.components,
          qualityScore: m.qualityScore ?? null,
          statusReason: m.statusReason ?? null,
          syncedAt: sql`now()`,
          updatedAt: sql`now()`,
        }));
        const excluded = (column: string) => sql.raw(`excluded.${column}`);
        const rows = await db
          .insert(templates)
          .values(values)
          .onConflictDoUpdate({
            target: [templates.tenantId, templates.name, templates.language],
            set: {
              channelAccountId: excluded('channel_account_id'),
              wabaId: excluded('waba_id'),
              source: excluded('source'),
              category: excluded('category'),
              body: excluded('body'),
              status: excluded('status'),
              approved: excluded('approved'),
              metaTemplateId: excluded('meta_template_id'),
              components: excluded('components'),
              qualityScore: excluded('quality_score'),
              statusReason: excluded('status_reason'),
              syncedAt: sql`now()`,
              updatedAt: sql`now()`,
            },
          })
          .returning({ inserted: sql<boolean>`(xmax = 0)` });
        for (const row of rows) {
          if (row.inserted) inserted += 1;
          else updated += 1;
        }
      }
      return { inserted, updated };
    },

    /**
     * After a complete sync: this account's synced templates Meta no longer lists are marked
     * DELETED (not approved), never silently kept; so are the tenant's synced templates of an
     * account none of its (live) channels names any more (its webhooks no longer reach them).
     */
    async markMissing(tenantId: string, wabaId: string, seenMetaIds: string[]): Promise<number> {
      const unlisted = and(eq(templates.wabaId, wabaId), seenMetaIds.length > 0 ? or(isNull(templates.metaTemplateId), notInArray(templates.metaTemplateId, seenMetaIds)) : undefined);
      const orphaned = sql`${templates.wabaId} not in (select ${channelAccounts.wabaId} from ${channelAccounts} where ${channelAccounts.tenantId} = ${tenantId} and ${channelAccounts.wabaId} is not null and ${channelAccounts.deletedAt} is null)`;
      const rows = await db
        .update(templates)
        .set({ status: 'DELETED', approved: false, statusReason: sql`case when ${templates.wabaId} = ${wabaId} then 'no longer listed by Meta' else 'its WhatsApp Business Account is no longer on any channel' end`, updatedAt: sql`now()` })
        .where(and(eq(templates.tenantId, tenantId), eq(templates.source, 'meta'), or(isNull(templates.status), ne(templates.status, 'DELETED')), or(unlisted, orphaned)))
        .returning({ id: templates.id });
      return rows.length;
    },

    /**
     * Apply one template webhook change to the synced templates of these tenants for this
     * account: matched by Meta's template id, else by name and language. Returns how many rows changed.
     */
    async applyChange(tenantIds: string[], wabaId: string, change: TemplateChange): Promise<number> {
      if (tenantIds.length === 0) return 0;
      const byId = change.metaTemplateId ? eq(templates.metaTemplateId, change.metaTemplateId) : undefined;
      const byName = change.name && change.language ? and(eq(templates.name, change.name), eq(templates.language, normalizeLanguage(change.language))) : undefined;
      const match = byId && byName ? or(byId, byName) : (byId ?? byName);
      if (!match) return 0;
      const event = { ...change.event, at: change.at };
      const set: Partial<typeof templates.$inferInsert> = {};
      if (change.status) {
        set.status = change.status;
        set.approved = change.status === APPROVED;
        set.statusReason = change.reason && change.reason !== 'NONE' ? change.reason : null;
      }
      if (change.qualityScore) set.qualityScore = change.qualityScore;
      if (change.category) set.category = categoryFromMeta(change.category);
      const rows = await db
        .update(templates)
        .set({ ...set, events: sql`coalesce(${templates.events}, '{}'::jsonb) || jsonb_build_object(${change.field}::text, ${JSON.stringify(event)}::jsonb)`, updatedAt: sql`now()` })
        .where(
          and(
            inArray(templates.tenantId, tenantIds),
            eq(templates.wabaId, wabaId),
            eq(templates.source, 'meta'),
            match,
            // Meta retries for days and does not keep order: an older change of this field never overwrites a newer one
            sql`coalesce(${templates.events} -> ${change.field}::text ->> 'at', '') <= ${change.at}`,
          ),
        )
        .returning({ id: templates.id });
      return rows.length;
    },
  };
}

export type TemplateService = ReturnType<typeof createTemplateService>;
