/**
 * Token buckets in PostgreSQL (`rate_buckets`), shared by every worker and API process.
 *
 * Why the database and not a Temporal task queue: a worker's `maxTaskQueueActivitiesPerSecond`
 * limits a whole task queue, and Parley runs every lead on one queue. Meta's limits are per
 * business number (80 msg/s by default) and per (number, user) pair (about 1 message per 6 s),
 * tenants' API budgets are per tenant: thousands of keys, each with its own rate, changing at
 * run time. A task queue per number or per pair would mean a worker per key; an in-process
 * limiter would multiply the rate by the number of processes. One row per key in the database
 * every process already shares is exact across processes, costs one round trip per take, and
 * works the same on PostgreSQL and embedded PGlite.
 *
 * `take` is ONE atomic statement (INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING): the row
 * lock serializes concurrent takes of a key, the refill is computed from the database clock
 * (`now()`), never from the callers' clocks. Tokens may go negative down to
 * `-ratePerSec × maxWaitMs/1000`: such a take is a *reservation* of a definite future slot
 * (`waitMs` from now), so a caller sleeps once instead of polling. A take that would go deeper
 * is refused and consumes nothing; its `waitMs` says when the next slot is free.
 *
 * Rows of idle keys (a pair nobody wrote to for an hour) are deleted now and then: an idle
 * bucket is full, exactly what a fresh insert makes, so pruning changes no decision as long as
 * every bucket refills within the hour (burst / rate: ≤ 60 s for the limits Parley sets).
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { rowsOf } from './db-util';

export interface TakeOptions {
  /** Sustained rate: tokens added per second. */
  ratePerSec: number;
  /** Bucket size: how many takes may happen at once after a quiet period. */
  burst: number;
  /** Tokens this take needs (default 1). */
  cost?: number;
  /**
   * Longest reservation accepted: a take is granted when its slot is at most this far in the
   * future (default 0: only when a token is available now).
   */
  maxWaitMs?: number;
}

export interface TakeResult {
  /** Granted: the slot is reserved (use it after `waitMs`). Refused: nothing was consumed. */
  ok: boolean;
  /** Granted: how long until the reserved slot (0 = now). Refused: when a slot is free again. */
  waitMs: number;
  /** Whole tokens left after this take (0 when refused or reserved in the future). */
  remaining: number;
}

export interface RateLimiter {
  take(key: string, opts: TakeOptions): Promise<TakeResult>;
  /** Give back a granted take that was not used (e.g. a second limit refused the send). */
  release(key: string, opts: { burst: number; cost?: number }): Promise<void>;
  /** Delete buckets idle for longer than `idleMs` (they are full); returns how many. */
  prune(idleMs?: number): Promise<number>;
}

/** A bucket untouched this long is full for every rate Parley configures. */
export const IDLE_BUCKET_MS = 60 * 60 * 1000;

type Row = { granted: number | string | null; available: number | string | null };


function num(v: number | string | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

export function validateTake(opts: TakeOptions): { rate: number; burst: number; cost: number; maxDebt: number } {
  const cost = opts.cost ?? 1;
  const maxWaitMs = opts.maxWaitMs ?? 0;
  if (!(opts.ratePerSec > 0) || !Number.isFinite(opts.ratePerSec)) throw new RangeError(`ratePerSec must be > 0, got ${opts.ratePerSec}`);
  if (!(opts.burst >= 1) || !Number.isFinite(opts.burst)) throw new RangeError(`burst must be >= 1, got ${opts.burst}`);
  if (!(cost > 0) || !Number.isFinite(cost)) throw new RangeError(`cost must be > 0, got ${cost}`);
  if (!(maxWaitMs >= 0) || !Number.isFinite(maxWaitMs)) throw new RangeError(`maxWaitMs must be >= 0, got ${maxWaitMs}`);
  const maxDebt = (opts.ratePerSec * maxWaitMs) / 1000;
  if (cost > opts.burst + maxDebt) throw new RangeError(`cost ${cost} can never be granted with burst ${opts.burst} and maxWaitMs ${maxWaitMs}`);
  return { rate: opts.ratePerSec, burst: opts.burst, cost, maxDebt };
}

export function createRateLimiter(db: Db, options: { pruneEveryMs?: number; onPruneError?: (err: unknown) => void } = {}): RateLimiter {
  const pruneEveryMs = options.pruneEveryMs ?? 10 * 60 * 1000;
  let lastPrune = Date.now();

  const limiter: RateLimiter = {
    async take(key, opts) {
      const { rate, burst, cost, maxDebt } = validateTake(opts);
      if (pruneEveryMs > 0 && Date.now() - lastPrune > pruneEveryMs) {
        // at most once per interval per process, off the caller's path
        lastPrune = Date.now();
        limiter.prune().catch((err: unknown) => options.onPruneError?.(err));
      }
      // `refilled` = tokens now: what was left plus the refill since updated_at, at most burst.
      // GREATEST(0, …): a transaction that started before a concurrent one committed sees a
      // later updated_at; it gets no refill (conservative) rather than a negative one.
      const refilled = sql`LEAST(${burst}::float8, b.tokens::float8 + GREATEST(0::float8, EXTRACT(EPOCH FROM (now() - b.updated_at))::float8) * ${rate}::float8)`;
      const snapshot = sql`LEAST(${burst}::float8, s.tokens::float8 + GREATEST(0::float8, EXTRACT(EPOCH FROM (now() - s.updated_at))::float8) * ${rate}::float8)`;
      // The CTE grants or not (row lock, latest row version); the outer SELECT reads the row
      // as of the statement's snapshot, only to tell a refused caller when to come back.
      const result = await db.execute(sql`
        WITH up AS (
          INSERT INTO rate_buckets AS b (key, tokens, updated_at)
          VALUES (${key}, ${burst}::float8 - ${cost}::float8, now())
          ON CONFLICT (key) DO UPDATE
            SET tokens = ${refilled} - ${cost}::float8,
                updated_at = GREATEST(b.updated_at, now())
            WHERE ${refilled} - ${cost}::float8 >= -${maxDebt}::float8
          RETURNING b.tokens
        )
        SELECT (SELECT tokens::float8 FROM up) AS granted,
               (SELECT ${snapshot} FROM rate_buckets s WHERE s.key = ${key}) AS available`);
      const row = rowsOf<Row>(result)[0];
      const granted = num(row?.granted);
      if (granted !== null) {
        // float4 storage: a hair below zero is "now"
        const waitMs = granted >= -1e-4 ? 0 : Math.ceil((-granted / rate) * 1000);
        return { ok: true, waitMs, remaining: Math.max(0, Math.floor(granted + 1e-4)) };
      }
      const available = num(row?.available) ?? 0;
      const untilFree = Math.ceil(((cost - available) / rate) * 1000);
      // a stale snapshot can look better than the row that refused us: never answer "now"
      return { ok: false, waitMs: untilFree > 0 ? untilFree : Math.ceil((cost / rate) * 1000), remaining: 0 };
    },

    async release(key, opts) {
      const cost = opts.cost ?? 1;
      await db.execute(sql`UPDATE rate_buckets SET tokens = LEAST(${opts.burst}::float8, tokens::float8 + ${cost}::float8) WHERE key = ${key}`);
    },

    async prune(idleMs = IDLE_BUCKET_MS) {
      const result = await db.execute(sql`
        WITH gone AS (DELETE FROM rate_buckets WHERE updated_at < now() - make_interval(secs => ${idleMs / 1000}::float8) RETURNING 1)
        SELECT count(*)::int AS n FROM gone`);
      return Number(rowsOf<{ n: number | string }>(result)[0]?.n ?? 0);
    },
  };
  return limiter;
}
