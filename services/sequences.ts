import { and, asc, desc, eq, isNull, lt, or } from 'drizzle-orm';
import type { SequenceDef, SequenceStep } from '../contract/messages';
import type { StopCondition } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { agents, channelAccounts, enrollmentRules, sequences, sequenceVersions } from '../db/schema';
import { AppError } from '../lib/errors';
import { afterCursor, decodeSeqCursor, encodeSeqCursor, forDatabase, keyset, sameJson, toIso } from './db-util';

function present(s: typeof sequences.$inferSelect) {
  return { id: s.id, version: s.version, name: s.name, steps: s.steps, stopOn: s.stopOn, archived: s.archivedAt !== null, archivedAt: toIso(s.archivedAt), createdAt: toIso(s.createdAt) };
}

function presentRule(r: typeof enrollmentRules.$inferSelect) {
  return { id: r.id, sequenceId: r.sequenceId, agentId: r.agentId, channelAccountId: r.channelAccountId, trigger: r.trigger, createdAt: toIso(r.createdAt) };
}

export type SequenceInput = { name: string; steps: SequenceStep[]; stopOn: StopCondition[] };

/** What a lead is enrolled with: this version's definition, kept by its workflow until it finishes or is reset. */
export function toSequenceDef(s: { id: string; version?: number; name: string; steps: SequenceStep[]; stopOn: StopCondition[] }): SequenceDef {
  return { id: s.id, ...(s.version !== undefined ? { version: s.version } : {}), name: s.name, steps: s.steps, stopOn: s.stopOn };
}

/** The 409 for an archived sequence (no new enrolments, no changes). */
export function sequenceArchived(what: string): AppError {
  return new AppError('conflict', `${what}: the sequence is archived (no new enrolments or changes)`, undefined, 'sequence_archived');
}

/**
 * True when a sequence can send a WhatsApp template (a template step, or a step that falls back
 * to one outside the 24-hour window). Templates exist on WhatsApp only: on a web chat or
 * Instagram lead such a step would call the WhatsApp template API and open the channel's breaker.
 */
export function sequenceUsesTemplates(steps: SequenceStep[]): boolean {
  return steps.some((s) => s.kind === 'template' || s.template !== undefined);
}

/** The 409 for a template (manual or in a sequence) on a lead or channel that is not WhatsApp. */
export function templateNotSupported(platform: string, what: string): AppError {
  return new AppError('conflict', `${what}: WhatsApp templates can only be sent on WhatsApp, and this is a ${platform} channel`, undefined, 'template_not_supported');
}

export function createSequenceService(db: Db) {
  return {
    async create(tenantId: string, raw: SequenceInput, meta: { createdBy?: string } = {}) {
      const input = forDatabase(raw);
      return db.transaction(async (tx) => {
        const [s] = await tx.insert(sequences).values({ tenantId, name: input.name, steps: input.steps, stopOn: input.stopOn }).returning();
        if (!s) throw new Error('sequence insert returned nothing');
        await tx.insert(sequenceVersions).values({ tenantId, sequenceId: s.id, version: s.version, name: s.name, steps: s.steps, stopOn: s.stopOn, createdBy: meta.createdBy ?? null, createdAt: s.createdAt });
        return present(s);
      });
    },

    /**
     * Change the sequence: a new version (same id) when a field differs. Leads already enrolled
     * keep the definition they were enrolled with (their workflow holds it) until they finish or
     * are reset; new enrolments get this one. Undefined when the tenant has no such sequence;
     * 409 when it is archived.
     */
    async update(tenantId: string, sequenceId: string, patch: Partial<SequenceInput>, meta: { createdBy?: string } = {}) {
      return db.transaction(async (tx) => {
        const [cur] = await tx.select().from(sequences).where(and(eq(sequences.tenantId, tenantId), eq(sequences.id, sequenceId))).for('update');
        if (!cur) return undefined;
        if (cur.archivedAt) throw sequenceArchived('cannot change it');
        const next = { name: cur.name, steps: cur.steps, stopOn: cur.stopOn, ...forDatabase(Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined))) };
        if (sameJson(next, { name: cur.name, steps: cur.steps, stopOn: cur.stopOn })) return { before: present(cur), after: present(cur), changed: false };
        // a sequence made before versions were kept has no history row for its current version yet
        await tx
          .insert(sequenceVersions)
          .values({ tenantId, sequenceId, version: cur.version, name: cur.name, steps: cur.steps, stopOn: cur.stopOn, createdAt: cur.createdAt })
          .onConflictDoNothing();
        const version = cur.version + 1;
        const [s] = await tx.update(sequences).set({ ...next, version }).where(eq(sequences.id, sequenceId)).returning();
        if (!s) throw new Error('sequence update returned nothing');
        await tx.insert(sequenceVersions).values({ tenantId, sequenceId, version, ...next, createdBy: meta.createdBy ?? null });
        return { before: present(cur), after: present(s), changed: true };
      });
    },

    /** Archive: no new enrolments (manual 409, rules skip it); enrolled leads go on. Idempotent; undefined when not found. */
    async archive(tenantId: string, sequenceId: string) {
      const [cur] = await db.select().from(sequences).where(and(eq(sequences.tenantId, tenantId), eq(sequences.id, sequenceId)));
      if (!cur) return undefined;
      if (cur.archivedAt) return { before: present(cur), after: present(cur) };
      const [s] = await db
        .update(sequences)
        .set({ archivedAt: new Date().toISOString() })
        .where(and(eq(sequences.id, sequenceId), isNull(sequences.archivedAt)))
        .returning();
      return { before: present(cur), after: present(s ?? cur) };
    },

    /** Newest first, one page (the cursor is a version number); undefined when the tenant has no such sequence. */
    async versions(tenantId: string, sequenceId: string, opts: { limit: number; cursor?: string }) {
      const before = opts.cursor === undefined ? undefined : decodeSeqCursor(opts.cursor);
      if (opts.cursor !== undefined && before === undefined) throw new AppError('bad_request', 'invalid cursor');
      if (!(await this.get(tenantId, sequenceId))) return undefined;
      const rows = await db
        .select()
        .from(sequenceVersions)
        .where(and(eq(sequenceVersions.sequenceId, sequenceId), before === undefined ? undefined : lt(sequenceVersions.version, before)))
        .orderBy(desc(sequenceVersions.version))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return {
        items: page.map((v) => ({ sequenceId: v.sequenceId, version: v.version, name: v.name, steps: v.steps, stopOn: v.stopOn, createdBy: v.createdBy, createdAt: toIso(v.createdAt) })),
        nextCursor: rows.length > opts.limit && last ? encodeSeqCursor(last.version) : null,
      };
    },

    /** Remove an enrolment rule; the rule as it was, or undefined when the tenant has no such rule. */
    async deleteRule(tenantId: string, ruleId: string) {
      const [r] = await db.delete(enrollmentRules).where(and(eq(enrollmentRules.tenantId, tenantId), eq(enrollmentRules.id, ruleId))).returning();
      return r ? presentRule(r) : undefined;
    },
    /** Oldest first, one keyset page. */
    async list(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(sequences)
        .where(and(eq(sequences.tenantId, tenantId), afterCursor(sequences, opts.cursor, 'asc')))
        .orderBy(asc(sequences.createdAt), asc(sequences.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },
    async get(tenantId: string, sequenceId: string) {
      const [s] = await db.select().from(sequences).where(and(eq(sequences.tenantId, tenantId), eq(sequences.id, sequenceId)));
      return s ? present(s) : undefined;
    },

    /** "A new lead of agent X (or on channel Y) enrols in sequence Z." */
    async createRule(tenantId: string, input: { sequenceId: string; agentId?: string; channelAccountId?: string }) {
      const seq = await this.get(tenantId, input.sequenceId);
      if (!seq) throw new AppError('validation_failed', 'sequenceId does not name a sequence of this tenant', [{ path: 'sequenceId', message: 'unknown sequence' }]);
      if (seq.archived) throw sequenceArchived('no rule can enrol in it');
      if (input.agentId) {
        const [a] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, input.agentId)));
        if (!a) throw new AppError('validation_failed', 'agentId does not name an agent of this tenant', [{ path: 'agentId', message: 'unknown agent' }]);
      }
      if (input.channelAccountId) {
        // another tenant's channel is as unknown as one that does not exist
        const [c] = await db
          .select({ id: channelAccounts.id, platform: channelAccounts.platform })
          .from(channelAccounts)
          .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, input.channelAccountId), isNull(channelAccounts.deletedAt)));
        if (!c) throw new AppError('channel_not_found', 'channelAccountId does not name a channel of this tenant');
        if (c.platform !== 'whatsapp' && sequenceUsesTemplates(seq.steps)) throw templateNotSupported(c.platform, 'the sequence has template steps');
      }
      const [r] = await db
        .insert(enrollmentRules)
        .values({ tenantId, sequenceId: input.sequenceId, agentId: input.agentId ?? null, channelAccountId: input.channelAccountId ?? null })
        .returning();
      if (!r) throw new Error('rule insert returned nothing');
      return presentRule(r);
    },

    /** Oldest first, one keyset page. */
    async listRules(tenantId: string, opts: { limit: number; cursor?: string }) {
      const rows = await db
        .select()
        .from(enrollmentRules)
        .where(and(eq(enrollmentRules.tenantId, tenantId), afterCursor(enrollmentRules, opts.cursor, 'asc')))
        .orderBy(asc(enrollmentRules.createdAt), asc(enrollmentRules.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return {
        items: page.map(presentRule),
        nextCursor,
      };
    },

    /** The sequence a new lead of this agent on this channel enrols in (the oldest matching rule of a sequence not archived wins). */
    async autoEnrollment(tenantId: string, agentId: string | undefined, channelAccountId: string): Promise<SequenceDef | undefined> {
      const [r] = await db
        .select({ sequenceId: enrollmentRules.sequenceId })
        .from(enrollmentRules)
        .innerJoin(sequences, and(eq(sequences.id, enrollmentRules.sequenceId), isNull(sequences.archivedAt)))
        .where(
          and(
            eq(enrollmentRules.tenantId, tenantId),
            eq(enrollmentRules.trigger, 'new_lead'),
            agentId ? or(isNull(enrollmentRules.agentId), eq(enrollmentRules.agentId, agentId)) : isNull(enrollmentRules.agentId),
            or(isNull(enrollmentRules.channelAccountId), eq(enrollmentRules.channelAccountId, channelAccountId)),
          ),
        )
        .orderBy(asc(enrollmentRules.createdAt))
        .limit(1);
      if (!r) return undefined;
      const seq = await this.get(tenantId, r.sequenceId);
      if (!seq || seq.archived) return undefined;
      if (sequenceUsesTemplates(seq.steps)) {
        // templates exist on WhatsApp only: a web chat or Instagram lead is not enrolled in such a sequence
        const [c] = await db.select({ platform: channelAccounts.platform }).from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
        if (c?.platform !== 'whatsapp') return undefined;
      }
      return toSequenceDef(seq);
    },
  };
}

export type SequenceService = ReturnType<typeof createSequenceService>;
