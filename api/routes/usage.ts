import { Router } from 'express';
import type { Services } from '../../services';
import { tenantAuth } from '../middleware/rate-limit';
import { SETUP_READERS, allow } from '../access';
import { doc } from '../openapi';
import { usageSchema } from '../schemas/accounts';

/** A tenant's consumption against its limits: today's LLM spend and the API rate. */
export function createUsageRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  r.get(
    '/v1/usage',
    tenantAuth(services),
    allow(...SETUP_READERS),
    doc({ summary: "The tenant's usage against its limits", description: "Today's LLM spend (UTC day, micro-USD) against the daily budget, and the API requests allowed per minute.", responses: { 200: usageSchema } }),
    async (_req, res) => {
      const tenantId = res.locals.tenantId as string;
      const [llm, perMinute] = await Promise.all([services.limits.llmBudget(tenantId), services.limits.apiRequestsPerMinute(tenantId)]);
      res.json({
        llm: { day: llm.day, spentMicros: llm.spentMicros, budgetMicros: llm.budgetMicros, remainingMicros: llm.remainingMicros, exceeded: llm.exceeded },
        api: { perMinute },
      });
    },
  );
  return r;
}
