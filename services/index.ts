import type { Db } from '../db/client';
import type { SecretBox } from '../lib/crypto';
import { createAgentService } from './agents';
import { createChannelService } from './channels';
import { createCreditService } from './credits';
import { createLeadService } from './leads';
import { createTenantService } from './tenants';

export function createServices(db: Db, box: SecretBox, opts: { defaultCreditsPerReply: number }) {
  return {
    tenants: createTenantService(db, opts),
    agents: createAgentService(db),
    channels: createChannelService(db, box),
    credits: createCreditService(db),
    leads: createLeadService(db),
  };
}

export type Services = ReturnType<typeof createServices>;
