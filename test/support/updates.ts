import { WorkflowUpdateFailedError } from '@temporalio/client';

/** The reason a workflow update was rejected with (its validator's or handler's message); fails the test when it was not rejected. */
export async function updateRejection(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return String((err as WorkflowUpdateFailedError).cause?.message);
}
