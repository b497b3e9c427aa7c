/**
 * The API's OpenAPI 3.1 document, generated from the routes themselves: every route carries an
 * access rule (api/access.ts), its request schemas (the `validate()` it runs) and a `doc()`
 * marker with its summary and response schemas. `buildOpenApi(app)` walks the Express app and
 * turns those zod schemas into the document with zod-openapi, so what a route validates and what
 * the document says are the same objects. test/unit/openapi.test.ts fails on a route without a
 * `doc()` and on a document that differs from the committed `api/client/openapi.json` (the typed
 * client is generated from that file: `npm run openapi`).
 *
 * With PARLEY_CHECK_RESPONSES=true (the tests) every JSON answer of a documented route is
 * checked against its documented schema, and a mismatch becomes a 500 `response_schema_mismatch`
 * naming the issues, so every integration test also checks the document.
 */
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';
import { accessRuleOf, type AccessRule } from './access';
import { formatIssues, validatePartsOf, type ValidateParts } from './middleware/validate';

/** One documented answer: a JSON schema, or another content type (HTML, text, a file). */
export interface ResponseDoc {
  description?: string;
  /** The JSON body's schema (checked at runtime under PARLEY_CHECK_RESPONSES). */
  schema?: z.ZodType;
  /** Default `application/json` when `schema` is set; otherwise name the type (`text/html`, `*\/*`). */
  contentType?: string;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  /** Status → schema (JSON), or a ResponseDoc; `null` = no body (204). Errors are documented once for all routes. */
  responses: Record<number, z.ZodType | ResponseDoc | null>;
  /** A body the route reads itself (webhooks: raw bytes under a signature), when it has no `validate({ body })`. */
  requestBody?: { contentType: string; schema?: z.ZodType; description?: string; /** Other content types the route also reads (a JSON body or a multipart upload). */ alternatives?: { contentType: string; schema?: z.ZodType }[] };
  /** A query the route reads itself (the webhook handshake), when it has no `validate({ query })`. */
  query?: z.ZodObject;
  tags?: string[];
}

const DOC = Symbol.for('parley.routeDoc');
type Marked = RequestHandler & { [DOC]: RouteDoc };

/** The error body every route answers with on 4xx/5xx (api/middleware/errors.ts). */
export const errorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'A stable machine-readable reason, e.g. validation_failed, not_found, forbidden, rate_limited' }),
      message: z.string(),
      issues: z.unknown().optional().meta({ description: 'What was wrong with the input (validation_failed: `{ path, message, code }[]`)' }),
    }),
  })
  .meta({ id: 'Error' });

const asResponseDoc = (r: z.ZodType | ResponseDoc | null): ResponseDoc | null => (r === null ? null : r instanceof z.ZodType ? { schema: r } : r);

/**
 * The route's documentation; put it after the access rule and `validate()`. Under
 * PARLEY_CHECK_RESPONSES it also checks the route's JSON answers against `responses`.
 */
export function doc(d: RouteDoc): RequestHandler {
  const handler = (req: Request, res: Response, next: NextFunction) => {
    if (req.app.get('parley check responses')) checkResponses(d, req, res);
    next();
  };
  return Object.assign(handler, { [DOC]: d });
}

export function routeDocOf(handler: unknown): RouteDoc | undefined {
  return typeof handler === 'function' ? (handler as Partial<Marked>)[DOC] : undefined;
}

function checkResponses(d: RouteDoc, req: Request, res: Response): void {
  const original = res.json.bind(res);
  res.json = (body: unknown) => {
    const status = res.statusCode;
    // the wire form (a Date is a string there), as a client sees it
    const problem = responseProblem(d, status, body === undefined ? undefined : JSON.parse(JSON.stringify(body)));
    if (!problem) return original(body);
    req.app.get('parley log')?.error?.({ method: req.method, path: req.route?.path, status, problem }, 'response does not match the OpenAPI document');
    res.status(500);
    return original({ error: { code: 'response_schema_mismatch', message: `${req.method} ${String(req.route?.path)} answered ${status} outside its documented schema`, issues: problem } });
  };
}

/** Why this answer is not what the document says (undefined: it is). */
export function responseProblem(d: RouteDoc, status: number, body: unknown): unknown {
  const spec = d.responses[status];
  if (spec === undefined && status >= 400) {
    const r = errorBody.safeParse(body);
    return r.success ? undefined : formatIssues(r.error);
  }
  if (spec === undefined) return [{ path: '', message: `status ${status} is not documented (documented: ${Object.keys(d.responses).join(', ')})`, code: 'undocumented_status' }];
  const rd = asResponseDoc(spec);
  if (!rd?.schema) return [{ path: '', message: `status ${status} is documented without a JSON body`, code: 'undocumented_body' }];
  const r = rd.schema.safeParse(body);
  return r.success ? undefined : formatIssues(r.error);
}

export interface WalkedRoute {
  method: string;
  /** The Express path, e.g. `/v1/leads/:id`. */
  path: string;
  handlers: unknown[];
  rules: AccessRule[];
  doc?: RouteDoc;
  validate?: ValidateParts;
}

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean>; stack: { handle: unknown }[] };
  handle?: { stack?: Layer[] };
}

/** Every route of the app (Express 5: app.router), with what its handlers declare. */
export function routesOf(app: Express): WalkedRoute[] {
  const out: WalkedRoute[] = [];
  const walk = (stackOf: Layer[]) => {
    for (const layer of stackOf) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        const handlers = layer.route.stack.map((l) => l.handle);
        const rules = handlers.map(accessRuleOf).filter((r): r is AccessRule => r !== undefined);
        const docs = handlers.map(routeDocOf).filter((r): r is RouteDoc => r !== undefined);
        const parts = handlers.map(validatePartsOf).filter((r): r is ValidateParts => r !== undefined);
        // `_all` is a route for every method (router.all)
        for (const method of Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m])) {
          for (const path of paths) out.push({ method: method === '_all' ? 'ALL' : method.toUpperCase(), path, handlers, rules, doc: docs[0], validate: parts[0] });
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out;
}

/** `/v1/leads/:id` → `/v1/leads/{id}` */
export const openApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const ROLE_TEXT: Record<AccessRule['kind'], string> = { roles: '', admin: 'Platform admin token (PARLEY_ADMIN_TOKEN).', public: 'No API key.' };

function operationOf(route: WalkedRoute): ZodOpenApiOperationObject {
  const d = route.doc!;
  const rule = route.rules[0];
  const pathParams = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  const params = route.validate?.params instanceof z.ZodObject ? route.validate.params : pathParams.length ? z.object(Object.fromEntries(pathParams.map((p) => [p, z.string()]))) : undefined;
  const query = route.validate?.query instanceof z.ZodObject ? route.validate.query : d.query;
  const responses: Record<string, unknown> = {};
  for (const [status, spec] of Object.entries(d.responses)) {
    const rd = asResponseDoc(spec);
    const description = rd?.description ?? (Number(status) === 201 ? 'Created' : Number(status) === 202 ? 'Accepted' : Number(status) === 204 ? 'No content' : 'OK');
    if (!rd || (!rd.schema && !rd.contentType)) responses[status] = { description };
    else if (rd.schema) responses[status] = { description, content: { [rd.contentType ?? 'application/json']: { schema: rd.schema } } };
    else responses[status] = { description, content: { [rd.contentType!]: { schema: { type: 'string' } } } };
  }
  const errors = { description: 'An error: 400 invalid input, 401 no or bad credentials, 403 role not allowed, 404 not found (or another tenant\'s), 409 conflict, 429 rate limited', content: { 'application/json': { schema: errorBody } } };
  const roles = rule?.kind === 'roles' ? `Roles: ${rule.roles.join(', ')}.` : rule ? ROLE_TEXT[rule.kind] : '';
  const op: ZodOpenApiOperationObject = {
    operationId: operationId(route.method, route.path),
    summary: d.summary,
    description: [d.description, roles].filter(Boolean).join('\n\n'),
    tags: d.tags ?? [tagOf(route.path)],
    responses: { ...responses, default: errors } as ZodOpenApiOperationObject['responses'],
  };
  if (rule?.kind === 'roles') {
    op.security = [{ apiKey: [] }];
    (op as unknown as Record<string, unknown>)['x-parley-roles'] = [...rule.roles];
  } else if (rule?.kind === 'admin') op.security = [{ adminToken: [] }];
  else op.security = [];
  if (params || query) op.requestParams = { ...(params ? { path: params } : {}), ...(query ? { query } : {}) };
  // a body whose every field is optional (the bodiless actions validate `{}`) may be left out
  if (route.validate?.body) op.requestBody = { required: !route.validate.body.safeParse({}).success, content: { 'application/json': { schema: route.validate.body } } };
  else if (d.requestBody) {
    const content: Record<string, { schema: z.ZodType }> = { [d.requestBody.contentType]: { schema: d.requestBody.schema ?? z.unknown() } };
    for (const alt of d.requestBody.alternatives ?? []) content[alt.contentType] = { schema: alt.schema ?? z.unknown() };
    op.requestBody = { required: true, description: d.requestBody.description, content };
  }
  return op;
}

function tagOf(path: string): string {
  const parts = path.split('/').filter(Boolean);
  const first = parts[0] === 'v1' ? parts[1] : parts[0];
  return first ?? 'root';
}

/** `GET /v1/leads/:id/events` → `getLeadsIdEvents`: stable, unique per method and path. */
function operationId(method: string, path: string): string {
  const words = path
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w && w !== 'v1')
    .map((w) => w[0]!.toUpperCase() + w.slice(1));
  return method.toLowerCase() + words.join('');
}

export interface OpenApiInfo {
  version: string;
  serverUrl?: string;
}

/** The document for this app. Routes without `doc()` are left out (the unit test names them). */
export function buildOpenApi(app: Express, info: OpenApiInfo): Record<string, unknown> {
  const paths: ZodOpenApiPathsObject = {};
  const routes = routesOf(app)
    .filter((r) => r.doc && r.method !== 'ALL')
    .sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
  for (const route of routes) {
    const p = openApiPath(route.path);
    paths[p] ??= {};
    (paths[p] as Record<string, ZodOpenApiOperationObject>)[route.method.toLowerCase()] = operationOf(route);
  }
  return createDocument(
    {
      openapi: '3.1.0',
      info: {
        title: 'Parley API',
        version: info.version,
        description:
          'Durable AI conversations for WhatsApp, Instagram and web chat. Tenant routes take `Authorization: Bearer <API key>`; each names the key roles it allows. Lists page with `?limit=1..200&cursor=` → `{ items, nextCursor }`.',
      },
      ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'A tenant API key (POST /v1/api-keys); its role decides which routes answer.' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'The platform admin token (PARLEY_ADMIN_TOKEN).' },
        },
      },
      paths,
    },
    // only schemas with `.meta({ id })` become components; the rest stays inline (readable client types)
    { reused: 'inline' },
  ) as unknown as Record<string, unknown>;
}
