/**
 * The webhook lane (workers/worker.ts): outbound webhook deliveries run on `<task queue>-webhooks`
 * with slots of their own, so an endpoint that answers only at the timeout holds those slots and
 * not the live lane's. The live lane here has 3 activity slots (WORKER_MAX_CONCURRENT_ACTIVITIES)
 * and the endpoint hangs every POST for WEBHOOK_TIMEOUT_MS (20 s): with three deliveries on the
 * live lane's queue, as before the lane existed, every live slot would be held and the lead's
 * reply (its turn is one activity) would wait for the POSTs to time out. The check does not
 * compare latencies (noisy on a loaded machine): the reply must reach the fake Graph API while
 * all three POSTs are still open at the receiver, which cannot happen when they hold the slots
 * the reply needs.
 *
 * The deliveries are started here as the relay starts them (workers/webhook-relay.ts), on the
 * queue it uses, for rows inserted already marked dispatched: this file's stack runs no relay
 * (test/support/stack.ts), and on one shared test database another file's relay would otherwise
 * take them. That the relay starts deliveries on this queue is checked in outbound-webhooks.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { inArray } from 'drizzle-orm';
import type { Worker } from '@temporalio/worker';
import { webhookDeliveries } from '../../db/schema';
import { DEFAULT_WEBHOOK_ACTIVITIES } from '../../workers/worker';
import { WEBHOOK_DELIVERY_WORKFLOW_TYPE, webhookDeliveryWorkflowId, webhookTaskQueue, type webhookDeliveryWorkflow } from '../../workflows/webhook-delivery';
import { bearer, createTenant, postWebhook, randomWaId, stackPerFile, textWebhook, waitFor, type Stack } from '../support/stack';

jest.setTimeout(120_000);

const LIVE_SLOTS = 3;
const HOLD_MS = 20_000;
const getStack = stackPerFile({ WORKER_MAX_CONCURRENT_ACTIVITIES: String(LIVE_SLOTS), WEBHOOK_TIMEOUT_MS: String(HOLD_MS) });
let stack: Stack;
beforeAll(() => {
  stack = getStack();
});

/** The slow endpoint: it reads each POST and answers none until the test releases them. */
interface Held {
  eventId: string;
  res: http.ServerResponse;
  /** The connection closed: answered, or given up by the sender. */
  closed: boolean;
}
const held: Held[] = [];
let receiver: http.Server;
let receiverUrl: string;
beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    req.resume();
    const h: Held = { eventId: String(req.headers['webhook-id']), res, closed: false };
    res.on('close', () => (h.closed = true));
    held.push(h);
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

const activitySlots = (w: Worker) => (w.options.tuner as unknown as { activityTaskSlotSupplier: { numSlots: number } }).activityTaskSlotSupplier.numSlots;

test('the lanes: the live lane has the configured activity slots, the webhook lane its own on `<task queue>-webhooks`', () => {
  expect(stack.worker.main.options.taskQueue).toBe(stack.taskQueue);
  expect(activitySlots(stack.worker.main)).toBe(LIVE_SLOTS);
  expect(stack.worker.webhooks.options.taskQueue).toBe(webhookTaskQueue(stack.taskQueue));
  expect(activitySlots(stack.worker.webhooks)).toBe(DEFAULT_WEBHOOK_ACTIVITIES);
  expect(DEFAULT_WEBHOOK_ACTIVITIES).toBeGreaterThanOrEqual(LIVE_SLOTS);
});

test('three deliveries hanging on a slow endpoint hold webhook-lane slots, not the live lane\'s: the lead is answered while all three wait', async () => {
  const t = await createTenant(stack, { credits: 10 });
  // subscribed to an event nothing here raises: the only deliveries are the rows below
  const endpoint = await stack.api
    .post('/v1/webhook-endpoints')
    .set(bearer(t.apiKey))
    .send({ url: `${receiverUrl}/slow`, events: ['channel.circuit_opened'] })
    .expect(201);
  const from = randomWaId();
  const sentTo = () => stack.graph.sentMessages().filter((r) => r.to === from);
  /** The lead writes; the time until its reply reached the fake Graph API. */
  const reply = async (text: string) => {
    const before = sentTo().length;
    const t0 = Date.now();
    await postWebhook(stack, textWebhook(t.phoneNumberId, from, text)).expect(200);
    const sent = await waitFor(() => sentTo()[before], { what: `the reply to "${text}"`, timeoutMs: 60_000 });
    return Date.parse(sent.at) - t0;
  };
  await reply('Hello, do you ship to Pune?');
  const quiet = await reply('And how much is shipping?');

  const db = stack.core.database.db;
  const rows = await db
    .insert(webhookDeliveries)
    .values(
      [1, 2, 3].map((i) => ({
        tenantId: t.tenantId,
        endpointId: endpoint.body.id as string,
        eventId: `evt-slow-${i}-${randomBytes(4).toString('hex')}`,
        eventType: 'channel.circuit_opened',
        payload: { type: 'channel.circuit_opened', timestamp: new Date().toISOString(), data: { n: i } },
        dispatchedAt: new Date().toISOString(),
      })),
    )
    .returning({ id: webhookDeliveries.id });
  const { config } = stack;
  const handles = await Promise.all(
    rows.map(({ id }) =>
      stack.temporal.client.workflow.start<typeof webhookDeliveryWorkflow>(WEBHOOK_DELIVERY_WORKFLOW_TYPE, {
        workflowId: webhookDeliveryWorkflowId(id, 0),
        taskQueue: webhookTaskQueue(stack.taskQueue),
        args: [{ deliveryId: id, timeoutMs: config.WEBHOOK_TIMEOUT_MS, retry: { initialIntervalMs: config.WEBHOOK_RETRY_INITIAL_MS, maximumIntervalMs: config.WEBHOOK_RETRY_MAX_INTERVAL_MS, maxDurationMs: config.WEBHOOK_RETRY_MAX_DURATION_MS } }],
      }),
    ),
  );
  await waitFor(() => held.length === 3, { what: 'three POSTs hanging at the endpoint' });
  const busy = await reply('Is there a discount for two?');
  // every POST still open when the reply went out: the reply's activity did not need their slots
  expect(held.map((h) => h.closed)).toEqual([false, false, false]);
  expect(busy).toBeLessThan(HOLD_MS / 2);
  console.info(`webhook lane: live reply ${quiet} ms with nothing else running, ${busy} ms with three deliveries hanging`);
  for (const h of handles) {
    const d = await h.describe();
    expect([d.status.name, d.taskQueue]).toEqual(['RUNNING', webhookTaskQueue(stack.taskQueue)]);
  }

  // the endpoint answers: the deliveries end, each at its first attempt
  for (const h of held) h.res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  for (const h of handles) await expect(h.result()).resolves.toEqual({ succeeded: true, endpointDisabled: false });
  const done = await db.select({ status: webhookDeliveries.status, attempts: webhookDeliveries.attempts }).from(webhookDeliveries).where(inArray(webhookDeliveries.id, rows.map((r) => r.id)));
  expect(done).toEqual([1, 2, 3].map(() => ({ status: 'succeeded', attempts: 1 })));
  expect(held).toHaveLength(3);
});
