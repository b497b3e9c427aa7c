/**
 * Request ids and traces (README, "Request ids and traces").
 *
 * - Trace context always flows, exporter or not: the API's request span, the Temporal client
 *   interceptors (`_tracer-data` header), the workflow interceptors and the activity span all
 *   share one W3C trace id, and every pino line written inside them carries `trace_id` (and the
 *   API's `requestId`) through the logger's mixin (lib/logger.ts).
 * - Spans are recorded and sent only when an OTLP endpoint is configured
 *   (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`).
 *   Otherwise the sampler drops every span at its start: the ids still exist and propagate,
 *   nothing is recorded, and workflow spans under an unsampled parent are not recorded either
 *   (so no sink calls leave the workflow sandbox).
 * - One context manager (AsyncLocalStorage) and one propagator (W3C trace context) per
 *   process, set globally once; each process role (API, worker) has its own provider,
 *   resource (service.name) and exporter, passed to the interceptors explicitly, so the API
 *   and the worker may share a process (tests, `npm run dev`).
 */
import { createHash } from 'node:crypto';
import type * as otel from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { installContextPropagation } from './trace-context';
import { AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export type TracingRole = 'api' | 'worker';

export interface TracingSettings {
  /** `service.name` of the spans (OTEL_SERVICE_NAME, else parley-api / parley-worker). */
  serviceName: string;
  /** Where spans go (OTLP/HTTP, JSON); undefined: nothing is exported. */
  tracesUrl?: string;
}

export interface TracingEnv {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;
  OTEL_SERVICE_NAME?: string;
}

/**
 * What a process traces, from the standard OpenTelemetry variables: the traces endpoint as
 * given, else the base endpoint + `/v1/traces` (the OTLP/HTTP convention); no endpoint: off.
 */
export function resolveTracingSettings(env: TracingEnv, role: TracingRole): TracingSettings {
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || `parley-${role}`;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const tracesUrl = traces || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  return { serviceName, ...(tracesUrl ? { tracesUrl } : {}) };
}

export interface Tracing {
  settings: TracingSettings;
  /** True when spans are recorded and exported. */
  exporting: boolean;
  tracer: otel.Tracer;
  resource: Resource;
  /** Receives the workflow sandbox's spans (makeWorkflowExporter); a no-op when not exporting. */
  spanProcessor: SpanProcessor;
  /** Flush what is queued (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The tracer of a process role. Installs the global context manager and propagator first. */
export function createTracing(settings: TracingSettings): Tracing {
  installContextPropagation();
  const resource = new Resource({ 'service.name': settings.serviceName });
  const exporting = settings.tracesUrl !== undefined;
  const spanProcessor: SpanProcessor = exporting ? new ScrubbingProcessor(new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl }), { scheduledDelayMillis: 1000 })) : NOOP_PROCESSOR;
  const provider = new BasicTracerProvider({
    resource,
    // off: every span is a non-recording one (ids only), so the cost is an id and a context
    sampler: exporting ? new AlwaysOnSampler() : new AlwaysOffSampler(),
    spanProcessors: exporting ? [spanProcessor] : [],
  });
  return {
    settings,
    exporting,
    tracer: provider.getTracer('parley'),
    resource,
    spanProcessor,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Span attributes holding a workflow id (the SDK's interceptors set `temporalWorkflowId`; the
 * workflow sink adds the run's info as `workflowId`). A lead's id ends in a keyed digest of
 * the contact's id (lib/lead-ids.ts); ids from before that (recorded histories) end in the
 * contact's id itself, a phone number on WhatsApp, hence the masking below.
 */
const WORKFLOW_ID_ATTRIBUTES = ['temporalWorkflowId', 'workflowId'];

/**
 * `lead:<channel account>:<contact>` → `lead:<channel account>:sha256:<first 16 hex of the
 * id's SHA-256>`: no phone number leaves the process in a span, and a known lead's spans are
 * still found by hashing its workflow id. Other workflow ids hold no contact data and stay.
 */
export function traceableWorkflowId(workflowId: string): string {
  const m = /^(lead:[^:]*:)(.*)$/s.exec(workflowId);
  if (!m) return workflowId;
  return `${m[1]}sha256:${createHash('sha256').update(workflowId, 'utf8').digest('hex').slice(0, 16)}`;
}

/** Every lead workflow id in a text, as `traceableWorkflowId` names it. */
export function scrubWorkflowIds(text: string): string {
  return text.replace(/lead:[^:\s"'`]*:[^\s"'`,;)\]}]+/g, (id) => traceableWorkflowId(id));
}

/** Rewrites workflow ids in ended spans (the API's, the activities' and the workflow sandbox's) before export. */
class ScrubbingProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}
  onStart(span: Parameters<SpanProcessor['onStart']>[0], ctx: Parameters<SpanProcessor['onStart']>[1]): void {
    this.inner.onStart(span, ctx);
  }
  onEnd(span: ReadableSpan): void {
    const attributes = span.attributes as Record<string, unknown>;
    for (const key of WORKFLOW_ID_ATTRIBUTES) {
      const v = attributes[key];
      if (typeof v === 'string') attributes[key] = traceableWorkflowId(v);
    }
    // the SDK's interceptors record a failed call's message (a Temporal error may quote the workflow id)
    const status = span.status as { message?: string };
    if (status.message) status.message = scrubWorkflowIds(status.message);
    for (const event of span.events) {
      const a = event.attributes as Record<string, unknown> | undefined;
      if (!a) continue;
      for (const [k, v] of Object.entries(a)) if (typeof v === 'string') a[k] = scrubWorkflowIds(v);
    }
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

const NOOP_PROCESSOR: SpanProcessor = {
  onStart() {},
  onEnd() {},
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};
