/**
 * The app as the OpenAPI document sees it: routes only, no database, no Temporal. Used by
 * `npm run openapi` (writes api/client/openapi.json and the typed client's schema) and by the
 * drift test; nothing here is called while building the routes (services are looked up per request).
 */
import type { Express } from 'express';
import { createApp } from './app';
import { createLogger } from '../lib/logger';
import { buildOpenApi } from './openapi';
import { version } from '../package.json';

function inert(name: string): unknown {
  const fn = () => {
    // listeners registered while the routers are built (channels.onDeleted) are harmless
    if (/\.on[A-Z]\w*$/.test(name)) return undefined;
    throw new Error(`${name} called while building the OpenAPI document`);
  };
  return new Proxy(fn, { get: (_t, key) => (key === 'then' ? undefined : inert(`${name}.${String(key)}`)) });
}

export function documentationApp(): Express {
  return createApp({
    config: {
      PARLEY_ADMIN_TOKEN: 'x'.repeat(32),
      META_APP_SECRET: 'x'.repeat(32),
      META_VERIFY_TOKEN: 'x'.repeat(32),
      WEBCHAT_POLL_MS: 1000,
      WEBCHAT_HEARTBEAT_MS: 15000,
      WEBCHAT_MAX_MESSAGES_PER_MINUTE: 20,
      GRAPH_API_URL: 'http://127.0.0.1:1',
      WEBCHAT_VISITOR_SECRET: 'x'.repeat(32),
      MEDIA_URL_SECRET: 'x'.repeat(32),
    },
    log: createLogger({ level: 'silent' }),
    database: inert('database') as never,
    services: inert('services') as never,
    temporal: inert('temporal') as never,
  });
}

/** The document the running API serves (GET /openapi.json), without a server. */
export function currentOpenApi(): Record<string, unknown> {
  return buildOpenApi(documentationApp(), { version });
}
