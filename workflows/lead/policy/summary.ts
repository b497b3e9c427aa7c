import type { Channel, LeadMode } from '../../../contract/vocabulary';
import type { SequenceCursor } from '../../../contract/messages';
import type { LeadCounters } from '../definitions';
import type { RecentMessage } from './transcript';
import { isWindowOpen, windowClosesAt } from './window';

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

/**
 * A contact id as the details show it: the first two and last four characters ("91…3210"), so a
 * person can tell leads apart without the whole number or handle in the Web UI.
 */
export function maskContact(contactId: string): string {
  const chars = [...contactId];
  if (chars.length <= 4) return '…';
  if (chars.length <= 8) return `…${chars.slice(-2).join('')}`;
  return `${chars.slice(0, 2).join('')}…${chars.slice(-4).join('')}`;
}

/**
 * Text from outside (what a lead wrote) made inert in Markdown: no links, images, HTML, headings
 * or emphasis of its own, so a message cannot make the Web UI fetch a URL or fake a field.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#!|~]/g, (c) => `\\${c}`).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** "2026-11-29 10:02 UTC" (minutes are enough for a person). */
export function shortTime(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

function duration(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h${min % 60 ? ` ${min % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

const MODE_MEANS: Record<LeadMode, string> = { ai: 'the AI answers', human: 'a person answers', paused: 'nobody answers automatically', closed: 'conversation closed' };
const AUTHOR: Record<RecentMessage['from'], string> = { lead: 'Lead', bot: 'Bot', human: 'Team' };

/** The 24-hour customer-service window: open until when, closed since when, or never opened. */
export function windowLine(input: { lastInboundAt?: string; providerWindowClosedAt?: string; now: string }): string {
  const closesAt = windowClosesAt(input.lastInboundAt);
  if (!input.lastInboundAt || !closesAt) return 'not opened (the lead has not written): templates only';
  const providerClosed = input.providerWindowClosedAt !== undefined && input.providerWindowClosedAt >= input.lastInboundAt;
  if (providerClosed) return `closed (the provider said so at ${shortTime(input.providerWindowClosedAt!)}): templates only`;
  if (isWindowOpen(input.lastInboundAt, input.now)) return `open until ${shortTime(closesAt)}: free-form replies allowed`;
  return `closed since ${shortTime(closesAt)}: templates only`;
}

/** Where the lead is in its follow-up sequence. */
export function sequenceLine(sequence: { def: { name: string; steps: readonly unknown[] }; cursor: SequenceCursor } | undefined): string {
  if (!sequence) return 'none';
  const { def, cursor } = sequence;
  const name = escapeMarkdown(clipName(def.name));
  const m = def.steps.length;
  const step = `step ${Math.min(cursor.stepIndex + 1, m)} of ${m}`;
  switch (cursor.status) {
    case 'active':
      return `${name}, ${step}, next step due ${cursor.dueAt ? shortTime(cursor.dueAt) : 'now'}`;
    case 'paused':
      return `${name}, ${step}, **paused** (${duration(cursor.remainingMs ?? 0)} left when resumed)`;
    case 'stopped':
      return `${name}, stopped at ${step} (${escapeMarkdown(cursor.stopReason ?? 'stopped')})`;
    case 'completed':
      return `${name}, completed (${m} of ${m} steps)`;
  }
}

function clipName(name: string): string {
  const chars = [...name];
  return chars.length > 60 ? `${chars.slice(0, 59).join('')}…` : name;
}

export interface LeadDetailsInput {
  channel: Channel;
  contactId: string;
  /** Workflow time the details are written (the window line depends on it). */
  now: string;
  stage: string;
  mode: LeadMode;
  blocked: boolean;
  score?: number;
  optedOut?: boolean;
  lastInboundAt?: string;
  lastOutboundAt?: string;
  providerWindowClosedAt?: string;
  counters: LeadCounters;
  sequence?: { def: { name: string; steps: readonly unknown[] }; cursor: SequenceCursor };
  recentMessages?: readonly RecentMessage[];
  deadLetters?: unknown[];
  deferred?: unknown[];
  circuitWaitSince?: string;
  /** Follow-ups the model scheduled (schedule_follow_up), earliest first: their ids are what the cancelFollowUp update takes. */
  followUps?: readonly { id: string; at: string }[];
}

/** The waiting follow-ups: when each is due and its id (cancelFollowUp's `followUpId`). */
export function followUpsLine(followUps: readonly { id: string; at: string }[]): string {
  return followUps.map((f) => `${shortTime(f.at)} (\`${f.id.replace(/`/g, '')}\`)`).join(', ');
}

/**
 * Markdown for the Web UI's "current details" of a running lead: who (masked), stage, mode,
 * score, the window, the sequence, the scheduled follow-ups, what needs a person, and the last messages. The details reach
 * Temporal as a query result, which the payload codec encrypts; the Web UI shows them decoded
 * through the codec server. Bounded: a few short lines and at most RECENT_MESSAGES messages.
 */
export function leadDetails(input: LeadDetailsInput): string {
  const c = input.counters;
  const attention = [
    input.circuitWaitSince ? `**Sends waiting: the channel's circuit breaker is open** (since ${shortTime(input.circuitWaitSince)})` : undefined,
    input.deadLetters?.length ? `**Dead letters: ${input.deadLetters.length}** (GET /v1/dead-letters)` : undefined,
    input.deferred?.length ? `Deferred sends: ${input.deferred.length}` : undefined,
    input.blocked ? '**Blocked: no credits**' : undefined,
    input.optedOut ? '**Opted out**: no sequence steps, bump-ups or templates' : undefined,
  ].filter((x): x is string => x !== undefined);
  const recent = input.recentMessages ?? [];
  return [
    `**Lead** ${escapeMarkdown(maskContact(input.contactId))} on ${CHANNEL_NAMES[input.channel]}`,
    `**Stage** ${escapeMarkdown(input.stage)} · **Mode** ${input.mode} (${MODE_MEANS[input.mode]}) · **Score** ${input.score ?? '–'}`,
    ...attention,
    [
      `- **Window** ${windowLine(input)}`,
      `- **Sequence** ${sequenceLine(input.sequence)}`,
      ...(input.followUps?.length ? [`- **Follow-ups** ${followUpsLine(input.followUps)}`] : []),
      `- **Last inbound** ${input.lastInboundAt ? shortTime(input.lastInboundAt) : 'never'} · **Last reply** ${input.lastOutboundAt ? shortTime(input.lastOutboundAt) : 'never'}`,
      `- Inbound ${c.inbound} (duplicates ${c.duplicates}) · Turns ${c.turns} · Replies ${c.replies} · Failed ${c.failedReplies} · Blocked turns ${c.blockedTurns} · Run #${c.runs}`,
    ].join('\n'),
    recent.length
      ? `**Last ${recent.length === 1 ? 'message' : `${recent.length} messages`}**\n\n${recent.map((m) => `- ${shortTime(m.at)} **${AUTHOR[m.from]}:** ${escapeMarkdown(m.text)}`).join('\n')}`
      : '_No messages yet._',
  ].join('\n\n');
}
