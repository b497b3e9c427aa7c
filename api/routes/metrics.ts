import { Router } from 'express';
import type { Services } from '../../services';
import { requireAdmin } from '../middleware/auth';
import { adminOnly } from '../access';
import { doc } from '../openapi';
import { exposition, EXPOSITION_CONTENT_TYPE, setDatabaseGauges, tenantLabelSettings } from '../../lib/metrics';

/**
 * `GET /metrics` (admin token; point Prometheus at it with a bearer token): this process's
 * application metrics (lib/metrics.ts) plus gauges read from the database at each scrape
 * (circuits by state, open dead letters, lowest credit balances), which every API replica
 * answers the same. The worker's metrics (Temporal SDK and Parley's activity metrics) are on
 * its METRICS_PORT.
 */
export function createMetricsRouter(deps: { services: Services; adminToken?: string }): Router {
  const r = Router();
  r.get(
    '/metrics',
    requireAdmin(deps.adminToken),
    adminOnly(),
    doc({
      summary: 'Prometheus metrics of the API process and of delivery state',
      description:
        "Prometheus text: this API process's application metrics (`parley_webhooks_received_total`, `parley_inbound_messages_total`, `parley_webchat_streams_open`, …) and gauges read from the database at each scrape, so every API replica answers them the same: `parley_channel_circuits` (channels by platform and circuit state), `parley_dead_letters_open` and, with METRICS_TENANT_LABELS, `parley_credit_balance` per tenant. The worker's own metrics are on its METRICS_PORT. README: Metrics and health.",
      tags: ['metrics'],
      responses: { 200: { contentType: 'text/plain', description: 'Prometheus text exposition format 0.0.4' } },
    }),
    async (_req, res) => {
      const settings = tenantLabelSettings();
      const [g, lowestBalances] = await Promise.all([deps.services.deadLetters.gauges(), settings.enabled ? deps.services.credits.lowestBalances(settings.cap) : Promise.resolve(undefined)]);
      setDatabaseGauges({ ...g, ...(lowestBalances ? { lowestBalances } : {}) });
      res.type(EXPOSITION_CONTENT_TYPE).send(await exposition());
    },
  );
  return r;
}
