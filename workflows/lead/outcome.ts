/** What an activity failure says: its ApplicationFailure type and a readable reason. */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

export function failureReason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${(err.cause as Error).name}: ${err.cause.message}`;
  if (err instanceof ApplicationFailure) return `${err.name}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export function failureType(err: unknown): string | undefined {
  if (err instanceof ApplicationFailure) return err.type ?? undefined;
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;
}
