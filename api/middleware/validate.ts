import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';

/** zod issues in the API's error shape. */
export function formatIssues(error: z.ZodError): { path: string; message: string; code: string }[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message, code: i.code }));
}

export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new AppError('validation_failed', `invalid ${where}`, formatIssues(r.error));
  return r.data;
}

/**
 * The query of every list route: `?limit=1..200&cursor=` (the cursor is opaque: the previous
 * page's `nextCursor`). Strict: an unknown parameter is a 400. Extend it for a list's filters.
 */
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Empty = the first page (`?cursor=${nextCursor ?? ''}` is a common client idiom). */
  cursor: z
    .string()
    .max(500)
    .optional()
    .transform((v) => (v === '' ? undefined : v)),
});

export type ValidateParts = { body?: z.ZodType; query?: z.ZodType; params?: z.ZodType };
type Parts = ValidateParts;

const PARTS = Symbol.for('parley.validateParts');

/** The schemas a `validate()` handler checks (for the OpenAPI document), if it is one. */
export function validatePartsOf(handler: unknown): ValidateParts | undefined {
  return typeof handler === 'function' ? (handler as { [PARTS]?: ValidateParts })[PARTS] : undefined;
}

/** Whether the request carries body bytes (`Content-Length: 0`, as some clients send on a bodiless POST, does not). */
function hasBytes(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** A request's Content-Type for an error message: its media type only, at most 100 characters. */
function contentTypeOf(req: Request): string {
  const raw = req.headers['content-type'];
  if (!raw) return 'no Content-Type';
  return JSON.stringify(raw.split(';')[0]!.trim().slice(0, 100));
}

/** One validation middleware: parsed values land in `res.locals.body/query/params`. */
export function validate(parts: Parts) {
  const handler = (req: Request, res: Response, next: NextFunction) => {
    try {
      if (parts.params) res.locals.params = parseOr400(parts.params, req.params, 'path parameters');
      if (parts.query) res.locals.query = parseOr400(parts.query, req.query, 'query');
      if (parts.body) {
        // a body in another type was never parsed: say so, not "every field missing"
        if (hasBytes(req) && !req.is('application/json')) {
          throw new AppError('unsupported_media_type', `send the body as JSON with the header Content-Type: application/json (got ${contentTypeOf(req)})`);
        }
        res.locals.body = parseOr400(parts.body, req.body ?? {}, 'body');
      }
      next();
    } catch (err) {
      next(err);
    }
  };
  return Object.assign(handler, { [PARTS]: parts });
}
