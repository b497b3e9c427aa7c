/**
 * The OpenAPI document against the app: every route is documented and every documented
 * operation is a route (both ways), the committed document and the typed client's types are
 * what `npm run openapi` writes today, the document is valid OpenAPI 3.1 in the ways clients
 * rely on, and the response check rejects what the document does not allow.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { z } from 'zod';
import { documentationApp, currentOpenApi } from '../../api/openapi-app';
import { openApiPath, responseProblem, routesOf, type RouteDoc } from '../../api/openapi';
import { clientTypesFor, documentText, DOCUMENT_PATH, SCHEMA_PATH } from '../../scripts/openapi';

jest.setTimeout(60_000);

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const app = documentationApp();
const routes = routesOf(app);
const document = currentOpenApi() as { openapi: string; paths: Record<string, Record<string, { operationId: string; security: unknown[]; responses: Record<string, unknown>; parameters?: { name: string; in: string }[]; 'x-parley-roles'?: string[] }>>; components: { schemas: Record<string, unknown> } };

test('every route of the app has a doc() (summary and responses)', () => {
  expect(routes.length).toBeGreaterThan(90);
  const undocumented = routes.filter((r) => !r.doc).map((r) => `${r.method} ${r.path}`);
  expect(undocumented).toEqual([]);
  for (const r of routes) expect(Object.keys(r.doc!.responses).length).toBeGreaterThan(0);
});

test('the document names exactly the routes of the app: a route missing from it, or an operation without a route, fails', () => {
  const fromApp = routes.map((r) => `${r.method} ${openApiPath(r.path)}`).sort();
  const fromDocument = Object.entries(document.paths)
    .flatMap(([p, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  expect(fromDocument).toEqual([...new Set(fromApp)]);
});

test('operations are usable by generators: unique operation ids, every path parameter declared, security from the access rule', () => {
  const ids = new Set<string>();
  for (const [p, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      expect(ids.has(op.operationId)).toBe(false);
      ids.add(op.operationId);
      const declared = (op.parameters ?? []).filter((x) => x.in === 'path').map((x) => x.name).sort();
      const inPath = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      expect([`${method} ${p}`, declared]).toEqual([`${method} ${p}`, inPath]);
      expect(op.responses.default).toBeDefined();
      const route = routes.find((r) => r.method === method.toUpperCase() && openApiPath(r.path) === p)!;
      const rule = route.rules[0]!;
      if (rule.kind === 'roles') {
        expect(op.security).toEqual([{ apiKey: [] }]);
        expect(op['x-parley-roles']).toEqual(rule.roles);
      } else if (rule.kind === 'admin') expect(op.security).toEqual([{ adminToken: [] }]);
      else expect(op.security).toEqual([]);
    }
  }
  expect(document.openapi).toBe('3.1.0');
  expect(document.components.schemas.Error).toBeDefined();
});

test('the committed document and the typed client are current (run `npm run openapi` after changing a route)', () => {
  expect(readFileSync(DOCUMENT_PATH, 'utf8')).toBe(documentText(document));
  // the types are generated from a copy of today's document: a stale schema.ts fails here
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-openapi-'));
  const copy = path.join(dir, 'openapi.json');
  writeFileSync(copy, documentText(document));
  expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(clientTypesFor(copy));
});

test('GET /openapi.json serves the document; /docs is a page whose scripts and styles come from this server', async () => {
  const served = await request(app).get('/openapi.json').expect(200);
  expect(served.body).toEqual(document);
  const page = await request(app).get('/docs').expect(200).expect('content-type', /html/);
  const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  expect(assets.length).toBeGreaterThanOrEqual(3);
  for (const a of assets) {
    expect(a.startsWith('/')).toBe(true); // no CDN: the page works offline
    const r = await request(app).get(a).expect(200);
    expect(Number(r.headers['content-length'] ?? r.text?.length ?? 0)).toBeGreaterThan(10);
  }
  expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
  // only the two files the page loads: not the package's demo page, its petstore initializer or source maps
  for (const other of ['no-such-file.js', 'index.html', 'swagger-initializer.js', 'package.json', 'swagger-ui-bundle.js.map', '..%2Fpackage.json']) {
    await request(app).get(`/docs/assets/${other}`).expect(404);
  }
});

test('the document is served as prepared bytes: gzip when asked, a strong ETag, 304 when unchanged', async () => {
  const first = await request(app).get('/openapi.json').set('accept-encoding', 'gzip').expect(200);
  expect(first.headers['content-encoding']).toBe('gzip');
  expect(first.headers.etag).toMatch(/^"[\w-]{20,}"$/);
  const again = await request(app).get('/openapi.json').set('if-none-match', first.headers.etag!).expect(304);
  expect(again.text ?? '').toBe('');
  const plain = await request(app).get('/openapi.json').set('accept-encoding', 'identity').expect(200);
  expect(plain.headers['content-encoding']).toBeUndefined();
  expect(Number(plain.headers['content-length'])).toBeGreaterThan(Number(first.headers['content-length']) * 3);
});

describe('the response check', () => {
  const d: RouteDoc = { summary: 's', responses: { 200: z.strictObject({ id: z.uuid(), n: z.number() }), 204: null, 503: { schema: z.object({ status: z.literal('unavailable') }) } } };
  test('a documented answer passes; a wrong type, a missing field or an extra field fails', () => {
    const id = '8f0f3bd2-8a56-4d55-9a43-8a1d2f0e9c11';
    expect(responseProblem(d, 200, { id, n: 1 })).toBeUndefined();
    expect(responseProblem(d, 200, { id, n: '1' })).toEqual([expect.objectContaining({ path: 'n' })]);
    expect(responseProblem(d, 200, { id })).toEqual([expect.objectContaining({ path: 'n' })]);
    expect(responseProblem(d, 200, { id, n: 1, secret: 'x' })).toEqual([expect.objectContaining({ code: 'unrecognized_keys' })]);
  });
  test('an undocumented success status fails; a documented error status uses its own schema, others the error body', () => {
    expect(responseProblem(d, 201, {})).toEqual([expect.objectContaining({ code: 'undocumented_status' })]);
    expect(responseProblem(d, 204, { a: 1 })).toEqual([expect.objectContaining({ code: 'undocumented_body' })]);
    expect(responseProblem(d, 503, { status: 'unavailable' })).toBeUndefined();
    expect(responseProblem(d, 404, { error: { code: 'not_found', message: 'no' } })).toBeUndefined();
    expect(responseProblem(d, 404, { message: 'no' })).toBeDefined();
  });
});
