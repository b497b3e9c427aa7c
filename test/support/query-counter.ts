/**
 * Counts the SQL statements a drizzle database runs, whichever driver is behind it (postgres.js
 * or PGlite): every query builder and `db.execute` goes through the session's `prepareQuery`.
 * For abuse tests and benchmarks that bound the database work of one request.
 */
import type { Db } from '../../db/client';

export interface QueryCounter {
  /** Statements run since the counter was installed or last reset. */
  readonly count: number;
  reset(): void;
  /** Put the session back as it was. */
  restore(): void;
}

export function countQueries(db: Db): QueryCounter {
  const session = (db as unknown as { session: { prepareQuery: (...args: unknown[]) => unknown } }).session;
  const original = session.prepareQuery;
  let count = 0;
  session.prepareQuery = function (this: unknown, ...args: unknown[]) {
    count += 1;
    return original.apply(this, args);
  };
  return {
    get count() {
      return count;
    },
    reset() {
      count = 0;
    },
    restore() {
      session.prepareQuery = original;
    },
  };
}
