import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import type { Suppression } from '../../services/suppressions';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { LEAD_ACTORS, LEAD_READERS, MANAGERS, allow } from '../access';
import { doc } from '../openapi';
import { suppression, suppressionDeleted, suppressionPage } from '../schemas/public';

/** Something that looks like a phone number: digits with an optional +, spaces, dashes, dots, brackets. */
const PHONE_LIKE = /^\+?[\d\s().-]+$/;

/**
 * A contact as the suppression list keys it: a phone number (any common spelling, stored as the
 * digits WhatsApp's wa_id uses: "+91 98765-43210" → "919876543210"), a BSUID
 * ("US.13491208655302741918"), or another channel's contact id (an Instagram user id).
 */
export const suppressionContact = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .transform((v) => (PHONE_LIKE.test(v) ? v.replace(/\D/g, '') : v))
  .pipe(
    z
      .string()
      .min(5, 'a phone number has at least 5 digits')
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'a phone number, a BSUID or a contact id (printable, no spaces)'),
  );

const createBody = z.strictObject({
  contact: suppressionContact,
  /** Why (shown in the list; never sent to the contact). */
  note: z.string().trim().min(1).max(500).optional(),
});

const COVERS =
  "A suppressed contact gets no sequence step, bump-up or template on any of the tenant's channels, under any of its known forms (phone number, BSUID, parent BSUID, contact id); a template through `POST /v1/leads/:id/messages` or an enrolment answers 409 `contact_opted_out`. The AI still answers the contact's own messages unless the agent sets `optOut.replyAfterOptOut: false`; a human's manual message is always allowed.";

const listDoc = doc({ summary: 'List suppressed contacts', description: `The tenant's suppression list (opt-outs from a STOP phrase or this API), oldest first. ${COVERS}`, responses: { 200: suppressionPage } });
const createDoc = doc({
  summary: 'Suppress a contact',
  description: `Adds the contact (a phone number in any common spelling, stored as digits: "+91 98765-43210" → "919876543210"; a BSUID; or another channel's contact id) with every form of it the tenant knows now. ${COVERS} Each lead of the contact gets an \`opted_out\` event. Idempotent: when a suppression already covers one of the contact's forms, it is answered as it is with 200 (no event).`,
  responses: { 201: suppression, 200: { schema: suppression, description: 'A suppression already covered the contact: it, unchanged' } },
});
const getDoc = doc({ summary: 'Get a suppression', responses: { 200: suppression } });
const deleteDoc = doc({
  summary: 'Remove a suppression',
  description: 'The contact may get sequence steps, bump-ups and templates again; each of its leads gets an `opted_in` event (a START phrase from the contact removes it as well). 404 for an unknown id or another tenant\'s.',
  responses: { 200: suppressionDeleted },
});

/**
 * The tenant's suppression list (opt-out): contacts that get no sequence step, bump-up or
 * template on any of the tenant's channels. A STOP phrase adds to it, START removes; so do these
 * routes. Every change records an `opted_out` / `opted_in` event on the contact's leads.
 */
export function createSuppressionRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  r.use('/v1/suppressions', tenantAuth(services));

  const idOr404 = (raw: unknown): string => {
    const id = z.uuid().safeParse(raw);
    if (!id.success) throw new AppError('not_found', 'suppression not found');
    return id.data;
  };

  /** An event on every lead of the tenant the suppression covers (each channel). */
  async function recordOnLeads(tenantId: string, s: Suppression, type: 'opted_out' | 'opted_in'): Promise<void> {
    const leadIds = await services.suppressions.leadsOf(tenantId, s.forms);
    for (const leadId of leadIds) {
      await services.leads.recordEvent({ tenantId, leadId, type, data: { source: 'api', suppressionId: s.id }, dedupKey: `${type}:api:${s.id}:${leadId}` });
    }
  }

  r.get('/v1/suppressions', allow(...LEAD_READERS), validate({ query: pageQuery }), listDoc, async (_req, res) => {
    res.json(await services.suppressions.list(res.locals.tenantId, res.locals.query));
  });

  r.post('/v1/suppressions', allow(...LEAD_ACTORS), validate({ body: createBody }), createDoc, async (_req, res) => {
    const tenantId = res.locals.tenantId as string;
    const { suppression, created } = await services.suppressions.create(tenantId, res.locals.body);
    if (created) await recordOnLeads(tenantId, suppression, 'opted_out');
    // an existing suppression that already covers the contact is answered as it is (idempotent)
    res.status(created ? 201 : 200).json(suppression);
  });

  r.get('/v1/suppressions/:id', allow(...LEAD_READERS), getDoc, async (req, res) => {
    const s = await services.suppressions.get(res.locals.tenantId, idOr404(req.params.id));
    if (!s) throw new AppError('not_found', 'suppression not found');
    res.json(s);
  });

  r.delete('/v1/suppressions/:id', allow(...MANAGERS), deleteDoc, async (req, res) => {
    const tenantId = res.locals.tenantId as string;
    const s = await services.suppressions.remove(tenantId, idOr404(req.params.id));
    if (!s) throw new AppError('not_found', 'suppression not found');
    await recordOnLeads(tenantId, s, 'opted_in');
    // a JSON answer, so the audit log records the removal with what was removed
    res.locals.audit = { before: s, after: null };
    res.json({ id: s.id, deleted: true });
  });
  return r;
}
