import { recordCreditRefused, recordCredits } from '../lib/metrics';
import { and, asc, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Db, DbTransaction } from '../db/client';
import { creditLedger, creditReservations, leads, messages, tenants } from '../db/schema';
import { AppError } from '../lib/errors';
import { FailureType } from '../contract/failures';
import { decodeCursor, encodeCursor, inTransaction, rowsOf, toIso } from './db-util';

/**
 * Ledger references Parley writes itself (`message:{outboundMessageId}` for a captured reply,
 * `reply:` for reservations, `release:` / `sweep:` kept for internal use): a top-up reference
 * may not start with one, so an operator's reference can never take the place of a charge.
 */
export const RESERVED_REFERENCE_PREFIXES = ['message:', 'reply:', 'release:', 'sweep:', 'system:'] as const;

/** The reserved namespace a top-up reference falls into, if any (case-insensitive, after trimming). */
export function reservedReferencePrefix(reference: string): string | undefined {
  const r = reference.trim().toLowerCase();
  return RESERVED_REFERENCE_PREFIXES.find((p) => r.startsWith(p));
}

/**
 * The credit ledger. `tenants.credit_balance` is the available balance (a CHECK keeps it
 * at or above zero); a reply first reserves credits (taken from the balance), then either
 * captures them into the ledger under `message:{outboundMessageId}` or releases them.
 * Invariant: sum(ledger.amount) = balance + sum(held reservations).
 */
export function createCreditService(db: Db) {
  return {
    async balance(tenantId: string): Promise<{ balance: number; reserved: number; creditsPerReply: number }> {
      // one statement, so one snapshot: two reads could see a release between them (the balance
      // before it, the reservations after it) and report a credit as gone
      const [t] = await db
        .select({
          balance: tenants.creditBalance,
          creditsPerReply: tenants.creditsPerReply,
          reserved: sql<number>`(select coalesce(sum(r.amount), 0)::int from credit_reservations r where r.tenant_id = ${tenantId} and r.status = 'held')`,
        })
        .from(tenants)
        .where(eq(tenants.id, tenantId));
      if (!t) throw new AppError('not_found', 'tenant not found');
      return { balance: t.balance, reserved: Number(t.reserved ?? 0), creditsPerReply: t.creditsPerReply };
    },

    /** Idempotent by reference: the same reference applies once. */
    async topUp(input: { tenantId: string; amount: number; reference: string }): Promise<{ applied: boolean; balance: number }> {
      const reserved = reservedReferencePrefix(input.reference);
      if (reserved) {
        throw new AppError('validation_failed', `a top-up reference may not start with "${reserved}" (reserved for Parley's own ledger entries)`, [
          { path: ['reference'], message: `reserved prefix ${reserved}` },
        ]);
      }
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

    /**
     * Hold the tenant's per-reply price for one reply. `ok: false` when the balance is short.
     * Idempotent by reference: a reservation that exists (held, captured or released) is
     * answered as it stands (`existing` says its status) and nothing is taken again.
     * `opts.tx`: run in the caller's transaction.
     */
    async reserve(
      input: {
        tenantId: string;
        reference: string;
        amount?: number;
        workflowId?: string;
        /** An AI reply on this channel: refused (`channelDisabled`) while the channel is disabled. */
        replyChannelId?: string;
      },
      opts: { tx?: DbTransaction } = {},
    ): Promise<{ ok: boolean; amount: number; balance: number; existing?: 'held' | 'captured' | 'released'; suspended?: true; channelDisabled?: true }> {
      return inTransaction(db, opts.tx, async (tx) => {
        // Lock the tenant row first: a concurrent reserve of the same reference (a retried activity
        // still running) then waits here and sees the committed reservation below, instead of
        // failing on the reservation's primary key. FOR NO KEY UPDATE (what the balance update
        // takes anyway), not FOR UPDATE: a caller's transaction that inserted rows referencing the
        // tenant (the reply turn records messages first) holds a KEY SHARE lock on it, and two such
        // transactions upgrading to FOR UPDATE deadlock (SQLSTATE 40P01).
        const [tenant] = await tx
          .select({
            balance: tenants.creditBalance,
            creditsPerReply: tenants.creditsPerReply,
            suspendedAt: tenants.suspendedAt,
            channelEnabled: input.replyChannelId
              ? sql<boolean | null>`(select c.enabled and c.deleted_at is null from channel_accounts c where c.id = ${input.replyChannelId} and c.tenant_id = ${input.tenantId})`
              : sql<boolean | null>`null`,
          })
          .from(tenants)
          .where(eq(tenants.id, input.tenantId))
          .for('no key update');
        if (!tenant) throw new AppError('not_found', 'tenant not found');
        const [existing] = await tx.select().from(creditReservations).where(eq(creditReservations.reference, input.reference));
        // disabled, or deleted (its leads are being closed): no AI reply on it
        const channelDisabled = tenant.channelEnabled === false;
        if (tenant.suspendedAt || channelDisabled) {
          // a suspended tenant's bot sends nothing (the platform admin's PATCH /v1/tenants/:id), nor
          // does the AI reply on a disabled channel, not even in a send that already holds its
          // credit (a careful retry): that credit goes back
          let balance = tenant.balance;
          // given back only if this statement released it: a capture committed meanwhile (it does not
          // lock the tenant row) keeps it, and the balance must not get it back as well
          const released =
            existing?.status === 'held'
              ? await tx
                  .update(creditReservations)
                  .set({ status: 'released', updatedAt: sql`now()` })
                  .where(and(eq(creditReservations.reference, input.reference), eq(creditReservations.status, 'held')))
                  .returning({ amount: creditReservations.amount })
              : [];
          if (existing && released.length > 0) {
            const [back] = await tx
              .update(tenants)
              .set({ creditBalance: sql`${tenants.creditBalance} + ${existing.amount}` })
              .where(eq(tenants.id, existing.tenantId))
              .returning({ balance: tenants.creditBalance });
            balance = back?.balance ?? balance;
            recordCredits('released', existing.amount, existing.tenantId);
          }
          // held when read, not released here: what became of it meanwhile (captured, or released by another path)
          const now = existing?.status === 'held' && released.length === 0 ? (await tx.select({ status: creditReservations.status }).from(creditReservations).where(eq(creditReservations.reference, input.reference)))[0]?.status : existing?.status;
          if (existing && now === 'captured') return { ok: true, amount: existing.amount, balance, existing: 'captured' as const };
          recordCreditRefused(tenant.suspendedAt ? 'suspended' : FailureType.ChannelDisabled, input.tenantId);
          return { ok: false, amount: existing?.amount ?? input.amount ?? tenant.creditsPerReply, balance, ...(tenant.suspendedAt ? { suspended: true as const } : { channelDisabled: true as const }) };
        }
        if (existing) return { ok: existing.status !== 'released', amount: existing.amount, balance: tenant.balance, existing: existing.status };
        const amount = input.amount ?? tenant.creditsPerReply;
        // the debit and the hold in one statement (the tenant row is locked above): no hold without its debit
        const result = await tx.execute(sql`
          WITH debit AS (
            UPDATE tenants SET credit_balance = credit_balance - ${amount}
            WHERE id = ${input.tenantId} AND credit_balance >= ${amount}
            RETURNING credit_balance
          ), hold AS (
            INSERT INTO credit_reservations (reference, tenant_id, amount, status, workflow_id)
            SELECT ${input.reference}, ${input.tenantId}, ${amount}, 'held', ${input.workflowId ?? null} FROM debit
            RETURNING reference
          )
          SELECT debit.credit_balance AS balance FROM debit, hold`);
        const [updated] = rowsOf<{ balance: number | string }>(result);
        if (!updated) {
          recordCreditRefused('no_credit', input.tenantId);
          return { ok: false, amount, balance: tenant.balance };
        }
        recordCredits('reserved', amount, input.tenantId);
        return { ok: true, amount, balance: Number(updated.balance) };
      });
    },

    /** Turn a held reservation into a ledger debit referenced by the delivered message. Idempotent. */
    async capture(input: { reference: string; messageId: string }): Promise<{ captured: boolean }> {
      // One statement (atomic, no BEGIN/COMMIT round trips): the reservation held → captured, and
      // its debit under `message:<id>`. When that reference is taken by this very debit (a replay)
      // nothing more happens; when it is taken by something else (a top-up from before references
      // were checked), the debit goes in under `message:<id>:debit`, never lost.
      const ref = `message:${input.messageId}`;
      const result = await db.execute(sql`
        WITH r AS (
          UPDATE credit_reservations SET status = 'captured', message_id = ${input.messageId}, updated_at = now()
          WHERE reference = ${input.reference} AND status = 'held'
          RETURNING tenant_id, amount
        ), d AS (
          INSERT INTO credit_ledger (tenant_id, amount, kind, reference, message_id)
          SELECT tenant_id, -amount, 'debit', ${ref}, ${input.messageId}::uuid FROM r
          ON CONFLICT DO NOTHING
          RETURNING id
        ), alt AS (
          INSERT INTO credit_ledger (tenant_id, amount, kind, reference, message_id)
          SELECT r.tenant_id, -r.amount, 'debit', ${`${ref}:debit`}, ${input.messageId}::uuid FROM r
          WHERE NOT EXISTS (SELECT 1 FROM d)
            AND NOT EXISTS (SELECT 1 FROM credit_ledger l WHERE l.tenant_id = r.tenant_id AND l.reference = ${ref} AND l.kind = 'debit' AND l.message_id = ${input.messageId}::uuid)
          ON CONFLICT DO NOTHING
        )
        SELECT count(*)::int AS captured, coalesce(sum(r.amount), 0)::int AS amount, min(r.tenant_id::text) AS tenant_id FROM r`);
      const row = rowsOf<{ captured: number | string; amount: number | string; tenant_id: string | null }>(result)[0];
      const captured = Number(row?.captured ?? 0) > 0;
      if (captured) recordCredits('captured', Number(row?.amount ?? 0), row?.tenant_id ?? undefined);
      return { captured };
    },

    /** The `limit` tenants with the lowest credit balances (the parley_credit_balance gauge). */
    async lowestBalances(limit: number): Promise<{ tenantId: string; balance: number }[]> {
      const rows = await db.select({ tenantId: tenants.id, balance: tenants.creditBalance }).from(tenants).orderBy(asc(tenants.creditBalance), asc(tenants.id)).limit(limit);
      return rows.map((r) => ({ tenantId: r.tenantId, balance: Number(r.balance) }));
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
        recordCredits('released', r.amount, r.tenantId);
        return { released: true };
      });
    },

    /**
     * Held reservations older than `olderThanMs`, oldest first, with the workflow that holds each:
     * the column, else (rows from before it) the lead of the outbound message `reply:{id}` names;
     * `leadExists: false` when no lead row can be found (the lead is gone).
     */
    async heldOlderThan(opts: { olderThanMs: number; limit: number }): Promise<{ reference: string; tenantId: string; amount: number; createdAt: string; workflowId: string | null; leadExists: boolean }[]> {
      const rows = await db
        .select({
          reference: creditReservations.reference,
          tenantId: creditReservations.tenantId,
          amount: creditReservations.amount,
          createdAt: creditReservations.createdAt,
          workflowId: creditReservations.workflowId,
        })
        .from(creditReservations)
        .where(and(eq(creditReservations.status, 'held'), lt(creditReservations.createdAt, sql`now() - make_interval(secs => ${opts.olderThanMs / 1000})`)))
        .orderBy(asc(creditReservations.createdAt))
        .limit(opts.limit);
      const out = [];
      for (const r of rows) {
        let workflowId = r.workflowId;
        const byWorkflow = workflowId ? await db.select({ id: leads.id }).from(leads).where(eq(leads.workflowId, workflowId)).limit(1) : [];
        let leadExists = byWorkflow.length > 0;
        if (!workflowId) {
          const messageId = /^reply:([0-9a-f-]{36})$/i.exec(r.reference)?.[1];
          const [lead] = messageId
            ? await db.select({ workflowId: leads.workflowId }).from(messages).innerJoin(leads, eq(leads.id, messages.leadId)).where(eq(messages.id, messageId))
            : [];
          workflowId = lead?.workflowId ?? null;
          leadExists = Boolean(lead);
        }
        out.push({ reference: r.reference, tenantId: r.tenantId, amount: r.amount, createdAt: toIso(r.createdAt) ?? '', workflowId, leadExists });
      }
      return out;
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
