import { ApplicationFailure } from '@temporalio/common';
import type { Request, Response } from 'express';
import { errorHandler } from '../../api/middleware/errors';
import type { Logger } from '../../lib/logger';
import { databaseFailure, isDeterministicSqlState, withDatabaseErrors } from '../../activities/database-errors';
import { boundedTimestamp, forDatabase } from '../../services/db-util';

/** Errors shaped like the drivers': postgres.js PostgresError, PGlite DatabaseError, drizzle's wrapper. */
function postgresJsError(code: string, message: string) {
  return Object.assign(new Error(message), { name: 'PostgresError', code, constraint_name: 'lead_events_lead_id_leads_id_fk', table_name: 'lead_events', detail: 'Key (lead_id)=(secret) is not present' });
}
function pgliteError(code: string, message: string) {
  return Object.assign(new Error(message), { name: 'error', code, constraint: 'messages_provider_message_id_uq', table: 'messages' });
}
class DrizzleQueryError extends Error {
  constructor(
    public query: string,
    public params: unknown[],
    public override cause?: Error,
  ) {
    super(`Failed query: ${query}\nparams: ${params.join(',')}`);
  }
}

describe('database failures', () => {
  test('classes 22 and 23 are deterministic, others are not', () => {
    expect(['22P05', '22007', '22008', '23503', '23505', '23514'].every(isDeterministicSqlState)).toBe(true);
    expect(['08006', '40001', '57P01', '53300', undefined].some(isDeterministicSqlState)).toBe(false);
  });

  test('postgres.js and PGlite errors, wrapped by drizzle, become one non-retryable type without values', () => {
    for (const cause of [postgresJsError('22P05', 'unsupported Unicode escape sequence "\\ud83d"'), pgliteError('23505', 'duplicate key value "wamid.secret"')]) {
      const f = databaseFailure(new DrizzleQueryError('insert into x values ($1)', ['Priya +919876543210'], cause))!;
      expect(f).toBeInstanceOf(ApplicationFailure);
      expect(f.type).toBe('database_rejected');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/SQLSTATE (22P05|23505), constraint \w+, table \w+/);
      expect(f.message).not.toMatch(/Priya|9198|secret|ud83d|insert into/);
    }
  });

  test('a connection error is retryable and scrubbed too', () => {
    const f = databaseFailure(new DrizzleQueryError('select $1', ['Priya'], Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))!;
    expect(f).toMatchObject({ type: 'database_unavailable', nonRetryable: false });
    expect(f.message).toBe('database error (SQLSTATE ECONNREFUSED)');
  });

  test('other errors pass through untouched', () => {
    const own = ApplicationFailure.create({ type: 'provider_auth', nonRetryable: true });
    expect(databaseFailure(own)).toBeUndefined();
    expect(databaseFailure(new Error('boom'))).toBeUndefined();
  });

  test('withDatabaseErrors makes inputs safe and translates what the activity throws', async () => {
    const seen: unknown[] = [];
    const acts = withDatabaseErrors({
      async write(input: { text: string }) {
        seen.push(input);
        throw new DrizzleQueryError('insert', [input.text], postgresJsError('23503', 'fk'));
      },
    });
    await expect(acts.write({ text: 'cut \uD83D and \u0000' })).rejects.toMatchObject({ type: 'database_rejected', nonRetryable: true });
    expect(seen).toEqual([{ text: 'cut \uFFFD and \uFFFD' }]);
    expect(acts.write.name).toBe('write');
  });
});

describe('values made safe for the database', () => {
  test('forDatabase: no NUL, no lone surrogate, deeply (keys too); other values untouched', () => {
    const d = new Date(0);
    expect(forDatabase({ a: ['x\u0000', { 'k\uDC00': 'ok 😀' }], n: 1, d })).toEqual({ a: ['x\uFFFD', { 'k\uFFFD': 'ok 😀' }], n: 1, d });
  });
  test('boundedTimestamp: Meta\'s 12-digit seconds and garbage become now', () => {
    const now = new Date('2026-11-29T07:00:00Z');
    expect(boundedTimestamp(new Date(999_999_999_999 * 1000).toISOString(), now)).toBe(now.toISOString());
    expect(boundedTimestamp('2026-11-29T06:00:00Z', now)).toBe('2026-11-29T06:00:00.000Z');
    expect(boundedTimestamp(undefined, now)).toBe(now.toISOString());
  });
});

describe('the API\'s error handler', () => {
  test('logs a database error by SQLSTATE, constraint and table, never its text or parameters', () => {
    const logged: unknown[] = [];
    const log = { error: (obj: unknown) => logged.push(obj) } as unknown as Logger;
    const res = { headersSent: false, status: () => ({ json: () => undefined }) } as unknown as Response;
    const err = new DrizzleQueryError('select * from leads where contact_id = $1', ['+919876543210'], postgresJsError('22P02', 'invalid input syntax for type uuid: "+919876543210"'));
    errorHandler(log)(err, { method: 'GET', path: '/v1/leads/x' } as Request, res, () => undefined);
    const line = JSON.stringify(logged);
    expect(line).toContain('22P02');
    expect(line).not.toContain('9198765');
    expect(line).not.toContain('select *');
  });
});
