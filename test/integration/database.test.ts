/**
 * The schema and the money/dedup invariants the database itself must hold, on embedded PGlite
 * and (when DATABASE_URL is set) on PostgreSQL: migrations, the credit ledger under
 * concurrency, the balance CHECK, and provider message id uniqueness.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { channelAccounts, creditLedger, creditReservations, leads, messages, tenants } from '../../db/schema';
import { createSecretBox } from '../../lib/crypto';
import { createServices, type Services } from '../../services';
import { pgErrorCode, PG_CHECK_VIOLATION, PG_UNIQUE_VIOLATION } from '../../services/db-util';
import { ChannelNotLive } from '../../services/leads';
import type { InboundMessage } from '../../workflows/lead/definitions';

jest.setTimeout(120_000);

const kinds: { name: string; open: () => Promise<Database> }[] = [{ name: 'pglite', open: () => openDatabase({}) }];
if (process.env.DATABASE_URL) {
  const url = process.env.DATABASE_URL;
  kinds.push({ name: 'postgres', open: () => openDatabase({ url, max: 12 }) });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the statement to be rejected');
}

describe.each(kinds)('$name', ({ name, open }) => {
  let database: Database;
  let services: Services;

  beforeAll(async () => {
    database = await open();
    expect(database.kind).toBe(name);
    await migrateDatabase(database);
    services = createServices(database.db, createSecretBox(randomBytes(32)), { defaultCreditsPerReply: 1 });
  });
  afterAll(async () => {
    await database?.close();
  });

  async function newTenant(credits = 0): Promise<string> {
    const t = await services.tenants.create({ name: `db-test ${randomUUID()}` });
    if (credits > 0) await services.credits.topUp({ tenantId: t.id, amount: credits, reference: `initial-${t.id}` });
    return t.id;
  }

  /** sum(ledger.amount) = balance + sum(held reservations), and the balance is never negative. */
  async function expectInvariant(tenantId: string) {
    const [ledger] = await database.db
      .select({ sum: sql<number>`coalesce(sum(${creditLedger.amount}), 0)::int` })
      .from(creditLedger)
      .where(eq(creditLedger.tenantId, tenantId));
    const [held] = await database.db
      .select({ sum: sql<number>`coalesce(sum(${creditReservations.amount}), 0)::int` })
      .from(creditReservations)
      .where(and(eq(creditReservations.tenantId, tenantId), eq(creditReservations.status, 'held')));
    const { balance, reserved } = await services.credits.balance(tenantId);
    expect(balance).toBeGreaterThanOrEqual(0);
    expect(Number(held!.sum)).toBe(reserved);
    expect(Number(ledger!.sum)).toBe(balance + reserved);
  }

  async function newChannel(tenantId: string) {
    const agent = await services.agents.create(tenantId, { name: 'Bot', systemPrompt: 'Help.', model: 'gpt-4o-mini' });
    return services.channels.create(tenantId, {
      platform: 'whatsapp',
      phoneNumberId: String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999)),
      accessToken: `EAAG${randomBytes(12).toString('hex')}`,
      verifyToken: `verify-${randomBytes(6).toString('hex')}`,
      agentId: agent.id,
    });
  }

  async function newLead(tenantId: string) {
    const agent = await services.agents.create(tenantId, { name: 'Bot', systemPrompt: 'Help.', model: 'gpt-4o-mini' });
    const channel = await services.channels.create(tenantId, {
      platform: 'whatsapp',
      phoneNumberId: String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999)),
      accessToken: `EAAG${randomBytes(12).toString('hex')}`,
      verifyToken: `verify-${randomBytes(6).toString('hex')}`,
      agentId: agent.id,
    });
    const contactId = `91${Math.floor(1e9 + Math.random() * 9e9)}`;
    const lead = await services.leads.ensure({ tenantId, channelAccountId: channel.id, channel: 'whatsapp', contactId, workflowId: `lead:${channel.id}:${contactId}` });
    return { leadId: lead.leadId, contactId };
  }

  // beforeAll migrated once (from scratch on PGlite; the global setup did it first on PostgreSQL)
  test('the migrations apply again without error (idempotent)', async () => {
    await migrateDatabase(database);
    await migrateDatabase(database);
    const r = await database.db.execute(sql`select count(*)::int as n from information_schema.tables where table_name in ('tenants', 'credit_ledger', 'credit_reservations', 'messages', 'leads', 'channel_accounts', 'api_keys', 'agents')`);
    const rows = (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as { n: number }[];
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(8);
  });

  test('ten concurrent reservations against 3 credits: exactly 3 succeed, the balance never goes below zero', async () => {
    const tenantId = await newTenant(3);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => services.credits.reserve({ tenantId, reference: `turn-${tenantId}-${i}` })));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect(results.filter((r) => !r.ok)).toHaveLength(7);
    for (const r of results) expect(r.balance).toBeGreaterThanOrEqual(0);
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 0, reserved: 3 });
    await expectInvariant(tenantId);

    const okRefs = results.map((r, i) => (r.ok ? `turn-${tenantId}-${i}` : undefined)).filter((x): x is string => Boolean(x));
    const messageId = randomUUID();
    expect(await services.credits.capture({ reference: okRefs[0]!, messageId })).toEqual({ captured: true });
    expect(await services.credits.release({ reference: okRefs[1]! })).toEqual({ released: true });
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 1, reserved: 1 });
    await expectInvariant(tenantId);

    // neither can be undone or repeated
    expect(await services.credits.release({ reference: okRefs[0]! })).toEqual({ released: false });
    expect(await services.credits.capture({ reference: okRefs[1]!, messageId: randomUUID() })).toEqual({ captured: false });
    expect(await services.credits.release({ reference: okRefs[1]! })).toEqual({ released: false });
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 1, reserved: 1 });
    await expectInvariant(tenantId);

    // a failed reservation wrote nothing
    const failedRef = results.map((r, i) => (r.ok ? undefined : `turn-${tenantId}-${i}`)).find(Boolean)!;
    const rows = await database.db.select().from(creditReservations).where(eq(creditReservations.reference, failedRef));
    expect(rows).toHaveLength(0);
  });

  test('the database itself refuses a negative balance (CHECK)', async () => {
    const tenantId = await newTenant(2);
    const err = await rejection(database.db.execute(sql`update tenants set credit_balance = -1 where id = ${tenantId}`));
    expect(pgErrorCode(err)).toBe(PG_CHECK_VIOLATION);
    const err2 = await rejection(database.db.update(tenants).set({ creditBalance: sql`${tenants.creditBalance} - 3` }).where(eq(tenants.id, tenantId)));
    expect(pgErrorCode(err2)).toBe(PG_CHECK_VIOLATION);
    expect((await services.credits.balance(tenantId)).balance).toBe(2);
  });

  test('reserving with the same reference twice holds credits once', async () => {
    const tenantId = await newTenant(5);
    const ref = `turn-${randomUUID()}`;
    const first = await services.credits.reserve({ tenantId, reference: ref });
    const second = await services.credits.reserve({ tenantId, reference: ref });
    expect(first).toEqual({ ok: true, amount: 1, balance: 4 });
    expect(second).toMatchObject({ ok: true, amount: 1, balance: 4 });
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 4, reserved: 1 });
    await expectInvariant(tenantId);
  });

  test('concurrent reservations with the same reference (an activity retried while running) hold credits once', async () => {
    const tenantId = await newTenant(5);
    const ref = `turn-${randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 4 }, () => services.credits.reserve({ tenantId, reference: ref })));
    for (const r of results) expect(r).toMatchObject({ ok: true, amount: 1 });
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 4, reserved: 1 });
    await expectInvariant(tenantId);
  });

  test('a released reservation stays released when its reference is reserved again', async () => {
    const tenantId = await newTenant(1);
    const ref = `turn-${randomUUID()}`;
    expect((await services.credits.reserve({ tenantId, reference: ref })).ok).toBe(true);
    await services.credits.release({ reference: ref });
    expect((await services.credits.reserve({ tenantId, reference: ref })).ok).toBe(false);
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 1, reserved: 0 });
    await expectInvariant(tenantId);
  });

  const debitsOf = (tenantId: string) =>
    database.db
      .select()
      .from(creditLedger)
      .where(and(eq(creditLedger.tenantId, tenantId), eq(creditLedger.kind, 'debit')));

  test('capturing twice (also concurrently) writes one ledger row', async () => {
    const tenantId = await newTenant(3);
    const ref = `turn-${randomUUID()}`;
    const messageId = randomUUID();
    await services.credits.reserve({ tenantId, reference: ref });
    const results = await Promise.all([services.credits.capture({ reference: ref, messageId }), services.credits.capture({ reference: ref, messageId })]);
    expect(results.map((r) => r.captured).sort()).toEqual([false, true]);
    expect(await services.credits.capture({ reference: ref, messageId })).toEqual({ captured: false });
    const debits = await debitsOf(tenantId);
    expect(debits).toHaveLength(1);
    expect(debits[0]).toMatchObject({ amount: -1, reference: `message:${messageId}`, messageId });
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 2, reserved: 0 });
    await expectInvariant(tenantId);
  });

  test('a capture whose debit reference is taken by another entry keeps the debit under its own suffix', async () => {
    const tenantId = await newTenant(3);
    const messageId = randomUUID();
    // a top-up from before references were checked that happens to use the reference a reply's
    // debit takes (top-ups refuse the prefix now, so it is written as the old code wrote it)
    await database.db.insert(creditLedger).values({ tenantId, amount: 5, kind: 'topup', reference: `message:${messageId}` });
    await database.db.update(tenants).set({ creditBalance: sql`${tenants.creditBalance} + 5` }).where(eq(tenants.id, tenantId));
    const ref = `turn-${randomUUID()}`;
    expect((await services.credits.reserve({ tenantId, reference: ref })).ok).toBe(true);
    expect(await services.credits.capture({ reference: ref, messageId })).toEqual({ captured: true });
    expect(await services.credits.capture({ reference: ref, messageId })).toEqual({ captured: false });
    const debits = await debitsOf(tenantId);
    expect(debits).toHaveLength(1);
    expect(debits[0]).toMatchObject({ amount: -1, reference: `message:${messageId}:debit`, messageId });
    expect(await services.credits.balance(tenantId)).toMatchObject({ balance: 7, reserved: 0 });
    await expectInvariant(tenantId);
  });

  test('a top-up applies once per reference, also concurrently', async () => {
    const tenantId = await newTenant();
    const results = await Promise.all(Array.from({ length: 5 }, () => services.credits.topUp({ tenantId, amount: 10, reference: 'invoice-7' })));
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect((await services.credits.balance(tenantId)).balance).toBe(10);
    await expect(services.credits.topUp({ tenantId, amount: 11, reference: 'invoice-7' })).rejects.toMatchObject({ code: 'conflict' });
    await expectInvariant(tenantId);
  });

  test('two messages with the same provider id cannot both be stored', async () => {
    const tenantId = await newTenant();
    const { leadId } = await newLead(tenantId);
    const providerMessageId = `wamid.DBTEST${randomBytes(8).toString('hex')}`;
    await database.db.insert(messages).values({ tenantId, leadId, direction: 'inbound', providerMessageId, status: 'received', body: 'one' });
    const err = await rejection(database.db.insert(messages).values({ tenantId, leadId, direction: 'inbound', providerMessageId, status: 'received', body: 'two' }));
    expect(pgErrorCode(err)).toBe(PG_UNIQUE_VIOLATION);
  });

  test('recordInbound stores a message once however often it is delivered', async () => {
    const tenantId = await newTenant();
    const { leadId, contactId } = await newLead(tenantId);
    const message: InboundMessage = {
      providerMessageId: `wamid.DBTEST${randomBytes(8).toString('hex')}`,
      channel: 'whatsapp',
      contactId,
      contactName: 'Priya',
      sentAt: new Date().toISOString(),
      type: 'text',
      text: 'Is this in stock?',
    };
    expect(await services.leads.recordInbound({ tenantId, leadId, messages: [message] })).toEqual({ stored: [message.providerMessageId] });
    expect(await services.leads.recordInbound({ tenantId, leadId, messages: [message] })).toEqual({ stored: [] });
    const both = await Promise.all([
      services.leads.recordInbound({ tenantId, leadId, messages: [message] }),
      services.leads.recordInbound({ tenantId, leadId, messages: [message, { ...message, providerMessageId: `${message.providerMessageId}.2` }] }),
    ]);
    expect(both.flatMap((r) => r.stored)).toEqual([`${message.providerMessageId}.2`]);
    const rows = await database.db.select().from(messages).where(eq(messages.providerMessageId, message.providerMessageId));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ leadId, direction: 'inbound', body: 'Is this in stock?', status: 'received' });
  });
  describe('a lead is created only on a live channel of its own tenant', () => {
    const contact = () => `91${Math.floor(1e9 + Math.random() * 9e9)}`;
    const leadRows = (channelAccountId: string) => database.db.select({ id: leads.id }).from(leads).where(eq(leads.channelAccountId, channelAccountId));

    test('found again (not created) with the same id, and a later name kept', async () => {
      const tenantId = await newTenant();
      const channel = await newChannel(tenantId);
      const contactId = contact();
      const input = { tenantId, channelAccountId: channel.id, channel: 'whatsapp' as const, contactId, workflowId: `lead:${channel.id}:${contactId}` };
      const first = await services.leads.ensure(input);
      const again = await services.leads.ensure({ ...input, name: 'Asha' });
      const third = await services.leads.ensure(input);
      expect(first).toMatchObject({ created: true, stage: 'New', mode: 'ai', blocked: false });
      expect(again).toMatchObject({ leadId: first.leadId, created: false });
      expect(third).toMatchObject({ leadId: first.leadId, created: false });
      const [row] = await database.db.select({ name: leads.name }).from(leads).where(eq(leads.id, first.leadId));
      expect(row!.name).toBe('Asha');
    });

    test('on a deleted channel: ChannelNotLive and no row', async () => {
      const tenantId = await newTenant();
      const channel = await newChannel(tenantId);
      expect(await services.channels.delete(tenantId, channel.id)).toBeDefined();
      const contactId = contact();
      await expect(services.leads.ensure({ tenantId, channelAccountId: channel.id, channel: 'whatsapp', contactId, workflowId: `lead:${channel.id}:${contactId}` })).rejects.toBeInstanceOf(ChannelNotLive);
      expect(await leadRows(channel.id)).toHaveLength(0);
    });

    test("with another tenant's id for the channel: ChannelNotLive and no row", async () => {
      const owner = await newTenant();
      const other = await newTenant();
      const channel = await newChannel(owner);
      const contactId = contact();
      await expect(services.leads.ensure({ tenantId: other, channelAccountId: channel.id, channel: 'whatsapp', contactId, workflowId: `lead:${channel.id}:${contactId}` })).rejects.toBeInstanceOf(ChannelNotLive);
      expect(await leadRows(channel.id)).toHaveLength(0);
    });

    // two connections: only PostgreSQL can hold a delete open while a lead is being created
    (name === 'postgres' ? test : test.skip)('a lead created while the channel is being deleted waits for the delete, then is refused', async () => {
      const tenantId = await newTenant();
      const channel = await newChannel(tenantId);
      const contactId = contact();
      let outcome: unknown = 'pending';
      await database.db.transaction(async (tx) => {
        // the delete's UPDATE of the channel row, not committed yet
        await tx.update(channelAccounts).set({ deletedAt: sql`now()` }).where(eq(channelAccounts.id, channel.id));
        void services.leads
          .ensure({ tenantId, channelAccountId: channel.id, channel: 'whatsapp', contactId, workflowId: `lead:${channel.id}:${contactId}` })
          .then(
            () => (outcome = 'created'),
            (err: unknown) => (outcome = err),
          );
        await new Promise((r) => setTimeout(r, 500));
        expect(outcome).toBe('pending'); // blocked on the channel row
      });
      for (let i = 0; i < 100 && outcome === 'pending'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(outcome).toBeInstanceOf(ChannelNotLive);
      expect(await leadRows(channel.id)).toHaveLength(0);
    });

    (name === 'postgres' ? test : test.skip)('a delete that comes while a lead is being created waits for it, and the close then finds the lead', async () => {
      const tenantId = await newTenant();
      const channel = await newChannel(tenantId);
      const contactId = contact();
      let deleted: unknown = 'pending';
      let leadId = '';
      await database.db.transaction(async (tx) => {
        // what leads.ensure's statement does, held open: the channel row share-locked, the lead inserted
        await tx.execute(sql`select 1 from ${channelAccounts} where id = ${channel.id}::uuid and deleted_at is null for share`);
        [{ id: leadId }] = await tx.insert(leads).values({ tenantId, channelAccountId: channel.id, channel: 'whatsapp', contactId, workflowId: `lead:${channel.id}:${contactId}` }).returning({ id: leads.id }) as [{ id: string }];
        void services.channels.delete(tenantId, channel.id).then((d) => (deleted = d), (err: unknown) => (deleted = err));
        await new Promise((r) => setTimeout(r, 500));
        expect(deleted).toBe('pending');
      });
      for (let i = 0; i < 100 && deleted === 'pending'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(deleted).toMatchObject({ channel: { id: channel.id }, openLeads: 1 });
      expect(await services.channels.deletedChannelLeads(channel.id, { limit: 10 })).toEqual([{ id: leadId, workflowId: `lead:${channel.id}:${contactId}` }]);
    });
  });
});
