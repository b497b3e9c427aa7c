import { Context } from '@temporalio/activity';

/**
 * The running activity's cancellation signal (aborted when Temporal cancels the attempt: a
 * heartbeat or start-to-close timeout, a workflow's cancel, the worker shutting down); undefined
 * outside an activity, as when a test calls the function directly.
 */
export function activityCancellationSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
