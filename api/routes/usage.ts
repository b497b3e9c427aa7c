import { Router } from 'express';
import type { Services } from '../../services';
import { tenantAuth } from '../middleware/rate-limit';
import { SETUP_READERS, allow } from '../access';

/** A tenant's consumption against its limits: today's LLM spend and the API rate. */
export function createUsageRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  r.get('/v1/usage', tenantAuth(services), allow(...SETUP_READERS), async (_req, res) => {
    const tenantId = res.locals.tenantId as string;
    const [llm, perMinute] = await Promise.all([services.limits.llmBudget(tenantId), services.limits.apiRequestsPerMinute(tenantId)]);
    res.json({
      llm: { day: llm.day, spentMicros: llm.spentMicros, budgetMicros: llm.budgetMicros, remainingMicros: llm.remainingMicros, exceeded: llm.exceeded },
      api: { perMinute },
    });
  });
  return r;
}
