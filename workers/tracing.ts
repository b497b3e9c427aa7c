/**
 * The worker's part of request ids and traces (lib/tracing.ts, README "Request ids and traces").
 *
 * - Workflows: Parley's sandbox interceptors (workflows/tracing-interceptors.ts, bundled through
 *   WORKFLOW_INTERCEPTOR_MODULES: the worker's bundle, the tests' and the replayer's) read the
 *   client's `_tracer-data` header and put child contexts in each activity's headers. They add
 *   headers and sink calls, never commands, and leave the workflow's promises and randomness
 *   alone. Their spans leave the sandbox through the `parleyTraces` sink (never during replay),
 *   only for sampled traces, to this process's span processor.
 * - Activities: `RunActivity:<type>` spans, like the SDK's inbound interceptor, with one change:
 *   an activity answering inbound messages (their `trace`, set by temporal/client.ts) runs in the
 *   trace of the request that delivered the newest of them and links the workflow's context. A
 *   lead's workflow is started by its first message, so without this every later turn's reply
 *   would join that first request's trace. The activity's log lines carry `trace_id` and the
 *   `requestIds` of the messages it answers (lib/logger.ts mixin); those of the SDK's activity
 *   logger get trace_id from the SDK's outbound interceptor.
 */
import * as otel from '@opentelemetry/api';
import type { Context as ActivityContext } from '@temporalio/activity';
import { CompleteAsyncError, defaultPayloadConverter } from '@temporalio/common';
import { OpenTelemetryActivityOutboundInterceptor, SpanName, SPAN_DELIMITER } from '@temporalio/interceptors-opentelemetry';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, InjectedSinks, Next, WorkerInterceptors } from '@temporalio/worker';
import { TRACEPARENT_PATTERN, withRequestIds } from '../lib/trace-context';
import type { Tracing } from '../lib/tracing';
import type { MessageTrace } from '../contract/messages';
import { TRACE_HEADER, type ParleyTraceSinks, type WorkflowSpan } from '../workflows/tracing-interceptors';

/** Bundled with the workflows wherever they are bundled (worker, tests, replayer). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/tracing-interceptors')];

/** The worker's interceptors and the workflow span sink for a worker of this process. */
export function workerTracing(tracing: Pick<Tracing, 'tracer' | 'spanProcessor' | 'resource' | 'exporting'> | undefined): { interceptors: WorkerInterceptors; sinks: InjectedSinks<ParleyTraceSinks> } {
  const tracer = tracing?.tracer ?? otel.trace.getTracer('parley-worker');
  return {
    interceptors: {
      activity: [(ctx) => ({ inbound: new ParleyActivityInboundInterceptor(ctx, tracer), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })],
    },
    sinks: workflowSpanSinks(tracing),
  };
}

/** The `parleyTraces` sink the workflow interceptors call (the replayer gets it too: no sink call runs in replay). */
export function workflowSpanSinks(tracing: Pick<Tracing, 'spanProcessor' | 'resource' | 'exporting'> | undefined): InjectedSinks<ParleyTraceSinks> {
  return {
    parleyTraces: {
      export: {
        fn: (info, spans) => {
          if (!tracing?.exporting) return;
          for (const s of spans) tracing.spanProcessor.onEnd(readableSpan(s, info, tracing.resource));
        },
        callDuringReplay: false,
      },
    },
  };
}

const hrTime = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1e6];

/** A workflow span as the span processor takes it (what the SDK's makeWorkflowExporter builds). */
function readableSpan(s: WorkflowSpan, info: { workflowId: string; runId: string; workflowType: string; taskQueue: string }, resource: Tracing['resource']): ReadableSpan {
  const spanContext = { traceId: s.traceId, spanId: s.spanId, traceFlags: otel.TraceFlags.SAMPLED, isRemote: false };
  return {
    name: s.name,
    kind: otel.SpanKind.INTERNAL,
    spanContext: () => spanContext,
    parentSpanId: s.parentSpanId,
    startTime: hrTime(s.startMs),
    endTime: hrTime(s.endMs),
    duration: hrTime(Math.max(0, s.endMs - s.startMs)),
    status: { code: s.failed ? otel.SpanStatusCode.ERROR : otel.SpanStatusCode.OK },
    attributes: { ...s.attributes, workflowId: info.workflowId, runId: info.runId, workflowType: info.workflowType, taskQueue: info.taskQueue },
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationLibrary: { name: 'parley-workflow' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

export class ParleyActivityInboundInterceptor implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: ActivityContext,
    private readonly tracer: otel.Tracer,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const fromWorkflow = headerContext(input.headers);
    const answered = messageTraces(input.args[0]);
    const requestIds = [...new Set(answered.map((t) => t.requestId).filter((id): id is string => typeof id === 'string'))];
    const traceparent = answered.map((t) => t.traceparent).filter((t): t is string => typeof t === 'string' && TRACEPARENT_PATTERN.test(t)).pop();
    const fromRequest = traceparent ? otel.propagation.extract(otel.ROOT_CONTEXT, { traceparent }, otel.defaultTextMapGetter) : undefined;
    let parent = fromRequest ?? fromWorkflow ?? otel.ROOT_CONTEXT;
    if (requestIds.length > 0) parent = withRequestIds(parent, requestIds);
    const workflowSpan = fromRequest && fromWorkflow ? otel.trace.getSpanContext(fromWorkflow) : undefined;
    const info = this.ctx.info;
    const span = this.tracer.startSpan(
      `${SpanName.ACTIVITY_EXECUTE}${SPAN_DELIMITER}${info.activityType}`,
      { links: workflowSpan && otel.isSpanContextValid(workflowSpan) ? [{ context: workflowSpan }] : [] },
      parent,
    );
    if (span.isRecording()) {
      span.setAttribute('temporalActivityId', info.activityId);
      if (info.workflowExecution) {
        span.setAttribute('temporalWorkflowId', info.workflowExecution.workflowId);
        span.setAttribute('run_id', info.workflowExecution.runId);
      }
      span.setAttribute('temporalActivityAttempt', info.attempt);
      if (requestIds.length > 0) span.setAttribute('parley.request_ids', requestIds);
    }
    try {
      const result = await otel.context.with(otel.trace.setSpan(parent, span), () => next(input));
      span.setStatus({ code: otel.SpanStatusCode.OK });
      return result;
    } catch (err) {
      if (!(err instanceof CompleteAsyncError)) {
        // the failure's type and message only (activity failures carry no message text: lib/errors.ts)
        span.setStatus({ code: otel.SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
      }
      throw err;
    } finally {
      span.end();
    }
  }
}

/** The workflow's context from the activity's headers (set by the workflow outbound interceptor). */
function headerContext(headers: ActivityExecuteInput['headers']): otel.Context | undefined {
  const payload = headers[TRACE_HEADER];
  if (!payload) return undefined;
  try {
    const carrier = defaultPayloadConverter.fromPayload<Record<string, string>>(payload);
    return otel.propagation.extract(otel.ROOT_CONTEXT, carrier, otel.defaultTextMapGetter);
  } catch {
    return undefined;
  }
}

/** The `trace` of each inbound message an activity's input carries (`{ messages: InboundMessage[] }`). */
function messageTraces(arg: unknown): MessageTrace[] {
  if (typeof arg !== 'object' || arg === null) return [];
  const messages = (arg as { messages?: unknown }).messages;
  if (!Array.isArray(messages)) return [];
  const out: MessageTrace[] = [];
  for (const m of messages.slice(-50)) {
    const t = (m as { trace?: unknown } | null)?.trace;
    if (typeof t === 'object' && t !== null) out.push(t as MessageTrace);
  }
  return out;
}
