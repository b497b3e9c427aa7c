/**
 * The API's description: `GET /openapi.json` (OpenAPI 3.1, generated from the routes' own zod
 * schemas, see api/openapi.ts) and `GET /docs`, a reference page rendered by Swagger UI from the
 * `swagger-ui-dist` package (served from here: it works offline, no CDN). Both are public: the
 * document holds no tenant data, and it is built once per process (a bounded, cached answer).
 */
import path from 'node:path';
import express, { Router, type Express } from 'express';
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

export function createDocsRouter(opts: { version: string }): Router {
  const r = Router();
  let cached: Record<string, unknown> | undefined;
  const assets = path.dirname(require.resolve('swagger-ui-dist/package.json'));

  r.get(
    '/openapi.json',
    publicRoute('the API description: no tenant data, built once per process'),
    doc({ summary: 'This API as an OpenAPI 3.1 document', tags: ['docs'], responses: { 200: openApiDocument } }),
    (req, res) => {
      cached ??= buildOpenApi(req.app as Express, { version: opts.version });
      res.set('cache-control', 'public, max-age=300').json(cached);
    },
  );
  r.get(
    '/docs',
    publicRoute('the API reference page (static)'),
    doc({ summary: 'A readable reference of this API (Swagger UI, served offline)', tags: ['docs'], responses: { 200: { contentType: 'text/html', description: 'The reference page' } } }),
    (_req, res) => {
      res.type('html').send(PAGE);
    },
  );
  r.get(
    '/docs/init.js',
    publicRoute('the reference page script (static)'),
    doc({ summary: "The reference page's start script", tags: ['docs'], responses: { 200: { contentType: 'application/javascript', description: 'A script' } } }),
    (_req, res) => {
      res.type('application/javascript').send(INIT);
    },
  );
  // Swagger UI's own files (the bundle, its CSS), straight from the package
  r.use('/docs/assets', express.static(assets, { index: false, maxAge: '1h' }));
  return r;
}
