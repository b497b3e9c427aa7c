/**
 * Closing a deleted channel's leads, outside the API request: DELETE /v1/channels/:id starts this
 * workflow once per channel (`channel-delete:{channelAccountId}`), then marks the channel deleted
 * (no webhook, widget or send reaches it from then on). Its activity waits a few attempts for
 * that mark (a channel never marked is left alone), then pages through the leads:
 * ends each lead workflow (terminated, the reason in its history), closes the lead, records a
 * `channel_deleted` event and gives held credit reservations back. Temporal retries it (the
 * activity resumes from its heartbeat) and the Web UI shows it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { CloseChannelLeadsInput, CloseChannelLeadsResult, createChannelDeleteActivities } from '../activities/ops/channel-delete';

export const CLOSE_CHANNEL_LEADS_WORKFLOW_TYPE = 'closeChannelLeadsWorkflow';

const { closeChannelLeads } = proxyActivities<ReturnType<typeof createChannelDeleteActivities>>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

export async function closeChannelLeadsWorkflow(input: CloseChannelLeadsInput): Promise<CloseChannelLeadsResult> {
  return closeChannelLeads(input);
}

/** One close per deleted channel. */
export function closeChannelLeadsWorkflowId(channelAccountId: string): string {
  return `channel-delete:${channelAccountId}`;
}
