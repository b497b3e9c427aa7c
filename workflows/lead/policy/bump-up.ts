/**
 * Bump-ups: when the lead goes quiet after a bot message while the 24-hour window is still
 * open, one short AI nudge ("Still interested in the 2BHK? I can share photos."). Capped per
 * conversation, sent only while free-form messages are allowed, never a repeat of what the
 * bot already said.
 */
import type { Channel } from '../../../contract/vocabulary';
import { formatInstant, parseInstant, windowClosesAt } from './window';

export interface BumpUpPolicy {
  /** How long the lead must be quiet after the bot's last message. */
  idleMs: number;
  /** Most bump-ups in one conversation. */
  maxPerConversation: number;
  /** Longest nudge, in words. */
  maxWords: number;
  /** Channels that get bump-ups at all. */
  channels: Channel[];
}

export const DEFAULT_BUMP_UP: Readonly<BumpUpPolicy> = { idleMs: 4 * 60 * 60 * 1000, maxPerConversation: 2, maxWords: 40, channels: ['whatsapp'] };

export interface BumpUpDueInput {
  channel: Channel;
  lastInboundAt?: string;
  lastOutboundAt?: string;
  /** Whether the last outbound message was written by the bot (not a human agent). */
  lastOutboundByBot: boolean;
  bumpsSent: number;
  policy: BumpUpPolicy;
}

/**
 * When the next bump-up is due (lastOutboundAt + idleMs), or undefined when none should be
 * armed: channel not enabled, cap reached, the lead spoke last, the last message was not the
 * bot's, or the window would be closed by then.
 */
export function bumpUpDueAt(input: BumpUpDueInput): string | undefined {
  const { policy } = input;
  if (!policy.channels.includes(input.channel)) return undefined;
  if (input.bumpsSent >= policy.maxPerConversation) return undefined;
  if (input.lastOutboundAt === undefined || !input.lastOutboundByBot) return undefined;
  const closesAt = windowClosesAt(input.lastInboundAt);
  if (closesAt === undefined || input.lastInboundAt === undefined) return undefined; // never wrote: no window
  const lastOut = parseInstant(input.lastOutboundAt, 'lastOutboundAt');
  if (parseInstant(input.lastInboundAt, 'lastInboundAt') >= lastOut) return undefined; // the lead spoke last
  const due = lastOut + policy.idleMs;
  return due < parseInstant(closesAt) ? formatInstant(due) : undefined;
}

/**
 * At most `maxWords` words. Longer text is cut after the last full sentence that fits (if that
 * keeps at least half the words), otherwise at the word limit with an ellipsis.
 */
export function trimToWords(text: string, maxWords: number): string {
  if (!Number.isInteger(maxWords) || maxWords < 1) throw new RangeError(`maxWords must be a positive integer, got ${maxWords}`);
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length <= maxWords) return text.trim();
  const kept = words.slice(0, maxWords);
  for (let i = kept.length - 1; i >= Math.ceil(maxWords / 2) - 1; i--) {
    if (/[.!?…。！？]["'”’)\]]*$/u.test(kept[i] ?? '')) return kept.slice(0, i + 1).join(' ');
  }
  return `${kept.join(' ').replace(/[\s,;:–—-]+$/u, '')}…`;
}

/** Minimum length (normalized) at which containing the other message counts as repeating it. */
export const NEAR_DUPLICATE_MIN_CHARS = 20;

/**
 * Whether `candidate` says nothing the bot has not already said: equal to a previous bot
 * message ignoring case, whitespace, punctuation and symbols (emoji); or, when both are at
 * least 20 characters, one contains the other as whole words. An empty candidate is a repeat.
 */
export function isRepeat(candidate: string, previousBotMessages: string[]): boolean {
  const c = normalizeForComparison(candidate);
  if (c === '') return true;
  return previousBotMessages.some((message) => {
    const p = normalizeForComparison(message);
    if (p === c) return true;
    if (p.length < NEAR_DUPLICATE_MIN_CHARS || c.length < NEAR_DUPLICATE_MIN_CHARS) return false;
    return ` ${p} `.includes(` ${c} `) || ` ${c} `.includes(` ${p} `);
  });
}

/** Lower case, punctuation and symbols removed, whitespace collapsed (Unicode-aware). */
export function normalizeForComparison(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\p{P}\p{S}]+/gu, ' ')
    .replace(/\s+/gu, ' ')
    .trim();
}
