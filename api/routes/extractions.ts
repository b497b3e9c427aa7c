import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';

/** An ISO 8601 date-time with a zone (`2026-11-21T10:00:00Z`, `…+05:30`) or a plain date (UTC midnight). */
const since = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .transform((v) => new Date(v.length === 10 ? `${v}T00:00:00Z` : v).toISOString());
const listQuery = pageQuery.extend({ since: since.optional() });
const csvQuery = z.strictObject({ since: since.optional() });

function leadIdOr404(raw: unknown): string {
  const r = z.uuid().safeParse(raw);
  if (!r.success) throw new AppError('not_found', 'lead not found');
  return r.data;
}

/** Extracted lead data: a lead's versions, everything since a time (sync), a CSV export. */
export function createExtractionRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit

  r.get('/v1/leads/:leadId/extractions', auth, validate({ query: pageQuery }), async (req, res) => {
    const leadId = leadIdOr404(req.params.leadId);
    const lead = await services.leads.get(res.locals.tenantId, leadId);
    if (!lead) throw new AppError('not_found', 'lead not found');
    res.json(await services.extractions.listForLead(res.locals.tenantId, leadId, res.locals.query));
  });

  r.get('/v1/extractions', auth, validate({ query: listQuery }), async (_req, res) => {
    const q = res.locals.query as z.output<typeof listQuery>;
    res.json(await services.extractions.listSince(res.locals.tenantId, q.since, { limit: q.limit, cursor: q.cursor }));
  });

  r.get('/v1/extractions.csv', auth, validate({ query: csvQuery }), async (_req, res) => {
    const q = res.locals.query as z.output<typeof csvQuery>;
    const csv = await services.extractions.csv(res.locals.tenantId, q.since);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    res
      .status(200)
      .type('text/csv; charset=utf-8')
      .set('content-disposition', `attachment; filename="parley-extractions-${stamp}.csv"`)
      .set('cache-control', 'no-store')
      .send(csv);
  });

  return r;
}
