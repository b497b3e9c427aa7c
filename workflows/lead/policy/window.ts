/**
 * WhatsApp's 24-hour customer-service window. Free-form messages may be sent only within 24
 * hours of the lead's LAST INBOUND message; outside it only an approved template may go out.
 * Our own sends never extend the window.
 *
 * This module is also the one place where the policies turn ISO strings into instants
 * (`parseInstant`) and back (`formatInstant`), so every policy rejects the same bad input.
 */
import type { TemplateRef } from '../../../contract/messages';

export type { TemplateRef } from '../../../contract/messages';

export const CUSTOMER_SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Instagram: a human agent may answer up to 7 days after the user's last message (HUMAN_AGENT tag). */
export const HUMAN_AGENT_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;

/** `rich` (buttons, lists, media, …) is free-form like text: inside the window only. */
export type OutboundKind = 'ai' | 'text' | 'template' | 'rich';

export interface PlanOutboundInput {
  kind: OutboundKind;
  lastInboundAt?: string;
  now: string;
  /** The template to send for a `template` message, or to fall back to outside the window. */
  fallbackTemplate?: TemplateRef;
  /** When the provider said the window is closed (WhatsApp 131047): closed until a newer inbound message. */
  providerClosedAt?: string;
  /** Default whatsapp. Instagram has no templates; its human agents get 7 days with the HUMAN_AGENT tag. */
  channel?: 'whatsapp' | 'instagram';
  /** A human agent's message (manual reply), not the bot's. */
  human?: boolean;
}

export type OutboundPlan =
  | { action: 'free_form'; humanAgentTag?: boolean }
  | { action: 'template'; template: TemplateRef; fallback: boolean }
  | { action: 'refuse'; reason: 'window_closed' | 'no_template' };

// Date.parse alone is not enough: it reads a string without an offset in the host's time zone
// (not deterministic) and rolls 2026-02-30 over to March.
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)$/i;

/**
 * Epoch milliseconds of an ISO-8601 instant. The offset (`Z` or `±HH:MM`) is required and the
 * calendar fields must exist; anything else throws a RangeError naming `what`.
 */
export function parseInstant(iso: string, what = 'time'): number {
  const m = typeof iso === 'string' ? ISO_INSTANT.exec(iso) : null;
  if (m) {
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map((v) => (v === undefined ? 0 : Number(v))) as [number, number, number, number, number, number];
    const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const ms = Date.parse(iso);
    if (month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && Number.isFinite(ms)) return ms;
  }
  throw new RangeError(`${what} must be an ISO-8601 instant with an offset (e.g. 2026-03-06T09:00:00Z), got ${JSON.stringify(iso)}`);
}

/** The canonical ISO form (`2026-03-06T09:00:00.000Z`) of epoch milliseconds. */
export function formatInstant(ms: number): string {
  return new Date(ms).toISOString();
}

/** When the window opened by the lead's last inbound message closes; undefined if the lead never wrote. */
export function windowClosesAt(lastInboundAt?: string): string | undefined {
  if (lastInboundAt === undefined) return undefined;
  return formatInstant(parseInstant(lastInboundAt, 'lastInboundAt') + CUSTOMER_SERVICE_WINDOW_MS);
}

/** Whether free-form messages may be sent at `now` (the window is open until, not at, its close). */
export function isWindowOpen(lastInboundAt: string | undefined, now: string): boolean {
  if (lastInboundAt === undefined) return false;
  return parseInstant(now, 'now') < parseInstant(lastInboundAt, 'lastInboundAt') + CUSTOMER_SERVICE_WINDOW_MS;
}

/**
 * How an outbound message may go out. A `template` message always goes as its template (and is
 * refused without one); an AI or fixed-text message goes free-form inside the window and
 * outside it falls back to the template, or is refused when there is none.
 */
export function planOutbound(input: PlanOutboundInput): OutboundPlan {
  // Parse `now` first so a bad input never passes silently, whichever branch is taken.
  const now = parseInstant(input.now, 'now');
  const instagram = input.channel === 'instagram';
  if (input.kind === 'template') {
    return input.fallbackTemplate && !instagram ? { action: 'template', template: input.fallbackTemplate, fallback: false } : { action: 'refuse', reason: 'no_template' };
  }
  const closedByProvider =
    input.providerClosedAt !== undefined &&
    (input.lastInboundAt === undefined || parseInstant(input.providerClosedAt, 'providerClosedAt') >= parseInstant(input.lastInboundAt, 'lastInboundAt'));
  if (!closedByProvider && isWindowOpen(input.lastInboundAt, input.now)) return { action: 'free_form' };
  if (instagram) {
    // no templates on Instagram: a human agent may still answer within 7 days, tagged
    if (input.human && !closedByProvider && input.lastInboundAt !== undefined && now < parseInstant(input.lastInboundAt, 'lastInboundAt') + HUMAN_AGENT_WINDOW_MS) {
      return { action: 'free_form', humanAgentTag: true };
    }
    return { action: 'refuse', reason: 'window_closed' };
  }
  return input.fallbackTemplate ? { action: 'template', template: input.fallbackTemplate, fallback: true } : { action: 'refuse', reason: 'window_closed' };
}
