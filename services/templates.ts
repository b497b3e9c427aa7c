import { and, asc, eq, sql } from 'drizzle-orm';
import type { TemplateCategory } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { templates } from '../db/schema';
import { AppError } from '../lib/errors';
import { decodeTextCursor, encodeTextCursor, PG_UNIQUE_VIOLATION, pgErrorCode, toIso } from './db-util';

export interface TemplateInput {
  name: string;
  language: string;
  category: TemplateCategory;
  body: string;
  approved: boolean;
}

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

function present(t: typeof templates.$inferSelect) {
  return {
    id: t.id,
    name: t.name,
    language: t.language,
    category: t.category,
    body: t.body,
    approved: t.approved,
    variables: templateVariableCount(t.body),
    createdAt: toIso(t.createdAt),
  };
}

export type TemplateView = ReturnType<typeof present>;

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
  };
}

export type TemplateService = ReturnType<typeof createTemplateService>;
