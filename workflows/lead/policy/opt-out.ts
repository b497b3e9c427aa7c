/**
 * Opt-out (STOP) and opt-in (START) as pure decisions: which keywords an agent listens to, whether
 * a message is one of them, what a turn does with a batch that holds one, and which sends a
 * suppressed contact may still get. The suppression list itself is in the database (per tenant,
 * keyed on the contact's identity forms): the workflow asks it before every send this policy
 * says needs consent, so a STOP on another channel of the tenant holds here too.
 *
 * Matching: the WHOLE message, after trimming whitespace and surrounding punctuation
 * (. ! ? ¡ ¿ ।), collapsing inner whitespace, lower-casing, and dropping Latin accents
 * (combining marks U+0300–U+036F after NFD: "CANCELAR SUSCRIPCIÓN" = "cancelar suscripcion").
 * Devanagari vowel signs are kept, so Hindi words are compared as written. "Please stop
 * sending me offers" is NOT an opt-out (a human or the LLM handles it), "stop!" is.
 */

import type { AgentOptOutSettings } from '../../../contract/messages';

export const OPT_OUT_LANGUAGES = ['en', 'hi', 'es', 'pt'] as const;
export type OptOutLanguage = (typeof OPT_OUT_LANGUAGES)[number];

export interface OptKeywords {
  /** Phrases that put the contact on the suppression list. */
  stop: string[];
  /** Phrases that take it off again. */
  start: string[];
}

/**
 * The default phrases per language. Conservative on purpose: a phrase a lead might write as an
 * ordinary answer ("no", "yes", "ok") is not here. An agent adds its own per language.
 */
export const DEFAULT_OPT_KEYWORDS: Readonly<Record<OptOutLanguage, Readonly<OptKeywords>>> = {
  en: { stop: ['STOP', 'STOP ALL', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPT OUT', 'OPT-OUT', 'OPTOUT'], start: ['START', 'SUBSCRIBE', 'UNSTOP', 'OPT IN', 'OPT-IN'] },
  hi: { stop: ['रोकें', 'रोको', 'बंद करो', 'बंद करें', 'अनसब्सक्राइब', 'सदस्यता रद्द करें'], start: ['शुरू करें', 'शुरू करो', 'सब्सक्राइब'] },
  es: { stop: ['BAJA', 'DETENER', 'PARAR', 'CANCELAR SUSCRIPCIÓN', 'DARSE DE BAJA', 'DESUSCRIBIR'], start: ['ALTA', 'EMPEZAR', 'COMENZAR', 'SUSCRIBIR', 'REANUDAR'] },
  pt: { stop: ['PARAR', 'SAIR', 'CANCELAR', 'DESCADASTRAR', 'CANCELAR INSCRIÇÃO'], start: ['COMEÇAR', 'INICIAR', 'VOLTAR', 'INSCREVER'] },
};

export type { AgentOptOutSettings };

/** What one run of the workflow uses (resolved by ensureLead from the agent). */
export interface OptOutConfig extends OptKeywords {
  confirmationText?: string;
  replyAfterOptOut: boolean;
}

/** The configuration of an agent that says nothing: every default language, replies on, no confirmation. */
export const DEFAULT_OPT_OUT: Readonly<OptOutConfig> = optOutConfig(undefined);

/** Normalize a message or a phrase for comparison (see the module comment). */
export function normalizeKeyword(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFC')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/^[\s.!?¡¿।]+|[\s.!?¡¿।]+$/g, '');
}

/** The agent's phrases: the default ones of its languages plus its own, normalized and deduplicated. */
export function optOutConfig(agent: AgentOptOutSettings | undefined): OptOutConfig {
  const languages = agent?.languages ?? [...OPT_OUT_LANGUAGES];
  const stop = new Set<string>();
  const start = new Set<string>();
  for (const lang of languages) {
    const d = DEFAULT_OPT_KEYWORDS[lang as OptOutLanguage];
    d?.stop.forEach((k) => stop.add(normalizeKeyword(k)));
    d?.start.forEach((k) => start.add(normalizeKeyword(k)));
  }
  for (const extra of Object.values(agent?.keywords ?? {})) {
    extra.stop?.forEach((k) => stop.add(normalizeKeyword(k)));
    extra.start?.forEach((k) => start.add(normalizeKeyword(k)));
  }
  stop.delete('');
  start.delete('');
  // a phrase in both lists would flip the contact back and forth: stop wins (the safe side)
  for (const k of stop) start.delete(k);
  const confirmationText = agent?.confirmationText?.trim() || undefined;
  return { stop: [...stop], start: [...start], ...(confirmationText ? { confirmationText } : {}), replyAfterOptOut: agent?.replyAfterOptOut ?? true };
}

export type OptAction = 'opt_out' | 'opt_in';

/** Whether the whole message is an opt-out or opt-in phrase. */
export function matchOptKeyword(text: string | undefined, keywords: OptKeywords): { action: OptAction; keyword: string } | undefined {
  if (!text) return undefined;
  const t = normalizeKeyword(text);
  if (!t) return undefined;
  if (keywords.stop.includes(t)) return { action: 'opt_out', keyword: t };
  if (keywords.start.includes(t)) return { action: 'opt_in', keyword: t };
  return undefined;
}

export interface OptTurnInput {
  /** The lead's written messages of this turn, in order. */
  messages: readonly { text?: string; providerMessageId: string }[];
  keywords: OptKeywords;
}

export interface OptTurn {
  /** The last opt-out/opt-in phrase of the batch (it decides: STOP then START is subscribed). */
  last?: { action: OptAction; keyword: string; providerMessageId: string };
  /** The lead wrote something that is not a phrase after it (only then may the AI answer). */
  writesAfter: boolean;
}

/** What a batch of messages says about opt-out. */
export function optTurn(input: OptTurnInput): OptTurn {
  let last: OptTurn['last'];
  let writesAfter = false;
  for (const m of input.messages) {
    const hit = matchOptKeyword(m.text, input.keywords);
    if (hit) {
      last = { ...hit, providerMessageId: m.providerMessageId };
      writesAfter = false;
    } else if (last) writesAfter = true;
  }
  return { ...(last ? { last } : {}), writesAfter };
}

/** Whether buffered messages (not yet answered) end in an opt-out: a due step waits for the turn that applies it. */
export function pendingOptOut(messages: readonly { text?: string; providerMessageId: string }[], keywords: OptKeywords): boolean {
  return optTurn({ messages, keywords }).last?.action === 'opt_out';
}

/** The kinds of send, as far as consent goes. */
export type SendCategory = 'sequence_step' | 'bump_up' | 'template' | 'ai_reply' | 'manual' | 'confirmation';

/**
 * The category of a send from what it is and its purpose (the purposes turns.ts gives:
 * "sequence step N", "bump-up N", "reply", "manual reply", "api message", "opt-out confirmation").
 */
export function sendCategory(what: { kind: 'ai' | 'text' | 'template' | 'rich'; llmPurpose?: string }, purpose: string): SendCategory {
  if (purpose.startsWith('sequence step') || (what.kind === 'ai' && what.llmPurpose === 'sequence_step')) return 'sequence_step';
  if (purpose.startsWith('bump-up') || (what.kind === 'ai' && what.llmPurpose === 'bump_up')) return 'bump_up';
  // a scheduled follow-up (schedule_follow_up tool) reaches out unasked, like a bump-up
  if (purpose.startsWith('follow-up') || (what.kind === 'ai' && what.llmPurpose === 'follow_up')) return 'bump_up';
  if (what.kind === 'template') return 'template';
  if (purpose === 'opt-out confirmation') return 'confirmation';
  if (what.kind === 'ai') return 'ai_reply';
  return 'manual';
}

/** Sends a suppressed contact never gets: the database is asked before each of them. */
export function needsConsent(category: SendCategory): boolean {
  return category === 'sequence_step' || category === 'bump_up' || category === 'template';
}

/** Whether a send of this category may go to the contact now. */
export function mayContact(category: SendCategory, input: { suppressed: boolean; replyAfterOptOut: boolean }): boolean {
  if (!input.suppressed) return true;
  if (needsConsent(category)) return false;
  if (category === 'ai_reply') return input.replyAfterOptOut;
  return true; // a human's message, the one confirmation
}

/** The reason a refused send carries. */
export const OPTED_OUT = 'contact_opted_out';
