import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { DeadLetterStatus } from '../contract/vocabulary';
import type { Db } from '../db/client';
import { channelAccounts, deadLetters } from '../db/schema';
import { AppError } from '../lib/errors';
import { decodeCursor, keyset, toIso, withoutNul } from './db-util';

function present(d: typeof deadLetters.$inferSelect) {
  return {
    id: d.id,
    leadId: d.leadId,
    workflowId: d.workflowId,
    kind: d.kind,
    status: d.status,
    error: d.error,
    outboundMessageId: d.outboundMessageId,
    /** What will run again: purpose, what to send, attempts so far. */
    operation: d.operation,
    replays: d.replays,
    createdAt: toIso(d.createdAt),
    updatedAt: toIso(d.updatedAt),
    resolvedAt: d.resolvedAt ? toIso(d.resolvedAt) : null,
  };
}
export type DeadLetterView = ReturnType<typeof present>;

/** Dead letters: operations a lead workflow parked after their retries ran out. */
export function createDeadLetterService(db: Db) {
  return {
    /** Insert, or (a replay failed again) reopen with the new error. Idempotent per (id, attempt). */
    async park(raw: { id: string; tenantId: string; leadId: string; workflowId: string; kind: string; operation: unknown; error: unknown; outboundMessageId?: string }): Promise<void> {
      const input = withoutNul(raw);
      await db
        .insert(deadLetters)
        .values({ ...input, outboundMessageId: input.outboundMessageId ?? null, status: 'open' })
        .onConflictDoUpdate({
          target: deadLetters.id,
          set: { operation: input.operation, error: input.error, status: 'open', replays: sql`${deadLetters.replays} + 1`, updatedAt: sql`now()`, resolvedAt: null },
          // a retried activity must not count a replay twice
          setWhere: sql`${deadLetters.status} <> 'open'`,
        });
    },

    /** The parked operation of an open (or replaying) dead letter; null when it is gone or resolved. */
    async operation(id: string): Promise<unknown> {
      const [d] = await db
        .select({ operation: deadLetters.operation })
        .from(deadLetters)
        .where(and(eq(deadLetters.id, id), or(eq(deadLetters.status, 'open'), eq(deadLetters.status, 'replaying'))));
      return d?.operation ?? null;
    },

    async resolve(input: { id: string; status: 'replayed' | 'discarded' }): Promise<void> {
      await db.update(deadLetters).set({ status: input.status, resolvedAt: sql`now()`, updatedAt: sql`now()` }).where(eq(deadLetters.id, input.id));
    },

    /**
     * open → replaying, when the API sends the replay; false when it is not open. A replay
     * whose API process died mid-way (still `replaying` after `staleMs`) may be sent again:
     * the workflow refuses a dead letter it no longer holds, so nothing runs twice.
     */
    async markReplaying(tenantId: string, id: string, staleMs = 5 * 60_000): Promise<boolean> {
      const rows = await db
        .update(deadLetters)
        .set({ status: 'replaying', updatedAt: sql`now()` })
        .where(
          and(
            eq(deadLetters.tenantId, tenantId),
            eq(deadLetters.id, id),
            or(eq(deadLetters.status, 'open'), and(eq(deadLetters.status, 'replaying'), sql`${deadLetters.updatedAt} < now() - make_interval(secs => ${staleMs / 1000})`)),
          ),
        )
        .returning({ id: deadLetters.id });
      return rows.length > 0;
    },

    /** Back to open when the replay could not even reach the workflow. */
    async reopen(id: string): Promise<void> {
      await db.update(deadLetters).set({ status: 'open', updatedAt: sql`now()` }).where(and(eq(deadLetters.id, id), eq(deadLetters.status, 'replaying')));
    },

    async get(tenantId: string, id: string): Promise<DeadLetterView | undefined> {
      const [d] = await db.select().from(deadLetters).where(and(eq(deadLetters.tenantId, tenantId), eq(deadLetters.id, id)));
      return d ? present(d) : undefined;
    },

    async list(tenantId: string, opts: { status?: DeadLetterStatus; leadId?: string; limit: number; cursor?: string }) {
      const c = opts.cursor ? decodeCursor(opts.cursor) : undefined;
      if (opts.cursor && !c) throw new AppError('bad_request', 'invalid cursor');
      const rows = await db
        .select()
        .from(deadLetters)
        .where(
          and(
            eq(deadLetters.tenantId, tenantId),
            opts.status ? eq(deadLetters.status, opts.status) : undefined,
            opts.leadId ? eq(deadLetters.leadId, opts.leadId) : undefined,
            c ? or(lt(deadLetters.createdAt, c.createdAt), and(eq(deadLetters.createdAt, c.createdAt), lt(deadLetters.id, c.id))) : undefined,
          ),
        )
        .orderBy(desc(deadLetters.createdAt), desc(deadLetters.id))
        .limit(opts.limit + 1);
      const { page, nextCursor } = keyset(rows, opts.limit);
      return { items: page.map(present), nextCursor };
    },

    /** For the metrics endpoint: every channel's circuit state and open dead letters per tenant. */
    /** Channels by platform and circuit state (disabled ones apart), and open dead letters per tenant: GET /metrics. */
    async gauges(): Promise<{ circuits: { platform: string; state: 'open' | 'closed' | 'disabled'; n: number }[]; openDeadLetters: { tenantId: string; n: number }[] }> {
      const state = sql<'open' | 'closed' | 'disabled'>`case when not ${channelAccounts.enabled} then 'disabled' else ${channelAccounts.circuitState}::text end`;
      const circuits = await db
        .select({ platform: channelAccounts.platform, state, n: sql<number>`count(*)::int` })
        .from(channelAccounts)
        .where(isNull(channelAccounts.deletedAt))
        .groupBy(channelAccounts.platform, state);
      const open = await db
        .select({ tenantId: deadLetters.tenantId, n: sql<number>`count(*)::int` })
        .from(deadLetters)
        .where(eq(deadLetters.status, 'open'))
        .groupBy(deadLetters.tenantId);
      return { circuits: circuits.map((c) => ({ platform: c.platform, state: c.state, n: Number(c.n) })), openDeadLetters: open.map((d) => ({ tenantId: d.tenantId, n: Number(d.n) })) };
    },

    /** The circuit breaker's state, for the waiting workflow's poll. */
    async circuitState(channelAccountId: string): Promise<'open' | 'closed'> {
      // a disabled channel holds its sends like an open circuit, until it is enabled again
      const [c] = await db.select({ state: channelAccounts.circuitState, enabled: channelAccounts.enabled }).from(channelAccounts).where(eq(channelAccounts.id, channelAccountId));
      if (c && !c.enabled) return 'open';
      return c?.state ?? 'closed';
    },
  };
}

export type DeadLetterService = ReturnType<typeof createDeadLetterService>;
