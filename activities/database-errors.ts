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
import { forDatabase, pgErrorCode } from '../services/db-util';
import { DATABASE_REJECTED, DATABASE_UNAVAILABLE } from '../workflows/lead/definitions';

/** Deterministic SQLSTATE classes: another try with the same input fails the same way. */
export function isDeterministicSqlState(code: string | undefined): boolean {
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}

const NAME = /^[A-Za-z0-9_.$-]{1,128}$/;

/** A named field of the driver error or its causes (postgres.js: constraint_name; PGlite: constraint). */
function field(err: unknown, names: string[]): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    for (const n of names) {
      const v = (e as Record<string, unknown>)[n];
      if (typeof v === 'string' && NAME.test(v)) return v;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether this is an error of the database layer (a driver error or drizzle's wrapper of one). */
function isDatabaseError(err: unknown): boolean {
  if (pgErrorCode(err) !== undefined) return true;
  const e = err as { name?: unknown; query?: unknown; params?: unknown; constructor?: { name?: string } } | undefined;
  return !!e && typeof e === 'object' && (e.constructor?.name === 'DrizzleQueryError' || (typeof e.query === 'string' && Array.isArray(e.params)));
}

/** The ApplicationFailure for a database error, or undefined when `err` is not one. */
export function databaseFailure(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure || !isDatabaseError(err)) return undefined;
  const code = pgErrorCode(err);
  const constraint = field(err, ['constraint_name', 'constraint']);
  const table = field(err, ['table_name', 'table']);
  const cause = (err as { cause?: { code?: unknown } }).cause;
  const network = typeof cause?.code === 'string' && /^E[A-Z]{2,20}$/.test(cause.code) ? cause.code : undefined;
  const where = [constraint && `constraint ${constraint}`, table && `table ${table}`].filter(Boolean).join(', ');
  const deterministic = isDeterministicSqlState(code);
  const message = `${deterministic ? 'the database refused the value' : 'database error'} (SQLSTATE ${code ?? network ?? 'unknown'}${where ? `, ${where}` : ''})`;
  return ApplicationFailure.create({
    type: deterministic ? DATABASE_REJECTED : DATABASE_UNAVAILABLE,
    message,
    nonRetryable: deterministic,
    details: [{ sqlState: code ?? null, constraint: constraint ?? null, table: table ?? null }],
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
