/**
 * The credit ledger under a tenant's (or an operator's) hand: top-up references cannot take the
 * place of a charge, and credits held by a lead that is gone come back through the scheduled sweep.
 */
import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { creditLedger, creditReservations } from '../../db/schema';
import { creditSweepScheduleId, ensureCreditSweepSchedule } from '../../temporal/schedules';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, startStack, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const DAY = 24 * 3_600_000;

async function ledgerSum(tenantId: string): Promise<number> {
  const [r] = await stack.core.database.db
    .select({ sum: sql<string>`coalesce(sum(${creditLedger.amount}), 0)` })
    .from(creditLedger)
    .where(eq(creditLedger.tenantId, tenantId));
  return Number(r?.sum ?? 0);
}

describe('top-up references', () => {
  test('a reference in an internal namespace (message:, reply:, ...) is refused with 400; a later charge is never swallowed', async () => {
    const t = await createTenant(stack);
    const messageId = randomUUID();
    for (const reference of [`message:${messageId}`, ` Message:${messageId}`, `reply:${messageId}`, 'sweep:x']) {
      const r = await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 5, reference }).expect(400);
      expect(r.body.error.code).toBe('validation_failed');
      expect(JSON.stringify(r.body)).toMatch(/reserved prefix/);
    }
    await expect(stack.core.services.credits.topUp({ tenantId: t.tenantId, amount: 5, reference: `message:${messageId}` })).rejects.toThrow(/reserved/);
    await stack.api.post(`/v1/tenants/${t.tenantId}/credits`).set(admin).send({ amount: 5, reference: `invoice message:${messageId}` }).expect(201);

    // a ledger row from before the check occupies the charge's reference: the charge still lands
    const credits = stack.core.services.credits;
    await stack.core.database.db.insert(creditLedger).values({ tenantId: t.tenantId, amount: 0, kind: 'topup', reference: `message:${messageId}` });
    expect((await credits.reserve({ tenantId: t.tenantId, reference: `reply:${messageId}` })).ok).toBe(true);
    expect(await credits.capture({ reference: `reply:${messageId}`, messageId })).toEqual({ captured: true });
    const b = await credits.balance(t.tenantId);
    expect(b).toMatchObject({ balance: 4, reserved: 0 });
    expect(await ledgerSum(t.tenantId)).toBe(b.balance + b.reserved);
  });
});

describe('stale reservation sweep (Temporal Schedule)', () => {
  test('releases credit held longer than the limit by a lead that is gone or not running, and keeps the rest', async () => {
    const t = await createTenant(stack, { credits: 20 });
    const credits = stack.core.services.credits;
    const db = stack.core.database.db;
    // a running lead workflow
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi')).expect(200);
    await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string }).to === from), { what: 'first reply' });
    const running = stack.leadWorkflowId(t.channelId, from);
    await waitFor(async () => (await credits.balance(t.tenantId)).reserved === 0, { what: 'the reply captured' });

    const refs = {
      goneWorkflow: `reply:${randomUUID()}`,
      legacyNoLead: `reply:${randomUUID()}`,
      runningLead: `reply:${randomUUID()}`,
      recentGone: `reply:${randomUUID()}`,
    };
    await credits.reserve({ tenantId: t.tenantId, reference: refs.goneWorkflow, workflowId: `lead:${randomUUID()}:${randomWaId()}` });
    await credits.reserve({ tenantId: t.tenantId, reference: refs.legacyNoLead });
    await credits.reserve({ tenantId: t.tenantId, reference: refs.runningLead, workflowId: running });
    await credits.reserve({ tenantId: t.tenantId, reference: refs.recentGone, workflowId: `lead:${randomUUID()}:${randomWaId()}` });
    for (const ref of [refs.goneWorkflow, refs.legacyNoLead, refs.runningLead]) {
      await db.update(creditReservations).set({ createdAt: sql`now() - interval '2 days'` }).where(eq(creditReservations.reference, ref));
    }
    const before = await credits.balance(t.tenantId);
    expect(before.reserved).toBe(4);

    // created idempotently: a second call (another worker start) updates the same schedule
    const opts = { taskQueue: stack.taskQueue, everyMs: 3_600_000, staleAfterMs: DAY };
    const id = await ensureCreditSweepSchedule(stack.temporal.client, opts);
    expect(await ensureCreditSweepSchedule(stack.temporal.client, { ...opts, everyMs: 2 * 3_600_000 })).toBe(id);
    expect(id).toBe(creditSweepScheduleId(stack.taskQueue));
    const handle = stack.temporal.client.schedule.getHandle(id);
    try {
      const described = await handle.describe();
      expect(described.spec.intervals?.[0]?.every).toBe(2 * 3_600_000);

      await handle.trigger();
      const status = async (ref: string) => (await db.select({ s: creditReservations.status }).from(creditReservations).where(eq(creditReservations.reference, ref)))[0]?.s;
      await waitFor(async () => (await status(refs.goneWorkflow)) === 'released' && (await status(refs.legacyNoLead)) === 'released', { timeoutMs: 30_000, what: 'stale reservations released' });
      expect(await status(refs.runningLead)).toBe('held');
      expect(await status(refs.recentGone)).toBe('held');
      const after = await credits.balance(t.tenantId);
      expect(after).toMatchObject({ balance: before.balance + 2, reserved: 2 });
      expect(await ledgerSum(t.tenantId)).toBe(after.balance + after.reserved);
    } finally {
      await handle.delete();
    }
  });

  test('a reservation made by the lead workflow records the workflow that holds it', async () => {
    const t = await createTenant(stack, { credits: 5 });
    const from = randomWaId();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).expect(200);
    await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string }).to === from), { what: 'reply' });
    const rows = await stack.core.database.db.select({ workflowId: creditReservations.workflowId }).from(creditReservations).where(eq(creditReservations.tenantId, t.tenantId));
    expect(rows).toEqual([{ workflowId: stack.leadWorkflowId(t.channelId, from) }]);
  });
});
