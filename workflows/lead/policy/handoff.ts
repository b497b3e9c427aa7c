/**
 * Who answers the lead. `ai`: the AI replies and sequences run; `human`: an agent has the
 * conversation and the AI stays silent; `paused`: nobody answers automatically; `closed`:
 * the conversation is over until reopened.
 *
 * Transitions:
 *   handoff  ai → human        handback human → ai
 *   pause    ai → paused       resume   paused → ai
 *   close    any → closed      reopen   closed → ai
 * An automatic handoff (keyword or LLM tool) shortly after a handback is refused, so a lead
 * who keeps saying "agent" does not bounce between the AI and the team; the API always may.
 */
import type { LeadMode, ModeRequest, ModeRequestSource } from '../../../contract/vocabulary';
import { parseInstant } from './window';

export type { ModeRequest, ModeRequestSource } from '../../../contract/vocabulary';

export interface TransitionModeInput {
  mode: LeadMode;
  request: ModeRequest;
  source: ModeRequestSource;
  now: string;
  /** When the lead was last handed back to the AI. */
  lastHandbackAt?: string;
  /** How long after a handback automatic handoffs are refused. */
  autoHandoffCooldownMs: number;
}

export type ModeTransition = { ok: true; mode: LeadMode } | { ok: false; reason: string };

const TARGET: Record<ModeRequest, LeadMode> = {
  handoff: 'human',
  handback: 'ai',
  pause: 'paused',
  resume: 'ai',
  close: 'closed',
  reopen: 'ai',
};

const CLOSED = 'lead is closed; reopen it first';

/** Why a request is refused in a mode; a mode without an entry allows the request. */
const REFUSALS: Record<ModeRequest, Partial<Record<LeadMode, string>>> = {
  handoff: { human: 'lead is already with a human', paused: 'lead is paused; resume it before handing off', closed: CLOSED },
  handback: { ai: 'lead is not with a human', paused: 'lead is paused, not with a human', closed: CLOSED },
  pause: { paused: 'lead is already paused', human: 'lead is with a human; hand it back before pausing', closed: CLOSED },
  resume: { ai: 'lead is not paused', human: 'lead is with a human, not paused', closed: CLOSED },
  close: { closed: 'lead is already closed' },
  reopen: { ai: 'lead is not closed', human: 'lead is not closed', paused: 'lead is not closed' },
};

/** A request no person made (a keyword, the LLM tool): subject to the cooldown, and recorded when refused. */
export function isAutomatic(source: ModeRequestSource): boolean {
  return source === 'keyword' || source === 'llm_tool';
}

/** The lead's next mode for a request, or why the request is refused. */
export function transitionMode(input: TransitionModeInput): ModeTransition {
  const now = parseInstant(input.now, 'now');
  const refusal = REFUSALS[input.request][input.mode];
  if (refusal !== undefined) return { ok: false, reason: refusal };
  if (input.request === 'handoff' && isAutomatic(input.source) && input.lastHandbackAt !== undefined) {
    const since = now - parseInstant(input.lastHandbackAt, 'lastHandbackAt');
    if (since < input.autoHandoffCooldownMs) {
      return {
        ok: false,
        reason: `automatic handoff refused: the lead was handed back to the AI ${describeDuration(Math.max(0, since))} ago (cooldown ${describeDuration(input.autoHandoffCooldownMs)})`,
      };
    }
  }
  return { ok: true, mode: TARGET[input.request] };
}

/**
 * The first keyword (in the order given) that appears in `text` as whole words: case-insensitive,
 * punctuation ignored, any script ("human" matches "Human!" but not "humans").
 */
export function matchHandoffKeyword(text: string, keywords: string[]): string | undefined {
  const words = ` ${tokens(text).join(' ')} `;
  for (const keyword of keywords) {
    const phrase = tokens(keyword).join(' ');
    if (phrase !== '' && words.includes(` ${phrase} `)) return keyword;
  }
  return undefined;
}

/** Only in `ai` mode does the AI answer. */
export function aiMayReply(mode: LeadMode): boolean {
  return mode === 'ai';
}

/** Only in `ai` mode do follow-up sequences and bump-ups run. */
export function sequencesMayRun(mode: LeadMode): boolean {
  return mode === 'ai';
}

function tokens(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{M}\p{N}]+/gu) ?? [];
}

function describeDuration(ms: number): string {
  const minutes = Math.round(ms / 60000);
  if (minutes < 1) return `${Math.round(ms / 1000)}s`;
  if (minutes < 120) return `${minutes} min`;
  return `${Math.round(minutes / 60)} h`;
}
