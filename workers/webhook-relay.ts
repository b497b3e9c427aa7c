/**
 * The outbox relay of outbound webhooks: every WEBHOOK_DISPATCH_INTERVAL_MS, the worker starts a
 * `webhookDeliveryWorkflow` for each delivery row not yet dispatched (written in the transaction
 * of the fact it reports), then marks it dispatched. The workflow id is the row's id and
 * generation, so a start repeated (a crash between start and mark, two workers racing) is refused
 * by Temporal and changes nothing: at-least-once start, exactly one workflow per delivery.
 * Refused while the first run is open by the id conflict policy (the default, FAIL), and after it
 * closed by the id reuse policy REJECT_DUPLICATE (the default, ALLOW_DUPLICATE, would start a
 * second run); both compare the id alone, not the task queue, so a row an older version started
 * on the main task queue is not started again on the webhook lane (test/integration/outbound-webhooks.test.ts).
 *
 * Why a relay and not a start from the activity that records the fact: the fact's transaction
 * and a Temporal start cannot commit together; a start after the commit is lost if the process
 * dies in between (and the retried activity finds the fact already recorded). The relay makes
 * the database the single source; its cost is one indexed query (a partial index on the
 * undispatched rows) per interval, and up to one interval of latency.
 */
import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { WebhookSettings } from '../activities/webhooks/deliver';
import type { Logger } from '../lib/logger';
import type { WebhookEndpointService } from '../services/webhook-endpoints';
import { WEBHOOK_DELIVERY_WORKFLOW_TYPE, webhookDeliveryWorkflowId, type webhookDeliveryWorkflow } from '../workflows/webhook-delivery';

const BATCH = 100;

export interface WebhookRelay {
  /** One pass (the loop calls it; tests may too): how many deliveries it started. */
  dispatchOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function startWebhookRelay(opts: {
  endpoints: WebhookEndpointService;
  client: Client;
  /** Where deliveries start: the webhook lane, `webhookTaskQueue(<task queue>)` (workers/worker.ts). */
  taskQueue: string;
  settings: WebhookSettings;
  log: Logger;
}): WebhookRelay {
  const log = opts.log.child({ module: 'webhook-relay' });
  const { settings } = opts;
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  async function dispatchOnce(): Promise<number> {
    let started = 0;
    for (;;) {
      const rows = await opts.endpoints.undispatched(BATCH);
      for (const row of rows) {
        try {
          await opts.client.workflow.start<typeof webhookDeliveryWorkflow>(WEBHOOK_DELIVERY_WORKFLOW_TYPE, {
            workflowId: webhookDeliveryWorkflowId(row.id, row.generation),
            // a manual retry is a new generation, so a new id: an id never needs a second run
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            taskQueue: opts.taskQueue,
            args: [
              {
                deliveryId: row.id,
                timeoutMs: settings.timeoutMs,
                retry: { initialIntervalMs: settings.retryInitialMs, maximumIntervalMs: settings.retryMaxIntervalMs, maxDurationMs: settings.retryMaxDurationMs },
              },
            ],
          });
          started++;
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
        await opts.endpoints.markDispatched(row.id, row.generation);
      }
      if (rows.length < BATCH || stopped) return started;
    }
  }

  const tick = () => {
    if (stopped) return;
    running = dispatchOnce()
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'webhook relay pass failed (the next one retries)'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, settings.dispatchIntervalMs);
      });
  };
  timer = setTimeout(tick, 0);

  return {
    dispatchOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
