/**
 * The reply turn's fast path (activities/turn/reply-turn.ts) against a real database (PGlite,
 * or PostgreSQL when DATABASE_URL is set) and the local fake Graph API and OpenAI servers,
 * and the careful step-by-step activities the workflow falls back to with the same ids.
 */
import { DEFAULT_LEAD_SETTINGS } from '../../workflows/lead/definitions';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { and, eq } from 'drizzle-orm';
import { createActivities, type ActivityDeps } from '../../activities';
import { createInstagramActivities } from '../../activities/channels/instagram';
import { WHATSAPP_MAX_TEXT_CHARS } from '../../activities/channels/text-limit';
import { createWebChatActivities } from '../../activities/channels/webchat';
import type { SendRateLimits } from '../../activities/channels/send-rate-limit';
import { createWhatsAppActivities } from '../../activities/channels/whatsapp';
import { createReplyWriter } from '../../activities/llm/reply';
import { createTurnActivities, type ReplyTurnInput, type ReplyTurnResult } from '../../activities/turn/reply-turn';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { creditLedger, creditReservations, leads, messages } from '../../db/schema';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';
import { startFakeOpenAI, toolCallReply, type FakeOpenAI } from '../../fakes/openai';
import { createSecretBox, parseEncryptionKey } from '../../lib/crypto';
import { createLogger } from '../../lib/logger';
import { createServices, type Services } from '../../services';
import type { InboundMessage } from '../../workflows/lead/definitions';
import { countQueries, countRoundTrips } from '../support/query-counter';

jest.setTimeout(60_000);

let database: Database;
let services: Services;
let graph: FakeGraphApi;
let llm: FakeOpenAI;
const logLines: string[] = [];
const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logLines.push(s) } });

beforeAll(async () => {
  [graph, llm] = await Promise.all([startFakeGraphApi(), startFakeOpenAI()]);
  database = await openDatabase({ url: process.env.DATABASE_URL, pgliteDataDir: 'memory://' });
  if (database.kind === 'pglite') await migrateDatabase(database);
  services = createServices(database.db, createSecretBox(parseEncryptionKey(randomBytes(32).toString('base64'))), { defaultCreditsPerReply: 1 });
});
afterAll(async () => {
  await database?.close();
  await Promise.all([graph?.close(), llm?.close()]);
});
afterEach(() => {
  graph.reset();
  llm.reset();
});

function activityDeps(over: { graphTimeoutMs?: number; limits?: ActivityDeps['limits'] } = {}): ActivityDeps {
  return {
    ...services,
    log,
    leadSettings: DEFAULT_LEAD_SETTINGS,
    graph: { url: graph.url, version: 'v23.0', timeoutMs: over.graphTimeoutMs ?? 5000 },
    llm: { baseURL: llm.url, apiKey: 'sk-test-openai-key', timeoutMs: 5000 },
    ...(over.limits ? { limits: over.limits } : {}),
  };
}

/** What the worker registers (the union from activities/index.ts). */
function activities(over: Parameters<typeof activityDeps>[0] = {}) {
  return createActivities(activityDeps(over));
}

interface Fixture {
  tenantId: string;
  channelId: string;
  leadId: string;
  contactId: string;
  channel: 'whatsapp' | 'instagram' | 'webchat';
  accessToken: string;
}

async function fixture(opts: { credits?: number; platform?: Fixture['channel'] } = {}): Promise<Fixture> {
  const platform = opts.platform ?? 'whatsapp';
  const tenant = await services.tenants.create({ name: 'Acme Sales', creditsPerReply: 1 });
  if (opts.credits) await services.credits.topUp({ tenantId: tenant.id, amount: opts.credits, reference: `initial-${tenant.id}` });
  const agent = await services.agents.create(tenant.id, { name: 'Sales bot', systemPrompt: 'You are a helpful sales assistant.', model: 'gpt-4o-mini' });
  const accessToken = `EAAG${randomBytes(16).toString('hex')}`;
  const channel = await services.channels.create(
    tenant.id,
    platform !== 'webchat' ? { platform, phoneNumberId: String(randomInt(100_000_000_000, 999_999_999_999)), accessToken, verifyToken: `verify-${randomBytes(6).toString('hex')}`, agentId: agent.id } : { platform, agentId: agent.id },
  );
  const contactId =
    platform === 'whatsapp' ? `91${randomInt(1_000_000_000, 9_999_999_999)}` : platform === 'instagram' ? String(randomInt(1_000_000_000_000, 9_999_999_999_999)) : `wv_${randomBytes(8).toString('hex')}`;
  const { leadId } = await services.leads.ensure({ tenantId: tenant.id, channelAccountId: channel.id, channel: platform, contactId, workflowId: `lead-${randomUUID()}` });
  return { tenantId: tenant.id, channelId: channel.id, leadId, contactId, channel: platform, accessToken };
}

function inbound(f: Fixture, text = 'Hi, how much is the CRM for 20 people?', type: InboundMessage['type'] = 'text'): InboundMessage {
  return { providerMessageId: `wamid.X${randomBytes(8).toString('hex')}`, channel: f.channel, contactId: f.contactId, sentAt: new Date().toISOString(), type, text };
}

/** A turn input as the workflow builds it: fresh batch, outbound and reference ids. */
function turn(f: Fixture, msgs: InboundMessage[], reply: Partial<NonNullable<ReplyTurnInput['reply']>> = {}): ReplyTurnInput {
  const outboundMessageId = randomUUID();
  return {
    tenantId: f.tenantId,
    leadId: f.leadId,
    channelAccountId: f.channelId,
    channel: f.channel,
    contactId: f.contactId,
    messages: msgs,
    batchId: randomUUID(),
    reply: {
      requireNewOf: msgs.filter((m) => m.type !== 'system').map((m) => m.providerMessageId),
      outboundMessageId,
      reference: `reply:${outboundMessageId}`,
      llm: { purpose: 'reply', allowHandoff: true },
      ...(f.channel === 'whatsapp' && msgs.length ? { readReceipt: { providerMessageId: msgs[msgs.length - 1]!.providerMessageId } } : {}),
      ...reply,
    },
  };
}

async function credit(f: Fixture, reference?: string) {
  const { balance, reserved } = await services.credits.balance(f.tenantId);
  const debits = await database.db.select().from(creditLedger).where(and(eq(creditLedger.tenantId, f.tenantId), eq(creditLedger.kind, 'debit')));
  const [reservation] = reference ? await database.db.select().from(creditReservations).where(eq(creditReservations.reference, reference)) : [];
  return { balance, reserved, debits: debits.length, reservation: reservation?.status };
}

async function outboundRow(id: string) {
  const [row] = await database.db.select().from(messages).where(eq(messages.id, id));
  return row;
}

const sends = () => graph.sentMessages();
const readReceipts = () => graph.requests.filter((r) => (r.body as { status?: string }).status === 'read');
const sentText = (i = 0) => (sends()[i]!.body as { text: { body: string } }).text.body;

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected the turn to fail');
}

/** What Temporal tells an activity attempt scheduled just now with this start-to-close timeout. */
function activityInfo(over: { startToCloseTimeoutMs?: number; workflowExecution?: { workflowId: string; runId: string } } = {}) {
  const at = Date.now();
  const timeout = over.startToCloseTimeoutMs ?? 180_000;
  return {
    scheduledTimestampMs: at,
    currentAttemptScheduledTimestampMs: at,
    startToCloseTimeoutMs: timeout,
    scheduleToCloseTimeoutMs: timeout,
    ...(over.workflowExecution ? { workflowExecution: over.workflowExecution } : {}),
  };
}

function sentReply(r: ReplyTurnResult) {
  if (r.reply?.outcome !== 'sent') throw new Error(`expected sent, got ${JSON.stringify(r.reply)}`);
  return r.reply;
}

function heldReply(r: ReplyTurnResult) {
  if (r.reply?.outcome !== 'held') throw new Error(`expected held, got ${JSON.stringify(r.reply)}`);
  return r.reply;
}

describe('replyTurn', () => {
  test('sent: records the message, reads and types, sends once, captures one credit; the reservation names the calling workflow', async () => {
    const f = await fixture({ credits: 5 });
    llm.script(['Twenty seats cost 5 lakh a year. Shall I send a quote?']);
    const msg = inbound(f);
    const input = turn(f, [msg]);
    const env = new MockActivityEnvironment(activityInfo({ workflowExecution: { workflowId: 'lead-wf-1', runId: randomUUID() } }));
    const out = (await env.run(activities().replyTurn, input)) as ReplyTurnResult;

    expect(out).toEqual({
      newIds: [msg.providerMessageId],
      stored: 1,
      reply: { outcome: 'sent', text: 'Twenty seats cost 5 lakh a year. Shall I send a quote?', outboundMessageId: input.reply!.outboundMessageId, providerMessageId: expect.stringMatching(/^wamid\./) },
    });
    expect(sends()).toHaveLength(1);
    expect(sentText()).toBe('Twenty seats cost 5 lakh a year. Shall I send a quote?');
    expect(sends()[0]!.to).toBe(f.contactId);
    expect(readReceipts()).toHaveLength(1);
    expect(readReceipts()[0]!.body).toMatchObject({ message_id: msg.providerMessageId, typing_indicator: { type: 'text' } });
    // the LLM saw the message recorded in the same turn
    expect(JSON.stringify(llm.requests[0]!.messages)).toContain('how much is the CRM');

    const row = await outboundRow(input.reply!.outboundMessageId);
    expect(row).toMatchObject({ direction: 'outbound', status: 'sent', body: 'Twenty seats cost 5 lakh a year. Shall I send a quote?', providerMessageId: sentReply(out).providerMessageId });
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 4, reserved: 0, debits: 1, reservation: 'captured' });
    const [reservation] = await database.db.select().from(creditReservations).where(eq(creditReservations.reference, input.reply!.reference));
    expect(reservation!.workflowId).toBe('lead-wf-1');
    // no token in any log line
    expect(logLines.join('')).not.toContain(f.accessToken);
  });

  test('only record (no reply): newIds and stored, nothing reserved, no LLM call', async () => {
    const f = await fixture({ credits: 5 });
    const msgs = [inbound(f), inbound(f, 'second')];
    const out = await activities().replyTurn({ ...turn(f, msgs), reply: undefined });
    expect(out).toEqual({ newIds: msgs.map((m) => m.providerMessageId), stored: 2 });
    expect(llm.requests).toHaveLength(0);
    expect(await credit(f)).toMatchObject({ balance: 5, reserved: 0 });
  });

  test('not_needed: a redelivery recorded by another batch, or only system messages: nothing reserved, nothing sent', async () => {
    const f = await fixture({ credits: 5 });
    const msg = inbound(f);
    await services.leads.recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: [msg], batchId: randomUUID() });
    const dup = await activities().replyTurn(turn(f, [msg]));
    expect(dup).toEqual({ newIds: [], stored: 0, reply: { outcome: 'not_needed' } });

    const notice = inbound(f, 'The user changed their number', 'system');
    const system = await activities().replyTurn(turn(f, [notice]));
    expect(system).toEqual({ newIds: [notice.providerMessageId], stored: 1, reply: { outcome: 'not_needed' } });

    expect(llm.requests).toHaveLength(0);
    expect(graph.requests).toHaveLength(0);
    expect(await credit(f)).toEqual({ balance: 5, reserved: 0, debits: 0, reservation: undefined });
  });

  test('no_credit: the shape reserveCredit gives, no LLM call, nothing sent', async () => {
    const f = await fixture({ credits: 0 });
    const input = turn(f, [inbound(f)]);
    const out = await activities().replyTurn(input);
    expect(out.reply).toEqual({ outcome: 'no_credit', balance: 0, amount: 1 });
    expect(out.stored).toBe(1);
    expect(llm.requests).toHaveLength(0);
    expect(graph.requests).toHaveLength(0);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 0, reserved: 0, debits: 0, reservation: undefined });
  });

  test('handoff: the model asks for a human, nothing sent, the credit still held for the workflow to release', async () => {
    const f = await fixture({ credits: 3 });
    llm.script([toolCallReply('handoff_to_human', { reason: 'wants to talk to a person' })]);
    const input = turn(f, [inbound(f, 'Can I talk to a human please')]);
    const out = await activities().replyTurn(input);
    // the call is handed to the workflow for the lead's events (tool_called)
    expect(out.reply).toEqual({ outcome: 'handoff', reason: 'wants to talk to a person', tools: { calls: [{ name: 'handoff_to_human', outcome: 'ok', args: {} }] } });
    expect(sends()).toHaveLength(0);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });
  });

  test('held (window closed): written, not sent, credit reserved; the careful deliver sends it once and captures once', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Here is our price list.']);
    const input = turn(f, [inbound(f)], { windowClosesAt: new Date(Date.now() - 1000).toISOString() });
    const acts = activities();
    const out = await acts.replyTurn(input);
    expect(heldReply(out)).toEqual({ outcome: 'held', text: 'Here is our price list.', failure: { type: 'window_closed', message: expect.stringContaining('window closed') } });
    expect(sends()).toHaveLength(0);
    expect(await outboundRow(input.reply!.outboundMessageId)).toBeUndefined();
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });

    // the workflow's careful deliver (here: a template would be its choice; a free-form send shows the ids hold)
    const base = { tenantId: f.tenantId, leadId: f.leadId, channelAccountId: f.channelId, outboundMessageId: input.reply!.outboundMessageId, to: f.contactId };
    await acts.sendWhatsAppText({ ...base, text: heldReply(out).text });
    await acts.captureCredit({ reference: input.reply!.reference, messageId: input.reply!.outboundMessageId });
    expect(sends()).toHaveLength(1);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 0, debits: 1, reservation: 'captured' });
  });

  test('held (deadline): too little of the activity\'s time left to send, so a timed-out turn never sends beside the careful deliver', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Written in time, sent later.']);
    const input = turn(f, [inbound(f)]);
    // the Graph timeout is 5 s and 5 s more are kept: 8 s of start-to-close are not enough
    const out = (await new MockActivityEnvironment(activityInfo({ startToCloseTimeoutMs: 8_000 })).run(activities().replyTurn, input)) as ReplyTurnResult;
    expect(heldReply(out)).toEqual({ outcome: 'held', text: 'Written in time, sent later.', failure: { type: 'turn_deadline', message: expect.stringContaining('deadline') } });
    expect(sends()).toHaveLength(0);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });

    // with room (15 s), the same kind of turn sends
    const ok = (await new MockActivityEnvironment(activityInfo({ startToCloseTimeoutMs: 15_000 })).run(activities().replyTurn, turn(f, [inbound(f)]))) as ReplyTurnResult;
    expect(ok.reply?.outcome).toBe('sent');
  });

  test('held (deadline): the time the send may sleep for its rate-limit slot counts too', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Written in time, sent later.']);
    // Graph timeout 5 s + margin 5 s + up to 5 s asleep for the send slot: 12 s are not enough
    const limited = createActivities({ ...activityDeps(), rateLimiter: services.rateLimiter, sendRates: { messagesPerSecond: 80, pairIntervalMs: 6000, pairBurst: 1, maxSleepMs: 5000 } });
    const input = turn(f, [inbound(f)]);
    const out = (await new MockActivityEnvironment(activityInfo({ startToCloseTimeoutMs: 12_000 })).run(limited.replyTurn, input)) as ReplyTurnResult;
    expect(heldReply(out)).toEqual({ outcome: 'held', text: 'Written in time, sent later.', failure: { type: 'turn_deadline', message: expect.stringContaining('deadline') } });
    expect(sends()).toHaveLength(0);

    // with room (20 s), the same kind of turn sends
    const ok = (await new MockActivityEnvironment(activityInfo({ startToCloseTimeoutMs: 20_000 })).run(limited.replyTurn, turn(f, [inbound(f)]))) as ReplyTurnResult;
    expect(ok.reply?.outcome).toBe('sent');
  });

  test('pacing: waits until notBefore, then sends', async () => {
    const f = await fixture({ credits: 3 });
    const started = Date.now();
    const out = await activities().replyTurn(turn(f, [inbound(f)], { notBefore: new Date(Date.now() + 400).toISOString() }));
    expect(out.reply?.outcome).toBe('sent');
    expect(Date.parse(sends()[0]!.at)).toBeGreaterThanOrEqual(started + 350);
  });

  test.each([
    ['a 500', { code: 1, httpStatus: 500 }, 'provider_transient'],
    ['131047 (re-engagement)', { code: 131047 }, 'provider_reengagement'],
    ['an invalid token (190)', { code: 190 }, 'provider_auth'],
    ['a rate limit (130429)', { code: 130429 }, 'provider_rate_limited'],
  ])('held after %s on the first send attempt: its failure type, credit still reserved', async (_name, rule, type) => {
    const f = await fixture({ credits: 3 });
    llm.script(['Our price is 5 lakh.']);
    graph.failNext(rule);
    const input = turn(f, [inbound(f)]);
    const out = await activities().replyTurn(input);
    expect(heldReply(out)).toEqual({ outcome: 'held', text: 'Our price is 5 lakh.', failure: { type, message: expect.stringContaining(String(rule.code)) } });
    expect(sends()).toHaveLength(0);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });
    expect(await outboundRow(input.reply!.outboundMessageId)).toMatchObject({ status: 'pending', providerMessageId: null });
    expect(logLines.join('')).not.toContain(f.accessToken);
  });

  test('retry safety: the same turn twice sends once, charges once, asks the LLM once and answers the same', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['First and only answer.', 'A different second answer.']);
    const msg = inbound(f);
    const input = turn(f, [msg]);
    const acts = activities();
    const first = await acts.replyTurn(input);
    const second = await acts.replyTurn(input);
    expect(second).toEqual(first);
    expect(sentReply(second).text).toBe('First and only answer.');
    expect(second.newIds).toEqual([msg.providerMessageId]);
    expect(llm.requests).toHaveLength(1);
    expect(sends()).toHaveLength(1);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 0, debits: 1, reservation: 'captured' });
  });

  test('throws after the send (capture fails): the careful activities with the same ids send nothing more and charge once', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Sent by the fast path.', 'Written again by the careful path.']);
    const deps = activityDeps();
    const careful = createActivities(deps);
    const channelDeps = { ...deps, graphApiUrl: deps.graph.url, graphApiVersion: deps.graph.version, timeoutMs: deps.graph.timeoutMs };
    const whatsApp = createWhatsAppActivities(channelDeps);
    const { replyTurn } = createTurnActivities({
      leads: services.leads,
      credits: { ...services.credits, capture: () => Promise.reject(new Error('connection terminated')) },
      transaction: services.transaction,
      writeReply: createReplyWriter({ ...deps, ...deps.llm }),
      send: { whatsapp: whatsApp.sendWhatsAppText, instagram: createInstagramActivities(channelDeps).sendInstagramText, webchat: createWebChatActivities(deps).sendWebChatText },
      markWhatsAppRead: whatsApp.markWhatsAppRead,
      log,
    });
    const msg = inbound(f);
    const input = turn(f, [msg]);
    await expect(replyTurn(input)).rejects.toThrow('connection terminated');
    expect(sends()).toHaveLength(1);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });

    // the workflow's step-by-step pipeline, same batchId, reference and outboundMessageId
    const recorded = await careful.recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: [msg], batchId: input.batchId });
    expect(recorded.newIds).toEqual([msg.providerMessageId]);
    const reservation = await careful.reserveCredit({ tenantId: f.tenantId, reference: input.reply!.reference });
    expect(reservation).toMatchObject({ ok: true, amount: 1, balance: 2 });
    const reply = await careful.generateReply({ tenantId: f.tenantId, leadId: f.leadId, channelAccountId: f.channelId, purpose: 'reply', allowHandoff: true });
    const base = { tenantId: f.tenantId, leadId: f.leadId, channelAccountId: f.channelId, outboundMessageId: input.reply!.outboundMessageId, to: f.contactId };
    const sent = await careful.sendWhatsAppText({ ...base, text: reply.text });
    expect(sent.alreadySent).toBe(true);
    await careful.captureCredit({ reference: input.reply!.reference, messageId: input.reply!.outboundMessageId });
    expect(sends()).toHaveLength(1);
    expect(sentText()).toBe('Sent by the fast path.');
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 0, debits: 1, reservation: 'captured' });
    // the transcript keeps what went out
    expect((await outboundRow(input.reply!.outboundMessageId))!.body).toBe('Sent by the fast path.');
  });

  test('throws when the reservation fails: the recording is rolled back with it, and the careful recordInbound of the batch answers the same newIds', async () => {
    const f = await fixture({ credits: 3 });
    const deps = activityDeps();
    const channelDeps = { ...deps, graphApiUrl: deps.graph.url, graphApiVersion: deps.graph.version, timeoutMs: deps.graph.timeoutMs };
    const whatsApp = createWhatsAppActivities(channelDeps);
    const { replyTurn } = createTurnActivities({
      leads: services.leads,
      credits: { ...services.credits, reserve: () => Promise.reject(new Error('lock timeout')) },
      transaction: services.transaction,
      writeReply: createReplyWriter({ ...deps, ...deps.llm }),
      send: { whatsapp: whatsApp.sendWhatsAppText, instagram: createInstagramActivities(channelDeps).sendInstagramText, webchat: createWebChatActivities(deps).sendWebChatText },
      markWhatsAppRead: whatsApp.markWhatsAppRead,
      log,
    });
    const msgs = [inbound(f), inbound(f, 'and a second line')];
    const input = turn(f, msgs);
    await expect(replyTurn(input)).rejects.toThrow('lock timeout');
    expect(await database.db.select().from(messages).where(eq(messages.leadId, f.leadId))).toHaveLength(0);

    const recorded = await createActivities(deps).recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: msgs, batchId: input.batchId });
    expect(recorded.newIds.sort()).toEqual(msgs.map((m) => m.providerMessageId).sort());
    expect(await credit(f)).toEqual({ balance: 3, reserved: 0, debits: 0, reservation: undefined });
    expect(llm.requests).toHaveLength(0);
  });

  test('throws on an LLM config error, the credit stays held once: the careful reserve takes nothing more, its release gives it back', async () => {
    const f = await fixture({ credits: 3 });
    llm.failNext({ status: 401, code: 'invalid_api_key', times: 1 });
    const acts = activities();
    const input = turn(f, [inbound(f)]);
    const failure = await failureOf(acts.replyTurn(input));
    expect(failure.type).toBe('llm_config');
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });
    expect(sends()).toHaveLength(0);
    expect(readReceipts()).toHaveLength(1); // best effort, in parallel with the LLM

    expect(await acts.reserveCredit({ tenantId: f.tenantId, reference: input.reply!.reference })).toMatchObject({ ok: true, balance: 2 });
    await acts.releaseCredit({ reference: input.reply!.reference });
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 3, reserved: 0, debits: 0, reservation: 'released' });
  });

  test('throws on an empty model reply (llm_transient) and over the LLM budget (llm_budget_exceeded, no LLM call)', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['   ']);
    expect((await failureOf(activities().replyTurn(turn(f, [inbound(f)])))).type).toBe('llm_transient');

    llm.reset();
    const overBudget = activities({ limits: { llmBudget: async () => ({ exceeded: true, spentMicros: 10, budgetMicros: 5, remainingMicros: 0, day: '2026-11-29' }) } });
    expect((await failureOf(overBudget.replyTurn(turn(f, [inbound(f)])))).type).toBe('llm_budget_exceeded');
    expect(llm.requests).toHaveLength(0);
    expect(sends()).toHaveLength(0);
  });

  test('a failing read receipt never fails the turn', async () => {
    const f = await fixture({ credits: 3 });
    graph.failNext({ code: 1, httpStatus: 500, kind: 'read' });
    const out = await activities().replyTurn(turn(f, [inbound(f)]));
    expect(out.reply?.outcome).toBe('sent');
    expect(logLines.some((l) => l.includes('read receipt failed'))).toBe(true);
  });

  test('a reply over the WhatsApp limit: sent.text is the shortened text that went out and was recorded', async () => {
    const f = await fixture({ credits: 3 });
    const long = `${'This sentence is about the CRM. '.repeat(200)}End`;
    llm.script([long]);
    const input = turn(f, [inbound(f)]);
    const out = sentReply(await activities().replyTurn(input));
    expect(out.text.length).toBeLessThanOrEqual(WHATSAPP_MAX_TEXT_CHARS);
    expect(out.text.length).toBeLessThan(long.length);
    expect(sentText()).toBe(out.text);
    expect((await outboundRow(input.reply!.outboundMessageId))!.body).toBe(out.text);
  });

  test('held after a timeout (the send may have reached Meta): the careful send waits for the status webhook and never sends twice', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Maybe sent.']);
    graph.setDelay(800);
    const input = turn(f, [inbound(f)], { readReceipt: undefined });
    const acts = activities({ graphTimeoutMs: 300 });
    const out = await acts.replyTurn(input);
    expect(heldReply(out).failure.type).toBe('provider_transient');
    await new Promise((r) => setTimeout(r, 700));
    graph.setDelay(0);
    expect(sends()).toHaveLength(1); // it did reach "Meta"

    const base = { tenantId: f.tenantId, leadId: f.leadId, channelAccountId: f.channelId, outboundMessageId: input.reply!.outboundMessageId, to: f.contactId };
    const careful = await failureOf(acts.sendWhatsAppText({ ...base, text: heldReply(out).text }));
    expect(careful.type).toBe('provider_unconfirmed');
    expect(sends()).toHaveLength(1);

    // Meta's status webhook carries our id (biz_opaque_callback_data): the careful retry then finds it sent
    const providerMessageId = (sends()[0]!.response.body as { messages: { id: string }[] }).messages[0]!.id;
    await services.leads.applyStatus({ tenantId: f.tenantId, channelAccountId: f.channelId, providerMessageId, status: 'sent', outboundMessageId: input.reply!.outboundMessageId });
    const again = await acts.sendWhatsAppText({ ...base, text: heldReply(out).text });
    expect(again).toEqual({ outboundMessageId: input.reply!.outboundMessageId, providerMessageId, alreadySent: true });
    await acts.captureCredit({ reference: input.reply!.reference, messageId: input.reply!.outboundMessageId });
    expect(sends()).toHaveLength(1);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 0, debits: 1, reservation: 'captured' });
  });

  test('web chat: recording the reply as sent is the delivery', async () => {
    const f = await fixture({ credits: 2, platform: 'webchat' });
    llm.script(['Hello from the web chat.']);
    const input = turn(f, [inbound(f)]);
    const out = sentReply(await activities().replyTurn(input));
    expect(out).toEqual({ outcome: 'sent', text: 'Hello from the web chat.', outboundMessageId: input.reply!.outboundMessageId, providerMessageId: `webchat:${input.reply!.outboundMessageId}` });
    expect(graph.requests).toHaveLength(0);
    expect(await outboundRow(input.reply!.outboundMessageId)).toMatchObject({ status: 'sent', body: 'Hello from the web chat.' });
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 1, reserved: 0, debits: 1, reservation: 'captured' });
  });

  test('instagram: sent through sendInstagramText, the text fitted to 1000 bytes as it went out, no read receipt', async () => {
    const f = await fixture({ credits: 2, platform: 'instagram' });
    llm.script(['Ünïcödé words about pricing. '.repeat(60)]);
    const input = turn(f, [inbound(f)], { readReceipt: { providerMessageId: 'mid.ignored' } });
    const out = sentReply(await activities().replyTurn(input));
    expect(Buffer.byteLength(out.text, 'utf8')).toBeLessThanOrEqual(1000);
    expect(graph.instagramSends()).toHaveLength(1);
    expect((graph.instagramSends()[0]!.body as { message: { text: string } }).message.text).toBe(out.text);
    expect(readReceipts()).toHaveLength(0);
    expect((await outboundRow(input.reply!.outboundMessageId))!.body).toBe(out.text);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 1, reserved: 0, debits: 1, reservation: 'captured' });
  });

  test('cancelled while the LLM writes (its heartbeat timed out): the LLM call is aborted at once and nothing is sent', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Too late to matter.']);
    llm.setDelay(3000);
    const input = turn(f, [inbound(f)], { readReceipt: undefined });
    const env = new MockActivityEnvironment(activityInfo());
    const started = Date.now();
    const running = env.run(activities().replyTurn, input);
    setTimeout(() => env.cancel('TIMED_OUT'), 300);
    const failure = await failureOf(running);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(failure.message).toMatch(/cancel/);
    expect(sends()).toHaveLength(0);
    expect(await outboundRow(input.reply!.outboundMessageId)).toBeUndefined();
    // the careful pipeline finds the credit held under the same reference
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });
  });

  test("the careful path's generateReply, cancelled while the LLM writes, aborts the call at once and tries no fallback model", async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Too late to matter.', 'Nor this.']);
    llm.setDelay(3000);
    const env = new MockActivityEnvironment(activityInfo());
    const started = Date.now();
    const running = env.run(activities().generateReply, { tenantId: f.tenantId, leadId: f.leadId, channelAccountId: f.channelId, purpose: 'reply' as const, allowHandoff: true });
    setTimeout(() => env.cancel('TIMED_OUT'), 300);
    const failure = await failureOf(running);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(failure.type).toBe('llm_transient');
    expect(failure.message).toMatch(/cancel/);
    // one request, aborted: the fallback model was not tried
    expect(llm.requests.length).toBeLessThanOrEqual(1);
  });

  test('an input that is not a turn is refused, non-retryable, before anything is written', async () => {
    const f = await fixture({ credits: 2 });
    const failure = await failureOf(activities().replyTurn({ ...turn(f, [inbound(f)]), batchId: '' }));
    expect(failure.type).toBe('invalid_input');
    expect(failure.nonRetryable).toBe(true);
    expect(await credit(f)).toMatchObject({ balance: 2, reserved: 0 });
  });
});

/**
 * The WhatsApp senders with a rate limiter whose one sleep (the wait for the send slot, just
 * before the provider call) runs `meanwhile` first: another attempt of the same send (the
 * careful deliver beside a turn whose heartbeat timed out) gets in between deterministically.
 */
function sendersWithAConcurrentAttempt(meanwhile: () => Promise<unknown>, unconfirmedWaitMs = 120_000) {
  let hook: (() => Promise<unknown>) | undefined = meanwhile;
  const rateLimits: SendRateLimits = {
    limiter: { take: async () => ({ ok: true, waitMs: 1, remaining: 0 }), release: async () => undefined },
    messagesPerSecond: 80,
    pairIntervalMs: 0,
    pairBurst: 1,
    maxSleepMs: 2000,
    sleep: async () => {
      const h = hook;
      hook = undefined;
      await h?.();
    },
  };
  const deps = activityDeps();
  return createWhatsAppActivities({ ...deps, graphApiUrl: deps.graph.url, graphApiVersion: deps.graph.version, timeoutMs: deps.graph.timeoutMs, unconfirmedWaitMs, rateLimits });
}

describe('one provider call at a time per outbound id (the send claim)', () => {
  const base = (f: Fixture, outboundMessageId: string) => ({ tenantId: f.tenantId, leadId: f.leadId, channelAccountId: f.channelId, outboundMessageId, to: f.contactId });

  test('markSendAttempt claims: once while an attempt is fresh, again once it is older than the unconfirmed wait, never once sent', async () => {
    const f = await fixture();
    const id = randomUUID();
    await services.leads.createOutbound({ id, tenantId: f.tenantId, leadId: f.leadId, body: 'Hello' });
    const first = await services.leads.markSendAttempt(id, { staleAfterMs: 120_000 });
    expect(first).toMatchObject({ claimed: true, attemptAt: expect.any(String) });
    const second = await services.leads.markSendAttempt(id, { staleAfterMs: 120_000 });
    expect(second).toMatchObject({ claimed: false, providerMessageId: null, status: 'pending' });
    expect(second.claimed === false && second.attemptAgeMs).toBeGreaterThanOrEqual(0);
    expect(second.claimed === false && second.attemptAgeMs).toBeLessThan(60_000);
    // older than the wait allows: a retry may send again (the README's one exception)
    await new Promise((r) => setTimeout(r, 30));
    const stale = await services.leads.markSendAttempt(id, { staleAfterMs: 10 });
    expect(stale.claimed).toBe(true);
    // a provider error clears only its own attempt's mark
    if (!first.claimed || !stale.claimed) throw new Error('unreachable');
    await services.leads.clearSendAttempt(id, first.attemptAt);
    expect((await services.leads.markSendAttempt(id, { staleAfterMs: 120_000 })).claimed).toBe(false);
    await services.leads.clearSendAttempt(id, stale.attemptAt);
    expect((await services.leads.markSendAttempt(id, { staleAfterMs: 120_000 })).claimed).toBe(true);

    await services.leads.markOutboundSent({ id, leadId: f.leadId, providerMessageId: `wamid.${randomUUID()}` });
    expect(await services.leads.markSendAttempt(id, { staleAfterMs: 0 })).toMatchObject({ claimed: false, providerMessageId: expect.stringMatching(/^wamid\./), status: 'sent' });
  });

  test('an attempt that passed its checks while another one claimed and is still calling Meta does not call Meta: provider_unconfirmed', async () => {
    const f = await fixture();
    const id = randomUUID();
    const senders = sendersWithAConcurrentAttempt(() => services.leads.markSendAttempt(id, { staleAfterMs: 120_000 }));
    const failure = await failureOf(senders.sendWhatsAppText({ ...base(f, id), text: 'Only once, please.' }));
    expect(failure.type).toBe('provider_unconfirmed');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBeDefined();
    expect(sends()).toHaveLength(0);
  });

  test('with SEND_UNCONFIRMED_WAIT_MS=0 an attempt still calls Meta alone while another one is in flight (a claim younger than the send timeout holds)', async () => {
    const f = await fixture();
    const id = randomUUID();
    const senders = sendersWithAConcurrentAttempt(() => services.leads.markSendAttempt(id, { staleAfterMs: 120_000 }), 0);
    const failure = await failureOf(senders.sendWhatsAppText({ ...base(f, id), text: 'Only once, please.' }));
    expect(failure.type).toBe('provider_unconfirmed');
    expect(sends()).toHaveLength(0);
  });

  test('an attempt that passed its checks while another one sent does not send again: it answers alreadySent', async () => {
    const f = await fixture();
    const id = randomUUID();
    const other = activities();
    let otherSent: unknown;
    const senders = sendersWithAConcurrentAttempt(async () => {
      otherSent = await other.sendWhatsAppText({ ...base(f, id), text: 'Only once, please.' });
    });
    const mine = await senders.sendWhatsAppText({ ...base(f, id), text: 'Only once, please.' });
    expect(otherSent).toMatchObject({ alreadySent: false });
    expect(mine).toMatchObject({ outboundMessageId: id, alreadySent: true, providerMessageId: (otherSent as { providerMessageId: string }).providerMessageId });
    expect(sends()).toHaveLength(1);
  });

  test('an attempt cancelled while it waited for its send slot (a heartbeat timeout) does not call Meta, and leaves no mark a retry would wait for', async () => {
    const f = await fixture();
    const id = randomUUID();
    const env = new MockActivityEnvironment(activityInfo());
    const senders = sendersWithAConcurrentAttempt(async () => env.cancel('TIMED_OUT'));
    const failure = await failureOf(env.run(senders.sendWhatsAppText, { ...base(f, id), text: 'Not now.' }));
    expect(failure.type).toBe('provider_transient');
    expect(failure.nonRetryable).toBe(false);
    expect(sends()).toHaveLength(0);
    expect((await outboundRow(id))!.details).toBeNull();
  });

  test('the reply turn does not send when the careful deliver claimed the send meanwhile: held, provider_unconfirmed, the credit still held', async () => {
    const f = await fixture({ credits: 3 });
    llm.script(['Sent by whoever claims it.']);
    const input = turn(f, [inbound(f)], { readReceipt: undefined });
    const id = input.reply!.outboundMessageId;
    const senders = sendersWithAConcurrentAttempt(() => services.leads.markSendAttempt(id, { staleAfterMs: 120_000 }));
    const deps = activityDeps();
    const { replyTurn } = createTurnActivities({
      leads: services.leads,
      credits: services.credits,
      transaction: services.transaction,
      writeReply: createReplyWriter({ ...deps, ...deps.llm }),
      send: { whatsapp: senders.sendWhatsAppText, instagram: () => Promise.reject(new Error('not here')), webchat: () => Promise.reject(new Error('not here')) },
      markWhatsAppRead: senders.markWhatsAppRead,
      log,
    });
    const out = await replyTurn(input);
    expect(heldReply(out)).toEqual({ outcome: 'held', text: 'Sent by whoever claims it.', failure: { type: 'provider_unconfirmed', message: expect.any(String) } });
    expect(sends()).toHaveLength(0);
    expect(await credit(f, input.reply!.reference)).toEqual({ balance: 2, reserved: 1, debits: 0, reservation: 'held' });
  });
});

describe('database round trips of one ordinary WhatsApp turn', () => {
  test('the fast path records and reserves in one transaction: fewer round trips than the step-by-step activities', async () => {
    const acts = activities();
    const fast = await fixture({ credits: 3 });
    const careful = await fixture({ credits: 3 });
    const counter = countRoundTrips(database.db);
    try {
      counter.reset();
      expect((await acts.replyTurn(turn(fast, [inbound(fast)]))).reply?.outcome).toBe('sent');
      const fastPath = { statements: counter.statements, transactions: counter.transactions, roundTrips: counter.roundTrips };

      // today's pipeline for the same turn: recordInbound, markWhatsAppRead, reserveCredit, generateReply, sendWhatsAppText, captureCredit
      const input = turn(careful, [inbound(careful)]);
      const reply = input.reply!;
      counter.reset();
      await acts.recordInbound({ tenantId: careful.tenantId, leadId: careful.leadId, messages: input.messages, batchId: input.batchId });
      await acts.markWhatsAppRead({ channelAccountId: careful.channelId, providerMessageId: reply.readReceipt!.providerMessageId, typing: true });
      await acts.reserveCredit({ tenantId: careful.tenantId, reference: reply.reference });
      const written = await acts.generateReply({ tenantId: careful.tenantId, leadId: careful.leadId, channelAccountId: careful.channelId, purpose: 'reply', allowHandoff: true });
      await acts.sendWhatsAppText({ tenantId: careful.tenantId, leadId: careful.leadId, channelAccountId: careful.channelId, outboundMessageId: reply.outboundMessageId, to: careful.contactId, text: written.text });
      await acts.captureCredit({ reference: reply.reference, messageId: reply.outboundMessageId });
      const stepByStep = { statements: counter.statements, transactions: counter.transactions, roundTrips: counter.roundTrips };

      console.log(`database work of one WhatsApp reply turn: fast path ${JSON.stringify(fastPath)}, step by step ${JSON.stringify(stepByStep)}`);
      // record + reserve share one transaction: one BEGIN/COMMIT fewer, the same statements
      expect(fastPath.transactions).toBe(stepByStep.transactions - 1);
      expect(fastPath.roundTrips).toBeLessThan(stepByStep.roundTrips);
      // 28 before the send, capture, LLM budget and agent reads became one statement each (20), then the debit and hold of a reservation, and the outbound row's insert and read (18), then the transcript and the lead's summary (17)
      expect(fastPath.roundTrips).toBeLessThanOrEqual(17);
    } finally {
      counter.restore();
    }
  });
});

describe('the services the turn relies on', () => {
  test('transcriptAndSummary: the same messages as transcript (oldest first, the last `limit`) and the lead\'s summary, in one statement', async () => {
    const f = await fixture();
    const empty = await services.leads.transcriptAndSummary(f.leadId, 5);
    expect(empty).toEqual({ transcript: [], summary: null });
    await services.leads.recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: [inbound(f, 'one'), inbound(f, 'two'), inbound(f, 'three')], batchId: randomUUID() });
    await database.db.update(leads).set({ summary: 'wants a quote' }).where(eq(leads.id, f.leadId));
    const counter = countQueries(database.db);
    try {
      const both = await services.leads.transcriptAndSummary(f.leadId, 2);
      expect(counter.count).toBe(1);
      expect(both.summary).toBe('wants a quote');
      expect(both.transcript).toEqual(await services.leads.transcript(f.leadId, 2));
      expect(both.transcript.map((m) => m.body)).toEqual(['two', 'three']);
    } finally {
      counter.restore();
    }
    expect(await services.leads.transcriptAndSummary(randomUUID(), 2)).toEqual({ transcript: [], summary: null });
  });

  test('recordInbound is idempotent per batchId: the same batch answers the same newIds, another batch none', async () => {
    const f = await fixture();
    const msgs = [inbound(f), inbound(f, 'two')];
    const batchId = randomUUID();
    const first = await services.leads.recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: msgs, batchId });
    const again = await services.leads.recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: msgs, batchId });
    const other = await services.leads.recordInbound({ tenantId: f.tenantId, leadId: f.leadId, messages: msgs, batchId: randomUUID() });
    expect(first.stored.sort()).toEqual(msgs.map((m) => m.providerMessageId).sort());
    expect(again.stored.sort()).toEqual(first.stored.sort());
    expect(other.stored).toEqual([]);
    const rows = await database.db.select().from(messages).where(eq(messages.leadId, f.leadId));
    expect(rows).toHaveLength(2);
  });

  test('many turns of one tenant record and reserve at once, each in one transaction, without a deadlock (PostgreSQL: 40P01 before)', async () => {
    const f = await fixture({ credits: 100 });
    const leads = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const contactId = `91${randomInt(1_000_000_000, 9_999_999_999)}`;
        const { leadId } = await services.leads.ensure({ tenantId: f.tenantId, channelAccountId: f.channelId, channel: 'whatsapp', contactId, workflowId: `lead-${i}-${randomUUID()}` });
        return { ...f, leadId, contactId };
      }),
    );
    // what the reply turn does: record the messages (rows that reference the tenant), then lock the tenant's balance
    const results = await Promise.allSettled(
      leads.flatMap((l) =>
        [1, 2].map(() =>
          services.transaction(async (tx) => {
            await services.leads.recordInbound({ tenantId: l.tenantId, leadId: l.leadId, messages: [inbound(l)], batchId: randomUUID() }, { tx });
            await new Promise((r) => setTimeout(r, 5)); // both sides hold their row locks before reserving
            return services.credits.reserve({ tenantId: l.tenantId, reference: `reply:${randomUUID()}` }, { tx });
          }),
        ),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    expect(failed).toEqual([]);
    expect(await services.credits.balance(f.tenantId)).toMatchObject({ balance: 100 - 24, reserved: 24 });
  });

  test('a reserve for a tenant that is gone is refused for good (database_rejected, which the lead workflow parks), not retried forever', async () => {
    const f = await fixture({ credits: 3 });
    const gone = randomUUID();
    const acts = activities();
    const careful = await failureOf(acts.reserveCredit({ tenantId: gone, reference: `reply:${randomUUID()}` }));
    expect(careful).toMatchObject({ type: 'database_rejected', nonRetryable: true });
    expect(careful.message).toContain('tenant');

    // the reply turn's reserve the same (no message to record: the reserve comes first)
    const fast = await failureOf(acts.replyTurn({ ...turn(f, [], { requireNewOf: undefined }), tenantId: gone }));
    expect(fast).toMatchObject({ type: 'database_rejected', nonRetryable: true });
    expect(llm.requests).toHaveLength(0);
    expect(await credit(f)).toMatchObject({ balance: 3, reserved: 0 });
  });

  test('reserve is idempotent per reference: a second reserve takes nothing, nor does one after the capture', async () => {
    const f = await fixture({ credits: 5 });
    const reference = `reply:${randomUUID()}`;
    expect(await services.credits.reserve({ tenantId: f.tenantId, reference })).toEqual({ ok: true, amount: 1, balance: 4 });
    expect(await services.credits.reserve({ tenantId: f.tenantId, reference })).toEqual({ ok: true, amount: 1, balance: 4, existing: 'held' });
    expect(await credit(f, reference)).toEqual({ balance: 4, reserved: 1, debits: 0, reservation: 'held' });
    await services.credits.capture({ reference, messageId: randomUUID() });
    expect(await services.credits.reserve({ tenantId: f.tenantId, reference })).toEqual({ ok: true, amount: 1, balance: 4, existing: 'captured' });
    expect(await credit(f, reference)).toEqual({ balance: 4, reserved: 0, debits: 1, reservation: 'captured' });
    // concurrent reserves of one reference (a retried activity still running) hold once
    const ref2 = `reply:${randomUUID()}`;
    const both = await Promise.all([services.credits.reserve({ tenantId: f.tenantId, reference: ref2 }), services.credits.reserve({ tenantId: f.tenantId, reference: ref2 })]);
    expect(both.every((r) => r.ok)).toBe(true);
    expect(await credit(f, ref2)).toMatchObject({ balance: 3, reserved: 1 });
  });
});
