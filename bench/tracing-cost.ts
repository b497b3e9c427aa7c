/**
 * `npx tsx bench/tracing-cost.ts [N]`
 *
 * CPU that request ids and traces add to one turn, tracing off (no OTLP endpoint) and on (spans
 * recorded and queued for export; the exporter points at a closed port, so nothing is sent:
 * the export's own cost is the batch processor's, off the turn's path), measured piece by piece
 * in this process: the API's request middleware, the Temporal client interceptor around
 * signalWithStart, the activity interceptor around a reply turn, and a log line with and without
 * the logger's mixin. The e2e bench (`npm run bench`) cannot resolve these on a shared 2-core
 * machine; compare the sum with its "cpu per answered lead".
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import * as otel from '@opentelemetry/api';
import { defaultPayloadConverter } from '@temporalio/common';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { Context as ActivityContext } from '@temporalio/activity';
import pino from 'pino';
import { requestContext } from '../api/middleware/request-context';
import { createLogger, REDACT_PATHS } from '../lib/logger';
import { createTracing } from '../lib/tracing';
import { ParleyActivityInboundInterceptor } from '../workers/tracing';

const N = Number(process.argv[2] ?? 20_000);

async function perOp(label: string, n: number, op: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(n, 2000); i += 1) await op(); // warm up
  const start = process.cpuUsage();
  for (let i = 0; i < n; i += 1) await op();
  const used = process.cpuUsage(start);
  const us = (used.user + used.system) / n;
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(8)} µs`);
  return us;
}

function fakeExchange(): { req: EventEmitter & { headers: Record<string, string>; method: string; baseUrl: string }; res: EventEmitter & { statusCode: number; setHeader(k: string, v: string): void } } {
  const req = Object.assign(new EventEmitter(), { headers: { 'x-request-id': 'bench-request-0001' }, method: 'POST', baseUrl: '' });
  const res = Object.assign(new EventEmitter(), { statusCode: 200, setHeader() {} });
  return { req, res };
}

async function main(): Promise<void> {
  const results: Record<string, Record<string, number>> = {};
  for (const mode of ['off', 'on'] as const) {
    console.log(`\ntracing ${mode}`);
    const tracing = createTracing({ serviceName: 'bench', ...(mode === 'on' ? { tracesUrl: 'http://127.0.0.1:9/v1/traces' } : {}) });
    const r: Record<string, number> = {};
    const middleware = requestContext({ tracer: tracing.tracer });
    r.request = await perOp('API: request id + server span + context (one request)', N, () => {
      const { req, res } = fakeExchange();
      middleware(req as never, res as never, () => undefined);
      res.emit('finish');
    });
    const client = new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer });
    r.client = await perOp('API: client interceptor around signalWithStart', N, () =>
      client.signalWithStart({ workflowType: 'leadConversation', headers: {}, options: { workflowId: 'lead:c:1', taskQueue: 'q' } } as never, async () => 'run-id'),
    );
    const header = { '_tracer-data': defaultPayloadConverter.toPayload({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` }) };
    const ctx = { info: { activityType: 'replyTurn', activityId: '2', attempt: 1, workflowExecution: { workflowId: 'lead:c:1', runId: 'r' } } } as unknown as ActivityContext;
    const input = { args: [{ messages: [{ trace: { requestId: 'bench-request-0001', traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` } }] }], headers: header };
    r.activity = await perOp('worker: activity interceptor around replyTurn', N, () => new ParleyActivityInboundInterceptor(ctx, tracing.tracer).execute(input as never, async () => undefined));
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const withMixin = createLogger({ destination: sink });
    const without = pino({ name: 'parley', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }, sink);
    const span = tracing.tracer.startSpan('x');
    await otel.context.with(otel.trace.setSpan(otel.ROOT_CONTEXT, span), async () => {
      r.logBase = await perOp('log line, the same logger without the mixin (reference)', N, () => without.info({ leadId: 'x' }, 'reply turn done'));
      r.log = await perOp('log line, Parley logger with the mixin, in a span', N, () => withMixin.info({ leadId: 'x' }, 'reply turn done'));
    });
    await tracing.shutdown().catch(() => undefined);
    results[mode] = r;
  }
  console.log(JSON.stringify({ benchmark: 'parley-tracing-cost', n: N, node: process.version, results }, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
