import type { Logger } from '../lib/logger';
import type { AgentService } from '../services/agents';
import type { ChannelService } from '../services/channels';
import type { CreditService } from '../services/credits';
import type { ExtractionService } from '../services/extractions';
import type { LeadService } from '../services/leads';
import type { SequenceService } from '../services/sequences';
import type { TemplateService } from '../services/templates';
import { createWhatsAppActivities } from './channels/whatsapp';
import { createCreditActivities } from './credits';
import { createExtractionActivities } from './extraction/extract';
import { createLlmActivities } from './llm/reply';
import { createPersistenceActivities } from './persistence/leads';

export interface ActivityDeps {
  leads: LeadService;
  credits: CreditService;
  channels: ChannelService;
  agents: AgentService;
  templates: TemplateService;
  sequences: SequenceService;
  extractions: ExtractionService;
  log: Logger;
  graph: { url: string; version: string; timeoutMs: number };
  llm: { baseURL?: string; apiKey: string; timeoutMs: number };
}

/** The union the worker registers; the workflow proxies its type. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createPersistenceActivities(deps),
    ...createCreditActivities(deps),
    ...createLlmActivities({ ...deps, ...deps.llm }),
    ...createExtractionActivities({ ...deps, ...deps.llm }),
    ...createWhatsAppActivities({
      ...deps,
      graphApiUrl: deps.graph.url,
      graphApiVersion: deps.graph.version,
      timeoutMs: deps.graph.timeoutMs,
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
