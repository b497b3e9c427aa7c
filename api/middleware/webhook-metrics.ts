import type { RequestHandler } from 'express';
import { recordWebhook, type MetricPlatform } from '../../lib/metrics';

const WEBHOOK_PATHS: Record<string, MetricPlatform> = { '/webhooks/whatsapp': 'whatsapp', '/webhooks/instagram': 'instagram' };

/**
 * Count every Meta webhook delivery (POST) once its answer is written, refused ones by reason
 * (from the status: 401 invalid_signature, 429 rate_limited, 413 too_large, 503 unavailable…).
 * Mounted before the failed-auth guard and the body parser, so their refusals count too.
 */
export function webhookMetrics(): RequestHandler {
  return (req, res, next) => {
    const platform = req.method === 'POST' ? WEBHOOK_PATHS[req.path] : undefined;
    if (platform) res.once('finish', () => recordWebhook(platform, res.statusCode));
    next();
  };
}
