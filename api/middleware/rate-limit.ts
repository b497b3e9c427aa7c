/**
 * API rate limits (OWASP API4) on the shared database limiter (services/rate-limit.ts), so the
 * budget holds across every API replica:
 *
 * - per tenant: `api:{tenantId}` at tenants.api_requests_per_minute ?? TENANT_API_REQUESTS_PER_MINUTE,
 *   a bucket of one minute's worth; every response carries RateLimit-Limit / RateLimit-Remaining,
 *   and a refused one is 429 `rate_limited` with Retry-After;
 * - per client IP, failed authentications: `authfail:{ip}` at AUTH_FAILURES_PER_MINUTE. A request
 *   that presented credentials and got 401 takes a token; once the bucket is empty the address
 *   gets 429 *before* its credentials are checked (so guessing is slowed, not just answered
 *   differently) until a token is back. The Meta webhooks count a refused X-Hub-Signature-256 the
 *   same way in `authfail:webhook:{ip}`; a blocked address still has a body verified by the
 *   deployment's secret (no database work) accepted there, so Meta's own deliveries are never
 *   held up by a neighbour.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { LimitService } from '../../services/limits';
import type { RateLimiter } from '../../services/rate-limit';
import type { TenantService } from '../../services/tenants';
import { requireTenant } from './auth';

export interface TenantRateLimitDeps {
  rateLimiter: Pick<RateLimiter, 'take'>;
  limits: Pick<LimitService, 'apiRequestsPerMinute'>;
}

const retryAfterSeconds = (waitMs: number) => Math.max(1, Math.ceil(waitMs / 1000));

/** After requireTenant: one token of `api:{tenantId}` per request (once, even if several routers authenticate it). */
export function tenantRateLimit(deps: TenantRateLimitDeps): RequestHandler {
  return async (_req: Request, res: Response, next: NextFunction) => {
    try {
      const tenantId = res.locals.tenantId as string | undefined;
      if (!tenantId || res.locals.apiRateLimited) return next();
      res.locals.apiRateLimited = true;
      const perMinute = await deps.limits.apiRequestsPerMinute(tenantId);
      const r = await deps.rateLimiter.take(`api:${tenantId}`, { ratePerSec: perMinute / 60, burst: perMinute });
      res.setHeader('RateLimit-Limit', String(perMinute));
      res.setHeader('RateLimit-Remaining', String(r.remaining));
      res.setHeader('RateLimit-Policy', `${perMinute};w=60`);
      if (!r.ok) {
        const seconds = retryAfterSeconds(r.waitMs);
        res.setHeader('Retry-After', String(seconds));
        return next(new AppError('rate_limited', `this tenant's API limit of ${perMinute} requests per minute is used up; retry in ${seconds} s`));
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Charges one API request, once its route's role check (api/access.ts `allow`) has decided:
 * an allowed request takes a token of the tenant's bucket (`api:{tenantId}`); a refused one
 * (403) takes a token of its key's own bucket (`api-refused:{keyId}`, same size), so a key whose
 * role does not fit cannot spend the tenant's budget and lock its owner out. Answers the error to
 * pass on (429), if any.
 */
export type ApiCharge = (allowed: boolean) => Promise<AppError | undefined>;

/** After requireTenant: a refused request's token from its key's own bucket (see ApiCharge). */
function refusedRateLimit(deps: TenantRateLimitDeps): RequestHandler {
  return async (_req: Request, res: Response, next: NextFunction) => {
    try {
      const key = res.locals.apiKey as { keyId: string; tenantId: string } | undefined;
      if (!key || res.locals.apiRateLimited) return next();
      res.locals.apiRateLimited = true;
      const perMinute = await deps.limits.apiRequestsPerMinute(key.tenantId);
      const r = await deps.rateLimiter.take(`api-refused:${key.keyId}`, { ratePerSec: perMinute / 60, burst: perMinute });
      if (!r.ok) {
        const seconds = retryAfterSeconds(r.waitMs);
        res.setHeader('Retry-After', String(seconds));
        return next(new AppError('rate_limited', `this API key was refused too often (${perMinute} per minute); retry in ${seconds} s`));
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Tenant API key auth, as one handler: what every /v1 tenant router mounts. The rate limit is
 * charged by the route's `allow()` once the role is decided (`res.locals.chargeApi`, ApiCharge).
 */
export function tenantAuth(services: TenantRateLimitDeps & { tenants: Pick<TenantService, 'authenticate'> }): RequestHandler {
  const auth = requireTenant(services.tenants);
  const allowed = tenantRateLimit(services);
  const refused = refusedRateLimit(services);
  return (req: Request, res: Response, next: NextFunction) => {
    void auth(req, res, (err?: unknown) => {
      if (err !== undefined) return next(err);
      if (!res.locals.chargeApi) {
        const charge: ApiCharge = (ok) => new Promise((resolve) => void (ok ? allowed : refused)(req, res, (e?: unknown) => resolve(e as AppError | undefined)));
        res.locals.chargeApi = charge;
      }
      next();
    });
  };
}

export interface AuthFailureGuardOptions {
  rateLimiter: Pick<RateLimiter, 'take'>;
  /** Failed authentications per minute per IP (also the burst); 0 = off. */
  perMinute: number;
  log: Logger;
  /** Only requests under these path prefixes are guarded (default /v1/ and /metrics). */
  prefixes?: string[];
  /** Addresses remembered as blocked in this process (bounded). */
  maxTracked?: number;
  /** Whether the request presented a credential (default: an Authorization header); only those count. */
  presented?: (req: Request) => boolean;
  /**
   * 'refuse' (default): a blocked address gets 429 at once. 'mark': the request goes on with
   * `res.locals.authFailureBlock = { retryAfterSeconds }`, for a route that can still accept what
   * it verifies without the database (the Meta webhooks: a body the deployment's secret signs).
   */
  onBlocked?: 'refuse' | 'mark';
  /** Bucket key prefix (default `authfail`): `{prefix}:{ip}`. */
  keyPrefix?: string;
  /** The answer that means "credential refused" (default 401; Meta's handshake refuses with 403). */
  refusedStatus?: number;
}

/**
 * Per-IP limit on failed authentication. The shared bucket counts failures across replicas;
 * each process remembers the addresses it was told are over, so a blocked address costs no
 * database work at all until its time is up.
 */
export function authFailureGuard(opts: AuthFailureGuardOptions): RequestHandler {
  const prefixes = opts.prefixes ?? ['/v1/', '/metrics'];
  const maxTracked = opts.maxTracked ?? 10_000;
  const blockedUntil = new Map<string, number>();
  const log = opts.log.child({ module: 'auth-guard' });

  return (req: Request, res: Response, next: NextFunction) => {
    // Express matches routes whatever the letter case (/WEBHOOKS/WhatsApp reaches the webhook), so the guard does too
    const path = req.path.toLowerCase();
    if (opts.perMinute <= 0 || !prefixes.some((p) => path.startsWith(p))) return next();
    const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const until = blockedUntil.get(ip);
    const now = Date.now();
    if (until !== undefined) {
      if (until > now) {
        if (opts.onBlocked === 'mark') {
          res.locals.authFailureBlock = { retryAfterSeconds: retryAfterSeconds(until - now) };
          return next();
        }
        res.setHeader('Retry-After', String(retryAfterSeconds(until - now)));
        return next(new AppError('rate_limited', 'too many failed authentication attempts from this address; retry later'));
      }
      blockedUntil.delete(ip);
    }
    // only a presented credential that was refused counts (no header: nothing was guessed)
    if (!(opts.presented ? opts.presented(req) : Boolean(req.headers.authorization))) return next();
    res.on('finish', () => {
      if (res.statusCode !== (opts.refusedStatus ?? 401)) return;
      opts.rateLimiter
        .take(`${opts.keyPrefix ?? 'authfail'}:${ip}`, { ratePerSec: opts.perMinute / 60, burst: opts.perMinute })
        .then((r) => {
          if (r.ok) return;
          if (blockedUntil.size >= maxTracked) blockedUntil.clear();
          blockedUntil.set(ip, Date.now() + r.waitMs);
          log.warn({ ip, retryAfterMs: r.waitMs }, 'too many failed authentications: address blocked');
        })
        .catch((err: unknown) => log.warn({ err }, 'could not count a failed authentication'));
    });
    next();
  };
}
