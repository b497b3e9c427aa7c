/**
 * GET /metrics (admin token) through a whole stack: one conversation turn moves the counters
 * of every layer it crosses (webhook route, inbound, reply turn, send, LLM, credits). The API
 * and the worker share this process here, so the worker's metrics are on the same registry.
 */
import { createServer } from 'node:net';
import { createLogger } from '../../lib/logger';
import { startWorkerMetricsServer, type WorkerMetricsServer } from '../../temporal/metrics-server';
import { installTemporalRuntime } from '../../temporal/runtime';
import { ADMIN_TOKEN, createTenant, postWebhook, randomWaId, stackPerFile, textWebhook, waitFor } from '../support/stack';

jest.setTimeout(120_000);

/** A port free right now on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

// As workers/main.ts does with METRICS_PORT: the SDK core's Prometheus endpoint on a loopback
// port, merged into the worker's endpoint. Installed before the stack (its install is then a no-op).
let workerMetrics: WorkerMetricsServer | undefined;
beforeAll(async () => {
  const corePort = await freePort();
  const log = createLogger({ level: 'silent' });
  installTemporalRuntime({ log, metricsBindAddress: `127.0.0.1:${corePort}` });
  workerMetrics = await startWorkerMetricsServer({ port: 0, host: '127.0.0.1', coreUrl: `http://127.0.0.1:${corePort}/metrics`, log });
});
afterAll(async () => {
  await workerMetrics?.close();
});

// the balance gauge lists the lowest balances first, up to the cap: on a shared test database (CI) many other
// tenants sit at 0, so the cap is the largest allowed for this file's tenant (at 4) to be listed
const stack = stackPerFile({ METRICS_TENANT_LABELS: 'true', METRICS_TENANT_LABEL_CAP: '10000' });

async function scrape(): Promise<string> {
  const r = await stack().api.get('/metrics').set({ authorization: `Bearer ${ADMIN_TOKEN}` }).expect(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text;
}

/** The sum of a metric's samples whose labels include every given label. */
function total(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) sum += Number(m[4]);
  }
  return sum;
}

test('a turn moves webhooks received, inbound, turns, replies, send latency, LLM tokens and credits', async () => {
  const t = await createTenant(stack(), { credits: 5 });
  const before = await scrape();
  const from = randomWaId();
  await postWebhook(stack(), textWebhook(t.phoneNumberId, from, 'Hi, what does it cost?')).expect(200);
  await waitFor(() => stack().graph.sentMessages().some((m) => (m.body as { to?: string }).to === from), { what: 'the reply' });
  // the turn's counters are written when the activity returns, just after the send
  const after = await waitFor(async () => {
    const text = await scrape();
    return total(text, 'parley_turns_total', { outcome: 'sent', tenant_id: t.tenantId }) > total(before, 'parley_turns_total', { outcome: 'sent', tenant_id: t.tenantId }) ? text : undefined;
  }, { what: 'parley_turns_total{outcome="sent"}' });

  const moved = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
  expect(moved('parley_webhooks_received_total', { platform: 'whatsapp' })).toBeGreaterThanOrEqual(1);
  expect(moved('parley_inbound_messages_total', { platform: 'whatsapp', tenant_id: t.tenantId })).toBe(1);
  expect(moved('parley_turns_total', { outcome: 'sent', tenant_id: t.tenantId })).toBe(1);
  expect(moved('parley_replies_total', { platform: 'whatsapp', outcome: 'sent' })).toBeGreaterThanOrEqual(1);
  expect(moved('parley_send_duration_seconds_count', { platform: 'whatsapp', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  expect(moved('parley_llm_request_duration_seconds_count', { model: 'gpt-4o-mini', purpose: 'reply', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  expect(moved('parley_llm_tokens_total', { model: 'gpt-4o-mini', kind: 'prompt', tenant_id: t.tenantId })).toBeGreaterThan(0);
  expect(moved('parley_llm_tokens_total', { model: 'gpt-4o-mini', kind: 'completion', tenant_id: t.tenantId })).toBeGreaterThan(0);
  expect(moved('parley_credits_total', { operation: 'reserved', tenant_id: t.tenantId })).toBe(1);
  expect(moved('parley_credits_total', { operation: 'captured', tenant_id: t.tenantId })).toBe(1);
  // database gauges, read at each scrape: the tenant's balance (tenant labels are on in this file)
  expect(total(after, 'parley_credit_balance', { tenant_id: t.tenantId })).toBe(4);
  expect(total(after, 'parley_channel_circuits', { platform: 'whatsapp', state: 'closed' })).toBeGreaterThanOrEqual(1);
  // bounded labels: no contact, lead or channel ids anywhere
  expect(after).not.toContain(from);
  expect(after).not.toContain(t.channelId);
  expect(after).not.toContain(t.phoneNumberId);
});

test("the worker's endpoint serves the Temporal SDK's metrics and Parley's in one answer", async () => {
  const text = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${workerMetrics!.port}/metrics`);
    expect(r.status).toBe(200);
    const body = await r.text();
    return body.includes('temporal_workflow_task_schedule_to_start_latency') ? body : undefined;
  }, { what: 'temporal_* metrics on the merged endpoint' });
  expect(text).toMatch(/^parley_worker_sdk_metrics_up 1$/m);
  expect(text).toMatch(/^parley_turns_total\{outcome="sent"/m);
  expect(text).toMatch(/^# TYPE temporal_workflow_task_schedule_to_start_latency histogram$/m);
  expect((await fetch(`http://127.0.0.1:${workerMetrics!.port}/other`)).status).toBe(404);
});

test('refused webhooks are counted by reason', async () => {
  const before = await scrape();
  await postWebhook(stack(), textWebhook('123456789012', randomWaId(), 'forged'), { secret: 'not-the-app-secret-0123456789' }).expect(401);
  const after = await scrape();
  const refused = (text: string) => total(text, 'parley_webhooks_refused_total', { platform: 'whatsapp', reason: 'invalid_signature' });
  expect(refused(after) - refused(before)).toBe(1);
  expect(total(after, 'parley_webhooks_received_total', { platform: 'whatsapp' }) - total(before, 'parley_webhooks_received_total', { platform: 'whatsapp' })).toBe(1);
});

test('GET /metrics keeps its admin token', async () => {
  await stack().api.get('/metrics').expect(401);
});
