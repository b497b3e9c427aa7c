import express, { type Express } from 'express';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Services } from '../services';
import type { ParleyTemporal } from '../temporal/client';
import { errorHandler } from './middleware/errors';
import { createAdminRouter } from './routes/admin';
import { createEngineRouter } from './routes/engine';
import { createExtractionRouter } from './routes/extractions';
import { createHealthRouter } from './routes/health';
import { createTenantRouter } from './routes/tenant';
import { createWhatsAppWebhookRouter } from './routes/whatsapp-webhook';

export interface AppDeps {
  config: Pick<Config, 'PARLEY_ADMIN_TOKEN' | 'META_APP_SECRET' | 'META_VERIFY_TOKEN'>;
  log: Logger;
  database: Pick<Database, 'ping'>;
  services: Services;
  temporal: ParleyTemporal;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const log = deps.log.child({ module: 'api' });

  app.use(createHealthRouter({ pingDatabase: () => deps.database.ping(), pingTemporal: () => deps.temporal.ping() }));
  // The webhook reads its own raw body (signature over the exact bytes), so it comes before express.json.
  app.use(
    createWhatsAppWebhookRouter({
      channels: deps.services.channels,
      leads: deps.services.leads,
      temporal: deps.temporal,
      log,
      appSecret: deps.config.META_APP_SECRET,
      verifyToken: deps.config.META_VERIFY_TOKEN,
    }),
  );
  app.use(express.json({ limit: '1mb', strict: true }));
  app.use(createAdminRouter({ services: deps.services, adminToken: deps.config.PARLEY_ADMIN_TOKEN }));
  // before the engine and tenant routers: their `/v1/leads…` auth would otherwise run a second time
  app.use(createExtractionRouter({ services: deps.services }));
  app.use(createEngineRouter({ services: deps.services, temporal: deps.temporal }));
  app.use(createTenantRouter({ services: deps.services, temporal: deps.temporal }));
  app.use((req, _res, next) => next(new AppError('not_found', `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
