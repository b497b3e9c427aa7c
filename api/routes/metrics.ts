import { Router } from 'express';
import type { Services } from '../../services';
import { requireAdmin } from '../middleware/auth';
import { adminOnly } from '../access';
import { doc } from '../openapi';

/** Prometheus text exposition: one sample line, labels quoted and escaped. */
function sample(name: string, labels: Record<string, string>, value: number): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
  return `${name}{${l}} ${value}`;
}

/**
 * `GET /metrics` (admin token; point Prometheus at it with a bearer token): delivery state
 * read from the database, so every API replica answers the same. The worker's own metrics
 * (Temporal SDK, LLM and extraction counters) are on METRICS_PORT.
 */
export function createMetricsRouter(deps: { services: Services; adminToken?: string }): Router {
  const r = Router();
  r.get(
    '/metrics',
    requireAdmin(deps.adminToken),
    adminOnly(),
    doc({
      summary: 'Prometheus metrics of delivery state',
      description:
        "Read from the database, so every API replica answers the same: `parley_channel_circuit_open` (1 while a channel's circuit breaker is open) and `parley_dead_letters_open` (open dead letters per tenant). The worker's own metrics are on METRICS_PORT.",
      tags: ['metrics'],
      responses: { 200: { contentType: 'text/plain', description: 'Prometheus text exposition format 0.0.4' } },
    }),
    async (_req, res) => {
      const g = await deps.services.deadLetters.gauges();
      const lines = [
        '# HELP parley_channel_circuit_open 1 while the channel account\'s circuit breaker is open (sends wait).',
        '# TYPE parley_channel_circuit_open gauge',
        ...g.circuits.map((c) => sample('parley_channel_circuit_open', { channel_account_id: c.channelAccountId, tenant_id: c.tenantId, platform: c.platform }, c.open ? 1 : 0)),
        '# HELP parley_dead_letters_open Operations parked by lead workflows, waiting for replay or discard.',
        '# TYPE parley_dead_letters_open gauge',
        ...g.openDeadLetters.map((d) => sample('parley_dead_letters_open', { tenant_id: d.tenantId }, d.n)),
      ];
      res.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
    },
  );
  return r;
}
