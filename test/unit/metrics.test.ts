import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  BoundedLabel,
  configureMetrics,
  recordCredits,
  recordGraphError,
  recordInbound,
  recordLlmUsage,
  recordOutboundWebhookDelivery,
  recordRateLimitWait,
  recordReply,
  recordTurn,
  recordWebhook,
  registry,
  setDatabaseGauges,
  tenantLabel,
  webhookRefusalReason,
} from '../../lib/metrics';
import { mergedExposition } from '../../temporal/metrics-server';
import { checkAlertRuleNames, checkDashboard, knownMetricNames, metricNamesIn } from '../../scripts/check-dashboards';

/** The value of one sample of a metric (0 when absent). */
async function value(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const hit = values.filter((v) => (v as { metricName?: string }).metricName === undefined || (v as { metricName?: string }).metricName === name).find((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k] ?? '') === l));
  return hit?.value ?? 0;
}

async function labelValues(name: string, label: string): Promise<Set<string>> {
  const { values } = await registry.getSingleMetric(name)!.get();
  return new Set(values.map((v) => String(v.labels[label])));
}

beforeEach(() => configureMetrics({ tenantLabels: false, tenantLabelCap: 3 }));

describe('bounded labels', () => {
  test('a bounded label keeps its first values and folds the rest into "other"', () => {
    const b = new BoundedLabel(2);
    expect([b.of('a'), b.of('b'), b.of('c'), b.of('a'), b.of(undefined)]).toEqual(['a', 'b', 'other', 'a', 'unknown']);
  });

  test('tenant_id is empty unless METRICS_TENANT_LABELS, then capped', () => {
    expect(tenantLabel('t-1')).toBe('');
    configureMetrics({ tenantLabels: true, tenantLabelCap: 2 });
    expect([tenantLabel('t-1'), tenantLabel('t-2'), tenantLabel('t-3'), tenantLabel('t-1')]).toEqual(['t-1', 't-2', 'other', 't-1']);
  });

  test('LLM models and Graph error codes keep at most 50 distinct values each', async () => {
    for (let i = 0; i < 80; i++) recordLlmUsage({ model: `model-${i}`, promptTokens: 1, completionTokens: 1, costMicros: 1 });
    for (let i = 0; i < 80; i++) recordGraphError('whatsapp', 1000 + i, 'unknown');
    const models = await labelValues('parley_llm_tokens_total', 'model');
    expect(models.size).toBeLessThanOrEqual(51);
    expect(models.has('other')).toBe(true);
    const codes = await labelValues('parley_graph_errors_total', 'code');
    expect(codes.size).toBeLessThanOrEqual(51);
    expect(codes.has('other')).toBe(true);
  });

  test('an outbound webhook event that is not an event name is "other"', async () => {
    recordOutboundWebhookDelivery({ event: 'lead.created', outcome: 'delivered', durationMs: 120 });
    recordOutboundWebhookDelivery({ event: 'https://evil.example/?lead=123', outcome: 'failed' });
    expect(await value('parley_outbound_webhook_deliveries_total', { event: 'lead.created', outcome: 'delivered' })).toBe(1);
    expect(await value('parley_outbound_webhook_deliveries_total', { event: 'other', outcome: 'failed' })).toBe(1);
    expect(await labelValues('parley_outbound_webhook_deliveries_total', 'event')).toEqual(new Set(['lead.created', 'other']));
  });

  test('no metric has a lead, contact, message or channel id label', () => {
    for (const m of registry.getMetricsAsArray()) {
      const labels = (m as unknown as { labelNames: string[] }).labelNames ?? [];
      for (const l of labels) expect(l).not.toMatch(/lead|contact|message|channel_account|phone/);
    }
  });
});

describe('recording functions move their metrics', () => {
  test('webhooks: received always, refused by the reason of the status', async () => {
    const received = await value('parley_webhooks_received_total', { platform: 'instagram' });
    recordWebhook('instagram', 200);
    recordWebhook('instagram', 401);
    recordWebhook('instagram', 503);
    expect(await value('parley_webhooks_received_total', { platform: 'instagram' })).toBe(received + 3);
    expect(await value('parley_webhooks_refused_total', { platform: 'instagram', reason: 'invalid_signature' })).toBe(1);
    expect(await value('parley_webhooks_refused_total', { platform: 'instagram', reason: 'unavailable' })).toBe(1);
    expect([200, 400, 413, 429, 500, 418].map(webhookRefusalReason)).toEqual([undefined, 'invalid_payload', 'too_large', 'rate_limited', 'error', 'other']);
  });

  test('inbound, turns, replies, credits and rate-limit waits', async () => {
    recordInbound('webchat', 't-9', 2);
    recordTurn('held', 't-9');
    recordReply('instagram', 'retrying');
    recordCredits('reserved', 3, 't-9');
    recordCredits('released', 0, 't-9'); // nothing to count
    recordRateLimitWait('pair', 'slept', 1500);
    recordRateLimitWait('number', 'deferred', 9000);
    expect(await value('parley_inbound_messages_total', { platform: 'webchat', tenant_id: '' })).toBe(2);
    expect(await value('parley_turns_total', { outcome: 'held' })).toBe(1);
    expect(await value('parley_replies_total', { platform: 'instagram', outcome: 'retrying' })).toBe(1);
    expect(await value('parley_credits_total', { operation: 'reserved' })).toBe(3);
    expect(await value('parley_credits_total', { operation: 'released' })).toBe(0);
    expect(await value('parley_rate_limit_waits_total', { limit: 'pair', outcome: 'slept' })).toBe(1);
    expect(await value('parley_rate_limit_waits_total', { limit: 'number', outcome: 'deferred' })).toBe(1);
    expect(await value('parley_rate_limit_wait_seconds_total')).toBe(1.5);
  });

  test('LLM usage: tokens by kind and cost in dollars', async () => {
    // model-7 is one of the 50 models the bounded-label test kept (earlier in this file)
    const before = { prompt: await value('parley_llm_tokens_total', { model: 'model-7', kind: 'prompt' }), cost: await value('parley_llm_cost_usd_total', { model: 'model-7' }) };
    recordLlmUsage({ model: 'model-7', promptTokens: 100, completionTokens: 20, costMicros: 2500 });
    expect(await value('parley_llm_tokens_total', { model: 'model-7', kind: 'prompt' })).toBe(before.prompt + 100);
    expect(await value('parley_llm_cost_usd_total', { model: 'model-7' })).toBeCloseTo(before.cost + 0.0025);
  });

  test('database gauges: one dead-letter total without tenant labels, per tenant with them; balances only with them', async () => {
    const g = {
      circuits: [{ platform: 'whatsapp', state: 'open', n: 2 }, { platform: 'whatsapp', state: 'closed', n: 5 }],
      openDeadLetters: [{ tenantId: 'a', n: 2 }, { tenantId: 'b', n: 3 }],
      lowestBalances: [{ tenantId: 'a', balance: 4 }],
    };
    setDatabaseGauges(g);
    expect(await value('parley_channel_circuits', { platform: 'whatsapp', state: 'open' })).toBe(2);
    expect(await value('parley_dead_letters_open', { tenant_id: '' })).toBe(5);
    expect((await registry.getSingleMetric('parley_credit_balance')!.get()).values).toHaveLength(0);
    configureMetrics({ tenantLabels: true, tenantLabelCap: 10 });
    setDatabaseGauges(g);
    expect(await value('parley_dead_letters_open', { tenant_id: 'b' })).toBe(3);
    expect(await value('parley_credit_balance', { tenant_id: 'a' })).toBe(4);
    // a tenant gone from the database is gone from the gauge at the next scrape
    setDatabaseGauges({ circuits: [], openDeadLetters: [] });
    expect((await registry.getSingleMetric('parley_dead_letters_open')!.get()).values).toHaveLength(0);
  });
});

describe("the worker's merged endpoint", () => {
  let core: Server;
  let coreUrl: string;
  beforeAll(async () => {
    core = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('# HELP temporal_workflow_task_execution_failed x\n# TYPE temporal_workflow_task_execution_failed counter\ntemporal_workflow_task_execution_failed{namespace="default"} 2'));
    await new Promise<void>((r) => core.listen(0, '127.0.0.1', () => r()));
    coreUrl = `http://127.0.0.1:${(core.address() as AddressInfo).port}/metrics`;
  });
  afterAll(() => new Promise<void>((r) => core.close(() => r())));

  test("appends Parley's registry to the SDK core's text", async () => {
    recordTurn('sent');
    const text = await mergedExposition(coreUrl);
    expect(text).toContain('temporal_workflow_task_execution_failed{namespace="default"} 2\n');
    expect(text).toMatch(/^parley_turns_total\{outcome="sent",tenant_id=""\} \d+$/m);
    expect(text).toMatch(/^parley_worker_sdk_metrics_up 1$/m);
    // one HELP per family: nothing is defined twice
    const helps = text.split('\n').filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
    expect(new Set(helps).size).toBe(helps.length);
  });

  test('still serves Parley\'s metrics when the core does not answer', async () => {
    const text = await mergedExposition('http://127.0.0.1:1/metrics');
    expect(text).toContain('parley_turns_total');
    expect(text).toMatch(/^parley_worker_sdk_metrics_up 0$/m);
  });
});

describe('deploy/ checks (scripts/check-dashboards.ts)', () => {
  const root = path.resolve(__dirname, '../..');
  test('metric names are read from PromQL without functions, labels, ranges or variables', () => {
    expect(metricNamesIn('histogram_quantile(0.95, sum by (le, model) (rate(parley_llm_request_duration_seconds_bucket{model=~"$model"}[5m])))')).toEqual(['parley_llm_request_duration_seconds_bucket']);
    expect(metricNamesIn('sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 0.05 and c offset 1h')).toEqual(['a_total', 'b_total', 'c']);
  });

  test('the committed dashboard and alert rules name only known metrics', () => {
    const known = knownMetricNames();
    expect(known.has('temporal_workflow_task_execution_failed')).toBe(true);
    expect(known.has('process_resident_memory_bytes')).toBe(true);
    expect(checkDashboard(readFileSync(path.join(root, 'deploy/grafana/parley-dashboard.json'), 'utf8'), known)).toEqual([]);
    expect(checkAlertRuleNames(readFileSync(path.join(root, 'deploy/prometheus/alerts.yml'), 'utf8'), known)).toEqual([]);
  });

  test('an unknown metric, a panel without a query and broken JSON are reported', () => {
    const dashboard = { title: 'x', panels: [{ type: 'timeseries', title: 'p', targets: [{ expr: 'rate(parley_no_such_thing_total[5m])' }] }, { type: 'stat', title: 'empty', targets: [] }] };
    expect(checkDashboard(JSON.stringify(dashboard))).toEqual([expect.stringContaining('unknown metric parley_no_such_thing_total'), expect.stringContaining('"empty" has no PromQL expression')]);
    expect(checkDashboard('{ "title": ')[0]).toMatch(/^not valid JSON/);
    expect(checkAlertRuleNames('groups:\n  - rules:\n      - expr: parley_nope > 1\n')).toEqual([expect.stringContaining('unknown metric parley_nope')]);
  });
});
