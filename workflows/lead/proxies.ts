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
    | 'contactSuppressed'
    | 'applyOptPhrase'
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
 * An ordinary reply turn in one activity (record, reserve, LLM, pace, send, capture): one try.
 * Any failure falls back to the step-by-step pipeline with the same ids, whose activities have
 * the retry policies above; room for the LLM's two models and the send. It heartbeats every
 * 5 s, so a worker that dies mid-turn is noticed in 20 s, not 4 minutes.
 *
 * Not a local activity: a local activity's input is not in the history until it completes, so
 * a turn whose completion was lost (a worker killed, the server restarting) runs again with the
 * same ids but with the messages that arrived meanwhile added, and the earlier attempt's reply
 * (found by those ids) then stands for messages it never saw (`npm run chaos` found it: two
 * messages with no reply). A scheduled activity's input is fixed in the history first.
 */
export const REPLY_TURN: ActivityOptions = { startToCloseTimeout: '4 minutes', heartbeatTimeout: '20 seconds', retry: { maximumAttempts: 1 } };
export const turn = proxyActivities<Group<'replyTurn'>>(REPLY_TURN);

/** Delivery: rate limits and transient provider errors retry; permanent and auth errors do not. */
export const DELIVERY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: [...DELIVERY_NON_RETRYABLE] },
};
export const delivery = proxyActivities<Group<'sendWhatsAppText' | 'sendWhatsAppTemplate' | 'sendInstagramText' | 'sendWebChatText' | 'sendRichMessage'>>(DELIVERY);

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
