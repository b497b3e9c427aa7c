import { ApplicationFailure } from '@temporalio/common';
import OpenAI from 'openai';
import type { AgentService } from '../../services/agents';
import type { ChannelService } from '../../services/channels';
import type { LeadService } from '../../services/leads';
import type { Logger } from '../../lib/logger';

export interface LlmDeps {
  leads: LeadService;
  agents: AgentService;
  channels: ChannelService;
  log: Logger;
  baseURL?: string;
  apiKey: string;
  timeoutMs: number;
  /** How many recent messages go into the prompt. */
  transcriptLimit?: number;
}

export interface GenerateReplyInput {
  tenantId: string;
  leadId: string;
  /** The reply comes from the agent this channel account is assigned to now. */
  channelAccountId: string;
  /** The lead's stage: the agent's prompt addition for it is used. */
  stage?: string;
  /** What to write this time (a sequence step's AI instruction, a bump-up). */
  instruction?: string;
}

export interface GenerateReplyResult {
  text: string;
  model: string;
  usedFallback: boolean;
  promptTokens: number;
  completionTokens: number;
}

/** Errors that say the request itself is wrong (key, model, parameters): no retry helps. */
function isConfigError(err: unknown): boolean {
  return err instanceof OpenAI.APIError && [400, 401, 403, 404, 422].includes(err.status ?? 0);
}

function describe(err: unknown): string {
  if (err instanceof OpenAI.APIError) return `${err.status ?? 'no status'} ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

function systemPrompt(agent: { systemPrompt: string; stagePrompts?: Record<string, string> }, input: GenerateReplyInput): string {
  const addition = input.stage ? agent.stagePrompts?.[input.stage] : undefined;
  return addition ? `${agent.systemPrompt}\n\n${addition}` : agent.systemPrompt;
}

export function createLlmActivities(deps: LlmDeps) {
  // Temporal owns retries: the client never retries by itself.
  const client = new OpenAI({ apiKey: deps.apiKey, baseURL: deps.baseURL, maxRetries: 0, timeout: deps.timeoutMs });
  const log = deps.log.child({ module: 'llm' });
  return {
    /** Chat Completions over the recent transcript: the agent's model, then its fallback model. */
    async generateReply(input: GenerateReplyInput): Promise<GenerateReplyResult> {
      const agentId = await deps.channels.agentIdFor(input.channelAccountId);
      const agent = agentId ? await deps.agents.get(input.tenantId, agentId) : undefined;
      if (!agent) {
        throw ApplicationFailure.create({ type: 'agent_not_found', message: `no agent for channel account ${input.channelAccountId}`, nonRetryable: true });
      }
      const transcript = await deps.leads.transcript(input.leadId, deps.transcriptLimit ?? 30);
      const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
        { role: 'system', content: systemPrompt(agent, input) },
        ...transcript
          .filter((m) => m.direction === 'inbound' || m.status !== 'failed')
          .map((m): OpenAI.Chat.ChatCompletionMessageParam =>
            m.direction === 'inbound' ? { role: 'user', content: m.body } : { role: 'assistant', content: m.body },
          ),
      ];
      if (input.instruction) messages.push({ role: 'system', content: `Instruction for this message: ${input.instruction}` });
      const models = [agent.model, ...(agent.fallbackModel && agent.fallbackModel !== agent.model ? [agent.fallbackModel] : [])];
      const failures: unknown[] = [];
      for (const [i, model] of models.entries()) {
        try {
          const res = await client.chat.completions.create({ model, messages, temperature: agent.temperature });
          const text = res.choices[0]?.message?.content?.trim();
          if (!text) throw new Error(`model ${model} returned an empty reply`);
          return {
            text,
            model: res.model || model,
            usedFallback: i > 0,
            promptTokens: res.usage?.prompt_tokens ?? 0,
            completionTokens: res.usage?.completion_tokens ?? 0,
          };
        } catch (err) {
          failures.push(err);
          log.warn({ leadId: input.leadId, model, error: describe(err) }, 'llm call failed');
        }
      }
      const summary = failures.map(describe).join('; ');
      if (failures.every(isConfigError)) {
        throw ApplicationFailure.create({ type: 'llm_config', message: `LLM rejected the request: ${summary}`, nonRetryable: true });
      }
      throw ApplicationFailure.create({ type: 'llm_transient', message: `LLM unavailable: ${summary}` });
    },
  };
}
