import { and, asc, eq, isNull, or } from 'drizzle-orm';
import type { SequenceDef, SequenceStep } from '../contract/messages';
import type { StopCondition } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { agents, channelAccounts, enrollmentRules, sequences } from '../db/schema';
import { AppError } from '../lib/errors';
import { afterCursor, keyset, toIso } from './db-util';

function present(s: typeof sequences.$inferSelect) {
  return { id: s.id, name: s.name, steps: s.steps, stopOn: s.stopOn, createdAt: toIso(s.createdAt) };
}

export function toSequenceDef(s: { id: string; name: string; steps: SequenceStep[]; stopOn: StopCondition[] }): SequenceDef {
  return { id: s.id, name: s.name, steps: s.steps, stopOn: s.stopOn };
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
    async create(tenantId: string, input: { name: string; steps: SequenceStep[]; stopOn: StopCondition[] }) {
      const [s] = await db.insert(sequences).values({ tenantId, name: input.name, steps: input.steps, stopOn: input.stopOn }).returning();
      if (!s) throw new Error('sequence insert returned nothing');
      return present(s);
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
      if (input.agentId) {
        const [a] = await db.select({ id: agents.id }).from(agents).where(and(eq(agents.tenantId, tenantId), eq(agents.id, input.agentId)));
        if (!a) throw new AppError('validation_failed', 'agentId does not name an agent of this tenant', [{ path: 'agentId', message: 'unknown agent' }]);
      }
      if (input.channelAccountId) {
        // another tenant's channel is as unknown as one that does not exist
        const [c] = await db
          .select({ id: channelAccounts.id, platform: channelAccounts.platform })
          .from(channelAccounts)
          .where(and(eq(channelAccounts.tenantId, tenantId), eq(channelAccounts.id, input.channelAccountId)));
        if (!c) throw new AppError('channel_not_found', 'channelAccountId does not name a channel of this tenant');
        if (c.platform !== 'whatsapp' && sequenceUsesTemplates(seq.steps)) throw templateNotSupported(c.platform, 'the sequence has template steps');
      }
      const [r] = await db
        .insert(enrollmentRules)
        .values({ tenantId, sequenceId: input.sequenceId, agentId: input.agentId ?? null, channelAccountId: input.channelAccountId ?? null })
        .returning();
      if (!r) throw new Error('rule insert returned nothing');
      return { id: r.id, sequenceId: r.sequenceId, agentId: r.agentId, channelAccountId: r.channelAccountId, trigger: r.trigger, createdAt: toIso(r.createdAt) };
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
        items: page.map((r) => ({ id: r.id, sequenceId: r.sequenceId, agentId: r.agentId, channelAccountId: r.channelAccountId, trigger: r.trigger, createdAt: toIso(r.createdAt) })),
        nextCursor,
      };
    },

    /** The sequence a new lead of this agent on this channel enrols in (the oldest matching rule wins). */
    async autoEnrollment(tenantId: string, agentId: string | undefined, channelAccountId: string): Promise<SequenceDef | undefined> {
      const [r] = await db
        .select({ sequenceId: enrollmentRules.sequenceId })
        .from(enrollmentRules)
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
      if (!seq) return undefined;
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
