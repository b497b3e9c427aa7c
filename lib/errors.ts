/**
 * One error taxonomy for the whole product: a code decides the HTTP status the API answers
 * and whether a Temporal activity may retry it.
 */
export const ERROR_CODES = {
  bad_request: { httpStatus: 400, retryable: false },
  validation_failed: { httpStatus: 400, retryable: false },
  unauthorized: { httpStatus: 401, retryable: false },
  invalid_signature: { httpStatus: 401, retryable: false },
  forbidden: { httpStatus: 403, retryable: false },
  not_found: { httpStatus: 404, retryable: false },
  conflict: { httpStatus: 409, retryable: false },
  /** The request body came too slowly (an upload under the server's byte-rate floor): cut, send it again. */
  request_timeout: { httpStatus: 408, retryable: true },
  payload_too_large: { httpStatus: 413, retryable: false },
  unsupported_media_type: { httpStatus: 415, retryable: false },
  update_rejected: { httpStatus: 422, retryable: false },
  insufficient_credits: { httpStatus: 402, retryable: false },
  /** The tenant's daily LLM budget is spent: no LLM call until the next UTC day. */
  llm_budget_exceeded: { httpStatus: 429, retryable: false },
  rate_limited: { httpStatus: 429, retryable: true },
  // configuration and provider failures (activities)
  config_invalid: { httpStatus: 500, retryable: false },
  channel_not_found: { httpStatus: 404, retryable: false },
  agent_not_found: { httpStatus: 404, retryable: false },
  lead_not_found: { httpStatus: 404, retryable: false },
  provider_auth: { httpStatus: 502, retryable: false },
  provider_permanent: { httpStatus: 502, retryable: false },
  provider_rate_limited: { httpStatus: 503, retryable: true },
  provider_transient: { httpStatus: 503, retryable: true },
  llm_config: { httpStatus: 502, retryable: false },
  llm_transient: { httpStatus: 503, retryable: true },
  unavailable: { httpStatus: 503, retryable: true },
  internal: { httpStatus: 500, retryable: true },
} as const satisfies Record<string, { httpStatus: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly details?: unknown,
    /** A more specific machine-readable reason the API answers instead of `code` (e.g. window_closed on a 409). */
    public readonly reason?: string,
  ) {
    super(message);
    this.name = 'AppError';
  }
  get httpStatus(): number {
    return ERROR_CODES[this.code].httpStatus;
  }
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
