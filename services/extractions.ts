import { and, asc, desc, eq, gt, gte, lt, lte, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { extractions, leads, llmCalls } from '../db/schema';
import { AppError } from '../lib/errors';
import { decodeCursor, decodeSeqCursor, encodeCursor, encodeSeqCursor, toIso } from './db-util';
import { enqueueWebhookEvent } from './webhook-endpoints';

/** The standard extracted fields, in CSV column order. */
export const STANDARD_FIELDS = ['name', 'email', 'company', 'budget', 'authority', 'need', 'timeline'] as const;
export type StandardField = (typeof STANDARD_FIELDS)[number];

/** One extraction's data: the standard fields (null = not stated) and the agent-defined fields. */
export type ExtractionData = Record<StandardField, string | null> & { fields: Record<string, string | null> };

export type LlmCallPurpose = (typeof llmCalls.$inferInsert)['purpose'];

export interface LlmCallRecord {
  tenantId: string;
  leadId?: string | null;
  purpose: LlmCallPurpose;
  model: string;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
  /** The agent version whose settings made the call (which version answered the turn). */
  agentId?: string | null;
  agentVersion?: number | null;
}

export interface SaveExtractionInput {
  tenantId: string;
  leadId: string;
  data: ExtractionData;
  model: string | null;
  /** The new running summary; blank keeps the current one. */
  summary: string | null;
  /** Score of the lead's merged attributes (a pure function supplied by the caller). */
  scoreOf: (attributes: Record<string, unknown>) => number;
  /** The agent's qualification threshold: the lead's score reaching it writes lead.qualified to the webhook outbox. */
  qualifiedScore?: number | null;
}

export interface SaveExtractionResult {
  changed: boolean;
  version: number;
  score: number;
  summary: string | null;
  attributes: Record<string, unknown>;
}

type ExtractionRow = typeof extractions.$inferSelect;

function present(e: ExtractionRow) {
  return { id: e.id, leadId: e.leadId, version: e.version, data: e.data, score: e.score, model: e.model, createdAt: toIso(e.createdAt) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted at every level: equal data gives equal text whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function sameData(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * The lead's attributes after an extraction: every non-null standard field overwrites, the
 * agent-defined fields merge one level down under `fields`; a null never erases a known value.
 */
export function mergeAttributes(current: Record<string, unknown>, data: ExtractionData): Record<string, unknown> {
  const out: Record<string, unknown> = { ...current };
  for (const f of STANDARD_FIELDS) if (data[f] !== null) out[f] = data[f];
  const fields: Record<string, unknown> = isRecord(current.fields) ? { ...current.fields } : {};
  for (const [k, v] of Object.entries(data.fields)) if (v !== null) fields[k] = v;
  if (Object.keys(fields).length > 0 || 'fields' in current) out.fields = fields;
  return out;
}

// ---- CSV -------------------------------------------------------------------------------

/** Leading characters a spreadsheet takes as the start of a formula (OWASP CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV cell (RFC 4180): text that a spreadsheet would run as a formula gets a leading `'`;
 * cells with a comma, quote or line break are quoted with inner quotes doubled.
 * Numbers and booleans are written as they are; objects as JSON; null and undefined as empty.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return String(value);
  let s = typeof value === 'string' ? value : JSON.stringify(value);
  if (FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows to CSV text, CRLF line ends (RFC 4180), a trailing line end. */
export function toCsv(rows: readonly (readonly unknown[])[]): string {
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

export const CSV_COLUMNS = [
  'lead_id',
  'contact_id',
  'lead_name',
  'stage',
  'score',
  ...STANDARD_FIELDS,
  'fields',
  'summary',
  'version',
  'extracted_at',
] as const;

// ---- service ---------------------------------------------------------------------------

/**
 * Where a CSV page ended: the (extraction time as the database prints it, lead id) of its last
 * row, and the export's cutoff (the database time of its first page).
 */
export interface CsvPageKey {
  extractedAt: string;
  leadId: string;
  until: string;
}

export function createExtractionService(db: Db) {
  return {
    /** The newest version of a lead's extraction. */
    async latest(leadId: string) {
      const [row] = await db.select().from(extractions).where(eq(extractions.leadId, leadId)).orderBy(desc(extractions.version)).limit(1);
      return row ? present(row) : undefined;
    },

    /** What the extraction and reply activities need to know about a lead. */
    async leadContext(leadId: string) {
      const [l] = await db
        .select({ tenantId: leads.tenantId, name: leads.name, attributes: leads.attributes, summary: leads.summary, score: leads.score })
        .from(leads)
        .where(eq(leads.id, leadId));
      return l;
    },

    /** The lead's running conversation summary, if any (LLM context). */
    async summaryOf(leadId: string): Promise<string | null> {
      const [l] = await db.select({ summary: leads.summary }).from(leads).where(eq(leads.id, leadId));
      return l?.summary ?? null;
    },

    /**
     * Store `data` as version latest+1 only when it differs from the latest version (key order
     * ignored); merge its non-null fields into the lead's attributes, set the score and the
     * summary. The lead row is locked for the duration, so two runs for one lead serialize; an
     * insert that still collides on (lead_id, version) is retried against the new latest.
     */
    async saveIfChanged(input: SaveExtractionInput): Promise<SaveExtractionResult> {
      for (let attempt = 0; attempt < 5; attempt++) {
        const result = await db.transaction(async (tx) => {
          const [lead] = await tx
            .select({ tenantId: leads.tenantId, attributes: leads.attributes, summary: leads.summary, score: leads.score })
            .from(leads)
            .where(eq(leads.id, input.leadId))
            .for('update');
          if (!lead || lead.tenantId !== input.tenantId) throw new AppError('lead_not_found', `lead ${input.leadId} not found`);
          const [latest] = await tx
            .select({ version: extractions.version, data: extractions.data })
            .from(extractions)
            .where(eq(extractions.leadId, input.leadId))
            .orderBy(desc(extractions.version))
            .limit(1);
          const attributes = mergeAttributes(lead.attributes ?? {}, input.data);
          const score = input.scoreOf(attributes);
          let version = latest?.version ?? 0;
          const changed = !latest || !sameData(latest.data, input.data);
          if (changed) {
            const inserted = await tx
              .insert(extractions)
              .values({ tenantId: input.tenantId, leadId: input.leadId, version: version + 1, data: input.data, score, model: input.model })
              .onConflictDoNothing()
              .returning({ version: extractions.version });
            if (inserted.length === 0) return undefined; // someone stored this version first: compare again
            version += 1;
          }
          const summary = input.summary?.trim() ? input.summary.trim() : lead.summary;
          await tx.update(leads).set({ attributes, score, summary, updatedAt: sql`now()` }).where(eq(leads.id, input.leadId));
          // outbound webhooks: lead.qualified when this extraction raises the score to the agent's threshold (once per crossing)
          const threshold = input.qualifiedScore;
          if (threshold != null && score >= threshold && (lead.score ?? 0) < threshold) {
            await enqueueWebhookEvent(tx, { tenantId: input.tenantId, type: 'lead.qualified', eventId: `evt_qualified_${input.leadId}_${version}`, data: { leadId: input.leadId, score, previousScore: lead.score ?? null, threshold, extractionVersion: version } });
          }
          return { changed, version, score, summary, attributes };
        });
        if (result) return result;
      }
      throw new Error(`extraction of lead ${input.leadId}: version kept colliding`);
    },

    /** One lead's extraction versions, newest first, one keyset page (the cursor is the last version seen). */
    async listForLead(tenantId: string, leadId: string, opts: { limit: number; cursor?: string } = { limit: 200 }) {
      const before = opts.cursor !== undefined ? decodeSeqCursor(opts.cursor) : undefined;
      if (opts.cursor !== undefined && before === undefined) throw new AppError('bad_request', 'invalid cursor');
      const rows = await db
        .select()
        .from(extractions)
        .where(and(eq(extractions.tenantId, tenantId), eq(extractions.leadId, leadId), before !== undefined ? lt(extractions.version, before) : undefined))
        .orderBy(desc(extractions.version))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return { items: page.map(present), nextCursor: rows.length > opts.limit && last ? encodeSeqCursor(last.version) : null };
    },

    /**
     * Versions stored at or after `since`, oldest first (for incremental sync); the cursor is
     * the last (created_at, id) seen.
     */
    async listSince(tenantId: string, since: string | undefined, opts: { limit: number; cursor?: string }) {
      const c = opts.cursor ? decodeCursor(opts.cursor) : undefined;
      if (opts.cursor && !c) throw new AppError('bad_request', 'invalid cursor');
      const rows = await db
        .select()
        .from(extractions)
        .where(
          and(
            eq(extractions.tenantId, tenantId),
            since ? gte(extractions.createdAt, since) : undefined,
            c ? or(gt(extractions.createdAt, c.createdAt), and(eq(extractions.createdAt, c.createdAt), gt(extractions.id, c.id))) : undefined,
          ),
        )
        .orderBy(asc(extractions.createdAt), asc(extractions.id))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return { items: page.map(present), nextCursor: rows.length > opts.limit && last ? encodeCursor(last.createdAt, last.id) : null };
    },

    async recordLlmCall(call: LlmCallRecord): Promise<void> {
      await db.insert(llmCalls).values({
        tenantId: call.tenantId,
        leadId: call.leadId ?? null,
        purpose: call.purpose,
        model: call.model,
        promptTokens: Math.max(0, Math.round(call.promptTokens)),
        completionTokens: Math.max(0, Math.round(call.completionTokens)),
        costMicros: Math.max(0, Math.round(call.costMicros)),
        agentId: call.agentId ?? null,
        agentVersion: call.agentVersion ?? null,
      });
    },

    /** A tenant's LLM calls, newest first (spend reports, tests). */
    async llmCalls(tenantId: string, opts: { leadId?: string; limit?: number } = {}) {
      const rows = await db
        .select()
        .from(llmCalls)
        .where(and(eq(llmCalls.tenantId, tenantId), opts.leadId ? eq(llmCalls.leadId, opts.leadId) : undefined))
        .orderBy(desc(llmCalls.createdAt))
        .limit(opts.limit ?? 100);
      return rows.map((r) => ({ ...r, createdAt: toIso(r.createdAt) }));
    },

    /**
     * CSV export, one keyset page: one row per lead, from its latest extraction (stored at or
     * after `since`), with the lead's current name, stage, score and summary, ordered by the
     * time of that extraction, then lead id. `after` is the previous page's `next`; the rows
     * are CSV cell values in `CSV_COLUMNS` order (the header is not included). Every page sees
     * the extractions as of the first page's time: a lead re-extracted during a long export is
     * listed once, with the version it had when the export began.
     */
    async csvPage(
      tenantId: string,
      since: string | undefined,
      opts: { limit: number; after?: CsvPageKey },
    ): Promise<{ rows: unknown[][]; next: CsvPageKey | undefined }> {
      const after = opts.after;
      // the first page is a statement of its own: it sees what was committed at its start, and that is the cutoff
      const until = after?.until;
      const page = await db
        .select({
          leadId: extractions.leadId,
          version: extractions.version,
          data: extractions.data,
          extractedAt: extractions.createdAt,
          contactId: leads.contactId,
          leadName: leads.name,
          stage: leads.stage,
          score: leads.score,
          summary: leads.summary,
          now: sql<string>`now()::text`,
        })
        .from(extractions)
        .innerJoin(leads, eq(leads.id, extractions.leadId))
        .where(
          and(
            eq(extractions.tenantId, tenantId),
            since ? gte(extractions.createdAt, since) : undefined,
            until ? lte(extractions.createdAt, until) : undefined,
            // the lead's latest version (as of the cutoff) only
            sql`not exists (select 1 from ${extractions} as newer where newer.lead_id = ${extractions.leadId} and newer.version > ${extractions.version}${until ? sql` and newer.created_at <= ${until}` : sql``})`,
            after
              ? or(gt(extractions.createdAt, after.extractedAt), and(eq(extractions.createdAt, after.extractedAt), gt(extractions.leadId, after.leadId)))
              : undefined,
          ),
        )
        .orderBy(asc(extractions.createdAt), asc(extractions.leadId))
        .limit(opts.limit);
      const rows = page.map((r) => {
        const data: Record<string, unknown> = r.data ?? {};
        return [
          r.leadId,
          r.contactId,
          r.leadName,
          r.stage,
          r.score,
          ...STANDARD_FIELDS.map((f) => (typeof data[f] === 'string' ? data[f] : null)),
          isRecord(data.fields) ? canonicalJson(data.fields) : '{}',
          r.summary,
          r.version,
          toIso(r.extractedAt) ?? '',
        ];
      });
      const last = page[page.length - 1];
      return { rows, next: page.length === opts.limit && last ? { extractedAt: last.extractedAt, leadId: last.leadId, until: until ?? last.now } : undefined };
    },
  };
}

export type ExtractionService = ReturnType<typeof createExtractionService>;
