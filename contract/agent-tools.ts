/**
 * Agent tools: what an agent may let the LLM do besides writing a text. The names, the default,
 * the bounds of a scheduled follow-up and the record of one tool call that crosses the reply
 * activity's result into the workflow. Pure and workflow-safe (no zod): the zod schemas and the
 * OpenAI function definitions are in activities/llm/tools.ts.
 *
 * - `handoff_to_human` hands the lead to a person (mode `handoff`), as before tools existed;
 * - `set_stage` moves the lead to another stage of the tenant's pipelines;
 * - `schedule_follow_up` sets a durable timer in the lead workflow: when it fires, an AI
 *   follow-up inside the 24-hour window, the agent's follow-up template outside it, or a refusal;
 * - `cancel_follow_up` cancels one of the lead's waiting follow-ups, or all of them (the lead says
 *   "no need to remind me"); offered only while some wait (the turn is given them);
 * - `send_buttons` / `send_list` answer with WhatsApp-style reply buttons or a list (degraded per
 *   channel like any rich message);
 * - `search_knowledge` searches the agent's knowledge bases with the model's own query (offered
 *   only to an agent with knowledge bases); the passages come back as the tool result;
 * - `send_media` answers with one of the agent's assets (a media library file, chosen by name;
 *   offered only to an agent with assets).
 */
import type { RichMessage } from './rich';
import type { TemplateRef } from './messages';

export const AGENT_TOOLS = ['handoff_to_human', 'set_stage', 'schedule_follow_up', 'cancel_follow_up', 'send_buttons', 'send_list', 'search_knowledge', 'send_media'] as const;
export type AgentToolName = (typeof AGENT_TOOLS)[number];

/** An agent without a `tools` setting: the model may hand over to a human, as it could before tools existed. */
export const DEFAULT_AGENT_TOOLS: readonly AgentToolName[] = ['handoff_to_human'];

/** The agent's tools, or the default when it has none set (null). */
export function agentTools(tools: readonly AgentToolName[] | null | undefined): readonly AgentToolName[] {
  return tools ?? DEFAULT_AGENT_TOOLS;
}

/** The furthest ahead a follow-up may be scheduled. */
export const FOLLOW_UP_MAX_DAYS = 30;
/** The nearest: a follow-up is no reply; "in a minute" is what a reply is for. */
export const FOLLOW_UP_MIN_MINUTES = 5;
/** Follow-ups a lead may have waiting at once (the carried state stays small). */
export const MAX_PENDING_FOLLOW_UPS = 3;
/** The note's length (kept in the workflow's state and handed to the LLM when it fires). */
export const FOLLOW_UP_NOTE_MAX = 500;

/**
 * Why `at` is not a time a follow-up may be set for, or undefined when it is: an ISO 8601 date and
 * time with a UTC offset (`2026-12-04T10:00:00+01:00` or `…Z`), at least FOLLOW_UP_MIN_MINUTES
 * and at most FOLLOW_UP_MAX_DAYS after `now`.
 */
export function followUpTimeProblem(at: string, now: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(at)) {
    return 'at must be an ISO 8601 date and time with a UTC offset, e.g. 2026-12-04T10:00:00+01:00';
  }
  const t = Date.parse(at);
  if (Number.isNaN(t)) return 'at is not a valid date and time';
  const n = Date.parse(now);
  if (t < n + FOLLOW_UP_MIN_MINUTES * 60_000) return `at must be at least ${FOLLOW_UP_MIN_MINUTES} minutes from now (${now})`;
  if (t > n + FOLLOW_UP_MAX_DAYS * 86_400_000) return `at must be at most ${FOLLOW_UP_MAX_DAYS} days from now (${now})`;
  return undefined;
}

/** A follow-up the model scheduled, as the workflow keeps it until it fires. */
export interface FollowUp {
  id: string;
  /** When it fires (ISO, UTC). */
  at: string;
  /** What the model wanted to follow up on (the instruction of the AI message). */
  note: string;
  /** The agent's follow-up template when the follow-up was scheduled: sent when the window is closed then. */
  template?: TemplateRef;
}

/** A waiting follow-up as a reply turn is given it (cancel_follow_up's choices): no template. */
export type PendingFollowUp = Pick<FollowUp, 'id' | 'at' | 'note'>;

/** The waiting follow-ups a reply turn is told about (absent when none wait). */
export function pendingForTurn(followUps: readonly FollowUp[] | undefined): PendingFollowUp[] | undefined {
  return followUps?.length ? followUps.map(({ id, at, note }) => ({ id, at, note })) : undefined;
}

/**
 * One tool call of a turn, as the reply activity hands it to the workflow and the lead's events
 * record it: the validated arguments without personal data (no free text the lead may have
 * written into them: ids, titles, stage, time), and what came of it.
 */
export interface ToolCallRecord {
  name: string;
  /** `ok`: valid and done (or handed to the workflow to do); `invalid`: refused by validation (reported to the model); `unknown`: a tool the agent has not declared. */
  outcome: 'ok' | 'invalid' | 'unknown';
  args?: Record<string, unknown>;
  /** The validation error, when invalid. */
  error?: string;
}

/** What the model's tool calls ask the workflow to do after the turn (each at most once). */
export interface ToolEffects {
  setStage?: { stage: string };
  followUp?: { at: string; note: string; template?: TemplateRef };
  /** cancel_follow_up: these waiting follow-ups (the one named, or every one the turn was given). */
  cancelFollowUps?: { ids: string[] };
}

/** A reply the model answered with a tool (send_buttons, send_list, send_media): the rich message to send instead of text. */
export type ToolReply = { message: RichMessage };
