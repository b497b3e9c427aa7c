/**
 * The updates a person sends from the Temporal Web UI ("Send an update", a small JSON body):
 * what each accepts and why a body is refused. Pure and synchronous, so the update validators
 * call them and a bad body is rejected with the reason before anything reaches the history.
 *
 * The Web UI sends exactly what the person typed: an empty input arrives as no argument at all,
 * `{}` as an empty object. Unknown fields are refused (a typo such as `{"txt": "hi"}` must not
 * be taken for an empty message).
 */

/** At most this many characters in a manual message (WhatsApp's text body limit). */
export const WEB_UI_TEXT_MAX_CHARS = 4096;
/** At most this many characters in a handoff's reason. */
export const WEB_UI_REASON_MAX_CHARS = 500;

export type WebUiCheck<T> = { ok: true; value: T } | { ok: false; reason: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The body as an object with only `allowed` fields; no body (or null) is `{}`. */
function fields(name: string, input: unknown, allowed: readonly string[], example: string): WebUiCheck<Record<string, unknown>> {
  if (input === undefined || input === null) return { ok: true, value: {} };
  if (!isPlainObject(input)) return { ok: false, reason: `${name} takes a JSON object, e.g. ${example}` };
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    const takes = allowed.length ? `it takes only ${allowed.map((k) => `"${k}"`).join(', ')}` : 'it takes no fields';
    return { ok: false, reason: `${name}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; ${takes}, e.g. ${example}` };
  }
  return { ok: true, value: input };
}

function length(s: string): number {
  return [...s].length;
}

/** `handOff`: `{}` or `{"reason": "..."}`. */
export function checkHandOff(input: unknown): WebUiCheck<{ reason?: string }> {
  const f = fields('handOff', input, ['reason'], '{"reason": "asks for a discount"}');
  if (!f.ok) return f;
  const reason = f.value.reason;
  if (reason === undefined) return { ok: true, value: {} };
  if (typeof reason !== 'string') return { ok: false, reason: 'handOff: "reason" must be a string' };
  if (length(reason) > WEB_UI_REASON_MAX_CHARS) return { ok: false, reason: `handOff: "reason" is ${length(reason)} characters; at most ${WEB_UI_REASON_MAX_CHARS}` };
  const trimmed = reason.trim();
  return { ok: true, value: trimmed ? { reason: trimmed } : {} };
}

/** `handBack`, `pauseSequence`, `resumeSequence`: no body or `{}`. */
export function checkEmpty(name: string, input: unknown): WebUiCheck<Record<string, never>> {
  const f = fields(name, input, [], '{}');
  return f.ok ? { ok: true, value: {} } : f;
}

/** `sendManualMessage`: `{"text": "..."}`, 1 to WEB_UI_TEXT_MAX_CHARS characters, not only spaces. */
export function checkManualMessage(input: unknown): WebUiCheck<{ text: string }> {
  const example = '{"text": "Hi, this is Anna from the sales team."}';
  if (input === undefined || input === null) return { ok: false, reason: `sendManualMessage needs the message, e.g. ${example}` };
  const f = fields('sendManualMessage', input, ['text'], example);
  if (!f.ok) return f;
  const text = f.value.text;
  if (typeof text !== 'string') return { ok: false, reason: `sendManualMessage: "text" must be a string, e.g. ${example}` };
  if (!text.trim()) return { ok: false, reason: 'sendManualMessage: "text" is empty' };
  if (length(text) > WEB_UI_TEXT_MAX_CHARS) return { ok: false, reason: `sendManualMessage: "text" is ${length(text)} characters; at most ${WEB_UI_TEXT_MAX_CHARS}` };
  return { ok: true, value: { text } };
}
