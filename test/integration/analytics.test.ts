/**
 * GET /v1/analytics/summary against a dataset seeded straight into the database (two tenants,
 * two channels, leads in stages, messages across days, handoff, opt-out and sequence events,
 * LLM calls, ledger rows, suppressions), with every number worked out by hand below.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { creditLedger, leadEvents, leads, llmCalls, messages, sequences, suppressions } from '../../db/schema';
import { countRoundTrips } from '../support/query-counter';
import { bearer, createTenant, randomPhoneNumberId, stackPerFile, type TenantFixture } from '../support/stack';

jest.setTimeout(120_000);
const stack = stackPerFile();

let a: TenantFixture;
let b: TenantFixture;
/** Tenant A's second channel. */
let c2: string;
let seqId: string;

const ids = { L1: '', L2: '', L3: '', L4: '', L5: '', L6: '', LB: '' };

async function seed() {
  const db = stack().core.database.db;
  a = await createTenant(stack());
  b = await createTenant(stack());
  const ch = await stack()
    .api.post('/v1/channels')
    .set(bearer(a.apiKey))
    .send({ platform: 'whatsapp', phoneNumberId: randomPhoneNumberId(), accessToken: `EAAG${randomBytes(16).toString('hex')}`, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId: a.agentId })
    .expect(201);
  c2 = ch.body.id;

  const lead = async (tenant: TenantFixture, channelId: string, stage: string, createdAt: string) => {
    const contactId = `91${randomBytes(5).toString('hex')}`;
    const [row] = await db
      .insert(leads)
      .values({ tenantId: tenant.tenantId, channelAccountId: channelId, channel: 'whatsapp', contactId, workflowId: `lead-${channelId}-${contactId}`, stage, createdAt })
      .returning({ id: leads.id });
    return row!.id;
  };
  // tenant A: L1, L2, L5, L6 on the first channel, L3, L4 on the second
  ids.L1 = await lead(a, a.channelId, 'Qualified', '2026-10-01T09:00:00Z');
  ids.L2 = await lead(a, a.channelId, 'New', '2026-10-01T15:00:00Z');
  ids.L3 = await lead(a, c2, 'New', '2026-10-02T10:00:00Z');
  ids.L4 = await lead(a, c2, 'Lost', '2026-10-03T23:30:00Z');
  ids.L5 = await lead(a, a.channelId, 'New', '2026-09-30T23:00:00Z'); // before the range (UTC), inside it in Asia/Kolkata
  ids.L6 = await lead(a, a.channelId, 'Converted', '2026-10-04T00:00:00Z'); // the range's exclusive end
  ids.LB = await lead(b, b.channelId, 'New', '2026-10-01T12:00:00Z');

  const [seq] = await db.insert(sequences).values({ tenantId: a.tenantId, name: 'Follow-up', steps: [], stopOn: ['lead_replied'] }).returning({ id: sequences.id });
  seqId = seq!.id;
  const [seqB] = await db.insert(sequences).values({ tenantId: b.tenantId, name: 'B seq', steps: [], stopOn: [] }).returning({ id: sequences.id });

  const msg = (tenantId: string, leadId: string, direction: 'inbound' | 'outbound', createdAt: string, o: { status?: string; type?: string; sentAt?: string | null; id?: string } = {}) => ({
    id: o.id ?? randomUUID(),
    tenantId,
    leadId,
    direction,
    createdAt,
    status: o.status ?? (direction === 'inbound' ? 'received' : 'sent'),
    type: o.type ?? 'text',
    sentAt: o.sentAt === undefined ? createdAt : o.sentAt,
  });
  const A = a.tenantId;
  const out = { L1: randomUUID(), L5: randomUUID(), L4: randomUUID(), LB: randomUUID() };
  await db.insert(messages).values([
    // L1: answered 30 s after its first inbound of the range
    msg(A, ids.L1, 'inbound', '2026-10-01T09:00:00Z'),
    msg(A, ids.L1, 'outbound', '2026-10-01T09:00:20Z', { id: out.L1, status: 'delivered', sentAt: '2026-10-01T09:00:30Z' }),
    msg(A, ids.L1, 'inbound', '2026-10-02T08:00:00Z'),
    msg(A, ids.L1, 'outbound', '2026-10-02T08:00:50Z', { status: 'read', sentAt: '2026-10-02T08:01:00Z' }),
    msg(A, ids.L1, 'outbound', '2026-10-03T09:00:00Z', { type: 'template', status: 'pending', sentAt: null }),
    // L2: 120 s; a failed template; writes again after its second step
    msg(A, ids.L2, 'inbound', '2026-10-01T15:00:00Z'),
    msg(A, ids.L2, 'outbound', '2026-10-01T15:01:50Z', { sentAt: '2026-10-01T15:02:00Z' }),
    msg(A, ids.L2, 'outbound', '2026-10-02T09:00:00Z', { type: 'template', status: 'failed', sentAt: null }),
    msg(A, ids.L2, 'inbound', '2026-10-02T17:00:00Z'),
    // L3: never answered (its only outbound failed before the provider took it)
    msg(A, ids.L3, 'inbound', '2026-10-02T10:00:00Z'),
    msg(A, ids.L3, 'outbound', '2026-10-02T10:00:10Z', { status: 'failed', sentAt: null }),
    // L4: 600 s, across the day
    msg(A, ids.L4, 'inbound', '2026-10-03T23:30:00Z'),
    msg(A, ids.L4, 'outbound', '2026-10-03T23:39:50Z', { id: out.L4, sentAt: '2026-10-03T23:40:00Z' }),
    // L5: wrote before the range; a template step, its answer, then 45 s
    msg(A, ids.L5, 'inbound', '2026-09-30T23:10:00Z'),
    msg(A, ids.L5, 'outbound', '2026-10-01T10:00:00Z', { type: 'template', status: 'read', sentAt: '2026-10-01T10:00:01Z' }),
    msg(A, ids.L5, 'inbound', '2026-10-01T12:00:00Z'),
    msg(A, ids.L5, 'outbound', '2026-10-01T12:00:40Z', { id: out.L5, sentAt: '2026-10-01T12:00:45Z' }),
    // tenant B: never counted for A
    msg(b.tenantId, ids.LB, 'inbound', '2026-10-01T12:00:00Z'),
    msg(b.tenantId, ids.LB, 'outbound', '2026-10-01T12:00:05Z', { id: out.LB, type: 'template', sentAt: '2026-10-01T12:00:10Z' }),
  ]);

  const ev = (tenantId: string, leadId: string, type: string, createdAt: string, data: Record<string, unknown>) => ({ tenantId, leadId, type, createdAt, data });
  const S = seqId;
  await db.insert(leadEvents).values([
    ev(A, ids.L1, 'mode_changed', '2026-10-01T09:05:00Z', { from: 'ai', to: 'human', request: 'handoff', source: 'keyword' }),
    ev(A, ids.L1, 'sequence_step', '2026-09-29T10:00:00Z', { sequenceId: S, stepIndex: 0, status: 'sent' }),
    ev(A, ids.L2, 'mode_changed', '2026-10-02T12:00:00Z', { from: 'ai', to: 'human', request: 'handoff', source: 'api' }),
    ev(A, ids.L2, 'mode_changed', '2026-10-02T13:00:00Z', { from: 'human', to: 'ai', request: 'handback', source: 'api' }),
    ev(A, ids.L2, 'sequence_step', '2026-10-01T16:00:00Z', { sequenceId: S, stepIndex: 0, status: 'sent' }),
    ev(A, ids.L2, 'sequence_step', '2026-10-02T16:00:00Z', { sequenceId: S, stepIndex: 1, status: 'sent' }),
    ev(A, ids.L3, 'mode_changed', '2026-10-02T11:00:00Z', { from: 'ai', to: 'paused', request: 'pause', source: 'api' }),
    ev(A, ids.L3, 'sequence_step', '2026-10-02T10:30:00Z', { sequenceId: S, stepIndex: 0, status: 'refused', reason: 'insufficient_credits' }),
    ev(A, ids.L3, 'opted_out', '2026-10-02T11:30:00Z', { source: 'keyword', keyword: 'STOP' }),
    ev(A, ids.L3, 'sequence_stopped', '2026-10-02T11:30:01Z', { sequenceId: S, reason: 'opted_out', stepIndex: 1 }),
    ev(A, ids.L4, 'opted_out', '2026-10-03T23:35:00Z', { source: 'api' }),
    ev(A, ids.L5, 'sequence_step', '2026-10-01T10:00:02Z', { sequenceId: S, stepIndex: 0, status: 'sent' }),
    ev(A, ids.L5, 'sequence_stopped', '2026-10-01T12:00:01Z', { sequenceId: S, reason: 'lead_replied', stepIndex: 1 }),
    ev(A, ids.L5, 'mode_changed', '2026-10-05T10:00:00Z', { from: 'ai', to: 'human', request: 'handoff', source: 'api' }),
    ev(A, ids.L6, 'opted_out', '2026-10-04T01:00:00Z', { source: 'api' }),
    ev(b.tenantId, ids.LB, 'mode_changed', '2026-10-01T12:01:00Z', { from: 'ai', to: 'human', request: 'handoff', source: 'keyword' }),
    ev(b.tenantId, ids.LB, 'opted_out', '2026-10-01T12:02:00Z', { source: 'keyword' }),
    ev(b.tenantId, ids.LB, 'sequence_step', '2026-10-01T12:00:06Z', { sequenceId: seqB!.id, stepIndex: 0, status: 'sent' }),
  ]);

  const call = (tenantId: string, leadId: string | null, purpose: 'reply' | 'extraction', createdAt: string, costMicros: number, promptTokens: number, completionTokens: number) => ({
    tenantId,
    leadId,
    purpose,
    model: 'gpt-4o-mini',
    createdAt,
    costMicros,
    promptTokens,
    completionTokens,
  });
  await db.insert(llmCalls).values([
    call(A, ids.L1, 'reply', '2026-10-01T10:00:00Z', 1500, 100, 20),
    call(A, ids.L5, 'reply', '2026-10-01T12:00:00Z', 2500, 200, 30),
    call(A, ids.L3, 'extraction', '2026-10-02T10:00:00Z', 700, 50, 10),
    call(A, ids.L4, 'reply', '2026-10-03T23:40:00Z', 1000, 80, 15),
    call(A, null, 'reply', '2026-10-03T12:00:00Z', 300, 10, 5), // an erased lead's call
    call(A, ids.L1, 'reply', '2026-09-30T23:59:59Z', 9999, 1, 1),
    call(A, ids.L1, 'reply', '2026-10-04T00:00:00Z', 9999, 1, 1),
    call(b.tenantId, ids.LB, 'reply', '2026-10-01T12:00:00Z', 5000, 100, 100),
  ]);

  const ledger = (tenantId: string, kind: 'topup' | 'debit' | 'adjustment', amount: number, createdAt: string, messageId?: string) => ({
    tenantId,
    kind,
    amount,
    createdAt,
    reference: messageId ? `message:${messageId}` : `ref-${randomUUID()}`,
    messageId: messageId ?? null,
  });
  await db.insert(creditLedger).values([
    ledger(A, 'topup', 100, '2026-10-01T08:00:00Z'),
    ledger(A, 'debit', -1, '2026-10-01T09:00:30Z', out.L1),
    ledger(A, 'debit', -1, '2026-10-01T12:00:45Z', out.L5),
    ledger(A, 'adjustment', -5, '2026-10-02T09:00:00Z'),
    ledger(A, 'debit', -2, '2026-10-03T23:40:00Z', out.L4),
    ledger(A, 'debit', -7, '2026-10-04T00:00:01Z', randomUUID()),
    ledger(b.tenantId, 'debit', -3, '2026-10-01T12:00:10Z', out.LB),
  ]);

  await db.insert(suppressions).values([
    { tenantId: A, contact: 'a-keyword', forms: ['a-keyword'], source: 'keyword', keyword: 'STOP', leadId: ids.L3, createdAt: '2026-10-02T11:30:00Z' },
    { tenantId: A, contact: 'a-api', forms: ['a-api'], source: 'api', createdAt: '2026-10-03T09:00:00Z' },
    { tenantId: A, contact: 'a-old', forms: ['a-old'], source: 'keyword', createdAt: '2026-09-29T09:00:00Z' },
    { tenantId: b.tenantId, contact: 'b-api', forms: ['b-api'], source: 'api', createdAt: '2026-10-01T09:00:00Z' },
  ]);
}

beforeAll(seed);

const summary = async (key: string, query: string, status = 200) => (await stack().api.get(`/v1/analytics/summary${query}`).set(bearer(key)).expect(status)).body;

const zeroDay = { newLeads: 0, inboundMessages: 0, outboundMessages: 0, templateSends: 0, llmCalls: 0, llmCostMicros: 0, creditsSpent: 0, creditsAdded: 0 };

test('the tenant summary: every figure as worked out by hand (UTC days)', async () => {
  const s = await summary(a.apiKey, '?from=2026-10-01&to=2026-10-03');
  expect(s.range).toEqual({ from: '2026-10-01T00:00:00.000Z', to: '2026-10-04T00:00:00.000Z', timeZone: 'UTC', channelId: null, days: 3 });
  // L1..L4 created in range (L5 before, L6 at the exclusive end), by their stage now
  expect(s.leads).toEqual({ new: 4, byStage: [{ stage: 'New', leads: 2 }, { stage: 'Lost', leads: 1 }, { stage: 'Qualified', leads: 1 }] });
  // L1..L5 wrote; L3 never answered; first responses 30, 120, 600, 45 s → median (45 + 120) / 2
  expect(s.replies).toEqual({ leadsWithInbound: 5, leadsAnswered: 4, replyRate: 0.8, medianFirstResponseSeconds: 82.5 });
  // active: L1..L5; handed off: L1 (keyword), L2 (api; handed back later still counts); L3's pause and L5's later handoff do not
  expect(s.handoffs).toEqual({ activeLeads: 5, leadsHandedOff: 2, handoffRate: 0.4 });
  expect(s.optOuts).toEqual({ leads: 2, suppressionsAdded: { keyword: 1, api: 1 } });
  expect(s.templates).toEqual({ sends: 3, sent: 1, delivered: 1, read: 1, failed: 1, pending: 1 });
  expect(s.sequences).toEqual([
    // L5 (sent, answered before its next step), L2 (sent; its inbound came after step 1), L3 (refused)
    { sequenceId: seqId, sequenceName: 'Follow-up', stepIndex: 0, attempted: 3, sent: 2, repliedAfter: 1, stopped: 0, stopReasons: {} },
    // L2's step 1 and its answer; L5 and L3 stopped while step 1 was due
    { sequenceId: seqId, sequenceName: 'Follow-up', stepIndex: 1, attempted: 1, sent: 1, repliedAfter: 1, stopped: 2, stopReasons: { lead_replied: 1, opted_out: 1 } },
  ]);
  expect(s.llm).toEqual({ calls: 5, costMicros: 6000, promptTokens: 440, completionTokens: 80, byPurpose: { reply: { calls: 4, costMicros: 5300 }, extraction: { calls: 1, costMicros: 700 } } });
  expect(s.credits).toEqual({ spent: 4, added: 95 });
  expect(s.days).toEqual([
    { date: '2026-10-01', newLeads: 2, inboundMessages: 3, outboundMessages: 4, templateSends: 1, llmCalls: 2, llmCostMicros: 4000, creditsSpent: 2, creditsAdded: 100 },
    { date: '2026-10-02', newLeads: 1, inboundMessages: 3, outboundMessages: 3, templateSends: 1, llmCalls: 1, llmCostMicros: 700, creditsSpent: 0, creditsAdded: -5 },
    { date: '2026-10-03', newLeads: 1, inboundMessages: 1, outboundMessages: 2, templateSends: 1, llmCalls: 2, llmCostMicros: 1300, creditsSpent: 2, creditsAdded: 0 },
  ]);
});

test('datetimes are exclusive at the end; a time zone moves the day bounds and buckets', async () => {
  // the same instants as the dates above
  const same = await summary(a.apiKey, `?from=${encodeURIComponent('2026-10-01T00:00:00Z')}&to=${encodeURIComponent('2026-10-04T00:00:00+00:00')}`);
  expect(same.leads.new).toBe(4);
  expect(same.range.days).toBe(3);

  // Asia/Kolkata (+05:30): [2026-09-30T18:30Z, 2026-10-03T18:30Z): L5 is in, L4 out
  const s = await summary(a.apiKey, '?from=2026-10-01&to=2026-10-03&timeZone=Asia/Kolkata');
  expect(s.range).toEqual({ from: '2026-09-30T18:30:00.000Z', to: '2026-10-03T18:30:00.000Z', timeZone: 'Asia/Kolkata', channelId: null, days: 3 });
  expect(s.leads).toEqual({ new: 4, byStage: [{ stage: 'New', leads: 3 }, { stage: 'Qualified', leads: 1 }] });
  expect(s.days.map((d: { date: string; newLeads: number }) => [d.date, d.newLeads])).toEqual([
    ['2026-10-01', 3],
    ['2026-10-02', 1],
    ['2026-10-03', 0],
  ]);
  // L5's inbound of 2026-09-30T23:10Z is now its first of the range: answered by the template at 10:00:01Z
  expect(s.replies).toEqual({ leadsWithInbound: 4, leadsAnswered: 3, replyRate: 0.75, medianFirstResponseSeconds: 120 });
});

test('channelId: only that channel’s leads; top-ups, adjustments and suppressions stay tenant-wide', async () => {
  const s = await summary(a.apiKey, `?from=2026-10-01&to=2026-10-03&channelId=${c2}`);
  expect(s.range.channelId).toBe(c2);
  expect(s.leads).toEqual({ new: 2, byStage: [{ stage: 'Lost', leads: 1 }, { stage: 'New', leads: 1 }] });
  expect(s.replies).toEqual({ leadsWithInbound: 2, leadsAnswered: 1, replyRate: 0.5, medianFirstResponseSeconds: 600 });
  expect(s.handoffs).toEqual({ activeLeads: 2, leadsHandedOff: 0, handoffRate: 0 });
  expect(s.optOuts).toEqual({ leads: 2, suppressionsAdded: { keyword: 1, api: 1 } });
  expect(s.templates).toEqual({ sends: 0, sent: 0, delivered: 0, read: 0, failed: 0, pending: 0 });
  expect(s.sequences).toEqual([
    { sequenceId: seqId, sequenceName: 'Follow-up', stepIndex: 0, attempted: 1, sent: 0, repliedAfter: 0, stopped: 0, stopReasons: {} },
    { sequenceId: seqId, sequenceName: 'Follow-up', stepIndex: 1, attempted: 0, sent: 0, repliedAfter: 0, stopped: 1, stopReasons: { opted_out: 1 } },
  ]);
  expect(s.llm).toEqual({ calls: 2, costMicros: 1700, promptTokens: 130, completionTokens: 25, byPurpose: { reply: { calls: 1, costMicros: 1000 }, extraction: { calls: 1, costMicros: 700 } } });
  expect(s.credits).toEqual({ spent: 2, added: 95 });

  // another tenant's channel: nothing of A's leads
  const none = await summary(a.apiKey, `?from=2026-10-01&to=2026-10-03&channelId=${b.channelId}`);
  expect(none.leads.new).toBe(0);
  expect(none.replies).toEqual({ leadsWithInbound: 0, leadsAnswered: 0, replyRate: null, medianFirstResponseSeconds: null });
  expect(none.handoffs.handoffRate).toBeNull();
  expect(none.llm.calls).toBe(0);
  expect(none.credits.spent).toBe(0);
});

test('another tenant sees only its own data', async () => {
  const s = await summary(b.apiKey, '?from=2026-10-01&to=2026-10-03');
  expect(s.leads).toEqual({ new: 1, byStage: [{ stage: 'New', leads: 1 }] });
  expect(s.replies).toEqual({ leadsWithInbound: 1, leadsAnswered: 1, replyRate: 1, medianFirstResponseSeconds: 10 });
  expect(s.handoffs).toEqual({ activeLeads: 1, leadsHandedOff: 1, handoffRate: 1 });
  expect(s.optOuts).toEqual({ leads: 1, suppressionsAdded: { keyword: 0, api: 1 } });
  expect(s.templates).toEqual({ sends: 1, sent: 1, delivered: 0, read: 0, failed: 0, pending: 0 });
  expect(s.sequences).toHaveLength(1);
  expect(s.sequences[0]).toMatchObject({ sequenceName: 'B seq', attempted: 1, sent: 1, repliedAfter: 0 });
  expect(s.llm.costMicros).toBe(5000);
  expect(s.credits).toEqual({ spent: 3, added: 0 });
});

test('default range: the last 30 days, today included', async () => {
  const today = new Date().toISOString().slice(0, 10);
  await stack().core.database.db.insert(leads).values({ tenantId: b.tenantId, channelAccountId: b.channelId, channel: 'whatsapp', contactId: 'today-lead', workflowId: 'lead-today', stage: 'New' });
  const s = await summary(b.apiKey, '');
  expect(s.range.days).toBe(30);
  expect(s.days).toHaveLength(30);
  expect(s.days[29]).toEqual({ date: today, ...zeroDay, newLeads: 1 });
  expect(s.range.to).toBe(new Date(Date.parse(`${today}T00:00:00Z`) + 86_400_000).toISOString());
  expect(s.leads.new).toBe(1);
});

test('bad ranges and parameters are 400 with a reason', async () => {
  const reversed = await summary(a.apiKey, '?from=2026-10-05&to=2026-10-01', 400);
  expect(reversed.error.code).toBe('validation_failed');
  expect(reversed.error.message).toMatch(/after/);
  const empty = await summary(a.apiKey, `?from=${encodeURIComponent('2026-10-01T10:00:00Z')}&to=${encodeURIComponent('2026-10-01T10:00:00Z')}`, 400);
  expect(empty.error.message).toMatch(/after/);
  const long = await summary(a.apiKey, '?from=2025-01-01&to=2026-01-02', 400);
  expect(long.error.message).toMatch(/367 days.*at most 366/);
  await summary(a.apiKey, '?from=2025-01-01&to=2025-12-31'); // 365 days
  await summary(a.apiKey, '?from=2024-01-01&to=2024-12-31'); // 366 days (a leap year)
  for (const q of ['?from=yesterday', '?to=2026-13-01', '?from=2026-10-01T10:00:00', '?timeZone=Mars/Olympus', '?channelId=nope', '?limit=5', '?from=2026-10-01&from=2026-10-02']) {
    const r = await summary(a.apiKey, q, 400);
    expect(r.error.code).toBe('validation_failed');
  }
});

test('roles: readonly and manager may read it, agent may not; no key is 401', async () => {
  const key = async (role: string) => (await stack().api.post('/v1/api-keys').set(bearer(a.apiKey)).send({ name: role, role }).expect(201)).body.key as string;
  const q = '?from=2026-10-01&to=2026-10-03';
  expect((await summary(await key('readonly'), q)).leads.new).toBe(4);
  expect((await summary(await key('manager'), q)).leads.new).toBe(4);
  const denied = await summary(await key('agent'), q, 403);
  expect(denied.error.code).toBe('forbidden');
  await stack().api.get(`/v1/analytics/summary${q}`).expect(401);
});

test('bounded work: the same fixed number of statements for a busy and an empty range', async () => {
  const svc = stack().core.services.analytics;
  const counter = countRoundTrips(stack().core.database.db);
  try {
    await svc.summary(a.tenantId, { from: '2026-10-01T00:00:00Z', to: '2026-10-04T00:00:00Z', timeZone: 'UTC' });
    const busy = { statements: counter.statements, transactions: counter.transactions };
    counter.reset();
    await svc.summary(a.tenantId, { from: '2020-01-01T00:00:00Z', to: '2020-12-31T00:00:00Z', timeZone: 'Europe/Paris', channelId: c2 });
    expect({ statements: counter.statements, transactions: counter.transactions }).toEqual(busy);
    // nine queries and SET TRANSACTION (read only, repeatable read), in one transaction
    expect(busy.transactions).toBe(1);
    expect(busy.statements).toBe(10);
  } finally {
    counter.restore();
  }
});
