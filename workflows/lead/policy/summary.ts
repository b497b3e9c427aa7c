import type { Channel, LeadMode } from '../../../contract/vocabulary';
import type { LeadCounters } from '../definitions';

const CHANNEL_NAMES: Record<Channel, string> = { whatsapp: 'WhatsApp', instagram: 'Instagram', webchat: 'Web chat' };

/** A name in the summary keeps this many characters (Temporal refuses a summary over 400 bytes). */
export const SUMMARY_NAME_MAX_CHARS = 32;

/** The one-line static summary shown for a lead in the Temporal Web UI (at most about 300 UTF-8 bytes). */
export function leadSummary(input: { channel: Channel; contactId: string; contactName?: string }): string {
  const chars = input.contactName ? [...input.contactName] : [];
  const name = chars.length > SUMMARY_NAME_MAX_CHARS ? `${chars.slice(0, SUMMARY_NAME_MAX_CHARS).join('')}…` : chars.join('');
  const who = name ? `${name} (${input.contactId})` : input.contactId;
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
  deadLetters?: unknown[];
  deferred?: unknown[];
  circuitWaitSince?: string;
}): string {
  const c = input.counters;
  const attention = [
    input.circuitWaitSince ? `**Sends waiting: the channel's circuit breaker is open** (since ${input.circuitWaitSince})` : undefined,
    input.deadLetters?.length ? `**Dead letters: ${input.deadLetters.length}** (GET /v1/dead-letters)` : undefined,
    input.deferred?.length ? `Deferred sends: ${input.deferred.length}` : undefined,
  ].filter((x): x is string => x !== undefined);
  return [
    `**Stage** ${input.stage} · **Mode** ${input.mode}${input.blocked ? ' · **Blocked: no credits**' : ''}`,
    ...attention,
    `Last inbound: ${input.lastInboundAt ?? 'never'} · Last reply: ${input.lastOutboundAt ?? 'never'}`,
    `Inbound ${c.inbound} (duplicates ${c.duplicates}) · Turns ${c.turns} · Replies ${c.replies} · Failed ${c.failedReplies} · Blocked turns ${c.blockedTurns} · Run #${c.runs}`,
  ].join('\n\n');
}
