/**
 * The lead workflow's activities, one typed proxy per group: each group has its own timeouts
 * and retry policy, and its type holds only the activities that policy fits (the LLM's
 * profile cannot be used for a send, nor a send's for the database).
 */
import { proxyActivities, proxyLocalActivities, type ActivityOptions, type LocalActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { DELIVERY_NON_RETRYABLE, EXTRACTION_NON_RETRYABLE, LLM_NON_RETRYABLE } from '../../contract/failures';

type Group<K extends keyof Activities> = Pick<Activities, K>;

/** Database work: retried until the database is back (nothing is lost while it is down); a refusal for good (database_rejected) is not retried. */
export const DATABASE: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
export const database = proxyActivities<
  Group<
    | 'recordInbound'
    | 'recordLeadEvent'
    | 'updateLeadState'
    | 'setLeadBlocked'
    | 'reserveCredit'
    | 'captureCredit'
    | 'releaseCredit'
    | 'parkDeadLetter'
    | 'loadDeadLetter'
    | 'resolveDeadLetter'
    | 'channelCircuitState'
    | 'recordExtractionFailure'
    | 'findOutbound'
  >
>(DATABASE);

/**
 * The start of a run (create or find the lead, the worker's settings) as a local activity: it
 * runs in the worker that runs the workflow task, one marker event and no task queue round trip.
 */
export const RUN_START: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  localRetryThreshold: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
export const runStart = proxyLocalActivities<Group<'ensureLead'>>(RUN_START);

/** LLM: a few tries with backoff; a rejected request (key, model, budget) is not retried. */
export const LLM: ActivityOptions = {
  startToCloseTimeout: '90 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 4, nonRetryableErrorTypes: [...LLM_NON_RETRYABLE] },
};
export const llm = proxyActivities<Group<'generateReply'>>(LLM);

/**
 * An ordinary reply turn in one LOCAL activity (record, reserve, LLM, pace, send, capture): one
 * try. It runs in the worker that runs the workflow task, so the turn costs one marker event and
 * no activity task, no extra workflow task (the loop goes on in the same workflow task when it
 * returns) and no trip through the task queue, and a live reply never waits behind queued
 * background activities. Any failure falls back to the step-by-step pipeline with the same ids,
 * whose activities have the retry policies above; room for the LLM's two models and the send.
 * A worker that dies mid-turn is noticed by the workflow task timeout; the next worker runs the
 * turn again with the same ids (it finds what the first try recorded, reserved and sent).
 */
export const REPLY_TURN: LocalActivityOptions = { startToCloseTimeout: '4 minutes', retry: { maximumAttempts: 1 } };
export const turn = proxyLocalActivities<Group<'replyTurn'>>(REPLY_TURN);

/** Delivery: rate limits and transient provider errors retry; permanent and auth errors do not. */
export const DELIVERY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: [...DELIVERY_NON_RETRYABLE] },
};
export const delivery = proxyActivities<Group<'sendWhatsAppText' | 'sendWhatsAppTemplate' | 'sendInstagramText' | 'sendWebChatText'>>(DELIVERY);

/** The delivery options with the deployment's number of tries. */
export function deliveryOptions(maxAttempts: number): ActivityOptions {
  return { ...DELIVERY, retry: { ...DELIVERY.retry, maximumAttempts: Math.max(1, maxAttempts) } };
}

/** Read receipt and typing indicator: best effort, a few quick tries. */
export const READ_RECEIPT: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 3 },
};
export const receipts = proxyActivities<Group<'markWhatsAppRead'>>(READ_RECEIPT);

/** Extraction: a few tries; repeated failure is recorded and counted, never fails the lead. */
export const EXTRACTION: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3, nonRetryableErrorTypes: [...EXTRACTION_NON_RETRYABLE] },
};
export const extraction = proxyActivities<Group<'extractLead'>>(EXTRACTION);
