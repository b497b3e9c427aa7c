import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { creditLedger, creditReservations, tenants } from '../db/schema';
import { AppError } from '../lib/errors';
import { decodeCursor, encodeCursor, toIso } from './db-util';

/**
 * The credit ledger. `tenants.credit_balance` is the available balance (a CHECK keeps it
 * at or above zero); a reply first reserves credits (taken from the balance), then either
 * captures them into the ledger under `message:{outboundMessageId}` or releases them.
 * Invariant: sum(ledger.amount) = balance + sum(held reservations).
 */
export function createCreditService(db: Db) {
  return {
    async balance(tenantId: string): Promise<{ balance: number; reserved: number; creditsPerReply: number }> {
      const [t] = await db
        .select({ balance: tenants.creditBalance, creditsPerReply: tenants.creditsPerReply })
        .from(tenants)
        .where(eq(tenants.id, tenantId));
      if (!t) throw new AppError('not_found', 'tenant not found');
      const [held] = await db
        .select({ reserved: sql<number>`coalesce(sum(${creditReservations.amount}), 0)::int` })
        .from(creditReservations)
        .where(and(eq(creditReservations.tenantId, tenantId), eq(creditReservations.status, 'held')));
      return { balance: t.balance, reserved: Number(held?.reserved ?? 0), creditsPerReply: t.creditsPerReply };
    },

    /** Idempotent by reference: the same reference applies once. */
    async topUp(input: { tenantId: string; amount: number; reference: string }): Promise<{ applied: boolean; balance: number }> {
      return db.transaction(async (tx) => {
        const inserted = await tx
          .insert(creditLedger)
          .values({ tenantId: input.tenantId, amount: input.amount, kind: 'topup', reference: input.reference })
          .onConflictDoNothing()
          .returning({ id: creditLedger.id, amount: creditLedger.amount });
        if (inserted.length === 0) {
          const [existing] = await tx
            .select({ amount: creditLedger.amount, kind: creditLedger.kind })
            .from(creditLedger)
            .where(and(eq(creditLedger.tenantId, input.tenantId), eq(creditLedger.reference, input.reference)));
          if (existing && (existing.kind !== 'topup' || existing.amount !== input.amount)) {
            throw new AppError('conflict', `reference ${input.reference} was already used with a different amount`);
          }
          const [t] = await tx.select({ balance: tenants.creditBalance }).from(tenants).where(eq(tenants.id, input.tenantId));
          return { applied: false, balance: t?.balance ?? 0 };
        }
        const [t] = await tx
          .update(tenants)
          .set({ creditBalance: sql`${tenants.creditBalance} + ${input.amount}` })
          .where(eq(tenants.id, input.tenantId))
          .returning({ balance: tenants.creditBalance });
        if (!t) throw new AppError('not_found', 'tenant not found');
        return { applied: true, balance: t.balance };
      });
    },

    /** Hold the tenant's per-reply price for one reply. `ok: false` when the balance is short. */
    async reserve(input: { tenantId: string; reference: string; amount?: number }): Promise<{ ok: boolean; amount: number; balance: number }> {
      return db.transaction(async (tx) => {
        // Lock the tenant row first: a concurrent reserve of the same reference (a retried activity
        // still running) then waits here and sees the committed reservation below, instead of
        // failing on the reservation's primary key.
        const [tenant] = await tx
          .select({ balance: tenants.creditBalance, creditsPerReply: tenants.creditsPerReply })
          .from(tenants)
          .where(eq(tenants.id, input.tenantId))
          .for('update');
        if (!tenant) throw new AppError('not_found', 'tenant not found');
        const [existing] = await tx.select().from(creditReservations).where(eq(creditReservations.reference, input.reference));
        if (existing) return { ok: existing.status !== 'released', amount: existing.amount, balance: tenant.balance };
        const amount = input.amount ?? tenant.creditsPerReply;
        const [updated] = await tx
          .update(tenants)
          .set({ creditBalance: sql`${tenants.creditBalance} - ${amount}` })
          .where(and(eq(tenants.id, input.tenantId), sql`${tenants.creditBalance} >= ${amount}`))
          .returning({ balance: tenants.creditBalance });
        if (!updated) return { ok: false, amount, balance: tenant.balance };
        await tx.insert(creditReservations).values({ reference: input.reference, tenantId: input.tenantId, amount, status: 'held' });
        return { ok: true, amount, balance: updated.balance };
      });
    },

    /** Turn a held reservation into a ledger debit referenced by the delivered message. Idempotent. */
    async capture(input: { reference: string; messageId: string }): Promise<{ captured: boolean }> {
      return db.transaction(async (tx) => {
        const [r] = await tx
          .update(creditReservations)
          .set({ status: 'captured', messageId: input.messageId, updatedAt: sql`now()` })
          .where(and(eq(creditReservations.reference, input.reference), eq(creditReservations.status, 'held')))
          .returning();
        if (!r) return { captured: false };
        await tx
          .insert(creditLedger)
          .values({ tenantId: r.tenantId, amount: -r.amount, kind: 'debit', reference: `message:${input.messageId}`, messageId: input.messageId })
          .onConflictDoNothing();
        return { captured: true };
      });
    },

    /** Give held credits back (the reply was not delivered). Idempotent. */
    async release(input: { reference: string }): Promise<{ released: boolean }> {
      return db.transaction(async (tx) => {
        const [r] = await tx
          .update(creditReservations)
          .set({ status: 'released', updatedAt: sql`now()` })
          .where(and(eq(creditReservations.reference, input.reference), eq(creditReservations.status, 'held')))
          .returning();
        if (!r) return { released: false };
        await tx
          .update(tenants)
          .set({ creditBalance: sql`${tenants.creditBalance} + ${r.amount}` })
          .where(eq(tenants.id, r.tenantId));
        return { released: true };
      });
    },

    async ledger(tenantId: string, opts: { limit: number; cursor?: string }) {
      const c = opts.cursor ? decodeCursor(opts.cursor) : undefined;
      if (opts.cursor && !c) throw new AppError('bad_request', 'invalid cursor');
      const rows = await db
        .select()
        .from(creditLedger)
        .where(
          and(
            eq(creditLedger.tenantId, tenantId),
            c ? or(lt(creditLedger.createdAt, c.createdAt), and(eq(creditLedger.createdAt, c.createdAt), lt(creditLedger.id, c.id))) : undefined,
          ),
        )
        .orderBy(desc(creditLedger.createdAt), desc(creditLedger.id))
        .limit(opts.limit + 1);
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return {
        items: page.map((r) => ({
          id: r.id,
          amount: r.amount,
          kind: r.kind,
          reference: r.reference,
          messageId: r.messageId,
          createdAt: toIso(r.createdAt),
        })),
        nextCursor: rows.length > opts.limit && last ? encodeCursor(last.createdAt, last.id) : null,
      };
    },
  };
}

export type CreditService = ReturnType<typeof createCreditService>;
