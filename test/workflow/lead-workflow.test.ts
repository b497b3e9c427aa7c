/**
 * The lead workflow on the time-skipping test server, with the real activities (in-memory
 * PGlite, the fake Graph API and the fake LLM as local HTTP servers).
 */
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';
import { startFakeOpenAI, type FakeOpenAI } from '../../fakes/openai';
import { createSecretBox } from '../../lib/crypto';
import { createLogger } from '../../lib/logger';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { createServices, type Services } from '../../services';
import { testingExecutable } from '../../temporal/binaries';
import { installTemporalRuntime } from '../../temporal/runtime';
import { registerSearchAttributes } from '../../temporal/search-attributes';
import { createActivities } from '../../activities';
import { inboundSignal, stateQuery, type InboundMessage, type LeadWorkflowInput } from '../../workflows/lead/definitions';
import { leadConversation } from '../../workflows/lead/workflow';
import { workflowBundle } from '../support/stack';

jest.setTimeout(120_000);

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let env: TestWorkflowEnvironment;
let database: Database;
let services: Services;
let graph: FakeGraphApi;
let llm: FakeOpenAI;

beforeAll(async () => {
  installTemporalRuntime({ log });
  [env, database, graph, llm] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({ server: { executable: testingExecutable('test-server') } }),
    openDatabase({}),
    startFakeGraphApi(),
    startFakeOpenAI(),
  ]);
  await migrateDatabase(database);
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  services = createServices(database.db, createSecretBox(randomBytes(32)), { defaultCreditsPerReply: 1 });
});

afterAll(async () => {
  await env?.teardown();
  await database?.close();
  await graph?.close();
  await llm?.close();
});

async function tenantWithChannel(credits: number) {
  const tenant = await services.tenants.create({ name: 'WF test' });
  if (credits) await services.credits.topUp({ tenantId: tenant.id, amount: credits, reference: 'seed' });
  const agent = await services.agents.create(tenant.id, { name: 'a', systemPrompt: 'Be brief.', model: 'gpt-4o-mini' });
  const channel = await services.channels.create(tenant.id, {
    platform: 'whatsapp',
    phoneNumberId: String(Date.now()) + randomBytes(2).readUInt16BE(0),
    accessToken: 'EAAGtesttoken123',
    verifyToken: 'verify-token-1',
    agentId: agent.id,
  });
  return { tenantId: tenant.id, channelAccountId: channel.id };
}

function inbound(contactId: string, n: number): InboundMessage {
  return {
    providerMessageId: `wamid.${contactId}.${n}`,
    channel: 'whatsapp',
    contactId,
    contactName: 'Test Lead',
    // the lead wrote just now (the 24-hour window is open)
    sentAt: new Date(Date.now() - 60_000 + n * 10).toISOString(),
    type: 'text',
    text: `message number ${n}`,
  };
}

async function withWorker<T>(fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `wf-${randomBytes(6).toString('hex')}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities({
      ...services,
      log,
      graph: { url: graph.url, version: 'v21.0', timeoutMs: 5000 },
      llm: { baseURL: llm.url, apiKey: 'test', timeoutMs: 5000 },
    }),
  });
  return worker.runUntil(fn(taskQueue));
}

function input(t: { tenantId: string; channelAccountId: string }, contactId: string, eventBudget: number): LeadWorkflowInput {
  return { ...t, channel: 'whatsapp', contactId, contactName: 'Test Lead', settings: { eventBudget, dedupWindow: 100 } };
}

function sentTo(contactId: string) {
  return graph.sentMessages().filter((r) => (r.body as { to?: string }).to === contactId);
}

async function until(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('continues as new under a small event budget and loses no message, carrying dedup memory across runs', async () => {
  const t = await tenantWithChannel(100);
  const contactId = `c${randomBytes(4).toString('hex')}`;
  await withWorker(async (taskQueue) => {
    const handle = await env.client.workflow.signalWithStart(leadConversation, {
      workflowId: `lead:${t.channelAccountId}:${contactId}`,
      taskQueue,
      args: [input(t, contactId, 60)],
      signal: inboundSignal,
      signalArgs: [inbound(contactId, 1)],
    });
    // one message at a time, each sent as soon as the previous reply reaches Meta (the turn
    // may still be finishing): many turns, and the lead is never idle long
    for (let n = 2; n <= 8; n++) {
      await env.sleep('10 seconds'); // past the burst debounce (3 s) and the pacing gap (6 s)
      await until(() => sentTo(contactId).length === n - 1, `reply ${n - 1}`);
      await handle.signal(inboundSignal, inbound(contactId, n));
    }
    await env.sleep('10 seconds');
    await until(() => sentTo(contactId).length === 8, 'reply 8');
    // a redelivery of an early message, after several continue-as-new: still a duplicate
    await handle.signal(inboundSignal, inbound(contactId, 3));
    const state = await handle.query(stateQuery);
    // ~20 events a turn: 8 turns under a budget of 60 need at least 2 hand-overs
    expect(state.counters.runs).toBeGreaterThanOrEqual(3);
    expect(state.historyLength).toBeLessThan(60 + 40);
    await until(async () => (await handle.query(stateQuery)).counters.duplicates === 1, 'duplicate counted');
    const after = await handle.query(stateQuery);
    expect(after.counters).toMatchObject({ inbound: 8, duplicates: 1, replies: 8 });
    expect(sentTo(contactId)).toHaveLength(8);
    const firstRun = await env.client.workflow.getHandle(handle.workflowId, handle.signaledRunId).describe();
    expect(firstRun.status.name).toBe('CONTINUED_AS_NEW');
  });
});

test('a burst of signals around continue-as-new is handled: every message recorded exactly once', async () => {
  const t = await tenantWithChannel(100);
  const contactId = `c${randomBytes(4).toString('hex')}`;
  await withWorker(async (taskQueue) => {
    const wfInput = input(t, contactId, 50);
    const workflowId = `lead:${t.channelAccountId}:${contactId}`;
    // 30 messages a few ms apart, not waiting for replies: they arrive while turns run and
    // while runs hand over (the budget of 50 events is passed several times)
    for (let n = 1; n <= 30; n++) {
      if (n > 1) await new Promise((r) => setTimeout(r, 25));
      await env.client.workflow.signalWithStart(leadConversation, {
        workflowId,
        taskQueue,
        args: [wfInput],
        signal: inboundSignal,
        signalArgs: [inbound(contactId, n)],
      });
    }
    const handle = env.client.workflow.getHandle(workflowId);
    for (let i = 0; i < 6; i++) await env.sleep('10 seconds'); // bursts flush, paced replies go out
    await until(async () => {
      const s = await handle.query(stateQuery);
      return s.counters.runs > 1 && s.counters.inbound === 30 && s.pendingInbound === 0 && s.counters.turns === s.counters.replies && s.leadId !== undefined;
    }, 'all 30 handled');
    const s = await handle.query(stateQuery);
    const msgs = await services.leads.messages(t.tenantId, s.leadId!, { limit: 200 });
    const inboundRows = msgs.items.filter((m) => m.direction === 'inbound');
    expect(inboundRows).toHaveLength(30);
    expect(new Set(inboundRows.map((m) => m.providerMessageId)).size).toBe(30);
    const outboundRows = msgs.items.filter((m) => m.direction === 'outbound');
    expect(outboundRows.every((m) => m.status === 'sent')).toBe(true);
    expect(outboundRows).toHaveLength(sentTo(contactId).length);
    expect(s.counters.runs).toBeGreaterThan(1);
    expect(s.counters.duplicates).toBe(0);
    // the 30 messages became a few turns (burst debounce), each answered once
    expect(s.counters.replies).toBeGreaterThanOrEqual(1);
    expect(s.counters.replies).toBeLessThan(30);
  });
});
