/**
 * Who may call each route. Every route of the app declares exactly one rule among its handlers
 * (after the key check where the route does its own; test/integration/roles.test.ts walks the
 * app and fails on a route without one, then calls every tenant route with a key of every role):
 *
 * - `allow(...roles)`: a tenant API key whose role is listed (after the router's tenantAuth);
 *   any other role gets 403 before the route reads its input.
 * - `adminOnly()`: the platform admin token (PARLEY_ADMIN_TOKEN), checked by the router.
 * - `publicRoute(why)`: no credential (health, the web chat widget) or one the route checks
 *   itself (Meta's webhook signatures).
 *
 * | role | may |
 * | --- | --- |
 * | owner | everything, API keys included |
 * | manager | everything but API keys |
 * | agent | read leads and messages, send manual messages, hand off and back, change stage, cancel follow-ups |
 * | readonly | read (no API keys, no audit log) |
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ApiKeyRole } from '../contract/vocabulary';
import { AppError } from '../lib/errors';
import type { ApiKeyPrincipal } from '../services/api-keys';

export type AccessRule = { kind: 'roles'; roles: readonly ApiKeyRole[] } | { kind: 'admin' } | { kind: 'public'; why: string };

/** Where a rule is attached to its handler, for the route walk of the roles test. */
export const ACCESS_RULE = Symbol.for('parley.accessRule');

type Marked = RequestHandler & { [ACCESS_RULE]: AccessRule };

function mark(handler: RequestHandler, rule: AccessRule): Marked {
  return Object.assign(handler, { [ACCESS_RULE]: rule });
}

/** The rule a handler carries, if it is an access declaration. */
export function accessRuleOf(handler: unknown): AccessRule | undefined {
  return typeof handler === 'function' ? (handler as Partial<Marked>)[ACCESS_RULE] : undefined;
}

/** Read leads, their messages, media and extractions: every role. */
export const LEAD_READERS = ['owner', 'manager', 'agent', 'readonly'] as const satisfies readonly ApiKeyRole[];
/** Act on a conversation: manual messages, handoff and handback, stage, cancelling a scheduled follow-up. */
export const LEAD_ACTORS = ['owner', 'manager', 'agent'] as const satisfies readonly ApiKeyRole[];
/** Read the tenant's setup and accounts (agents, channels, templates, sequences, credits, dead letters, usage). */
export const SETUP_READERS = ['owner', 'manager', 'readonly'] as const satisfies readonly ApiKeyRole[];
/** Change the setup, run operations (sequence controls, replays, the circuit), read the audit log. */
export const MANAGERS = ['owner', 'manager'] as const satisfies readonly ApiKeyRole[];
/** API keys. */
export const OWNERS = ['owner'] as const satisfies readonly ApiKeyRole[];

/** Only keys with one of these roles; others get 403 (the key is valid, the role is not enough). */
export function allow(...roles: readonly ApiKeyRole[]): RequestHandler {
  const allowed = new Set<ApiKeyRole>(roles);
  return mark((req: Request, res: Response, next: NextFunction) => {
    const key = res.locals.apiKey as ApiKeyPrincipal | undefined;
    if (!key) return next(new AppError('unauthorized', 'missing or invalid API key'));
    const ok = allowed.has(key.role);
    const refusal = ok ? undefined : new AppError('forbidden', `an API key with role "${key.role}" may not ${req.method} this route (allowed: ${[...allowed].join(', ')})`);
    // the rate limit is charged once the role is decided: a refused call never spends the tenant's budget
    const charge = res.locals.chargeApi as ((allowed: boolean) => Promise<AppError | undefined>) | undefined;
    if (!charge) return next(refusal);
    charge(ok).then((limited) => next(limited ?? refusal), next);
  }, { kind: 'roles', roles: [...roles] });
}

/** The platform admin token; the router checks it (requireAdmin) before this marker runs. */
export function adminOnly(): RequestHandler {
  return mark((_req, _res, next) => next(), { kind: 'admin' });
}

/** No API key: the route checks what it needs itself (or needs nothing). `why` documents it. */
export function publicRoute(why: string): RequestHandler {
  return mark((_req, _res, next) => next(), { kind: 'public', why });
}
