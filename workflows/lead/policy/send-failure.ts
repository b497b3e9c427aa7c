/**
 * What a failed send leads to, once Temporal's retries for it are spent or it failed for good.
 * Pure: the workflow records the events, moves the credit and the state as the answer says.
 */
import { CIRCUIT_WAIT_FAILURES, DELIVERY_NON_RETRYABLE, failureIn, FailureType, PERMANENT_SEND_FAILURES } from '../../../contract/failures';
import type { TemplateRef } from './window';

/** 131049: Meta limits marketing messages to this user; try again after at least a day. */
export const SPAM_LIMIT_WAIT_MS = 25 * 60 * 60 * 1000;

export interface SendFailureInput {
  /** The ApplicationFailure type the send activity failed with (undefined: a timeout, a crash). */
  type: string | undefined;
  now: string;
  /** How often this operation was parked or deferred before. */
  attempts: number;
  /** The operation is a dead letter being replayed (a new failure parks it again). */
  replaying: boolean;
  /** Whether the message already is a template. */
  isTemplate: boolean;
  /** After a 131047 (window closed by the provider): the template this send may take instead, if any. */
  templateAfterClose?: TemplateRef;
}

export type SendFailureAction =
  /** The channel's credentials are bad or its breaker is open: wait for it to close, then send the same message. */
  | { action: 'wait_for_circuit' }
  /** The provider closed the window: send the template instead (same credit, new outbound id). */
  | { action: 'switch_to_template'; template: TemplateRef }
  /** The provider closed the window and there is no template path: refused, credit released. */
  | { action: 'refuse'; reason: 'window_closed' }
  /** Another try cannot help: recorded as failed, credit released. */
  | { action: 'fail' }
  /** 131049: try the same message once more at `retryAt` (credit held). */
  | { action: 'defer'; retryAt: string }
  /** Retries ran out (transient errors, timeouts): a dead letter for an admin (credit held). */
  | { action: 'park' };

export function onSendFailure(input: SendFailureInput): SendFailureAction {
  const { type } = input;
  if (failureIn(CIRCUIT_WAIT_FAILURES, type)) return { action: 'wait_for_circuit' };
  if (type === FailureType.ProviderReengagement) {
    if (input.templateAfterClose && !input.isTemplate) return { action: 'switch_to_template', template: input.templateAfterClose };
    return { action: 'refuse', reason: 'window_closed' };
  }
  if (type && PERMANENT_SEND_FAILURES.has(type)) return { action: 'fail' };
  if (type === FailureType.ProviderSpamLimited && !input.replaying && input.attempts === 0) {
    return { action: 'defer', retryAt: new Date(new Date(input.now).getTime() + SPAM_LIMIT_WAIT_MS).toISOString() };
  }
  return { action: 'park' };
}

/** Whether the send activity's retry policy gives up at once on this type (the policy above decides the rest). */
export function isNonRetryableSendFailure(type: string | undefined): boolean {
  return failureIn(DELIVERY_NON_RETRYABLE, type);
}
