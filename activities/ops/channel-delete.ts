/**
 * `closeChannelLeads`: after DELETE /v1/channels/:id, end the deleted channel's lead workflows
 * and close their leads, one page at a time. Run by `closeChannelLeadsWorkflow`, never inside the
 * API request (a channel may have thousands of leads). Each page: terminate the page's workflows
 * (the reason in their history), then close the leads in one transaction (mode `closed`, a
 * `channel_deleted` event, held credit reservations given back). The heartbeat carries the last
 * lead id done, so a retried attempt goes on where the last one stopped; every step is idempotent.
 * Nothing is deleted: leads, messages, events and extractions stay readable through the API.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { FailureType } from '../../contract/failures';
import type { Logger } from '../../lib/logger';
import type { ChannelService } from '../../services/channels';

export interface CloseChannelLeadsInput {
  tenantId: string;
  channelAccountId: string;
  /** Leads per page (default 200). */
  pageSize?: number;
}

export interface CloseChannelLeadsResult {
  leadsClosed: number;
  workflowsEnded: number;
  creditsReleased: number;
}

export interface ChannelDeleteDeps {
  channels: Pick<ChannelService, 'deletedChannelLeads' | 'closeLeads' | 'isDeleted'>;
  /** A Temporal client on the worker's connection; without it the activity fails (non-retryable config error). */
  temporalClient?: Client;
  log: Logger;
}

interface Progress extends CloseChannelLeadsResult {
  afterId?: string;
}

/** Attempts (2 s, 4 s, 8 s, 16 s apart) the close waits for the route to mark the channel deleted. */
const NOT_MARKED_ATTEMPTS = 5;

export const CHANNEL_DELETED_REASON = 'channel deleted (DELETE /v1/channels/:id)';

export function createChannelDeleteActivities(deps: ChannelDeleteDeps) {
  const log = deps.log.child({ module: 'channel-delete' });
  return {
    async closeChannelLeads(input: CloseChannelLeadsInput): Promise<CloseChannelLeadsResult> {
      const client = deps.temporalClient;
      if (!client) throw ApplicationFailure.nonRetryable('no Temporal client configured for closeChannelLeads (worker composition)', FailureType.Configuration);
      const ctx = Context.current();
      const limit = Math.min(Math.max(input.pageSize ?? 200, 1), 1000);
      // The route starts this workflow before it marks the channel deleted (so a Temporal outage
      // refuses the delete instead of leaving its leads open): wait a few attempts for the mark;
      // a channel never marked (the route failed after the start) is left alone.
      if ((await deps.channels.isDeleted(input.channelAccountId)) !== true) {
        if (ctx.info.attempt < NOT_MARKED_ATTEMPTS) throw ApplicationFailure.retryable('the channel is not marked deleted yet', FailureType.ChannelNotMarkedDeleted);
        log.warn({ tenantId: input.tenantId, channelAccountId: input.channelAccountId }, 'the channel was never marked deleted: no lead closed');
        return { leadsClosed: 0, workflowsEnded: 0, creditsReleased: 0 };
      }
      const resumed = ctx.info.heartbeatDetails as Progress | undefined;
      const progress: Progress = { leadsClosed: 0, workflowsEnded: 0, creditsReleased: 0, ...resumed };
      for (;;) {
        const page = await deps.channels.deletedChannelLeads(input.channelAccountId, { afterId: progress.afterId, limit });
        if (page.length === 0) break;
        // the page's workflows first: a turn in flight cannot write the lead again after its close
        for (const lead of page) {
          try {
            await client.workflow.getHandle(lead.workflowId).terminate(CHANNEL_DELETED_REASON);
            progress.workflowsEnded += 1;
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          }
          // alive (the SDK throttles heartbeats); the page is done again after a retry, which is harmless
          ctx.heartbeat({ ...progress });
        }
        const closed = await deps.channels.closeLeads(input.channelAccountId, page.map((l) => l.id));
        progress.leadsClosed += closed.leads.length;
        progress.creditsReleased += closed.creditsReleased;
        progress.afterId = page[page.length - 1]!.id;
        ctx.heartbeat(progress);
        if (page.length < limit) break;
      }
      const { afterId: _afterId, ...result } = progress;
      log.info({ tenantId: input.tenantId, channelAccountId: input.channelAccountId, ...result }, 'deleted channel: leads closed');
      return result;
    },
  };
}
