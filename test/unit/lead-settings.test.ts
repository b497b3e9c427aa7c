/**
 * Lead settings belong to the worker: built from LEAD_* in the worker's composition, handed to
 * every run by the ensureLead activity, and never sent by the API's signalWithStart.
 */
import type { Client } from '@temporalio/client';
import { createPersistenceActivities } from '../../activities/persistence/leads';
import { activityDepsFrom, leadSettingsFrom } from '../../composition/worker';
import { loadConfig } from '../../config';
import { createLogger } from '../../lib/logger';
import type { Services } from '../../services';
import { createParleyTemporal } from '../../temporal/client';
import { createLeadIds } from '../../lib/lead-ids';
import { DEFAULT_LEAD_SETTINGS, inboundSignal, type LeadWorkflowSettings } from '../../workflows/lead/definitions';

const log = createLogger({ level: 'silent' });

test("the workflow's DEFAULT_LEAD_SETTINGS are config's LEAD_* defaults", () => {
  expect(leadSettingsFrom(loadConfig({}))).toEqual(DEFAULT_LEAD_SETTINGS);
});

test("the worker's activity deps carry the lead settings from its own LEAD_* config", () => {
  const config = loadConfig({ LEAD_DEBOUNCE_GAP_MS: '150', LEAD_EVENT_BUDGET: '300', LEAD_PACING_MIN_GAP_MS: '200' });
  const deps = activityDepsFrom(config, {} as Services, log);
  expect(deps.leadSettings).toEqual(leadSettingsFrom(config));
  expect(deps.leadSettings).toMatchObject({ eventBudget: 300, debounce: { gapMs: 150, maxWaitMs: 15_000 }, pacing: { minGapMs: 200, jitterMs: 0 } });
});

test('ensureLead returns the settings its worker was built with', async () => {
  const settings: LeadWorkflowSettings = { eventBudget: 123, dedupWindow: 45, debounce: { gapMs: 6789, maxWaitMs: 10_000 } };
  const activities = createPersistenceActivities({
    leads: { ensure: async () => ({ leadId: 'lead-1', stage: 'New', mode: 'ai', blocked: false, created: false }) } as unknown as Services['leads'],
    channels: { agentIdFor: async () => undefined } as unknown as Services['channels'],
    agents: {} as Services['agents'],
    sequences: {} as Services['sequences'],
    suppressions: { covers: async () => false } as unknown as Services['suppressions'],
    leadSettings: settings,
  });
  const lead = await activities.ensureLead({ tenantId: 't', channelAccountId: 'ch', channel: 'whatsapp', contactId: '9198', workflowId: 'lead:ch:9198' });
  expect(lead.settings).toEqual(settings);
  expect(lead).toMatchObject({ leadId: 'lead-1', handoffKeywords: [] });
});

test("the API's signalWithStart input carries no lead settings", async () => {
  const calls: { args: unknown[]; signal: unknown }[] = [];
  const client = { workflow: { signalWithStart: async (_type: string, opts: { args: unknown[]; signal: unknown }) => void calls.push(opts) } } as unknown as Client;
  const temporal = createParleyTemporal(client, { taskQueue: 'q', leadIds: createLeadIds(Buffer.alloc(32, 1)) });
  await temporal.signalInbound(
    { tenantId: 't', channelAccountId: 'ch', channel: 'whatsapp', contactId: '9198', contactName: 'Asha' },
    { providerMessageId: 'wamid.1', channel: 'whatsapp', contactId: '9198', sentAt: '2026-01-01T00:00:00.000Z', type: 'text', text: 'hi' },
  );
  expect(calls).toHaveLength(1);
  expect(calls[0]!.signal).toBe(inboundSignal);
  expect(calls[0]!.args).toEqual([{ tenantId: 't', channelAccountId: 'ch', channel: 'whatsapp', contactId: '9198', contactName: 'Asha' }]);
  expect(calls[0]!.args[0]).not.toHaveProperty('settings');
});
