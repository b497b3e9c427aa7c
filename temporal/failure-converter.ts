/**
 * Parley's failure converter: the SDK's default, with the failures' common attributes (message
 * and stack trace) moved into `encodedAttributes`, a payload that the payload codec encrypts like
 * any other (temporal/payload-codec.ts). A failure in a history then reads "Encoded failure" in
 * clear; its text is in the encrypted payload. Decoding needs no option: any converter reads
 * `encodedAttributes` back, so workers with and without this converter understand each other.
 *
 * Loaded by path (temporal/data-converter.ts) because the workflow bundle compiles it in: keep
 * this module workflow-safe (it imports only `@temporalio/common`).
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
