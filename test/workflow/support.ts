/**
 * Shared set-up for the workflow tests: one time-skipping environment per test file, with the
 * real activities (in-memory PGlite, the fake Graph API and the fake LLM as local HTTP servers).
 * `createWorkflowTestKit()` registers the jest hooks; its fields are ready inside tests.
 */
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { startFakeGraphApi, type FakeGraphApi, type GraphRequestRecord } from '../../fakes/graph-api';
import { startFakeOpenAI, type FakeOpenAI } from '../../fakes/openai';
import { createSecretBox } from '../../lib/crypto';
import { createLogger, type Logger } from '../../lib/logger';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { createServices, type Services } from '../../services';
import { testingExecutable } from '../../temporal/binaries';
import { installTemporalRuntime } from '../../temporal/runtime';
import { registerSearchAttributes } from '../../temporal/search-attributes';
import { createActivities, type Activities } from '../../activities';
import { backgroundTaskQueue } from '../../workflows/lead/lanes';
import type { InboundMessage, LeadWorkflowInput, LeadWorkflowSettings } from '../../workflows/lead/definitions';
import { workflowBundle } from '../support/stack';
import { parleyDataConverter } from '../../temporal/data-converter';
import { workflowSpanSinks } from '../../workers/tracing';
import { createLeadIds } from '../../lib/lead-ids';

export interface TenantChannel {
  tenantId: string;
  channelAccountId: string;
}

/** The lead settings a test worker has unless the test says otherwise. */
/**
 * Lead workflow ids for the time-skipping tests, which start workflows themselves (not through
 * the API): the production format under a fixed test key (workflow code never reads the id).
 */
export const leadWorkflowId = createLeadIds(Buffer.alloc(32, 7)).workflowId;

export const TEST_SETTINGS: LeadWorkflowSettings = { eventBudget: 2000, dedupWindow: 100 };

export interface WorkerOptions {
  settings?: LeadWorkflowSettings;
  wrap?: (real: Activities) => Partial<Activities>;
  /**
   * false: keep no workflow in the cache (every task replays the history). For a worker that a
   * later one on the same task queue replaces: the time-skipping server would otherwise hold
   * the workflow's next task on the stopped worker's sticky queue.
   */
  cache?: false;
}

export interface WorkflowTestKit {
  env: TestWorkflowEnvironment;
  services: Services;
  graph: FakeGraphApi;
  llm: FakeOpenAI;
  log: Logger;
  /** A tenant with `credits` credits (1 a reply), an agent and a WhatsApp channel. */
  tenantWithChannel(credits: number): Promise<TenantChannel>;
  /**
   * Run `fn` with a fresh Worker on a fresh task queue. `settings`: the lead settings this
   * worker hands to every run (through ensureLead, as in production; default TEST_SETTINGS);
   * `wrap` may replace some of the real activities (e.g. to hold one until the test releases it).
   */
  withWorker<T>(fn: (taskQueue: string) => Promise<T>, opts?: WorkerOptions): Promise<T>;
  /** Like withWorker, on a task queue the test chose (to restart a worker under new settings). */
  withWorkerOn<T>(taskQueue: string, fn: () => Promise<T>, opts?: WorkerOptions): Promise<T>;
  /** Successful user-visible sends to `contactId` recorded by the fake Graph API. */
  sentTo(contactId: string): GraphRequestRecord[];
  /** The test server's clock as an ISO string. */
  serverNow(): Promise<string>;
}

/** Register beforeAll/afterAll for one time-skipping environment; returns the kit they fill. */
export function createWorkflowTestKit(): WorkflowTestKit {
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  let database: Database | undefined;
  const kit: WorkflowTestKit = {
    env: undefined as unknown as TestWorkflowEnvironment,
    services: undefined as unknown as Services,
    graph: undefined as unknown as FakeGraphApi,
    llm: undefined as unknown as FakeOpenAI,
    log,

    async tenantWithChannel(credits) {
      const { services } = kit;
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
    },

    async withWorker(fn, opts) {
      const taskQueue = `wf-${randomBytes(6).toString('hex')}`;
      return kit.withWorkerOn(taskQueue, () => fn(taskQueue), opts);
    },

    async withWorkerOn(taskQueue, fn, opts = {}) {
      const real = createActivities({
        ...kit.services,
        log,
        graph: { url: kit.graph.url, version: 'v21.0', timeoutMs: 5000 },
        llm: { baseURL: kit.llm.url, apiKey: 'test', timeoutMs: 5000 },
        leadSettings: opts.settings ?? TEST_SETTINGS,
      });
      const activities = { ...real, ...(opts.wrap?.(real) ?? {}) };
      const worker = await Worker.create({
        connection: kit.env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        dataConverter: parleyDataConverter(),
        sinks: workflowSpanSinks(undefined),
        activities,
        ...(opts.cache === false ? { maxCachedWorkflows: 0 } : {}),
      });
      // the background lane's activities (sequence steps, bump-ups, extraction) have their own queue, as in workers/worker.ts
      const background = await Worker.create({ connection: kit.env.nativeConnection, taskQueue: backgroundTaskQueue(taskQueue), dataConverter: parleyDataConverter(), activities });
      return worker.runUntil(background.runUntil(fn()));
    },

    sentTo(contactId) {
      return kit.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === contactId);
    },

    async serverNow() {
      return new Date(await kit.env.currentTimeMs()).toISOString();
    },
  };

  beforeAll(async () => {
    installTemporalRuntime({ log });
    [kit.env, database, kit.graph, kit.llm] = await Promise.all([
      TestWorkflowEnvironment.createTimeSkipping({ server: { executable: testingExecutable('test-server') } }),
      openDatabase({}),
      startFakeGraphApi(),
      startFakeOpenAI(),
    ]);
    await migrateDatabase(database);
    await registerSearchAttributes(kit.env.connection, kit.env.namespace ?? 'default');
    kit.services = createServices(database.db, createSecretBox(randomBytes(32)), { defaultCreditsPerReply: 1 });
  });

  afterAll(async () => {
    await kit.env?.teardown();
    await database?.close();
    await kit.graph?.close();
    await kit.llm?.close();
  });

  return kit;
}

/** A text message from the lead; `sentAt` defaults to a minute ago by the host clock. */
export function inboundText(contactId: string, n: number, sentAt?: string): InboundMessage {
  return {
    providerMessageId: `wamid.${contactId}.${n}`,
    channel: 'whatsapp',
    contactId,
    contactName: 'Test Lead',
    sentAt: sentAt ?? new Date(Date.now() - 60_000 + n * 10).toISOString(),
    type: 'text',
    text: `message number ${n} from ${contactId}`,
  };
}

/** What the API's signalWithStart sends: no settings (the worker's ensureLead supplies them). */
export function leadInput(t: TenantChannel, contactId: string): LeadWorkflowInput {
  return { ...t, channel: 'whatsapp', contactId, contactName: 'Test Lead' };
}

/** Poll (real time) until `fn` holds. */
export async function until(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
