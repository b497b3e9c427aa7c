import type { NextFunction, Request, Response } from 'express';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { isAppError } from '../../lib/errors';
import { describeDatabaseError } from '../../services/db-util';
import type { Logger } from '../../lib/logger';

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

/**
 * The request path as it may be logged: a signed media url's path is its credential
 * (`GET /media/:token`, api/routes/media-library.ts), so its token is left out.
 */
export function loggablePath(path: string): string {
  return path.replace(/^\/media\/[^/]+/i, '/media/[redacted]');
}

/**
 * The one place errors become responses: `{ error: { code, message, issues? } }`.
 * Temporal errors map to 404/409/422; anything unknown is a 500 without internals.
 */
export function errorHandler(log: Logger) {
   
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    if (isAppError(err)) {
      const body: Record<string, unknown> = { code: err.reason ?? err.code, message: err.message };
      if (err.details !== undefined) body.issues = err.details;
      res.status(err.httpStatus).json({ error: body });
      return;
    }
    if (err instanceof WorkflowNotFoundError) {
      res.status(404).json({ error: { code: 'not_found', message: 'conversation workflow not found' } });
      return;
    }
    if (err instanceof WorkflowUpdateFailedError) {
      res.status(422).json({ error: { code: 'update_rejected', message: err.cause?.message ?? err.message } });
      return;
    }
    if (err && typeof err === 'object' && (err as { name?: string }).name === 'WorkflowExecutionAlreadyStartedError') {
      res.status(409).json({ error: { code: 'conflict', message: 'workflow already started' } });
      return;
    }
    const h = err as HttpishError;
    const status = h?.status ?? h?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // body-parser errors: bad JSON, too large, wrong encoding
      const code = status === 413 ? 'payload_too_large' : h.type === 'entity.parse.failed' ? 'invalid_json' : 'bad_request';
      res.status(status).json({ error: { code, message: h.expose && h.message ? h.message : 'bad request' } });
      return;
    }
    // a database error's own text quotes values (drizzle adds the query's parameters): log only its SQLSTATE
    const database = describeDatabaseError(err);
    log.error({ ...(database ? { database } : { err }), method: req.method, path: loggablePath(req.path) }, 'unhandled error');
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
  };
}
