/**
 * Database errors as Temporal sees them. Every activity runs through `withDatabaseErrors`:
 *
 * - its input is made safe to write first (`forDatabase`: no NUL, no lone surrogate), the one
 *   place every activity's strings pass before any service writes them;
 * - a driver error (postgres.js or PGlite, possibly wrapped by drizzle) leaves as an
 *   ApplicationFailure whose message names only the SQLSTATE, the constraint and the table,
 *   never the query's parameters (message text, names, numbers) nor the server's message
 *   (which quotes the offending value);
 * - SQLSTATE class 22 (data exception) and 23 (integrity constraint violation) are
 *   deterministic: non-retryable `database_rejected`, which the lead workflow parks instead of
 *   retrying forever. Anything else is a retryable `database_unavailable`.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../contract/failures';
import { describeDatabaseError, forDatabase } from '../services/db-util';

/** Deterministic SQLSTATE classes: another try with the same input fails the same way. */
export function isDeterministicSqlState(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}

/** The ApplicationFailure for a database error, or undefined when `err` is not one. */
export function databaseFailure(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure) return undefined;
  const facts = describeDatabaseError(err);
  if (!facts) return undefined;
  const deterministic = isDeterministicSqlState(facts.sqlState ?? undefined);
  return ApplicationFailure.create({
    type: deterministic ? FailureType.DatabaseRejected : FailureType.DatabaseUnavailable,
    message: `${deterministic ? 'the database refused the value' : 'database error'} (${facts.message})`,
    nonRetryable: deterministic,
    details: [{ sqlState: facts.sqlState, constraint: facts.constraint, table: facts.table }],
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyActivity = (...args: any[]) => Promise<any>;

/** Wrap every activity: inputs made safe to write, database errors classified and scrubbed. */
export function withDatabaseErrors<T extends Record<string, AnyActivity>>(activities: T): T {
  const out: Record<string, AnyActivity> = {};
  for (const [name, fn] of Object.entries(activities)) {
    out[name] = async (...args: unknown[]) => {
      try {
        return await fn(...args.map((a) => forDatabase(a)));
      } catch (err) {
        throw databaseFailure(err) ?? err;
      }
    };
    Object.defineProperty(out[name], 'name', { value: name });
  }
  return out as T;
}
