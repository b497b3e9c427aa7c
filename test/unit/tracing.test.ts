import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as otel from '@opentelemetry/api';
import { configSchema, loadConfig } from '../../config';
import { createTracing, resolveTracingSettings, scrubWorkflowIds, traceableWorkflowId } from '../../lib/tracing';
import { currentRequestId, currentTraceparent, logContext, requestIdFrom, withRequestId, withRequestIds } from '../../lib/trace-context';

describe('resolveTracingSettings', () => {
  test('off by default: no endpoint, nothing exported, a service name per process', () => {
    expect(resolveTracingSettings({}, 'api')).toEqual({ serviceName: 'parley-api' });
    expect(resolveTracingSettings({}, 'worker')).toEqual({ serviceName: 'parley-worker' });
    const config = loadConfig({ NODE_ENV: 'test' });
    expect(resolveTracingSettings(config, 'worker')).toEqual({ serviceName: 'parley-worker' });
    expect(createTracing(resolveTracingSettings(config, 'api')).exporting).toBe(false);
  });

  test('the base endpoint gets /v1/traces; the traces endpoint is used as given and wins', () => {
    expect(resolveTracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'api').tracesUrl).toBe('http://collector:4318/v1/traces');
    expect(resolveTracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp' }, 'api').tracesUrl).toBe('https://traces.example/otlp');
    expect(resolveTracingSettings({ OTEL_SERVICE_NAME: 'parley-eu', OTEL_EXPORTER_OTLP_ENDPOINT: '' }, 'worker')).toEqual({ serviceName: 'parley-eu' });
    expect(createTracing(resolveTracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }, 'api')).exporting).toBe(true);
  });

  test('config: the OTLP endpoints must be URLs; empty means unset', () => {
    expect(() => loadConfig({ NODE_ENV: 'test', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(loadConfig({ NODE_ENV: 'test', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' }).OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).toBeUndefined();
  });
});

describe('trace context', () => {
  test('off: spans are not recorded but carry ids, which the log context and the traceparent name', () => {
    const { tracer } = createTracing({ serviceName: 'parley-api' });
    const span = tracer.startSpan('GET');
    expect(span.isRecording()).toBe(false);
    const ctx = withRequestIds(withRequestId(otel.trace.setSpan(otel.ROOT_CONTEXT, span), 'req-12345678'), ['a-request', 'b-request']);
    otel.context.with(ctx, () => {
      const sc = span.spanContext();
      expect(otel.isSpanContextValid(sc)).toBe(true);
      expect(logContext()).toEqual({ requestId: 'req-12345678', requestIds: 'a-request,b-request', trace_id: sc.traceId, span_id: sc.spanId });
      expect(currentRequestId()).toBe('req-12345678');
      expect(currentTraceparent()).toBe(`00-${sc.traceId}-${sc.spanId}-00`);
    });
    expect(logContext()).toEqual({});
    expect(currentRequestId()).toBeUndefined();
  });

  test('the context survives awaits', async () => {
    await otel.context.with(withRequestId(otel.ROOT_CONTEXT, 'async-request'), async () => {
      await new Promise((r) => setTimeout(r, 5));
      expect(currentRequestId()).toBe('async-request');
    });
  });

  test('request ids: short and plain ones kept, others replaced by a UUID', () => {
    expect(requestIdFrom('abc-DEF_123:4.5')).toBe('abc-DEF_123:4.5');
    for (const bad of [undefined, ['a-list-of', 'two-ids'], 'short', 'x'.repeat(65), 'new\nline-injected', 'quote"injected']) {
      expect(requestIdFrom(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
  });

  test('a lead workflow id loses its contact part in spans; other ids stay', () => {
    const masked = traceableWorkflowId('lead:chan-1:15551234567');
    expect(masked).toMatch(/^lead:chan-1:sha256:[0-9a-f]{16}$/);
    expect(masked).not.toContain('15551234567');
    expect(traceableWorkflowId('lead:chan-1:15551234567')).toBe(masked);
    expect(traceableWorkflowId('media:chan-1:abc')).toBe('media:chan-1:abc');
    expect(scrubWorkflowIds('Workflow not found: lead:chan-1:15551234567, run x')).toBe(`Workflow not found: ${masked}, run x`);
  });
});

test('the OTEL_* variables are in the config schema, .env.example and the README table, in step', () => {
  const root = path.join(__dirname, '..', '..');
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const envExample = readFileSync(path.join(root, '.env.example'), 'utf8');
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_SERVICE_NAME']) {
    expect(Object.keys(configSchema.shape)).toContain(name);
    expect(envExample).toMatch(new RegExp(`^${name}= `, 'm'));
    expect(readme).toMatch(new RegExp(`^\\| \`${name}\` \\| both \\|`, 'm'));
  }
  expect(readme).toMatch(/^## Request ids and traces$/m);
});
