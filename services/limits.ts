/**
 * Per-tenant limits (OWASP API4, unrestricted resource consumption): the tenant API's
 * requests per minute and the LLM spend per UTC day. A tenant's own value (tenants row) wins;
 * null means the deployment default from config.
 */
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { tenants } from '../db/schema';
import { AppError } from '../lib/errors';

export interface LimitDefaults {
  apiRequestsPerMinute: number;
  /** micro-USD per UTC day; 0 = no LLM. */
  llmDailyBudgetMicros: number;
}

/** The config defaults (TENANT_API_REQUESTS_PER_MINUTE, LLM_DAILY_BUDGET_MICROS), for callers that pass none. */
export const DEFAULT_LIMITS: LimitDefaults = { apiRequestsPerMinute: 600, llmDailyBudgetMicros: 50_000_000 };

export interface TenantLimits {
  /** What applies now (the tenant's value or the default). */
  apiRequestsPerMinute: number;
  llmDailyBudgetMicros: number;
  /** The tenant's own values (null = the default applies). */
  overrides: { apiRequestsPerMinute: number | null; llmDailyBudgetMicros: number | null };
}

export interface LlmBudget {
  /** UTC day the spend is counted for (YYYY-MM-DD). */
  day: string;
  spentMicros: number;
  budgetMicros: number;
  remainingMicros: number;
  exceeded: boolean;
}

/** How long an API process trusts a cached per-tenant API limit (another process may change it). */
const CACHE_MS = 10_000;
const CACHE_MAX = 10_000;

export function createLimitService(db: Db, defaults: LimitDefaults = DEFAULT_LIMITS) {
  const apiLimitCache = new Map<string, { perMinute: number; until: number }>();

  async function get(tenantId: string): Promise<TenantLimits | undefined> {
    const [t] = await db
      .select({ api: tenants.apiRequestsPerMinute, llm: tenants.llmDailyBudgetMicros })
      .from(tenants)
      .where(eq(tenants.id, tenantId));
    if (!t) return undefined;
    return {
      apiRequestsPerMinute: t.api ?? defaults.apiRequestsPerMinute,
      llmDailyBudgetMicros: t.llm ?? defaults.llmDailyBudgetMicros,
      overrides: { apiRequestsPerMinute: t.api, llmDailyBudgetMicros: t.llm },
    };
  }

  return {
    defaults,
    get,

    /** Set (a number) or clear (null) a tenant's own limits; omitted fields stay as they are. */
    async update(tenantId: string, patch: { apiRequestsPerMinute?: number | null; llmDailyBudgetMicros?: number | null }): Promise<TenantLimits> {
      const set: Partial<typeof tenants.$inferInsert> = {};
      if (patch.apiRequestsPerMinute !== undefined) set.apiRequestsPerMinute = patch.apiRequestsPerMinute;
      if (patch.llmDailyBudgetMicros !== undefined) set.llmDailyBudgetMicros = patch.llmDailyBudgetMicros;
      if (Object.keys(set).length > 0) {
        const updated = await db.update(tenants).set(set).where(eq(tenants.id, tenantId)).returning({ id: tenants.id });
        if (updated.length === 0) throw new AppError('not_found', 'tenant not found');
      }
      apiLimitCache.delete(tenantId);
      const limits = await get(tenantId);
      if (!limits) throw new AppError('not_found', 'tenant not found');
      return limits;
    },

    /** The tenant API's requests per minute, cached for a few seconds per process (it is read on every request). */
    async apiRequestsPerMinute(tenantId: string): Promise<number> {
      const now = Date.now();
      const hit = apiLimitCache.get(tenantId);
      if (hit && hit.until > now) return hit.perMinute;
      const [t] = await db.select({ api: tenants.apiRequestsPerMinute }).from(tenants).where(eq(tenants.id, tenantId));
      const perMinute = t?.api ?? defaults.apiRequestsPerMinute;
      if (apiLimitCache.size >= CACHE_MAX) apiLimitCache.clear();
      apiLimitCache.set(tenantId, { perMinute, until: now + CACHE_MS });
      return perMinute;
    },

    /** The tenant's LLM spend today (UTC, by the database clock: sum of llm_calls.cost_micros) against its budget. */
    async llmBudget(tenantId: string): Promise<LlmBudget> {
      const dayStart = sql`(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;
      // one statement: the tenant's budget and today's spend
      const [row] = await db
        .select({
          llm: tenants.llmDailyBudgetMicros,
          // (spelled out: drizzle leaves a one-table query's columns unqualified, which inside this
          // subquery would all resolve to llm_calls)
          micros: sql<string>`(select coalesce(sum(lc.cost_micros), 0)::bigint from llm_calls lc where lc.tenant_id = ${tenantId} and lc.created_at >= ${dayStart})`,
          day: sql<string>`to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
        })
        .from(tenants)
        .where(eq(tenants.id, tenantId));
      if (!row) throw new AppError('not_found', 'tenant not found');
      const spentMicros = Number(row.micros ?? 0);
      const budgetMicros = row.llm ?? defaults.llmDailyBudgetMicros;
      return {
        day: row.day ?? new Date().toISOString().slice(0, 10),
        spentMicros,
        budgetMicros,
        remainingMicros: Math.max(0, budgetMicros - spentMicros),
        exceeded: spentMicros >= budgetMicros,
      };
    },
  };
}

export type LimitService = ReturnType<typeof createLimitService>;
