/**
 * Lead score: a pure, explainable 0–100 number from what we know about a lead, weighted
 * towards BANT (budget, authority, need, timeline), then reachability (email) and context
 * (company, name). The model never scores; it only extracts facts.
 */

export interface ScoreInput {
  name?: unknown;
  email?: unknown;
  company?: unknown;
  budget?: unknown;
  authority?: unknown;
  need?: unknown;
  timeline?: unknown;
}

/** Points per known field; they add up to 100. */
export const SCORE_WEIGHTS = {
  need: 25,
  budget: 20,
  authority: 20,
  timeline: 15,
  email: 10,
  company: 5,
  name: 5,
} as const satisfies Record<keyof ScoreInput, number>;

/** Answers a model gives for "not stated" that must not earn points. */
const UNKNOWN = /^(?:unknown|n\/?a|none|null|not (?:specified|stated|provided|mentioned|given)|unspecified|-+|\?+)\.?$/i;

/** True when a value is a real, stated fact (a non-blank string that is not "unknown"). */
export function isKnown(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const v = value.trim();
  return v !== '' && !UNKNOWN.test(v);
}

export function leadScore(data: ScoreInput): number {
  let score = 0;
  for (const [field, points] of Object.entries(SCORE_WEIGHTS) as [keyof ScoreInput, number][]) {
    if (isKnown(data[field])) score += points;
  }
  return Math.min(100, Math.max(0, score));
}
