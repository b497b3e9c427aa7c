import * as otel from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { requestIdFrom, withRequestId } from '../../lib/trace-context';

/**
 * First middleware of the app: the request's id and its server span.
 *  - `X-Request-Id`: the caller's when short and plain (lib/trace-context.ts REQUEST_ID_PATTERN),
 *    else a new UUID; echoed in the response.
 *  - A SERVER span (child of an incoming W3C `traceparent`, if any) named by method and route,
 *    with no URL, query or body in its attributes (verify tokens travel in the query, message text
 *    and phone numbers in bodies). Not recorded when tracing is off (lib/tracing.ts): an id only.
 *  - The rest of the request runs in that context, so each log line names `requestId` and
 *    `trace_id` (lib/logger.ts mixin) and the Temporal client interceptors carry the trace on.
 * Unauthenticated requests pay the same: a regex or a UUID, a span id and a closure.
 */
export function requestContext(opts: { tracer: otel.Tracer }): RequestHandler {
  return (req, res, next) => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('X-Request-Id', requestId);
    const parent = req.headers.traceparent ? otel.propagation.extract(otel.ROOT_CONTEXT, req.headers, otel.defaultTextMapGetter) : otel.ROOT_CONTEXT;
    const span = opts.tracer.startSpan(req.method, { kind: otel.SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'parley.request_id': requestId } }, parent);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      if (span.isRecording()) {
        const route = req.route?.path as unknown;
        const name = typeof route === 'string' ? `${req.method} ${req.baseUrl}${route}` : req.method;
        span.updateName(name);
        if (typeof route === 'string') span.setAttribute('http.route', `${req.baseUrl}${route}`);
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: otel.SpanStatusCode.ERROR });
      }
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    const ctx = withRequestId(otel.trace.setSpan(parent, span), requestId);
    // The body arrives in events of the request stream, emitted outside this context: run its
    // listeners (body parsers, the webhooks' raw readers) in it too, so what follows them keeps it.
    const emit = req.emit;
    req.emit = function (this: typeof req, ...args: Parameters<typeof emit>) {
      return otel.context.with(ctx, () => emit.apply(this, args));
    } as typeof emit;
    otel.context.with(ctx, next);
  };
}
