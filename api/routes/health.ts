import { Router } from 'express';
import type { Logger } from '../../lib/logger';
import { z } from 'zod';
import { publicRoute } from '../access';
import { doc } from '../openapi';

const health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });
const readiness = z
  .object({ status: z.enum(['ok', 'unavailable']), checks: z.object({ database: z.enum(['ok', 'unavailable']), temporal: z.enum(['ok', 'unavailable']) }) })
  .meta({ id: 'Readiness' });

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/healthz`: the process is up. `/readyz`: the database and Temporal answer. Both are
 * anonymous (load balancers, orchestrators): a failed check says only `unavailable`; the
 * driver's error (hosts, ports, database names) goes to the log, never to the caller.
 */
export function createHealthRouter(deps: { pingDatabase: () => Promise<void>; pingTemporal: () => Promise<void>; log?: Logger }): Router {
  const log = deps.log?.child({ module: 'health' });
  const r = Router();
  r.get('/healthz', publicRoute('liveness probe'), doc({ summary: 'Liveness: the process is up', tags: ['health'], responses: { 200: health } }), (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', publicRoute('readiness probe'), doc({ summary: 'Readiness: the database and Temporal answer', tags: ['health'], responses: { 200: readiness, 503: { schema: readiness, description: 'A dependency does not answer' } } }), async (_req, res) => {
    const checks: Record<string, string> = {};
    await Promise.all(
      Object.entries({ database: deps.pingDatabase, temporal: deps.pingTemporal }).map(async ([name, ping]) => {
        try {
          await within(3000, ping());
          checks[name] = 'ok';
        } catch (err) {
          checks[name] = 'unavailable';
          log?.warn({ check: name, err }, 'readiness check failed');
        }
      }),
    );
    const ready = Object.values(checks).every((v) => v === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ok' : 'unavailable', checks });
  });
  return r;
}
