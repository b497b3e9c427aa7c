/**
 * Request ids and traces (README): a webhook's request, the client's signalWithStart, the lead
 * workflow and the reply activity share one trace, exported over OTLP/HTTP (JSON, what
 * @opentelemetry/exporter-trace-otlp-http 0.57 sends) to a local receiver; the request id is
 * echoed, a bad one replaced, and the log lines of the request and of the turn name both ids.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { createTenant, postWebhook, randomPhoneNumberId, randomWaId, startStack, textWebhook, waitFor, workflowBundle, type Stack, type TenantFixture } from '../support/stack';
import { workflowSpanSinks } from '../../workers/tracing';
import { REQUEST_ID_PATTERN } from '../../lib/trace-context';
import { traceableWorkflowId } from '../../lib/tracing';
import { parleyDataConverter } from '../../temporal/data-converter';

jest.setTimeout(120_000);

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } };
type OtlpAttr = { key: string; value: OtlpValue };
const value = (v: OtlpValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.arrayValue?.values?.map(value);
const attrs = (list: OtlpAttr[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));

/** A plain OTLP/HTTP receiver: keeps every span of every POST to /v1/traces. */
async function startOtlpReceiver(): Promise<{ url: string; spans: ExportedSpan[]; contentTypes: Set<string>; close(): Promise<void> }> {
  const spans: ExportedSpan[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers['content-type']));
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const doc = JSON.parse(body.toString('utf8')) as {
        resourceSpans: { resource?: { attributes?: OtlpAttr[] }; scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttr[]; links?: { traceId: string; spanId: string }[] }[] }[] }[];
      };
      for (const rs of doc.resourceSpans) {
        const service = String(attrs(rs.resource?.attributes)['service.name']);
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            spans.push({ service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, kind: s.kind, attributes: attrs(s.attributes), links: s.links ?? [] });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    contentTypes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let stack: Stack;
let t: TenantFixture;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  stack = await startStack({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
  t = await createTenant(stack, { credits: 10 });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

const flush = () => Promise.all([stack.tracing.api.flush(), stack.tracing.worker.flush()]);

function logged(): Record<string, unknown>[] {
  return stack.logLines.flatMap((l) => l.split('\n').filter((x) => x.trim() !== '').map((x) => JSON.parse(x) as Record<string, unknown>));
}

async function spansOf(traceId: string, names: RegExp[], what: string): Promise<ExportedSpan[]> {
  return waitFor(
    async () => {
      await flush();
      const spans = receiver.spans.filter((s) => s.traceId === traceId);
      return names.every((n) => spans.some((s) => n.test(s.name))) ? spans : undefined;
    },
    { timeoutMs: 30_000, what },
  );
}

test('a webhook turn: request → signalWithStart → workflow → reply activity share one trace; logs name the request id and trace id', async () => {
  const from = randomWaId();
  const requestId = 'meta-delivery-0001';
  const res = await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hi, do you ship to Lisbon?')).set('x-request-id', requestId).expect(200);
  expect(res.headers['x-request-id']).toBe(requestId);
  await waitFor(() => stack.graph.sentMessages().some((r) => (r.body as { to?: string }).to === from), { timeoutMs: 60_000, what: 'the reply' });

  // the API's server span, found by its request id
  const server = await waitFor(
    async () => {
      await flush();
      return receiver.spans.find((s) => s.attributes['parley.request_id'] === requestId);
    },
    { what: 'the request span' },
  );
  expect(server).toMatchObject({ service: 'parley-api', name: 'POST /webhooks/whatsapp', kind: 2 /* SERVER */ });
  expect(server.attributes['http.response.status_code']).toBe(200);
  const spans = await spansOf(server.traceId, [/^SignalWithStartWorkflow:/, /^HandleSignal:/, /^StartActivity:replyTurn$/, /^RunActivity:replyTurn$/], 'the turn’s spans in one trace');
  const byName = (re: RegExp) => spans.find((s) => re.test(s.name))!;
  const client = byName(/^SignalWithStartWorkflow:/);
  expect(client.service).toBe('parley-api');
  expect(client.parentSpanId).toBe(server.spanId);
  // workflow spans come out of the sandbox through the sink, as the worker's
  const handled = byName(/^HandleSignal:/);
  expect(handled.service).toBe('parley-worker');
  expect(handled.parentSpanId).toBe(client.spanId);
  expect(byName(/^StartActivity:replyTurn$/).service).toBe('parley-worker');
  const activity = byName(/^RunActivity:replyTurn$/);
  expect(activity.service).toBe('parley-worker');
  expect(activity.attributes['parley.request_ids']).toEqual([requestId]);
  expect(receiver.contentTypes).toEqual(new Set(['application/json']));

  // no message text, phone number or contact name in any span of the trace
  const exported = JSON.stringify(spans);
  for (const secret of ['Lisbon', from, 'Priya']) expect(exported).not.toContain(secret);
  // the lead's workflow id is named by its hash, the same in both processes
  const wf = traceableWorkflowId(stack.leadWorkflowId(t.channelId, from));
  expect(client.attributes.temporalWorkflowId).toBe(wf);
  expect(handled.attributes.workflowId).toBe(wf);
  expect(activity.attributes.temporalWorkflowId).toBe(wf);

  // the reply turn's log line names the trace and the request it answers
  const turn = await waitFor(() => logged().find((l) => l.msg === 'reply turn done' && l.trace_id === server.traceId), { what: 'the turn log line' });
  expect(turn.requestIds).toBe(requestId);
  expect(turn.span_id).toBe(activity.spanId);

  // the traced history (headers on the start, the signal and every activity) replays to the same commands
  const history = await stack.temporal.client.workflow.getHandle(stack.leadWorkflowId(t.channelId, from)).fetchHistory();
  const { EventType } = temporal.api.enums.v1;
  const scheduled = (history.events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
  expect(scheduled.length).toBeGreaterThanOrEqual(1);
  expect(scheduled.every((e) => e.activityTaskScheduledEventAttributes?.header?.fields?.['_tracer-data'])).toBe(true);
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle(), sinks: workflowSpanSinks(undefined), dataConverter: parleyDataConverter(stack.core.payloadCodec) }, history, 'traced')).resolves.toBeUndefined();
});

test('a later turn of the same lead joins its own request’s trace (linked to the workflow’s), not the first one’s', async () => {
  const from = randomWaId();
  await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'Hello')).set('x-request-id', 'turn-one-request').expect(200);
  await waitFor(() => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === from).length === 1, { timeoutMs: 60_000, what: 'the first reply' });
  const res = await postWebhook(stack, textWebhook(t.phoneNumberId, from, 'And the price?')).set('x-request-id', 'turn-two-request').expect(200);
  expect(res.headers['x-request-id']).toBe('turn-two-request');
  await waitFor(() => stack.graph.sentMessages().filter((r) => (r.body as { to?: string }).to === from).length === 2, { timeoutMs: 60_000, what: 'the second reply' });
  const second = await waitFor(
    async () => {
      await flush();
      return receiver.spans.find((s) => s.attributes['parley.request_id'] === 'turn-two-request');
    },
    { what: 'the second request span' },
  );
  const first = receiver.spans.find((s) => s.attributes['parley.request_id'] === 'turn-one-request')!;
  expect(second.traceId).not.toBe(first.traceId);
  const spans = await spansOf(second.traceId, [/^SignalWorkflow:|^SignalWithStartWorkflow:/, /^HandleSignal:/, /^RunActivity:replyTurn$/], 'the second turn’s spans');
  const activity = spans.find((s) => s.name === 'RunActivity:replyTurn')!;
  expect(activity.attributes['parley.request_ids']).toEqual(['turn-two-request']);
  // linked to the workflow's own trace (started by the first request)
  expect(activity.links.map((l) => l.traceId)).toContain(first.traceId);
  const turn = await waitFor(() => logged().find((l) => l.msg === 'reply turn done' && l.requestIds === 'turn-two-request'), { what: 'the second turn log line' });
  expect(turn.trace_id).toBe(second.traceId);
});

test('X-Request-Id: kept when short and plain, replaced when not, on unauthenticated requests too; request log lines carry it', async () => {
  const kept = await stack.api.get('/v1/leads').set('x-request-id', 'client-id_01:abc.def').expect(401);
  expect(kept.headers['x-request-id']).toBe('client-id_01:abc.def');
  for (const bad of ['x'.repeat(65), 'short', 'has space in it', 'semi;colon;value', '<script>alert(1)</script>']) {
    const r = await stack.api.get('/v1/leads').set('x-request-id', bad).expect(401);
    expect(r.headers['x-request-id']).not.toBe(bad);
    expect(r.headers['x-request-id']).toMatch(REQUEST_ID_PATTERN);
  }
  const fresh = await stack.api.get('/livez');
  expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

  // the access log (LOG_REQUESTS=all): one line per request, with the route pattern, never the path or query
  const access = await waitFor(() => logged().find((l) => l.module === 'http' && l.requestId === 'client-id_01:abc.def'), { what: 'the access log line' });
  // refused by a router-wide guard before a route matched: the path's shape
  expect(access).toMatchObject({ msg: 'request', method: 'GET', path: '/v1/leads', status: 401 });
  expect(logged().find((l) => l.module === 'http' && l.requestId === fresh.headers['x-request-id'])).toMatchObject({ path: '/livez', status: 404 });
  const health = await stack.api.get('/healthz').expect(200);
  const healthLine = await waitFor(() => logged().find((l) => l.module === 'http' && l.requestId === health.headers['x-request-id']), { what: 'the healthz line' });
  expect(healthLine).toMatchObject({ route: '/healthz', status: 200 });
  expect(typeof access.ms).toBe('number');
  const token = 'A'.repeat(40);
  await stack.api.get(`/media/${token}?secret=visible-query-value`).set('x-request-id', 'media-token-req');
  const mediaLine = await waitFor(() => logged().find((l) => l.module === 'http' && l.requestId === 'media-token-req'), { what: 'the media access line' });
  expect(JSON.stringify(mediaLine)).not.toContain(token);
  expect(JSON.stringify(mediaLine)).not.toContain('visible-query-value');

  // a webhook for an unknown number: its warning (written after the raw body was read) names the request and its trace
  const requestId = 'unknown-number-req';
  await postWebhook(stack, textWebhook(randomPhoneNumberId(), randomWaId(), 'hello')).set('x-request-id', requestId).expect(200);
  const line = await waitFor(() => logged().find((l) => l.requestId === requestId && /unknown phone_number_id/.test(String(l.msg))), { what: 'the webhook warning' });
  expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
  const server = await waitFor(
    async () => {
      await flush();
      return receiver.spans.find((s) => s.attributes['parley.request_id'] === requestId);
    },
    { what: 'its span' },
  );
  expect(line.trace_id).toBe(server.traceId);
  // no log line outside a request claims a request id it was not written for
  expect(logged().filter((l) => l.requestId === requestId).every((l) => l.trace_id === server.traceId)).toBe(true);
});

test('a web chat message: its request id is echoed, logged after the body is read, and named by the reply turn in its trace', async () => {
  const ch = await stack.api.post('/v1/channels').set('authorization', `Bearer ${t.apiKey}`).send({ platform: 'webchat', agentId: t.agentId, displayPhoneNumber: 'Acme support' }).expect(201);
  const widgetKey = ch.body.widgetKey as string;
  const visitor = await stack.api.post(`/webchat/${widgetKey}/visitors`).send({}).expect(201);
  const requestId = 'webchat-request-01';
  const res = await stack.api
    .post(`/webchat/${widgetKey}/messages`)
    .set('authorization', `Bearer ${visitor.body.visitorToken as string}`)
    .set('x-request-id', requestId)
    .send({ text: 'Do you deliver on Sundays?', clientMessageId: 'm-1' })
    .expect(202);
  expect(res.headers['x-request-id']).toBe(requestId);
  const accepted = await waitFor(() => logged().find((l) => l.requestId === requestId && l.msg === 'web chat message accepted'), { what: 'the accepted line' });
  expect(accepted.trace_id).toMatch(/^[0-9a-f]{32}$/);
  const turn = await waitFor(() => logged().find((l) => l.msg === 'reply turn done' && l.requestIds === requestId), { timeoutMs: 60_000, what: 'the web chat turn' });
  expect(turn.trace_id).toBe(accepted.trace_id);
});
