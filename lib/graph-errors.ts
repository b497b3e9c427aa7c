/**
 * Graph API error taxonomy, by `error.code` (never by HTTP status), refined by
 * `error_subcode` where Meta reuses a code. See Meta's WhatsApp Cloud API and Messenger
 * Platform (Instagram Messaging) error code references.
 */
export type GraphErrorClass = 'rate_limited' | 'transient' | 'reengagement' | 'permanent' | 'auth' | 'spam_limited' | 'unknown';

const RATE_LIMITED = new Set([4, 613, 80007, 130429, 131056]);
const TRANSIENT = new Set([1, 2, 131000, 131016, 133004, 131057]);
/** 131062: business-scoped user id recipients are not supported for this message (e.g. one-tap and copy-code authentication templates). */
const PERMANENT = new Set([100, 551, 131008, 131009, 131026, 131050, 131051, 131052, 131053, 133010, 131042, 130472, 131062]);
const AUTH = new Set([190, 0, 10, 368, 131031]);

/**
 * Instagram / Messenger: code 10 is a permission error, except with these subcodes, which mean
 * the message is outside the allowed window (24 h, or 7 days with the HUMAN_AGENT tag).
 */
const OUTSIDE_WINDOW_SUBCODES = new Set([2534022, 2018278]);

export function classifyGraphError(code: number | undefined, subcode?: number): GraphErrorClass {
  if (code === undefined) return 'unknown';
  if (code === 10 && subcode !== undefined && OUTSIDE_WINDOW_SUBCODES.has(subcode)) return 'reengagement';
  if (RATE_LIMITED.has(code)) return 'rate_limited';
  if (TRANSIENT.has(code)) return 'transient';
  if (code === 131047) return 'reengagement';
  if (code === 131049) return 'spam_limited';
  if (PERMANENT.has(code) || (code >= 132000 && code <= 132016)) return 'permanent';
  if (AUTH.has(code) || (code >= 200 && code <= 299)) return 'auth';
  return 'unknown';
}

/** Whether Temporal should retry the send after this class of error. */
export function isRetryableGraphError(cls: GraphErrorClass, httpStatus: number): boolean {
  switch (cls) {
    case 'rate_limited':
    case 'transient':
      return true;
    case 'unknown':
      // unknown codes: trust the transport, 5xx and 429 are worth another try
      return httpStatus >= 500 || httpStatus === 429;
    default:
      return false;
  }
}

/**
 * Whether Meta refused a send because a media id in it is unknown or expired (uploads are kept 30
 * days): code 131053 (media upload error), or code 100 (invalid parameter) naming the media
 * parameter (`Param image['id'] …`, "media id", "attachment ID"). The send path then uploads the
 * library file once more and resends, at most once per send. (131053 may also arrive later in a
 * `failed` status webhook when Meta fetches the media after accepting the send: that is not retried.)
 */
export function isUnknownMediaError(error: { code?: number | null; message?: string | null; details?: string | null }): boolean {
  if (error.code === 131053) return true;
  if (error.code !== 100) return false;
  const text = `${error.message ?? ''} ${error.details ?? ''}`;
  return /\b(image|video|audio|document|sticker)\b.*\bid\b|\bmedia\b|attachment id/i.test(text);
}
