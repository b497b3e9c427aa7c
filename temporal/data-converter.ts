/**
 * The one data converter Parley gives every client, worker and replayer it builds: the payload
 * codec when it is on (temporal/payload-codec.ts, `core.payloadCodec`) and, always, the failure
 * converter that puts failure messages and stack traces into an encoded payload
 * (temporal/failure-converter.ts), so that the codec encrypts them too.
 *
 * The workflow side's failure converter is compiled into the workflow bundle: a prebuilt bundle
 * (`bundleWorkflowCode`) must be built with `WORKFLOW_BUNDLE_CONVERTERS`, or the workflow's own
 * failures (update and workflow failures) stay in clear.
 */
import type { DataConverter, PayloadCodec } from '@temporalio/common';

/** The module with the `failureConverter` named export (the SDK `require`s it, the bundler compiles it in). */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** Parley's data converter for a client, a worker or a replayer; no codec: payloads in clear, failure text still in an encoded payload. */
export function parleyDataConverter(payloadCodec?: PayloadCodec): DataConverter {
  return { failureConverterPath: FAILURE_CONVERTER_PATH, ...(payloadCodec ? { payloadCodecs: [payloadCodec] } : {}) };
}

/** Options for `bundleWorkflowCode`, so that a prebuilt bundle converts failures as the worker does. */
export const WORKFLOW_BUNDLE_CONVERTERS = { failureConverterPath: FAILURE_CONVERTER_PATH } as const;
