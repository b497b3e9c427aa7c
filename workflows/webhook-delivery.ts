/**
 * One outbound webhook delivery (a row of webhook_deliveries, one event to one endpoint), started
 * by the worker's relay (workers/webhook-relay.ts) with id `webhook-delivery:{deliveryId}:{generation}`
 * (a manual retry is the next generation). The attempts are one activity retried by Temporal:
 * exponential backoff from `retry.initialIntervalMs`, at most `retry.maximumIntervalMs` apart
 * (1 hour by default), for `retry.maxDurationMs` in all (schedule-to-close, 3 days by default).
 * A final refusal (webhook_rejected: 3xx/4xx other than 408/429; a refused url; a deleted or
 * disabled endpoint) ends the retries at once. Then the delivery is marked succeeded or failed
 * (the endpoint is disabled after repeated failed deliveries). Never touches the lead workflow.
 *
 * It runs on the webhook lane, `webhookTaskQueue(<task queue>)`, where the relay starts it; its
 * activities take no task queue, so they run on the workflow's own queue: a delivery started on
 * the main queue by an older version finishes there (workers/worker.ts).
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { createWebhookActivities } from '../activities/webhooks/deliver';
import { FINAL_WEBHOOK_FAILURES } from '../contract/failures';

export const WEBHOOK_DELIVERY_WORKFLOW_TYPE = 'webhookDeliveryWorkflow';

export interface WebhookDeliveryInput {
  deliveryId: string;
  /** One attempt's HTTP timeout (the activity's start-to-close is this plus a margin). */
  timeoutMs: number;
  retry: { initialIntervalMs: number; maximumIntervalMs: number; maxDurationMs: number };
}

type WebhookActivities = ReturnType<typeof createWebhookActivities>;

const { finishWebhookDelivery } = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<{ succeeded: boolean; endpointDisabled: boolean }> {
  const { deliverWebhook } = proxyActivities<WebhookActivities>({
    startToCloseTimeout: input.timeoutMs + 15_000,
    scheduleToCloseTimeout: input.retry.maxDurationMs,
    retry: {
      initialInterval: input.retry.initialIntervalMs,
      backoffCoefficient: 2,
      maximumInterval: input.retry.maximumIntervalMs,
      nonRetryableErrorTypes: [...FINAL_WEBHOOK_FAILURES],
    },
    summary: 'Deliver the webhook',
  });
  let reason: string | undefined;
  try {
    const r = await deliverWebhook({ deliveryId: input.deliveryId });
    if (r.alreadyFinished) return { succeeded: true, endpointDisabled: false };
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    reason = cause instanceof ApplicationFailure ? `${cause.type ?? 'error'}: ${cause.message}` : (cause?.message ?? err.message);
  }
  const r = await finishWebhookDelivery({ deliveryId: input.deliveryId, succeeded: reason === undefined, reason });
  return { succeeded: reason === undefined, endpointDisabled: r.endpointDisabled };
}

/**
 * The webhook lane's task queue, next to the lead workflow's `taskQueue`: delivery workflows and
 * their activities, served by the worker's own slots for them (WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES).
 */
export function webhookTaskQueue(taskQueue: string): string {
  return `${taskQueue}-webhooks`;
}

/** The workflow id of a delivery's generation (0 first, +1 per manual retry). */
export function webhookDeliveryWorkflowId(deliveryId: string, generation: number): string {
  return `webhook-delivery:${deliveryId}:${generation}`;
}
