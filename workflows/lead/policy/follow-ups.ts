/**
 * Cancelling scheduled follow-ups (the schedule_follow_up tool's durable timers): what a cancel
 * request accepts, which follow-ups it takes out and why one is refused. Pure and synchronous, so
 * the `cancelFollowUp` update's validator asks it and a refusal never reaches the history.
 *
 * One update serves the Web UI ("Send an update", a small JSON body), the API (its typed wrapper
 * adds `"source": "api"`); the model's cancel_follow_up tool takes the same path inside the
 * workflow (`cancelFollowUps` with the ids its turn was given).
 */
import type { FollowUp } from '../../../contract/agent-tools';

/** Who cancelled, as the `follow_up_cancelled` event records it. */
export type FollowUpCancelSource = 'api' | 'web_ui' | 'agent';

/** The update's body: one follow-up by id, or every waiting one. `source`: set by the API's wrapper; absent: the Web UI. */
export type CancelFollowUpInput = { followUpId: string; source?: 'api' } | { all: true; source?: 'api' };

/** What the update answers: the follow-ups it took out of the state. */
export interface CancelFollowUpResult {
  cancelled: FollowUp[];
}

export type CancelRequestCheck = { ok: true; value: { followUpId: string } | { all: true }; source: 'api' | 'web_ui' } | { ok: false; reason: string };

export type FollowUpCancellation = { ok: true; cancelled: FollowUp[]; remaining: FollowUp[] } | { ok: false; reason: string; notFound: boolean };

const NAME = 'cancelFollowUp';
const EXAMPLE = '{"followUpId": "<id from the state query or the current details>"} or {"all": true}';
/** The start of the refusal for an id that is not waiting: the API answers it with 404. */
const NOT_WAITING = 'no follow-up';
const FOLLOW_UP_ID_MAX = 100;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The body as sent (Web UI: what the person typed; API: its wrapper's), checked field by field. */
export function checkCancelRequest(input: unknown): CancelRequestCheck {
  if (input === undefined || input === null) return { ok: false, reason: `${NAME} needs the follow-up, e.g. ${EXAMPLE}` };
  if (!isPlainObject(input)) return { ok: false, reason: `${NAME} takes a JSON object, e.g. ${EXAMPLE}` };
  const unknown = Object.keys(input).filter((k) => k !== 'followUpId' && k !== 'all' && k !== 'source');
  if (unknown.length) {
    return { ok: false, reason: `${NAME}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; it takes "followUpId" or "all", e.g. ${EXAMPLE}` };
  }
  const { followUpId, all, source } = input;
  if (source !== undefined && source !== 'api') return { ok: false, reason: `${NAME}: "source" is set by the API only; leave it out` };
  const who = source === 'api' ? 'api' : 'web_ui';
  if (followUpId !== undefined && all !== undefined) return { ok: false, reason: `${NAME}: give "followUpId" or "all", not both` };
  if (all !== undefined) {
    if (all !== true) return { ok: false, reason: `${NAME}: "all" must be true` };
    return { ok: true, value: { all: true }, source: who };
  }
  if (followUpId === undefined) return { ok: false, reason: `${NAME} needs "followUpId" or "all", e.g. ${EXAMPLE}` };
  if (typeof followUpId !== 'string' || !followUpId.trim()) return { ok: false, reason: `${NAME}: "followUpId" must be a non-empty string` };
  if (followUpId.length > FOLLOW_UP_ID_MAX) return { ok: false, reason: `${NAME}: "followUpId" is ${followUpId.length} characters; at most ${FOLLOW_UP_ID_MAX}` };
  return { ok: true, value: { followUpId: followUpId.trim() }, source: who };
}

/**
 * Take follow-ups out of the waiting list: the one named (refused when it is not waiting: it went
 * out, was cancelled, or never existed) or all of them (refused when none wait). Earliest first
 * stays as it was.
 */
export function cancelFollowUps(pending: readonly FollowUp[] | undefined, request: { followUpId: string } | { all: true }): FollowUpCancellation {
  const waiting = pending ?? [];
  if ('all' in request) {
    if (waiting.length === 0) return { ok: false, reason: `${NAME}: no follow-ups are scheduled for this lead`, notFound: true };
    return { ok: true, cancelled: [...waiting], remaining: [] };
  }
  const found = waiting.find((f) => f.id === request.followUpId);
  if (!found) return { ok: false, reason: `${NAME}: ${NOT_WAITING} ${request.followUpId} is waiting for this lead (it went out, was cancelled, or never existed)`, notFound: true };
  return { ok: true, cancelled: [found], remaining: waiting.filter((f) => f !== found) };
}

/** The follow-ups of `ids` that still wait (the model's cancel_follow_up: one may have gone out since its turn began). */
export function cancelByIds(pending: readonly FollowUp[] | undefined, ids: readonly string[]): { cancelled: FollowUp[]; remaining: FollowUp[] } {
  const waiting = pending ?? [];
  return { cancelled: waiting.filter((f) => ids.includes(f.id)), remaining: waiting.filter((f) => !ids.includes(f.id)) };
}

/** Whether a rejected cancelFollowUp update's reason says the follow-up is not waiting (the API's 404). */
export function isFollowUpNotFound(reason: string): boolean {
  return reason.startsWith(`${NAME}: ${NOT_WAITING} `) || reason === `${NAME}: no follow-ups are scheduled for this lead`;
}
