import type { NextFunction, Request, Response } from 'express';
import { safeEqual } from '../../lib/crypto';
import { AppError } from '../../lib/errors';
import type { TenantService } from '../../services/tenants';

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1]?.trim();
}

/** Platform admin: `Authorization: Bearer $PARLEY_ADMIN_TOKEN` (constant-time compare). */
export function requireAdmin(adminToken: string | undefined) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const token = bearer(req);
    if (!adminToken) return next(new AppError('unauthorized', 'admin API disabled: PARLEY_ADMIN_TOKEN is not set'));
    if (!token || !safeEqual(token, adminToken)) return next(new AppError('unauthorized', 'missing or invalid admin token'));
    next();
  };
}

/** Tenant API key as bearer; sets `res.locals.tenantId` and `res.locals.apiKey` (the key's id and role, for api/access.ts). */
export function requireTenant(tenants: Pick<TenantService, 'authenticate'>) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      // several routers guard overlapping prefixes (/v1/leads/:leadId and /v1/leads): one lookup per request
      if (res.locals.apiKey) return next();
      const token = bearer(req);
      const principal = token ? await tenants.authenticate(token) : undefined;
      if (!principal) return next(new AppError('unauthorized', 'missing or invalid API key'));
      if (principal.suspended) return next(new AppError('forbidden', 'this tenant is suspended: its API keys are refused until the platform admin reactivates it', undefined, 'tenant_suspended'));
      res.locals.tenantId = principal.tenantId;
      res.locals.apiKey = principal;
      next();
    } catch (err) {
      next(err);
    }
  };
}
