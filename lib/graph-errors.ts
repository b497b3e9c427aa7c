/**
 * Meta Graph API error answers, read in one place for every caller (the send path, media
 * lookups and uploads, the channel ownership check, template sync): the body
 * `{ error: { message, type, code, error_subcode, error_data: { details }, fbtrace_id } }` is
 * parsed with zod, and `error.code` (never the HTTP status), refined by `error_subcode` where
 * Meta reuses a code, is sorted into one table of kinds. Each caller turns a kind into its own
 * outcome: activities into the ApplicationFailure types of contract/failures.ts, services into
 * the AppErrors the API answers with; what a caller does when there is no code (an HTML error
 * page, an empty body) it decides itself from the HTTP status.
 *
 * The codes follow Meta's references: Graph API "Handling Errors" and "Rate Limits", the
 * WhatsApp Cloud API error codes, and the Messenger Platform error codes (Instagram Messaging).
 * Pure: no I/O, importable from services/ and activities/ alike.
 */
import { z } from 'zod';

/** What a Graph error code means, as finely as any caller needs it. */
export type GraphErrorKind =
  /** 0 (WhatsApp AuthException), 102 (API session), 190 (OAuthException): the token is expired, revoked or invalid; its subcodes (458–467, …) only say why. */
  | 'token_invalid'
  /** 10 (permission denied), 200–299 (API permission): the token lacks a permission, or may not touch that object. */
  | 'permission_denied'
  /** 368 (temporarily blocked for policy violations), 131031 (business account locked). */
  | 'account_restricted'
  /** Call-count, throughput and pair limits: wait and try again. */
  | 'rate_limited'
  /** Meta's own trouble (unknown, service, maintenance): try again. */
  | 'transient'
  /** 131047, or Instagram / Messenger code 10 with an outside-window subcode: the customer-service window is closed. */
  | 'window_closed'
  /** 131049: Meta holds back marketing messages to this user for now. */
  | 'spam_limited'
  /** 100: an invalid parameter; on a GET of an object (subcode 33) the object does not exist or the token cannot see it. */
  | 'invalid_parameter'
  /** 803: an id or alias that does not exist. */
  | 'object_not_found'
  /** Refused for good: the recipient, the message, its template or its media. */
  | 'rejected'
  /** No code, or one this table does not know. */
  | 'unknown';

/** The send path's coarser taxonomy (metrics labels, circuit breaker reasons, failure details). */
export type GraphErrorClass = 'rate_limited' | 'transient' | 'reengagement' | 'permanent' | 'auth' | 'spam_limited' | 'unknown';

const TOKEN_INVALID = new Set([0, 102, 190]);
const ACCOUNT_RESTRICTED = new Set([368, 131031]);
/** Call-count limits over a rolling hour: 4 app, 17 user, 32 Page, 341 application (Graph API); 80007, 80008 WhatsApp Business Account. */
const CALL_COUNT_LIMITED = new Set([4, 17, 32, 341, 80007, 80008]);
/** Every rate limit: the call-count limits, 613 (custom), 130429 (Cloud API throughput), 131056 (pair rate). */
const RATE_LIMITED = new Set([...CALL_COUNT_LIMITED, 613, 130429, 131056]);
const TRANSIENT = new Set([1, 2, 131000, 131016, 133004, 131057]);
/** 131062: business-scoped user id recipients are not supported for this message (e.g. one-tap and copy-code authentication templates). */
const REJECTED = new Set([551, 131008, 131009, 131026, 131050, 131051, 131052, 131053, 133010, 131042, 130472, 131062]);

/**
 * Instagram / Messenger: code 10 is a permission error, except with these subcodes, which mean
 * the message is outside the allowed window (24 h, or 7 days with the HUMAN_AGENT tag).
 */
const OUTSIDE_WINDOW_SUBCODES = new Set([2534022, 2018278]);

/** Whether a code is a call-count limit (a rolling hour: the send path waits longer, and nothing was sent). */
export function isCallCountLimit(code: number | undefined): boolean {
  return code !== undefined && CALL_COUNT_LIMITED.has(code);
}

/** What an error code (and subcode) means; `unknown` without a code. */
export function graphErrorKind(code: number | undefined, subcode?: number): GraphErrorKind {
  if (code === undefined) return 'unknown';
  if (code === 10 && subcode !== undefined && OUTSIDE_WINDOW_SUBCODES.has(subcode)) return 'window_closed';
  if (TOKEN_INVALID.has(code)) return 'token_invalid';
  if (code === 10 || (code >= 200 && code <= 299)) return 'permission_denied';
  if (ACCOUNT_RESTRICTED.has(code)) return 'account_restricted';
  if (RATE_LIMITED.has(code)) return 'rate_limited';
  if (TRANSIENT.has(code)) return 'transient';
  if (code === 131047) return 'window_closed';
  if (code === 131049) return 'spam_limited';
  if (code === 100) return 'invalid_parameter';
  if (code === 803) return 'object_not_found';
  if (REJECTED.has(code) || (code >= 132000 && code <= 132016)) return 'rejected';
  return 'unknown';
}

const CLASS_OF_KIND: Record<GraphErrorKind, GraphErrorClass> = {
  token_invalid: 'auth',
  permission_denied: 'auth',
  account_restricted: 'auth',
  rate_limited: 'rate_limited',
  transient: 'transient',
  window_closed: 'reengagement',
  spam_limited: 'spam_limited',
  invalid_parameter: 'permanent',
  object_not_found: 'permanent',
  rejected: 'permanent',
  unknown: 'unknown',
};

/** The send taxonomy's class of an error code (and subcode). */
export function classifyGraphError(code: number | undefined, subcode?: number): GraphErrorClass {
  return CLASS_OF_KIND[graphErrorKind(code, subcode)];
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

/** A field of Meta's error object: kept when it has the right type, dropped (not fatal) otherwise. */
const field = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);

const graphErrorBodySchema = z.object({
  error: z.looseObject({
    message: field(z.string()),
    type: field(z.string()),
    code: field(z.number().int()),
    error_subcode: field(z.number().int()),
    error_data: field(z.looseObject({ details: field(z.string()) })),
    fbtrace_id: field(z.string()),
  }),
});

/** A Graph API error answer, read. */
export interface GraphError {
  httpStatus: number;
  /** Whether the body was a Graph error (`{ error: { … } }`); false for an HTML page, an empty body, other JSON. */
  isGraphError: boolean;
  code: number | undefined;
  subcode: number | undefined;
  message: string | undefined;
  /** `error.type`, e.g. OAuthException. */
  type: string | undefined;
  /** `error.error_data.details`: WhatsApp's explanation. */
  details: string | undefined;
  fbtraceId: string | undefined;
  kind: GraphErrorKind;
  class: GraphErrorClass;
  /** Whether the send taxonomy retries it (rate limits, transient errors; unknown ones on 5xx and 429). */
  retryable: boolean;
}

/** An answer's body as JSON; undefined when it is not JSON (an HTML error page, an empty body). */
export function parseGraphJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Read a Graph API error answer: its HTTP status and its body as JSON (`parseGraphJson`). */
export function readGraphError(httpStatus: number, json: unknown): GraphError {
  const parsed = graphErrorBodySchema.safeParse(json);
  const error = parsed.success ? parsed.data.error : undefined;
  const code = error?.code;
  const subcode = error?.error_subcode;
  const kind = graphErrorKind(code, subcode);
  const cls = CLASS_OF_KIND[kind];
  return {
    httpStatus,
    isGraphError: parsed.success,
    code,
    subcode,
    message: error?.message,
    type: error?.type,
    details: error?.error_data?.details,
    fbtraceId: error?.fbtrace_id,
    kind,
    class: cls,
    retryable: isRetryableGraphError(cls, httpStatus),
  };
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
