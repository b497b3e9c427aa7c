import { and, asc, desc, eq, getTableColumns, isNotNull, isNull, lt } from 'drizzle-orm';
import type { AgentOptOutSettings, TemplateRef } from '../contract/messages';
import type { AgentToolName } from '../contract/agent-tools';
import type { KnowledgeFallback } from '../contract/vocabulary';
import type { Db, DbTransaction } from '../db/client';
import { agents, agentVersions, channelAccounts } from '../db/schema';
import { AppError } from '../lib/errors';
import { afterCursor, decodeSeqCursor, encodeSeqCursor, forDatabase, keyset, PG_FOREIGN_KEY_VIOLATION, pgErrorCode, sameJson, toIso } from './db-util';

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
  /** The score (0–100) at which a lead counts as qualified (webhook event lead.qualified); absent = none. */
  qualifiedScore?: number;
  /** Knowledge bases the agent retrieves from (checked to be the tenant's by the caller). */
  knowledgeBaseIds?: string[];
  /** The tools the LLM may call; absent = the default (handoff_to_human). */
  tools?: AgentToolName[];
  /** The template a scheduled follow-up sends outside the 24-hour window; absent = refused then. */
  followUpTemplate?: TemplateRef;
  /** When the knowledge bases have nothing relevant (absent: say_unknown). */
  knowledgeFallback?: KnowledgeFallback;
}

/** A change: any of the fields; `fallbackModel: null` removes the fallback, `optOut: null` goes back to the defaults. */
export type AgentPatch = Partial<Omit<AgentInput, 'fallbackModel' | 'optOut' | 'qualifiedScore' | 'tools' | 'followUpTemplate'>> & {
  fallbackModel?: string | null;
  optOut?: AgentOptOutSettings | null;
  qualifiedScore?: number | null;
  /** null: back to the default tools. */
  tools?: AgentToolName[] | null;
  followUpTemplate?: TemplateRef | null;
};

/** The fields every version records (what the reply writer and the lead workflow use). */
type Versioned = Pick<typeof agents.$inferSelect, 'name' | 'systemPrompt' | 'model' | 'fallbackModel' | 'temperature' | 'stagePrompts' | 'extractionFields' | 'handoffKeywords' | 'optOut' | 'qualifiedScore' | 'knowledgeBaseIds' | 'tools' | 'followUpTemplate' | 'knowledgeFallback'>;

function fieldsOf(a: Versioned): Versioned {
  return {
    name: a.name,
    systemPrompt: a.systemPrompt,
    model: a.model,
    fallbackModel: a.fallbackModel,
    temperature: a.temperature,
    stagePrompts: a.stagePrompts,
    extractionFields: a.extractionFields,
    handoffKeywords: a.handoffKeywords,
    optOut: a.optOut ?? null,
    qualifiedScore: a.qualifiedScore ?? null,
    knowledgeBaseIds: a.knowledgeBaseIds ?? [],
    tools: a.tools ?? null,
    followUpTemplate: a.followUpTemplate ?? null,
    knowledgeFallback: a.knowledgeFallback ?? 'say_unknown',
  };
}

function present(a: typeof agents.$inferSelect) {
  return { id: a.id, ...fieldsOf(a), version: a.version, createdAt: toIso(a.createdAt) };
}

function presentVersion(v: typeof agentVersions.$inferSelect) {
  return { agentId: v.agentId, version: v.version, ...fieldsOf(v), restoredFrom: v.restoredFrom, createdBy: v.createdBy, createdAt: toIso(v.createdAt) };
}

export type AgentView = ReturnType<typeof present>;

export function createAgentService(db: Db) {
  /** The agent row, locked for a change in this transaction. */
  async function lockAgent(tx: DbTransaction, tenantId: string, agentId: string) {
    const [a] = await tx.select().from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, agentId))).for('update');
    return a;
  }

  /** Write `fields` as the agent's next version (row and history) unless they equal the current ones. */
  async function writeVersion(tx: DbTransaction, current: typeof agents.$inferSelect, fields: Versioned, meta: { createdBy?: string; restoredFrom?: number }) {
    if (sameJson(fieldsOf(current), fields)) return { agent: current, changed: false };
    // an agent made before versions were kept has no history row for its current version yet
    await tx
      .insert(agentVersions)
      .values({ tenantId: current.tenantId, agentId: current.id, version: current.version, ...fieldsOf(current), createdAt: current.createdAt })
      .onConflictDoNothing();
    const version = current.version + 1;
    const [a] = await tx.update(agents).set({ ...fields, version }).where(eq(agents.id, current.id)).returning();
    if (!a) throw new Error('agent update returned nothing');
    await tx.insert(agentVersions).values({ tenantId: a.tenantId, agentId: a.id, version, ...fields, restoredFrom: meta.restoredFrom ?? null, createdBy: meta.createdBy ?? null });
    return { agent: a, changed: true };
  }

  return {
    async create(tenantId: string, input: AgentInput, meta: { createdBy?: string } = {}) {
      return db.transaction(async (tx) => {
        const [a] = await tx
          .insert(agents)
          .values(forDatabase({ tenantId, ...input, fallbackModel: input.fallbackModel ?? null, optOut: input.optOut ?? null, qualifiedScore: input.qualifiedScore ?? null, knowledgeBaseIds: [...new Set(input.knowledgeBaseIds ?? [])], tools: input.tools ?? null, followUpTemplate: input.followUpTemplate ?? null }))
          .returning();
        if (!a) throw new Error('agent insert returned nothing');
        await tx.insert(agentVersions).values({ tenantId, agentId: a.id, version: a.version, ...fieldsOf(a), createdBy: meta.createdBy ?? null, createdAt: a.createdAt });
        return present(a);
      });
    },
    async get(tenantId: string, agentId: string) {
      const [a] = await db.select().from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, agentId)));
      return a ? present(a) : undefined;
    },
    /** The agent a channel account is assigned to now (the tenant's own agents only), in one query; `version` is the one answering. */
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

    /**
     * Change the agent: a new version when a field differs (the same values make no version).
     * Undefined when the tenant has no such agent. `before` is the agent as it was.
     */
    async update(tenantId: string, agentId: string, patch: AgentPatch, meta: { createdBy?: string } = {}) {
      return db.transaction(async (tx) => {
        const current = await lockAgent(tx, tenantId, agentId);
        if (!current) return undefined;
        const fields: Versioned = { ...fieldsOf(current), ...forDatabase(Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined))) };
        const { agent, changed } = await writeVersion(tx, current, fields, meta);
        return { before: present(current), after: present(agent), changed };
      });
    },

    /**
     * Roll back: version `version`'s fields become a new version (current + 1, `restoredFrom`),
     * so the history only grows. Undefined when the agent or the version does not exist.
     */
    async restore(tenantId: string, agentId: string, version: number, meta: { createdBy?: string } = {}) {
      return db.transaction(async (tx) => {
        const current = await lockAgent(tx, tenantId, agentId);
        if (!current) return undefined;
        const [v] = await tx.select().from(agentVersions).where(and(eq(agentVersions.agentId, agentId), eq(agentVersions.version, version)));
        if (!v) return undefined;
        const { agent, changed } = await writeVersion(tx, current, fieldsOf(v), { ...meta, restoredFrom: version });
        return { before: present(current), after: present(agent), changed };
      });
    },

    /** Newest first, one page (the cursor is a version number); undefined when the tenant has no such agent. */
    async versions(tenantId: string, agentId: string, opts: { limit: number; cursor?: string }) {
      const before = opts.cursor === undefined ? undefined : decodeSeqCursor(opts.cursor);
      if (opts.cursor !== undefined && before === undefined) throw new AppError('bad_request', 'invalid cursor');
      const [a] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, agentId)));
      if (!a) return undefined;
      const rows = await db
        .select()
        .from(agentVersions)
        .where(and(eq(agentVersions.agentId, agentId), before === undefined ? undefined : lt(agentVersions.version, before)))
        .orderBy(desc(agentVersions.version))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return { items: page.map(presentVersion), nextCursor: rows.length > opts.limit && last ? encodeSeqCursor(last.version) : null };
    },

    /**
     * Delete the agent with its version history and the enrolment rules that name it. Refused
     * (409 `agent_in_use`, naming the channels) while a live channel account is assigned to it (a
     * deleted channel lets go of it: its agent_id becomes null); the
     * foreign key from channel_accounts settles a race with a channel assigned meanwhile.
     * llm_calls rows keep the agent id and version they recorded. False when there is no such agent.
     */
    async delete(tenantId: string, agentId: string): Promise<{ deleted: AgentView } | undefined> {
      try {
        return await db.transaction(async (tx) => {
          const current = await lockAgent(tx, tenantId, agentId);
          if (!current) return undefined;
          const using = await tx
            .select({ id: channelAccounts.id })
            .from(channelAccounts)
            .where(and(eq(channelAccounts.agentId, agentId), isNull(channelAccounts.deletedAt)))
            .orderBy(asc(channelAccounts.createdAt));
          if (using.length > 0) throw inUse(using.map((c) => c.id));
          // deleted channels keep their leads but need no agent: they let go of it
          await tx.update(channelAccounts).set({ agentId: null }).where(and(eq(channelAccounts.agentId, agentId), isNotNull(channelAccounts.deletedAt)));
          await tx.delete(agents).where(eq(agents.id, agentId));
          return { deleted: present(current) };
        });
      } catch (err) {
        if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) {
          const using = await db.select({ id: channelAccounts.id }).from(channelAccounts).where(and(eq(channelAccounts.agentId, agentId), isNull(channelAccounts.deletedAt)));
          throw inUse(using.map((c) => c.id));
        }
        throw err;
      }
    },
  };
}

function inUse(channelIds: string[]): AppError {
  return new AppError(
    'conflict',
    `the agent is assigned to channel${channelIds.length === 1 ? '' : 's'} ${channelIds.join(', ')}: move ${channelIds.length === 1 ? 'it' : 'them'} to another agent (PATCH /v1/channels/:channelId) or delete ${channelIds.length === 1 ? 'it' : 'them'} first`,
    channelIds.map((id) => ({ path: 'channelId', message: id })),
    'agent_in_use',
  );
}

export type AgentService = ReturnType<typeof createAgentService>;
