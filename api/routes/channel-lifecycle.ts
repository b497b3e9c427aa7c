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

const channelDeleted = z
  .strictObject({
    id: z.uuid(),
    deleted: z.literal(true),
    leadsClosed: z.number().int().min(0).meta({ description: 'The open leads the background workflow closes' }),
    closeWorkflowId: z.string().meta({ description: 'The Temporal workflow that closes them (visible in the Web UI)' }),
  })
  .meta({ id: 'ChannelDeleted' });

const idParam = z.strictObject({ id: z.uuid('must be a uuid') });

/**
 * The end of a channel's life: `DELETE /v1/channels/:id`. The workflow that closes its leads is
 * started first (Temporal down → 503, nothing changed), then the channel is marked deleted
 * (its secrets wiped; no webhook, widget or send reaches it; the tenant API no longer lists it;
 * its account id can be connected again); that workflow ends its leads' workflows
 * and closes the leads (mode `closed`, a `channel_deleted` event, held credits given back).
 * Leads, messages, events and extractions stay readable. `leadsClosed`: the leads that were not
 * closed yet, which that workflow closes (`closeWorkflowId`).
 *
 * Mounted before the delivery router: its `/v1/channels/:id` key check would otherwise run a
 * second time (this router checks the key per route, as the template router does).
 */
export function createChannelLifecycleRouter(deps: { services: Services; temporal: ParleyTemporal; log: Logger }): Router {
  const { services } = deps;
  const log = deps.log.child({ module: 'channel-lifecycle' });
  const r = Router();
  const auth = tenantAuth(services);

  r.delete(
    '/v1/channels/:id',
    auth,
    allow(...MANAGERS),
    validate({ params: idParam }),
    doc({
      summary: 'Delete a channel',
      description:
        "Marks the channel deleted at once: its secrets are wiped, no webhook, widget or send reaches it, the API no longer lists it, and its number can be connected again. A background workflow (`closeWorkflowId`) ends its leads' workflows and closes the leads (mode `closed`, a `channel_deleted` event, held credits given back). Leads, messages, events and extractions stay readable. 503 when Temporal cannot start that workflow: nothing changes, the channel stays live (try again).",
      responses: { 200: channelDeleted },
    }),
    async (_req, res) => {
      const tenantId = res.locals.tenantId as string;
      const channelAccountId = res.locals.params.id as string;
      const before = await services.channels.get(tenantId, channelAccountId);
      if (!before) throw new AppError('not_found', 'channel not found');
      // the close workflow first: when Temporal is down the delete is refused and nothing changes
      // (the workflow waits for the mark below; a channel never marked is left alone)
      let closeWorkflowId: string;
      try {
        closeWorkflowId = await deps.temporal.startChannelLeadsClose({ tenantId, channelAccountId });
      } catch (err) {
        log.error({ err, tenantId, channelAccountId }, 'the workflow closing a deleted channel\'s leads could not be started: the channel is not deleted');
        throw new AppError('unavailable', 'the channel could not be deleted now (its leads could not be scheduled for closing); nothing changed, try again');
      }
      const deleted = await services.channels.delete(tenantId, channelAccountId);
      if (!deleted) throw new AppError('not_found', 'channel not found'); // deleted meanwhile by another call
      // once more now that it is marked: joins the run still waiting (USE_EXISTING), or starts one
      // again if the first gave up waiting (a slow mark); a failure here leaves the first run to it
      await deps.temporal.startChannelLeadsClose({ tenantId, channelAccountId }).catch((err: unknown) => log.warn({ err, tenantId, channelAccountId }, 'channel deleted; the second start of its close failed (the first run closes the leads)'));
      log.info({ tenantId, channelAccountId, platform: before.platform, openLeads: deleted.openLeads, closeWorkflowId }, 'channel deleted');
      const result = { id: channelAccountId, deleted: true as const, leadsClosed: deleted.openLeads, closeWorkflowId };
      res.locals.audit = { before, after: result };
      res.json(result);
    },
  );
  return r;
}
