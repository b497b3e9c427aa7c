import { and, asc, eq, getTableColumns } from 'drizzle-orm';
import type { AgentOptOutSettings } from '../contract/messages';
import type { Db } from '../db/client';
import { agents, channelAccounts } from '../db/schema';
import { afterCursor, keyset, toIso } from './db-util';

export interface AgentInput {
  name: string;
  systemPrompt: string;
  model: string;
  fallbackModel?: string;
  temperature?: number;
  stagePrompts?: Record<string, string>;
  extractionFields?: Record<string, string>;
  handoffKeywords?: string[];
  /** Opt-out: languages, extra phrases, a confirmation text, replies after opt-out (absent = the defaults). */
  optOut?: AgentOptOutSettings;
}

function present(a: typeof agents.$inferSelect) {
  return {
    id: a.id,
    name: a.name,
    systemPrompt: a.systemPrompt,
    model: a.model,
    fallbackModel: a.fallbackModel,
    temperature: a.temperature,
    stagePrompts: a.stagePrompts,
    extractionFields: a.extractionFields,
    handoffKeywords: a.handoffKeywords,
    optOut: a.optOut ?? null,
    createdAt: toIso(a.createdAt),
  };
}

export function createAgentService(db: Db) {
  return {
    async create(tenantId: string, input: AgentInput) {
      const [a] = await db
        .insert(agents)
        .values({ tenantId, ...input, fallbackModel: input.fallbackModel ?? null, optOut: input.optOut ?? null })
        .returning();
      if (!a) throw new Error('agent insert returned nothing');
      return present(a);
    },
    async get(tenantId: string, agentId: string) {
      const [a] = await db.select().from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, agentId)));
      return a ? present(a) : undefined;
    },
    /** The agent a channel account is assigned to now (the tenant's own agents only), in one query. */
    async forChannel(tenantId: string, channelAccountId: string) {
      const [a] = await db
        .select(getTableColumns(agents))
        .from(channelAccounts)
        .innerJoin(agents, and(eq(agents.id, channelAccounts.agentId), eq(agents.tenantId, tenantId)))
        .where(eq(channelAccounts.id, channelAccountId));
      return a ? present(a) : undefined;
    },
    /** Oldest first, one keyset page. */
    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(agents)
        .where(and(eq(agents.tenantId, tenantId), afterCursor(agents, opts.cursor, 'asc')))
        .orderBy(asc(agents.createdAt), asc(agents.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },
  };
}

export type AgentService = ReturnType<typeof createAgentService>;
