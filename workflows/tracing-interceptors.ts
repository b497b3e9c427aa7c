/**
 * Trace context through the lead workflow, in the sandbox (not a workflow: interceptors, bundled
 * through workers/tracing.ts WORKFLOW_INTERCEPTOR_MODULES by the worker, the tests and the replayer).
 *
 * It speaks the header of the SDK's OpenTelemetry interceptors (`_tracer-data`: a JSON payload
 * `{ traceparent }`, W3C), which the client interceptor writes and the activity interceptor
 * reads, but it is not the SDK's workflow interceptor module, for three measured reasons
 * (README, "Request ids and traces"):
 *  - that module brings @opentelemetry/api, core, resources, sdk-trace-base and
 *    semantic-conventions into the bundle, evaluated again by every workflow the worker creates
 *    or re-caches (bench/workflow-memory.ts: 1.5 → 12.7 ms and 96 → 333 KB per workflow), with
 *    tracing on or off;
 *  - it wraps handlers and activity calls in async functions: their results arrive some
 *    microtasks later, which reorders Parley's commands, so recorded histories no longer replay
 *    (dead-letter-replay: a timer where an activity was scheduled);
 *  - its span ids come from the sandbox's seeded Math.random, the same sequence `uuid4()` draws
 *    Parley's idempotency ids (batchId, outboundMessageId) from: a workflow started before the
 *    interceptors and replayed after them would compute other ids than the ones it already used.
 * So this module never wraps a promise (every `next(...)` result is returned as it is; a span's
 * end is a side `.then`), draws no randomness (span ids hash the run id and the command's
 * sequence number) and imports nothing but the SDK.
 *
 * What it does: the run's parent is the trace context in its start headers (the API request
 * that started it, or the previous run's on continue-as-new); activities, child workflows,
 * external signals and continue-as-new carry `StartActivity`-like child contexts of it; each
 * signal's context is recorded as a `HandleSignal:<name>` span in that signal's own trace.
 * Spans are sent (the `parleyTraces` sink, never during replay) only when the parent is sampled,
 * which it is only when the API exports traces; otherwise only the ids travel.
 */
import { defaultPayloadConverter, type Headers } from '@temporalio/common';
import { proxySinks, workflowInfo, type Sinks, type WorkflowInterceptors } from '@temporalio/workflow';

/** The SDK's OpenTelemetry header (`TRACE_HEADER` of @temporalio/interceptors-opentelemetry). */
export const TRACE_HEADER = '_tracer-data';

interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

/** A finished span of the workflow, as the sink carries it out of the sandbox (workers/tracing.ts). */
export interface WorkflowSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  /** Workflow time (ms since the epoch). */
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number>;
  failed?: boolean;
}

export interface ParleyTraceSinks extends Sinks {
  parleyTraces: { export(spans: WorkflowSpan[]): void };
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function fromHeaders(headers: Headers): TraceParent | undefined {
  const payload = headers[TRACE_HEADER];
  if (!payload) return undefined;
  try {
    const carrier = defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload);
    const m = typeof carrier?.traceparent === 'string' ? TRACEPARENT.exec(carrier.traceparent) : null;
    if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
    return { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 };
  } catch {
    return undefined;
  }
}

function withContext(headers: Headers, ctx: TraceParent): Headers {
  return { ...headers, [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent: `00-${ctx.traceId}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}` }) };
}

/** 16 hex digits from a string (two 32-bit FNV-1a hashes): a span id without the workflow's randomness. */
function spanIdOf(key: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i += 1) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  const hex = (a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')).slice(0, 16);
  return /^0+$/.test(hex) ? '0000000000000001' : hex;
}

/** One per workflow (module state is per workflow in the sandbox). */
let runParent: TraceParent | undefined;
let signals = 0;
let exporter: ParleyTraceSinks['parleyTraces'] | undefined;

function send(span: WorkflowSpan): void {
  exporter ??= proxySinks<ParleyTraceSinks>().parleyTraces;
  exporter.export([span]);
}

/** A child context of the run's parent for a command (its span id: the run id and the command's key). */
function child(key: string): TraceParent | undefined {
  const parent = runParent;
  if (!parent) return undefined;
  return { traceId: parent.traceId, spanId: spanIdOf(`${workflowInfo().runId}:${key}`), sampled: parent.sampled };
}

/**
 * Send the span when `result` settles (sampled traces only). A second reaction on the same
 * promise: the workflow's own `await` sees the same promise at the same time.
 */
function endWith(result: Promise<unknown>, name: string, ctx: TraceParent, parentSpanId: string): void {
  if (!ctx.sampled) return;
  const startMs = Date.now();
  const end = (failed: boolean) => send({ name, traceId: ctx.traceId, spanId: ctx.spanId, parentSpanId, startMs, endMs: Date.now(), attributes: {}, ...(failed ? { failed } : {}) });
  result.then(
    () => end(false),
    () => end(true),
  );
}

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [
    {
      execute(input, next) {
        runParent = fromHeaders(input.headers);
        return next(input);
      },
      handleSignal(input, next) {
        const from = fromHeaders(input.headers);
        signals += 1;
        const result = next(input);
        if (from) endWith(result, `HandleSignal:${input.signalName}`, { ...from, spanId: spanIdOf(`${workflowInfo().runId}:signal:${signals}`) }, from.spanId);
        return result;
      },
    },
  ],
  outbound: [
    {
      // The header is set before `next` runs and the span's end hangs off a second `.then`: the
      // command and the promise the workflow awaits are the ones it would get without this module.
      scheduleActivity(input, next) {
        const ctx = child(`activity:${input.seq}`);
        if (!ctx) return next(input);
        const result = next({ ...input, headers: withContext(input.headers, ctx) });
        endWith(result, `StartActivity:${input.activityType}`, ctx, runParent!.spanId);
        return result;
      },
      scheduleLocalActivity(input, next) {
        const ctx = child(`local:${input.seq}:${input.attempt}`);
        return next(ctx ? { ...input, headers: withContext(input.headers, ctx) } : input);
      },
      startChildWorkflowExecution(input, next) {
        const ctx = child(`child:${input.seq}`);
        return next(ctx ? { ...input, headers: withContext(input.headers, ctx) } : input);
      },
      signalWorkflow(input, next) {
        const ctx = child(`signal-out:${input.seq}`);
        return next(ctx ? { ...input, headers: withContext(input.headers, ctx) } : input);
      },
      continueAsNew(input, next) {
        // the next run keeps this run's parent (the request that started the conversation)
        return next(runParent ? { ...input, headers: withContext(input.headers, runParent) } : input);
      },
      getLogAttributes(input, next) {
        return next(runParent ? { trace_id: runParent.traceId, ...input } : input);
      },
    },
  ],
});
