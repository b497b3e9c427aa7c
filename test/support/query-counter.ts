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

export interface RoundTripCounter {
  /** Statements run since installed or reset, those inside transactions included. */
  readonly statements: number;
  /** Top-level transactions opened (each adds a BEGIN and a COMMIT round trip). */
  readonly transactions: number;
  /** statements + 2 × transactions: what one unit of work costs in database round trips. */
  readonly roundTrips: number;
  reset(): void;
  restore(): void;
}

/**
 * Like countQueries, but also counts the statements run inside transactions (a transaction gets
 * a session of its own, which countQueries does not see) and the transactions themselves. It
 * patches the session class, so it counts every database of that driver in the process: use it
 * where one test runs at a time.
 */
export function countRoundTrips(db: Db): RoundTripCounter {
  const proto = Object.getPrototypeOf((db as unknown as { session: object }).session) as {
    prepareQuery: (...args: unknown[]) => unknown;
    transaction: (...args: unknown[]) => unknown;
  };
  const { prepareQuery, transaction } = proto;
  let statements = 0;
  let transactions = 0;
  proto.prepareQuery = function (this: unknown, ...args: unknown[]) {
    statements += 1;
    return prepareQuery.apply(this, args);
  };
  proto.transaction = function (this: unknown, ...args: unknown[]) {
    transactions += 1;
    return transaction.apply(this, args);
  };
  return {
    get statements() {
      return statements;
    },
    get transactions() {
      return transactions;
    },
    get roundTrips() {
      return statements + 2 * transactions;
    },
    reset() {
      statements = 0;
      transactions = 0;
    },
    restore() {
      proto.prepareQuery = prepareQuery;
      proto.transaction = transaction;
    },
  };
}
