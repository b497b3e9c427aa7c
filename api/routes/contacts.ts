import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import type { ParleyTemporal } from '../../temporal/client';
import { MANAGERS, allow } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { validate } from '../middleware/validate';
import { doc } from '../openapi';
import { contactErasure, contactExport } from '../schemas/public';

/** A contact as the API names it: any form it wrote under (phone number, BSUID, username, web chat visitor id). */
const contactParams = z.object({ contactId: z.string().trim().min(1).max(256) });

const exportDoc = doc({
  summary: "Export a contact's data",
  description:
    "Everything stored about one person across the tenant's channels (data rights): each lead whose contact id, phone number, BSUID or parent BSUID is `contactId` (or that a known identity maps to it; not a username), with its messages (the newest 10,000 per lead; `messagesOmitted` counts the rest), extractions and events. Answered as a download (`Content-Disposition: attachment; filename=\"contact-export.json\"`). 404 when no lead of this tenant has this contact.",
  responses: { 200: contactExport },
});

const eraseDoc = doc({
  summary: 'Erase a contact',
  description:
    "Data rights erasure, not undoable: every lead of this person on the tenant's channels (found as for the export) goes, with its messages, events, extractions and dead letters, the media its messages carried, the identities that mapped its forms and its send pacing; earlier audit entries about its leads keep only the action and the time, and a credit held for its conversations goes back to the tenant. The conversations' workflows are ended before and after (so a run that a message started meanwhile ends too), then their payload data keys are destroyed (crypto-shredding: their Temporal histories can no longer be decoded). LLM cost and credit ledger rows stay, without the lead. The audit entry of the erasure names no contact (its target is `[erased]`). 404 when no lead of this tenant has this contact.",
  responses: { 200: contactErasure },
});

/**
 * Data rights: export everything stored about a contact across the tenant's channels, or erase
 * it. The audit log records the erasure without the contact's id (its target is `[erased]`).
 */
export function createContactRouter(deps: { services: Services; temporal: ParleyTemporal; log: Logger }): Router {
  const { services } = deps;
  const r = Router();
  r.use('/v1/contacts', tenantAuth(services));

  r.get('/v1/contacts/:contactId/export', allow(...MANAGERS), validate({ params: contactParams }), exportDoc, async (_req, res) => {
    const data = await services.contacts.export(res.locals.tenantId, res.locals.params.contactId);
    if (!data) throw new AppError('not_found', 'no lead of this tenant has this contact');
    res.setHeader('content-disposition', 'attachment; filename="contact-export.json"');
    res.json(data);
  });

  r.delete('/v1/contacts/:contactId', allow(...MANAGERS), validate({ params: contactParams }), eraseDoc, async (_req, res) => {
    const tenantId = res.locals.tenantId as string;
    const found = await services.contacts.leadsOf(tenantId, res.locals.params.contactId);
    if (found.length === 0) throw new AppError('not_found', 'no lead of this tenant has this contact');
    // the workflows end first: a reply in flight cannot write the lead again once its row is gone
    let ended = 0;
    for (const lead of found) if (await deps.temporal.endLead(lead.workflowId, 'contact erased (data rights request)')) ended += 1;
    const erased = await services.contacts.erase(tenantId, res.locals.params.contactId, found);
    // and once more: a message that arrived in between started a new run, which finds no lead now
    for (const lead of found) await deps.temporal.endLead(lead.workflowId, 'contact erased (data rights request)');
    // crypto-shredding: the leads' payload keys go, so their Temporal histories (backups
    // included) can no longer be decoded; a later run under the same workflow id gets a new key
    const keysDestroyed = await services.payloadKeys.destroy(found.map((l) => l.workflowId));
    deps.log.info({ tenantId, leads: erased.leads, messages: erased.messages, media: erased.media, workflowsEnded: ended, keysDestroyed }, 'contact erased');
    const result = { erased: { leads: erased.leads, messages: erased.messages, media: erased.media }, workflowsEnded: ended };
    res.locals.audit = { target: { contactId: '[erased]' }, after: result };
    res.json(result);
  });
  return r;
}
