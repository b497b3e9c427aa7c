import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import type { Logger } from '../../lib/logger';
import type { AgentService } from '../../services/agents';
import type { ChannelService } from '../../services/channels';
import type { ExtractionService } from '../../services/extractions';
import { estimateCostMicros } from './pricing';

/** What the LLM activities share: the agent of a channel, error handling, call accounting. */

/** Errors that say the request itself is wrong (key, model, parameters): no retry helps. */
export function isConfigError(err: unknown): boolean {
  return err instanceof OpenAI.APIError && [400, 401, 403, 404, 422].includes(err.status ?? 0);
}

export function describeLlmError(err: unknown): string {
  if (err instanceof OpenAI.APIError) return `${err.status ?? 'no status'} ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The agent a channel account is assigned to now; a non-retryable failure when there is none. */
export async function agentForChannel(deps: { channels: ChannelService; agents: AgentService }, tenantId: string, channelAccountId: string) {
  const agentId = await deps.channels.agentIdFor(channelAccountId);
  const agent = agentId ? await deps.agents.get(tenantId, agentId) : undefined;
  if (!agent) {
    throw ApplicationFailure.create({ type: 'agent_not_found', message: `no agent for channel account ${channelAccountId}`, nonRetryable: true });
  }
  return agent;
}

/**
 * Record one LLM call's tokens and estimated cost in llm_calls. Best effort: failing here
 * would only make Temporal retry the activity and buy a second, paid LLM call.
 */
export async function recordLlmCall(
  deps: { extractions?: Pick<ExtractionService, 'recordLlmCall'>; log: Logger },
  call: { tenantId: string; leadId: string; purpose: 'reply' | 'bump_up' | 'sequence_step' | 'extraction'; model: string; usage: OpenAI.CompletionUsage | undefined },
): Promise<void> {
  if (!deps.extractions) return;
  const promptTokens = call.usage?.prompt_tokens ?? 0;
  const completionTokens = call.usage?.completion_tokens ?? 0;
  try {
    await deps.extractions.recordLlmCall({
      tenantId: call.tenantId,
      leadId: call.leadId,
      purpose: call.purpose,
      model: call.model,
      promptTokens,
      completionTokens,
      costMicros: estimateCostMicros(call.model, promptTokens, completionTokens),
    });
  } catch (err) {
    deps.log.warn({ leadId: call.leadId, model: call.model, error: describeLlmError(err) }, 'could not record llm call');
  }
}
