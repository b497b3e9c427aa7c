/**
 * The last few messages of the conversation, kept in the workflow's carried state only for the
 * Web UI's current details (the transcript itself lives in PostgreSQL). Bounded in count and in
 * characters so the carried state stays small whatever the lead writes.
 */

/** How many messages the details show. */
export const RECENT_MESSAGES = 6;
/** Characters kept of each message (code points; longer texts end with "…"). */
export const RECENT_MESSAGE_CHARS = 200;

/** Who wrote a message: the lead, the bot (AI, sequence, bump-up) or a person (manual message, API). */
export type RecentAuthor = 'lead' | 'bot' | 'human';

export interface RecentMessage {
  from: RecentAuthor;
  /** ISO time the workflow saw it (received or sent). */
  at: string;
  /** The text, cut to RECENT_MESSAGE_CHARS; a template or media message is described in brackets. */
  text: string;
}

/** `text` cut to `max` code points (a cut text ends with "…"; never splits a surrogate pair). */
export function clip(text: string, max: number = RECENT_MESSAGE_CHARS): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  const chars = [...oneLine];
  return chars.length > max ? `${chars.slice(0, Math.max(0, max - 1)).join('')}…` : oneLine;
}

/** The list with `message` appended (its text clipped), keeping the newest `max`. Does not mutate its input. */
export function appendRecent(list: readonly RecentMessage[] | undefined, message: RecentMessage, max: number = RECENT_MESSAGES): RecentMessage[] {
  return [...(list ?? []), { ...message, text: clip(message.text) }].slice(-max);
}
