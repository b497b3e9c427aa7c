/** Url documents: the outbound SSRF rules, limits and which failures are final (activities/knowledge/fetch-url.ts). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchDocumentUrl } from '../../activities/knowledge/fetch-url';
import { DocumentRejected } from '../../activities/knowledge/parse';

let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/page.md') res.writeHead(200, { 'content-type': 'text/markdown' }).end('# Hello');
    else if (req.url === '/doc') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('%PDF-1.4 ...');
    else if (req.url === '/big') res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(5000));
    else if (req.url === '/image') res.writeHead(200, { 'content-type': 'image/png' }).end('png');
    else if (req.url === '/down') res.writeHead(503).end();
    else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
    else if (req.url === '/to-private') res.writeHead(302, { location: 'http://10.0.0.1/x' }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

const local = { allowLocal: true, maxBytes: 1000, timeoutMs: 5000 };

test('a document and its type (from the header, else the bytes)', async () => {
  expect(await fetchDocumentUrl(`${base}/page.md`, local)).toEqual({ content: Buffer.from('# Hello'), mimeType: 'text/markdown' });
  expect((await fetchDocumentUrl(`${base}/doc`, local)).mimeType).toBe('application/pdf');
});

test('final refusals: production rules, private redirects, 404, too large, unsupported type, redirect loops', async () => {
  const prod = { ...local, allowLocal: false };
  await expect(fetchDocumentUrl(`${base}/page.md`, prod)).rejects.toThrow(new DocumentRejected('url refused: http is not allowed (https only)'));
  await expect(fetchDocumentUrl('https://127.0.0.1/x', prod)).rejects.toThrow(/address 127.0.0.1 is not public/);
  await expect(fetchDocumentUrl('https://internal.example/x', { ...prod, resolveHost: async () => ['192.168.1.20'] })).rejects.toThrow(/non-public address/);
  await expect(fetchDocumentUrl(`${base}/to-private`, local)).rejects.toThrow(/url refused at redirect 1: address 10.0.0.1 is not public/);
  await expect(fetchDocumentUrl(`${base}/nothing`, local)).rejects.toThrow(new DocumentRejected('the url answered 404'));
  await expect(fetchDocumentUrl(`${base}/big`, local)).rejects.toBeInstanceOf(DocumentRejected);
  await expect(fetchDocumentUrl(`${base}/image`, local)).rejects.toThrow(/unsupported content type image\/png/);
  await expect(fetchDocumentUrl(`${base}/loop`, local)).rejects.toThrow(/more than 3 redirects/);
});

test('transient failures are plain errors (Temporal retries them)', async () => {
  const e = await fetchDocumentUrl(`${base}/down`, local).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(Error);
  expect(e).not.toBeInstanceOf(DocumentRejected);
  expect((e as Error).message).toBe('the url answered 503');
});
