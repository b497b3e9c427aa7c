/**
 * Which refusals from the Temporal frontend are about the request itself, so that sending the
 * same request again can never succeed (checked against the dev server of the CLI 1.x):
 *
 * - INVALID_ARGUMENT (gRPC 3) "Blob data size exceeds limit." — a payload over
 *   `limit.blobSize.error` (2 MB by default);
 * - INVALID_ARGUMENT "WorkflowId exceeds maximum allowed length (2007/1000)" — an id over
 *   `limit.maxIDLength` (1,000 by default); the same for other ids and names;
 * - RESOURCE_EXHAUSTED (gRPC 8) "grpc: received message larger than max (5000188 vs. 4194304)" —
 *   a request over the server's 4 MB gRPC message limit.
 *
 * Every other error (unavailable, deadline, namespace rate limits, which are RESOURCE_EXHAUSTED
 * too, an unregistered search attribute, which is INVALID_ARGUMENT about our configuration) is
 * not: the caller must report it as "retry later".
 */
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;

/** The server's reason when `err` refuses the request's own content for good, else undefined. */
export function deterministicRefusal(err: unknown): string | undefined {
  const cause = (err as { cause?: unknown } | null)?.cause ?? err;
  if (typeof cause !== 'object' || cause === null) return undefined;
  const { code, details, message } = cause as { code?: unknown; details?: unknown; message?: unknown };
  const text = typeof details === 'string' && details ? details : typeof message === 'string' ? message : '';
  if (code === INVALID_ARGUMENT && /size exceeds limit|exceeds size limit|exceeds maximum allowed length|exceeds length limit|too long/i.test(text)) return text;
  if (code === RESOURCE_EXHAUSTED && /larger than max/i.test(text)) return text;
  return undefined;
}
