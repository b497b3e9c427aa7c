import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../lib/logger';
import { describeDatabaseError } from '../../services/db-util';
import type { ApiKeyPrincipal } from '../../services/api-keys';
import type { AuditLogService } from '../../services/audit-log';

/** What a route may add to its audit entry: a setting's value before and after the change. */
export interface AuditNote {
  before?: unknown;
  after?: unknown;
  /** Replaces the route's ids as the target (a route whose ids are personal data, e.g. a contact's phone number). */
  target?: Record<string, string>;
}

const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The audit log of the tenant API: every change a tenant API key made (POST, PUT, PATCH,
 * DELETE answered 2xx) is recorded before its answer goes out, so a client that got the
 * answer finds the entry: the key and its role, `METHOD /route/pattern`, the route's ids, the
 * status, the request body (secrets redacted by the service), and `res.locals.audit`'s
 * before/after when the route set it (else the answer as `after`, secrets redacted).
 * A failed write is logged and the answer still goes out: the change is already made.
 */
export function auditChanges(deps: { auditLog: Pick<AuditLogService, 'record'>; log: Logger }) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!CHANGES.has(req.method)) return next();
    const json = res.json.bind(res);
    res.json = (body?: unknown) => {
      const key = res.locals.apiKey as ApiKeyPrincipal | undefined;
      if (!key || res.statusCode < 200 || res.statusCode >= 300 || !req.route) return json(body);
      const note = res.locals.audit as AuditNote | undefined;
      const params = Object.fromEntries(Object.entries(req.params ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
      const send = () => {
        try {
          json(body);
        } catch (err) {
          next(err);
        }
      };
      deps.auditLog
        .record({
          tenantId: key.tenantId,
          actorKeyId: key.keyId,
          actorRole: key.role,
          action: `${req.method} ${req.baseUrl}${String(req.route.path)}`,
          target: note?.target ?? params,
          status: res.statusCode,
          request: note?.target ? undefined : res.locals.body,
          before: note?.before,
          after: note && 'after' in note ? note.after : body,
        })
        .catch((err: unknown) => {
          // never the driver's message: it quotes the row's values (message text, names)
          const db = describeDatabaseError(err);
          deps.log.error({ error: db ? db.message : err instanceof Error ? err.name : 'unknown', action: `${req.method} ${String(req.route?.path)}` }, 'audit log write failed');
        })
        .finally(send);
      return res;
    };
    next();
  };
}
