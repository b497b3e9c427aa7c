import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import { CSV_COLUMNS, toCsv, type CsvPageKey } from '../../services/extractions';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { writeWithBackpressure } from '../response-stream';
import { LEAD_READERS, allow } from '../access';
import { doc } from '../openapi';
import { extractionPage } from '../schemas/leads';

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

/** Rows of the CSV export read per database query. */
const CSV_PAGE_ROWS = 500;

/** Extracted lead data: a lead's versions, everything since a time (sync), a CSV export. */
export function createExtractionRouter(deps: { services: Services; log?: Logger; csvPageRows?: number }): Router {
  const { services } = deps;
  const r = Router();
  const auth = tenantAuth(services); // tenant key, then the tenant's API rate limit

  r.get('/v1/leads/:leadId/extractions', auth, allow(...LEAD_READERS), validate({ query: pageQuery }), doc({ summary: "List a lead's extraction versions", description: 'Newest version first.', responses: { 200: extractionPage } }), async (req, res) => {
    const leadId = leadIdOr404(req.params.leadId);
    const lead = await services.leads.get(res.locals.tenantId, leadId);
    if (!lead) throw new AppError('not_found', 'lead not found');
    res.json(await services.extractions.listForLead(res.locals.tenantId, leadId, res.locals.query));
  });

  r.get(
    '/v1/extractions',
    auth,
    allow(...LEAD_READERS),
    validate({ query: listQuery }),
    doc({
      summary: 'List extraction versions since a time (incremental sync)',
      description: 'Every version stored at or after `since` (an ISO date-time with a zone, or a date: UTC midnight), oldest first; keep the last page\'s cursor to continue later.',
      responses: { 200: extractionPage },
    }),
    async (_req, res) => {
    const q = res.locals.query as z.output<typeof listQuery>;
    res.json(await services.extractions.listSince(res.locals.tenantId, q.since, { limit: q.limit, cursor: q.cursor }));
  });

  /**
   * Streamed: keyset pages of `csvPageRows` rows, each written as soon as it is read, the next
   * read only once the client has taken the previous page (backpressure); memory stays at one
   * page whatever the tenant's size. A failure after the first bytes aborts the response (the
   * client sees a truncated transfer, not a CSV that looks complete).
   */
  r.get(
    '/v1/extractions.csv',
    auth,
    allow(...LEAD_READERS),
    validate({ query: csvQuery }),
    doc({
      summary: 'Export the latest extraction of every lead as CSV',
      description: `One row per lead, from its latest extraction stored at or after \`since\`, ordered by extraction time; columns: ${CSV_COLUMNS.join(', ')} (\`fields\` is JSON). RFC 4180 with CRLF line ends; cells a spreadsheet would run as a formula start with \`'\`. Sent as an attachment and streamed: a failure midway truncates the transfer (check that it completed).`,
      responses: { 200: { contentType: 'text/csv', description: 'The CSV file (header row first)' } },
    }),
    async (req, res) => {
    const q = res.locals.query as z.output<typeof csvQuery>;
    const tenantId: string = res.locals.tenantId;
    const limit = deps.csvPageRows ?? CSV_PAGE_ROWS;
    // the first page before any header: a database failure here is still a proper error answer
    let page = await services.extractions.csvPage(tenantId, q.since, { limit });
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    res
      .status(200)
      .type('text/csv; charset=utf-8')
      .set('content-disposition', `attachment; filename="parley-extractions-${stamp}.csv"`)
      .set('cache-control', 'no-store');
    try {
      let open = await writeWithBackpressure(res, toCsv([[...CSV_COLUMNS]]));
      for (;;) {
        if (open && page.rows.length > 0) open = await writeWithBackpressure(res, toCsv(page.rows));
        if (!page.next || !open) break;
        const after: CsvPageKey = page.next;
        page = await services.extractions.csvPage(tenantId, q.since, { limit, after });
      }
      res.end();
    } catch (err) {
      deps.log?.child({ module: 'api.extractions' }).error({ err, path: req.path }, 'CSV export failed mid-stream');
      res.destroy(err instanceof Error ? err : new Error('CSV export failed'));
    }
  });

  return r;
}
