import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import { FailureType } from '../../contract/failures';
import type { LlmPurpose } from '../../contract/vocabulary';
import type { Logger } from '../../lib/logger';
import { recordLlmCall as recordLlmMetric, recordLlmUsage } from '../../lib/metrics';
import type { AgentService } from '../../services/agents';
import type { ChannelService } from '../../services/channels';
import type { ExtractionService } from '../../services/extractions';
import type { LimitService } from '../../services/limits';
import { describeDatabaseError } from '../../services/db-util';
import { estimateCostMicros, type PriceTable } from './pricing';

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
  const agent = await deps.agents.forChannel(tenantId, channelAccountId);
  if (!agent) {
    throw ApplicationFailure.create({ type: FailureType.AgentNotFound, message: `no agent for channel account ${channelAccountId}`, nonRetryable: true });
  }
  return agent;
}

/**
 * Record one LLM call's tokens and estimated cost in llm_calls. Best effort: failing here
 * would only make Temporal retry the activity and buy a second, paid LLM call.
 */
export async function recordLlmCall(
  deps: { extractions?: Pick<ExtractionService, 'recordLlmCall'>; log: Logger; prices?: PriceTable },
  call: {
    tenantId: string;
    leadId: string;
    purpose: Exclude<LlmPurpose, 'summary'>;
    model: string;
    usage: OpenAI.CompletionUsage | undefined;
    /** The agent (and its version) whose settings made the call: recorded so a turn says which version answered it. */
    agent?: { id: string; version: number };
  },
): Promise<void> {
  const promptTokens = call.usage?.prompt_tokens ?? 0;
  const completionTokens = call.usage?.completion_tokens ?? 0;
  const costMicros = estimateCostMicros(call.model, promptTokens, completionTokens, deps.prices);
  recordLlmUsage({ model: call.model, tenantId: call.tenantId, promptTokens, completionTokens, costMicros });
  if (!deps.extractions) return;
  try {
    await deps.extractions.recordLlmCall({
      tenantId: call.tenantId,
      leadId: call.leadId,
      purpose: call.purpose,
      model: call.model,
      promptTokens,
      completionTokens,
      costMicros,
      agentId: call.agent?.id ?? null,
      agentVersion: call.agent?.version ?? null,
    });
  } catch (err) {
    deps.log.warn({ leadId: call.leadId, model: call.model, error: describeDatabaseError(err)?.message ?? describeLlmError(err) }, 'could not record llm call');
  }
}

/** One LLM call, timed into parley_llm_request_duration_seconds by model, purpose and outcome. */
export async function timedLlmCall<T>(model: string, purpose: string, call: () => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  let outcome: 'ok' | 'error' = 'error';
  try {
    const result = await call();
    outcome = 'ok';
    return result;
  } finally {
    recordLlmMetric({ model, purpose, outcome, seconds: (performance.now() - startedAt) / 1000 });
  }
}

/**
 * The output cap of a Chat Completions request: `max_tokens`, which OpenAI-compatible servers
 * (OpenRouter, Ollama, vLLM) and OpenAI's chat models take; OpenAI's reasoning models (o1, o3,
 * o4-mini, gpt-5…) refuse it and take `max_completion_tokens` instead.
 */
export function outputCap(model: string, maxTokens: number): { max_tokens: number } | { max_completion_tokens: number } {
  const bare = model.trim().toLowerCase().replace(/^openai\//, '');
  return /^(o\d|gpt-5)/.test(bare) ? { max_completion_tokens: maxTokens } : { max_tokens: maxTokens };
}

/**
 * Refuse an LLM call when the tenant's spend today (UTC, llm_calls.cost_micros) has reached its
 * budget (tenants.llm_daily_budget_micros ?? LLM_DAILY_BUDGET_MICROS; 0 = no LLM). Checked
 * before every call, so one call (or a few concurrent ones) may overshoot the budget by its own cost.
 */
export async function ensureLlmBudget(deps: { limits?: Pick<LimitService, 'llmBudget'> }, tenantId: string): Promise<void> {
  if (!deps.limits) return;
  const b = await deps.limits.llmBudget(tenantId);
  if (!b.exceeded) return;
  throw ApplicationFailure.create({
    type: FailureType.LlmBudgetExceeded, // non-retryable: retrying spends nothing until tomorrow
    message:
      b.budgetMicros === 0
        ? `LLM calls are disabled for tenant ${tenantId} (daily LLM budget is 0)`
        : `tenant ${tenantId} spent ${b.spentMicros} of its ${b.budgetMicros} micro-USD daily LLM budget on ${b.day} (UTC); no LLM call until the next UTC day or a higher budget`,
    nonRetryable: true,
    details: [{ day: b.day, spentMicros: b.spentMicros, budgetMicros: b.budgetMicros }],
  });
}
