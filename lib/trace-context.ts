/**
 * The trace context of a process (lib/tracing.ts sets up the tracers): one AsyncLocalStorage
 * holds the OpenTelemetry context, and so the API's request id; the logger's mixin reads it
 * (lib/logger.ts), so every line written inside a request or a traced activity names them.
 * Only `@opentelemetry/api` and the W3C propagator: cheap to import from the logger.
 */
import { randomUUID } from 'node:crypto';
import * as otel from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

// ---------------------------------------------------------------------------------------------
// Context: one AsyncLocalStorage (the OpenTelemetry context manager) for the context and so the request id;
// without a context manager `context.with` is a no-op and nothing would propagate

let propagationInstalled = false;

/** Once per process: the AsyncLocalStorage context manager and the W3C trace-context propagator. */
export function installContextPropagation(): void {
  if (propagationInstalled) return;
  propagationInstalled = true;
  otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  otel.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

const REQUEST_ID = otel.createContextKey('parley.requestId');

/** The context with this request id (read by the logger's mixin and `currentRequestId`). */
export function withRequestId(ctx: otel.Context, requestId: string): otel.Context {
  return ctx.setValue(REQUEST_ID, requestId);
}

/** The request id of the API request this code runs for, if any. */
export function currentRequestId(): string | undefined {
  return otel.context.active().getValue(REQUEST_ID) as string | undefined;
}

/** `00-<trace id>-<span id>-<flags>` of the active span (what an inbound message carries to its reply turn). */
export function currentTraceparent(): string | undefined {
  const sc = otel.trace.getSpan(otel.context.active())?.spanContext();
  if (!sc || !otel.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * What every log line written inside a request, a workflow's activity or a traced call adds
 * (lib/logger.ts mixin): the request id and the active trace and span ids. Empty outside.
 */
export function logContext(): Record<string, string> {
  const ctx = otel.context.active();
  if (ctx === otel.ROOT_CONTEXT) return {};
  const out: Record<string, string> = {};
  const requestId = ctx.getValue(REQUEST_ID) as string | undefined;
  if (requestId) out.requestId = requestId;
  const requestIds = ctx.getValue(REQUEST_IDS) as string[] | undefined;
  if (requestIds?.length) out.requestIds = requestIds.join(',');
  const sc = otel.trace.getSpan(ctx)?.spanContext();
  if (sc && otel.isSpanContextValid(sc)) {
    out.trace_id = sc.traceId;
    out.span_id = sc.spanId;
  }
  return out;
}

const REQUEST_IDS = otel.createContextKey('parley.requestIds');

/** An activity answering inbound messages: the request ids they came with (logged as `requestIds`). */
export function withRequestIds(ctx: otel.Context, requestIds: string[]): otel.Context {
  return ctx.setValue(REQUEST_IDS, requestIds);
}

// ---------------------------------------------------------------------------------------------
// Request ids

/** An incoming X-Request-Id is kept only when it is this short and plain (no log or header injection). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{8,64}$/;

/** The caller's id when acceptable, else a new one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
}

/** A W3C traceparent a message may carry (validated before it is trusted as a parent). */
export const TRACEPARENT_PATTERN = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
