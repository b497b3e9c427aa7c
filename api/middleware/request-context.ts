import * as otel from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import type { Logger } from '../../lib/logger';
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
 *  - The access log (`LOG_REQUESTS`): one line per finished request with its method, route
 *    pattern (`/v1/leads/:leadId`, never the path itself: signed media tokens travel in paths,
 *    verify tokens in queries), status and milliseconds; a request refused before a route
 *    matched (a 401 of a router-wide guard, a 404) gets `path`, its shape (`pathShape`);
 *    `errors`: only 4xx/5xx; `off`: none.
 * Unauthenticated requests pay the same: a regex or a UUID, a span id, a closure and one log line.
 */
export function requestContext(opts: { tracer: otel.Tracer; log?: Logger; logRequests?: 'all' | 'errors' | 'off' }): RequestHandler {
  const access = opts.log && opts.logRequests !== 'off' ? opts.log.child({ module: 'http' }) : undefined;
  const onlyErrors = opts.logRequests === 'errors';
  return (req, res, next) => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('X-Request-Id', requestId);
    const parent = req.headers.traceparent ? otel.propagation.extract(otel.ROOT_CONTEXT, req.headers, otel.defaultTextMapGetter) : otel.ROOT_CONTEXT;
    const span = opts.tracer.startSpan(req.method, { kind: otel.SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'parley.request_id': requestId } }, parent);
    let ended = false;
    const started = access ? performance.now() : 0;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = req.route?.path as unknown;
      if (access && (!onlyErrors || res.statusCode >= 400)) {
        const ms = Math.round((performance.now() - started) * 10) / 10;
        const where = typeof route === 'string' ? { route: `${req.baseUrl}${route}` } : { path: pathShape(req.path) };
        const line = { method: req.method, ...where, status: res.statusCode, ms, ...(res.writableFinished ? {} : { aborted: true }) };
        otel.context.with(ctx, () => (res.statusCode >= 500 ? access.warn(line, 'request') : access.info(line, 'request')));
      }
      if (span.isRecording()) {
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

/**
 * A path as the access log may show it: short lowercase words (`v1`, `leads`, `media`) kept, any
 * other segment (ids, tokens, numbers, anything long or mixed-case) replaced by `:`; at most 8 segments.
 */
export function pathShape(path: string): string {
  const segments = path.split('/').filter((x) => x !== '');
  const shown = segments.slice(0, 8).map((x) => (/^[a-z][a-z0-9_-]{0,23}$/.test(x) && !/[0-9].*[0-9].*[0-9]/.test(x) ? x : ':'));
  return `/${shown.join('/')}${segments.length > 8 ? '/…' : ''}`;
}
