/**
 * A whole Parley stack for integration tests: real Temporal (the dev server from global
 * setup), a real database (PostgreSQL when DATABASE_URL is set, else in-memory PGlite), the
 * real worker, activities and API, and real local HTTP servers standing in for Meta and the LLM.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createParleyClient, type ParleyClient } from '../../api/client';
import { randomBytes, randomInt } from 'node:crypto';
import { Writable } from 'node:stream';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import request from 'supertest';
import type { Express } from 'express';
import { createApp } from '../../api/app';
import { loadConfig, type Config } from '../../config';
import { signMetaBody } from '../../lib/crypto';
import { whatsAppTextWebhook } from '../../fakes/meta-webhooks';
import { createLogger, type Logger } from '../../lib/logger';
import { createParleyTemporal, type ParleyTemporal } from '../../temporal/client';
import { connectTemporalClient, connectTemporalWorker } from '../../temporal/connect';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../temporal/data-converter';
import { buildCore, keyPreparer, type Core } from '../../composition/core';
import { activityDepsFrom } from '../../composition/worker';
import { createParleyWorker, WORKFLOWS_PATH, type ParleyWorker } from '../../workers/worker';
import { installTemporalRuntime } from '../../temporal/runtime';
import { createTracing, resolveTracingSettings, type Tracing } from '../../lib/tracing';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/tracing';
import { startFakeGraphApi, type FakeGraphApi } from '../../fakes/graph-api';
import { startFakeOpenAI, type FakeOpenAI } from '../../fakes/openai';

let bundlePromise: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundle the workflows once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundlePromise ??= bundleWorkflowCode({ workflowsPath: require.resolve(WORKFLOWS_PATH), ...WORKFLOW_BUNDLE_CONVERTERS, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: quietBundlerLogger });
  return bundlePromise;
}
const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (m: string, meta?: unknown) => console.error(m, meta),
};

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const APP_SECRET = 'test-app-secret-0123456789';
export const VERIFY_TOKEN = 'test-verify-token-deployment';

export interface Stack {
  config: Config;
  core: Core;
  app: Express;
  api: ReturnType<typeof request>;
  /** The typed client (api/client, generated from the OpenAPI document) on a port of this stack's app. */
  client(apiKey?: string): ParleyClient;
  /** That port's base URL. */
  baseUrl: string;
  temporal: ParleyTemporal;
  /** The workflow id of a contact's lead, under this stack's lead id key (lib/lead-ids.ts). */
  leadWorkflowId(channelAccountId: string, contactId: string): string;
  graph: FakeGraphApi;
  llm: FakeOpenAI;
  worker: ParleyWorker;
  taskQueue: string;
  /** Every log line the stack wrote (for secret-leak assertions). */
  logLines: string[];
  log: Logger;
  /** The API's and the worker's tracing (exporting only when the overrides set an OTLP endpoint). */
  tracing: { api: Tracing; worker: Tracing };
  stop(): Promise<void>;
}

export async function startStack(overrides: Record<string, string> = {}): Promise<Stack> {
  const address = process.env.PARLEY_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('PARLEY_TEST_TEMPORAL_ADDRESS is not set: run the tests through jest (global setup starts Temporal)');
  const [graph, llm] = await Promise.all([startFakeGraphApi(), startFakeOpenAI()]);
  const taskQueue = `test-${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: process.env.DATABASE_URL,
    PGLITE_DATA_DIR: 'memory://',
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
    // the run's one master key (test/support/global-setup.ts); a file may still override it
    PARLEY_ENCRYPTION_KEY: process.env.PARLEY_TEST_ENCRYPTION_KEY ?? randomBytes(32).toString('base64'),
    META_APP_SECRET: APP_SECRET,
    META_VERIFY_TOKEN: VERIFY_TOKEN,
    GRAPH_API_URL: graph.url,
    OPENAI_BASE_URL: llm.url,
    OPENAI_API_KEY: 'sk-test-openai-key',
    // short real-time waits on the dev server (the time-skipping tests use the defaults)
    LEAD_DEBOUNCE_GAP_MS: '150',
    LEAD_PACING_MIN_GAP_MS: '200',
    // the pair rate limiter (Meta: 1 message per 6 s to one user) as short as the pacing above
    WHATSAPP_PAIR_INTERVAL_MS: '200',
    // every test process is 127.0.0.1 (on CI against one database): 401 tests must not block each other
    AUTH_FAILURES_PER_MINUTE: '1000',
    // sequence steps and extraction exactly when due (the tests wait for them)
    LEAD_BACKGROUND_SPREAD_MS: '0',
    // every documented JSON answer is checked against the OpenAPI document (a mismatch is a 500)
    PARLEY_CHECK_RESPONSES: 'true',
    // one test database, one task queue per stack: only a file that registers webhook endpoints
    // runs the outbox relay (another stack's relay would start its deliveries on its own queue)
    WEBHOOK_RELAY: 'false',
    ...overrides,
  });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ level: config.LOG_LEVEL, destination: sink });
  installTemporalRuntime({ log });
  const tracing = { api: createTracing(resolveTracingSettings(config, 'api')), worker: createTracing(resolveTracingSettings(config, 'worker')) };
  const core = await buildCore(config, { log, migrate: !config.DATABASE_URL });
  const connection = await connectTemporalWorker(config.temporal);
  const worker = await createParleyWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue,
    deps: activityDepsFrom(config, core.services, log),
    workflowBundle: await workflowBundle(),
    // the lanes' slots as workers/main.ts sets them (the defaults unless a file overrides them)
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    maxConcurrentBackgroundActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES,
    maxConcurrentWebhookActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES,
    payloadCodec: core.payloadCodec,
    tracing: tracing.worker,
  });
  const running = worker.run();
  const { client, connection: clientConnection } = await connectTemporalClient(config.temporal, { payloadCodec: core.payloadCodec, tracer: tracing.api.tracer });
  const temporal = createParleyTemporal(client, { taskQueue, leadIds: core.leadIds, prepareKey: keyPreparer(core) });
  const app = createApp({ config, log, database: core.database, services: core.services, temporal, tracer: tracing.api.tracer });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    config,
    core,
    app,
    api: request(app),
    baseUrl,
    client: (apiKey?: string) => createParleyClient({ baseUrl, apiKey }),
    temporal,
    leadWorkflowId: (channelAccountId: string, contactId: string) => core.leadIds.workflowId(channelAccountId, contactId),
    graph,
    llm,
    worker,
    taskQueue,
    logLines,
    log,
    tracing,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      worker.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
      await core.database.close();
      await Promise.all([graph.close(), llm.close(), tracing.api.shutdown(), tracing.worker.shutdown()]);
    },
  };
}

/**
 * One whole stack for a test file: started before its tests, stopped after them. The returned
 * function gives the running stack (call it inside tests and hooks, not at load time).
 */
export function stackPerFile(overrides: Record<string, string> = {}): () => Stack {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack(overrides);
  });
  afterAll(async () => {
    await stack?.stop();
  });
  return () => {
    if (!stack) throw new Error('the stack is not started yet (call it inside a test or hook)');
    return stack;
  };
}

/** An Authorization header with a bearer token (a tenant API key or the admin token). */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export function randomPhoneNumberId(): string {
  return String(randomInt(100_000_000_000, 999_999_999_999));
}

export function randomWaId(): string {
  return `91${randomInt(1_000_000_000, 9_999_999_999)}`;
}

export interface TenantFixture {
  tenantId: string;
  apiKey: string;
  agentId: string;
  channelId: string;
  phoneNumberId: string;
  accessToken: string;
}

/** A tenant with credits, an agent and a WhatsApp channel, made through the public API. */
export async function createTenant(stack: Stack, opts: { credits?: number; appSecret?: string; fallbackModel?: string; model?: string } = {}): Promise<TenantFixture> {
  const t = await stack.api.post('/v1/tenants').set('authorization', `Bearer ${ADMIN_TOKEN}`).send({ name: 'Acme Sales' }).expect(201);
  const { id: tenantId, apiKey } = t.body as { id: string; apiKey: string };
  if (opts.credits) {
    await stack.api
      .post(`/v1/tenants/${tenantId}/credits`)
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ amount: opts.credits, reference: `initial-${tenantId}` })
      .expect(201);
  }
  const agent = await stack.api
    .post('/v1/agents')
    .set('authorization', `Bearer ${apiKey}`)
    .send({ name: 'Sales bot', systemPrompt: 'You are a helpful sales assistant.', model: opts.model ?? 'gpt-4o-mini', ...(opts.fallbackModel ? { fallbackModel: opts.fallbackModel } : {}) })
    .expect(201);
  const phoneNumberId = randomPhoneNumberId();
  const accessToken = `EAAG${randomBytes(16).toString('hex')}`;
  const channel = await stack.api
    .post('/v1/channels')
    .set('authorization', `Bearer ${apiKey}`)
    .send({
      platform: 'whatsapp',
      phoneNumberId,
      accessToken,
      verifyToken: `verify-${randomBytes(6).toString('hex')}`,
      agentId: agent.body.id,
      ...(opts.appSecret ? { appSecret: opts.appSecret } : {}),
    })
    .expect(201);
  return { tenantId, apiKey, agentId: agent.body.id, channelId: channel.body.id, phoneNumberId, accessToken };
}

/** A WhatsApp text webhook body as Meta sends it. */
export function textWebhook(phoneNumberId: string, from: string, text: string, opts: { id?: string; name?: string; timestamp?: number } = {}) {
  return whatsAppTextWebhook({ phoneNumberId, from, text, ...opts });
}

/** POST a body to the webhook, signed like Meta signs it. */
export function postWebhook(stack: Stack, body: unknown, opts: { secret?: string; raw?: string } = {}) {
  const raw = opts.raw ?? JSON.stringify(body);
  return stack.api
    .post('/webhooks/whatsapp')
    .set('content-type', 'application/json')
    .set('x-hub-signature-256', signMetaBody(raw, opts.secret ?? APP_SECRET))
    .send(raw);
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, opts: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
