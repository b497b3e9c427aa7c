import type { Channel, LeadCounters, LeadMode } from '../definitions';

const CHANNEL_NAMES: Record<Channel, string> = { whatsapp: 'WhatsApp', instagram: 'Instagram', webchat: 'Web chat' };

/** The one-line static summary shown for a lead in the Temporal Web UI. */
export function leadSummary(input: { channel: Channel; contactId: string; contactName?: string }): string {
  const who = input.contactName ? `${input.contactName} (${input.contactId})` : input.contactId;
  return `Lead ${who} on ${CHANNEL_NAMES[input.channel]}`;
}

/** Markdown for the Web UI's "current details" of a running lead. */
export function leadDetails(input: {
  stage: string;
  mode: LeadMode;
  blocked: boolean;
  lastInboundAt?: string;
  lastOutboundAt?: string;
  counters: LeadCounters;
}): string {
  const c = input.counters;
  return [
    `**Stage** ${input.stage} · **Mode** ${input.mode}${input.blocked ? ' · **Blocked: no credits**' : ''}`,
    `Last inbound: ${input.lastInboundAt ?? 'never'} · Last reply: ${input.lastOutboundAt ?? 'never'}`,
    `Inbound ${c.inbound} (duplicates ${c.duplicates}) · Turns ${c.turns} · Replies ${c.replies} · Failed ${c.failedReplies} · Blocked turns ${c.blockedTurns} · Run #${c.runs}`,
  ].join('\n\n');
}
