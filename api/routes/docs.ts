/**
 * The API's description: `GET /openapi.json` (OpenAPI 3.1, generated from the routes' own zod
 * schemas, see api/openapi.ts) and `GET /docs`, a reference page rendered by Swagger UI from the
 * `swagger-ui-dist` package (served from here: it works offline, no CDN). Both are public: the
 * document holds no tenant data, and it is built once per process (a bounded, cached answer).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Router, type Express, type Request, type Response } from 'express';
import { AppError } from '../../lib/errors';
import { z } from 'zod';
import { publicRoute } from '../access';
import { buildOpenApi, doc } from '../openapi';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: false });\n`;

export const openApiDocument = z
  .object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }).loose(), paths: z.record(z.string(), z.unknown()) })
  .loose()
  .meta({ description: 'An OpenAPI 3.1 document' });

/** Swagger UI's files the page loads; nothing else of the package is served. */
const ASSETS: Record<string, string> = { 'swagger-ui.css': 'text/css; charset=utf-8', 'swagger-ui-bundle.js': 'application/javascript; charset=utf-8' };

/** The page's only scripts and styles are this server's (no inline script, no CDN). */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'";

interface Prepared {
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

function prepare(body: Buffer): Prepared {
  return { body, gzip: gzipSync(body), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** A prepared body: 304 on a matching ETag, gzip when the client takes it; no per-request serialisation. */
function sendPrepared(req: Request, res: Response, p: Prepared, type: string, maxAge: number): void {
  res.set({ 'content-type': type, etag: p.etag, 'cache-control': `public, max-age=${maxAge}`, vary: 'accept-encoding', 'x-content-type-options': 'nosniff' });
  if (req.headers['if-none-match'] === p.etag) {
    res.status(304).end();
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  if (gzip) res.set('content-encoding', 'gzip');
  res.end(gzip ? p.gzip : p.body);
}

export function createDocsRouter(opts: { version: string }): Router {
  const r = Router();
  // built once, on the first request (it needs the whole app), then served as prepared bytes
  let document: Prepared | undefined;
  const dist = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const assets = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, prepared: prepare(readFileSync(path.join(dist, name))) }]));
  const page = prepare(Buffer.from(PAGE));
  const init = prepare(Buffer.from(INIT));

  r.get(
    '/openapi.json',
    publicRoute('the API description: no tenant data, built once per process, served as prepared bytes'),
    doc({ summary: 'This API as an OpenAPI 3.1 document', tags: ['docs'], responses: { 200: openApiDocument } }),
    (req, res) => {
      document ??= prepare(Buffer.from(JSON.stringify(buildOpenApi(req.app as Express, { version: opts.version }))));
      sendPrepared(req, res, document, 'application/json; charset=utf-8', 300);
    },
  );
  r.get(
    '/docs',
    publicRoute('the API reference page (static)'),
    doc({ summary: 'A readable reference of this API (Swagger UI, served offline)', tags: ['docs'], responses: { 200: { contentType: 'text/html', description: 'The reference page' } } }),
    (req, res) => {
      res.set('content-security-policy', CSP);
      sendPrepared(req, res, page, 'text/html; charset=utf-8', 300);
    },
  );
  r.get(
    '/docs/init.js',
    publicRoute('the reference page script (static)'),
    doc({ summary: "The reference page's start script", tags: ['docs'], responses: { 200: { contentType: 'application/javascript', description: 'A script' } } }),
    (req, res) => {
      sendPrepared(req, res, init, 'application/javascript; charset=utf-8', 300);
    },
  );
  r.get(
    '/docs/assets/:file',
    publicRoute("Swagger UI's own CSS and script (static, two files)"),
    doc({ summary: "Swagger UI's stylesheet and script, from the swagger-ui-dist package", tags: ['docs'], responses: { 200: { contentType: '*/*', description: 'swagger-ui.css or swagger-ui-bundle.js' } } }),
    (req, res, next) => {
      const asset = assets.get(String(req.params.file));
      if (!asset) return next(new AppError('not_found', 'no such documentation asset'));
      sendPrepared(req, res, asset.prepared, asset.type, 3600);
    },
  );
  return r;
}
