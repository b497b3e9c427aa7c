/** Small database facts shared by the services: timestamps, Postgres error codes, keyset pages. */
import { and, eq, gt, lt, or, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type { Db, DbTransaction } from '../db/client';
import { AppError } from '../lib/errors';

/** Postgres returns `2026-11-21 23:32:06.837+00`; the API speaks ISO 8601. */
export function toIso(ts: string | null | undefined): string | null {
  if (!ts) return null;
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toISOString();
}

/** SQLSTATE of a driver error (postgres.js and PGlite put it on the error or its cause). */
export function pgErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const NAME = /^[A-Za-z0-9_.$-]{1,128}$/;

/** A named field of a driver error or its causes (postgres.js: constraint_name; PGlite: constraint). */
function errorField(err: unknown, names: string[]): string | undefined {
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

/**
 * What may be said about a database error (postgres.js or PGlite, wrapped by drizzle or not)
 * without its values: the SQLSTATE (or the network error code), constraint and table. The
 * driver's message quotes the offending value and drizzle's adds the query's parameters, so
 * neither may reach a log or a Temporal failure. Undefined when `err` is not a database error.
 */
export function describeDatabaseError(err: unknown): { sqlState: string | null; constraint: string | null; table: string | null; message: string } | undefined {
  const code = pgErrorCode(err);
  const e = err as { query?: unknown; params?: unknown; constructor?: { name?: string }; cause?: { code?: unknown } } | undefined;
  const wrapped = !!e && typeof e === 'object' && (e.constructor?.name === 'DrizzleQueryError' || (typeof e.query === 'string' && Array.isArray(e.params)));
  if (code === undefined && !wrapped) return undefined;
  const constraint = errorField(err, ['constraint_name', 'constraint']);
  const table = errorField(err, ['table_name', 'table']);
  const network = typeof e?.cause?.code === 'string' && /^E[A-Z]{2,20}$/.test(e.cause.code) ? e.cause.code : undefined;
  const where = [constraint && `constraint ${constraint}`, table && `table ${table}`].filter(Boolean).join(', ');
  return { sqlState: code ?? null, constraint: constraint ?? null, table: table ?? null, message: `SQLSTATE ${code ?? network ?? 'unknown'}${where ? `, ${where}` : ''}` };
}

export const PG_UNIQUE_VIOLATION = '23505';
export const PG_CHECK_VIOLATION = '23514';
export const PG_FOREIGN_KEY_VIOLATION = '23503';

/** Run `fn` in the caller's transaction when there is one, else in a transaction of its own. */
export function inTransaction<T>(db: Db, tx: DbTransaction | undefined, fn: (tx: DbTransaction) => Promise<T>): Promise<T> {
  return tx ? fn(tx) : db.transaction(fn);
}

/** Opaque keyset cursor over (created_at, id). */
export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id]), 'utf8').toString('base64url');
}

/** One page of `limit` rows (the query fetched limit + 1) and the cursor to the next. */
export function keyset<T extends { createdAt: string; id: string }>(rows: T[], limit: number) {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { page, nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null };
}

/** A uuid as Postgres accepts it. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
/** A timestamptz as Postgres prints it (`2026-11-21 23:32:06.837123+00`) or as ISO 8601. */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|[+-](\d{2})(?::?[0-5]\d){0,2})$/;

/** True when Postgres will take `value` as a timestamptz (a forged cursor must be a 400, not a 500). */
function isTimestamp(value: string): boolean {
  const m = TIMESTAMP.exec(value);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (m[7] !== undefined && Number(m[7]) > 15) return false;
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return y >= 1000 && t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s;
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && isTimestamp(v[0]) && UUID.test(v[1])) {
      return { createdAt: v[0], id: v[1] };
    }
  } catch {
    /* fall through */
  }
  return undefined;
}

/**
 * The WHERE condition of the page after `cursor` in a list ordered by (created_at, id) in
 * `order`; undefined without a cursor. A cursor that does not decode is a 400.
 */
export function afterCursor(cols: { createdAt: PgColumn; id: PgColumn }, cursor: string | undefined, order: 'asc' | 'desc'): SQL | undefined {
  if (cursor === undefined) return undefined;
  const c = decodeCursor(cursor);
  if (!c) throw new AppError('bad_request', 'invalid cursor');
  const past = order === 'asc' ? gt : lt;
  return or(past(cols.createdAt, c.createdAt), and(eq(cols.createdAt, c.createdAt), past(cols.id, c.id)));
}

/** Opaque cursor over a list ordered by text keys (e.g. a template's name and language). */
export function encodeTextCursor(keys: string[]): string {
  return Buffer.from(JSON.stringify(['k', ...keys]), 'utf8').toString('base64url');
}

export function decodeTextCursor(cursor: string, arity: number): string[] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === arity + 1 && v[0] === 'k' && v.slice(1).every((x) => typeof x === 'string' && x.length <= 1000 && !x.includes('\u0000'))) {
      return v.slice(1) as string[];
    }
  } catch {
    /* fall through */
  }
  throw new AppError('bad_request', 'invalid cursor');
}

/** Opaque cursor over a bigserial sequence number. */
export function encodeSeqCursor(seq: number): string {
  return Buffer.from(`s:${seq}`, 'utf8').toString('base64url');
}

export function decodeSeqCursor(cursor: string): number | undefined {
  const m = /^s:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : undefined;
}

/**
 * Make a value safe to write (deeply, keys too), the one place every service and activity
 * input goes through: PostgreSQL text and jsonb cannot hold U+0000 (replaced with U+FFFD), and
 * jsonb refuses a lone UTF-16 surrogate (an emoji cut in half, e.g. by `slice`; made well
 * formed with U+FFFD). Either would make its insert fail on every retry.
 */
export function forDatabase<T>(value: T): T {
  if (typeof value === 'string') return wellFormedText(value) as T;
  if (Array.isArray(value)) return value.map((v) => forDatabase(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[wellFormedText(k)] = forDatabase(v);
    return out as T;
  }
  return value;
}

/** Whether two JSON values are equal regardless of object key order (jsonb does not keep the order it was given). */
export function sameJson(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([, x]) => x !== undefined)
              .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
              .map(([k, x]) => [k, canon(x)]),
          )
        : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/** @deprecated the same as forDatabase (kept for callers that still use the old name). */
export const withoutNul = forDatabase;

function wellFormedText(s: string): string {
  const noNul = s.includes('\u0000') ? s.split('\u0000').join('\uFFFD') : s;
  return noNul.toWellFormed();
}

/** Oldest and newest instants a provider timestamp may carry into the database. */
const EARLIEST_TIMESTAMP_MS = Date.UTC(2000, 0, 1);
const TIMESTAMP_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * A provider's timestamp bounded before it reaches a timestamptz column: unparseable, before
 * 2000 or more than a day ahead of `now` (Meta's 12-digit seconds, a year 33658 date that
 * PostgreSQL refuses) becomes `now`.
 */
export function boundedTimestamp(value: string | null | undefined, now: Date = new Date()): string {
  const t = value ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t) || t < EARLIEST_TIMESTAMP_MS || t > now.getTime() + TIMESTAMP_FUTURE_SKEW_MS) return now.toISOString();
  return new Date(t).toISOString();
}

/** drizzle's `execute` returns the rows (postgres.js) or `{ rows }` (PGlite). */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  const rows = (result as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as T[]) : [];
}
