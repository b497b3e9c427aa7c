import type { Db } from '../db/client';
import type { SecretBox } from '../lib/crypto';
import { createAgentService } from './agents';
import { createChannelService } from './channels';
import { createCreditService } from './credits';
import { createExtractionService } from './extractions';
import { createLeadService } from './leads';
import { createPipelineService } from './pipelines';
import { createSequenceService } from './sequences';
import { createTemplateService } from './templates';
import { createTenantService } from './tenants';

export function createServices(db: Db, box: SecretBox, opts: { defaultCreditsPerReply: number }) {
  return {
    tenants: createTenantService(db, opts),
    agents: createAgentService(db),
    channels: createChannelService(db, box),
    credits: createCreditService(db),
    leads: createLeadService(db),
    pipelines: createPipelineService(db),
    templates: createTemplateService(db),
    sequences: createSequenceService(db),
    extractions: createExtractionService(db),
  };
}

export type Services = ReturnType<typeof createServices>;
