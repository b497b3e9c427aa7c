/**
 * Knowledge base (issue 11) on the dev server: documents (text, url from a local server, PDF and
 * HTML uploads) indexed by knowledgeDocumentWorkflow, idempotent re-upload, failed documents,
 * re-index, hybrid search (vector path: pgvector on PGlite; cosine over real[] on this machine's
 * PostgreSQL without pgvector: run with DATABASE_URL), tenant isolation and agents'
 * knowledgeBaseIds.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectTemporalClient } from '../../temporal/connect';
import { knowledgeDocumentWorkflowId } from '../../workflows/knowledge';
import { flateBombPdf, tinyPdf } from '../support/pdf';
import { ADMIN_TOKEN, startStack, waitFor, type Stack } from '../support/stack';

jest.setTimeout(180_000);

const MAX_FILE = 64 * 1024;
let stack: Stack;
let site: http.Server;
let siteUrl: string;
const pages: Record<string, { status: number; type: string; body: string | Buffer }> = {
  '/returns.html': {
    status: 200,
    type: 'text/html; charset=utf-8',
    body: '<html><head><title>Returns</title><style>p{}</style></head><body><h1>Returns policy</h1><p>Unworn Quokka boots may be returned within <b>45 days</b> of delivery for a full refund.</p><script>var x=1</script></body></html>',
  },
  '/moved': { status: 302, type: 'text/plain', body: '' },
  '/missing': { status: 404, type: 'text/plain', body: 'not here' },
};

beforeAll(async () => {
  site = http.createServer((req, res) => {
    const page = pages[req.url ?? ''];
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    if (page.status === 302) {
      res.writeHead(302, { location: '/returns.html' }).end();
      return;
    }
    res.writeHead(page.status, { 'content-type': page.type }).end(page.body);
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', () => r()));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  stack = await startStack({ KNOWLEDGE_MAX_FILE_BYTES: String(MAX_FILE), OPENAI_EMBEDDING_DIMENSIONS: '256', KNOWLEDGE_EMBEDDING_BATCH_SIZE: '4' });
});
afterAll(async () => {
  await stack?.stop();
  await new Promise((r) => site?.close(r));
});

async function newTenant(): Promise<string> {
  const t = await stack.api.post('/v1/tenants').set('authorization', `Bearer ${ADMIN_TOKEN}`).send({ name: 'Knowledge Co' }).expect(201);
  return t.body.apiKey as string;
}
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

async function newKb(key: string, name = 'Help centre'): Promise<string> {
  const r = await stack.api.post('/v1/knowledge-bases').set(auth(key)).send({ name }).expect(201);
  expect(r.body).toMatchObject({ name, documentCount: 0 });
  return r.body.id as string;
}

type Doc = { id: string; status: string; error: string | null; chunkCount: number; embeddingModel: string | null; mimeType: string | null };
async function settled(key: string, kbId: string, docId: string): Promise<Doc> {
  return waitFor(
    async () => {
      const r = await stack.api.get(`/v1/knowledge-bases/${kbId}/documents/${docId}`).set(auth(key)).expect(200);
      return r.body.status === 'ready' || r.body.status === 'failed' ? (r.body as Doc) : undefined;
    },
    { timeoutMs: 60_000, what: `document ${docId} indexed` },
  );
}

type Hit = { documentId: string; text: string; scores: { fullText: number | null; vector: number | null; fused: number }; ranks: { fullText: number | null; vector: number | null } };
async function search(key: string, kbId: string, query: string, limit = 3): Promise<{ items: Hit[]; vectorMode: string; vectorUsed: boolean }> {
  const r = await stack.api.post(`/v1/knowledge-bases/${kbId}/search`).set(auth(key)).send({ query, limit }).expect(200);
  return r.body;
}

const LONG_TEXT = [
  'Shipping. Orders placed before 2 pm ship the same day from our Leeds warehouse. Standard delivery takes three to five working days within the UK.',
  'Warranty. Every Zephyr kettle carries a warranty of 36 months covering the heating element and the thermostat, but not limescale damage.',
  'Payments. We accept Visa, Mastercard, PayPal and bank transfer. Invoices are issued in pounds sterling and due within 30 days.',
  ...Array.from({ length: 12 }, (_, i) => `Section ${i + 4}. ${'Our customer service team answers questions about orders, accounts and products. '.repeat(4)}`),
].join('\n\n');

describe('knowledge base', () => {
  test('a text document is indexed by its workflow (chunked, embedded in batches) and found by hybrid search', async () => {
    const key = await newTenant();
    const kbId = await newKb(key);
    const before = stack.llm.embeddingRequests.length;
    const created = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).send({ title: 'FAQ', text: LONG_TEXT }).expect(202);
    expect(created.body).toMatchObject({ status: 'pending', sourceKind: 'text', title: 'FAQ', chunkCount: 0 });
    const doc = await settled(key, kbId, created.body.id);
    expect(doc).toMatchObject({ status: 'ready', error: null, embeddingModel: 'text-embedding-3-small@256' });
    expect(doc.chunkCount).toBeGreaterThan(4);
    // batches of KNOWLEDGE_EMBEDDING_BATCH_SIZE (4), at 256 dimensions
    const batches = stack.llm.embeddingRequests.slice(before);
    expect(batches.length).toBe(Math.ceil(doc.chunkCount / 4));
    expect(batches.every((b) => b.inputs <= 4 && b.dimensions === 256 && b.model === 'text-embedding-3-small')).toBe(true);

    // the workflow, as the Web UI shows it
    const { client, connection } = await connectTemporalClient(stack.config.temporal, { payloadCodec: stack.core.payloadCodec });
    try {
      // the document is marked ready by the workflow's last activity, just before the workflow completes
      const handle = client.workflow.getHandle(knowledgeDocumentWorkflowId(doc.id, 0));
      await handle.result();
      const d = await handle.describe();
      expect(d.type).toBe('knowledgeDocumentWorkflow');
      expect(d.status.name).toBe('COMPLETED');
      const summary = await d.staticSummary();
      expect(summary).toContain(doc.id);
      expect(summary).not.toContain('FAQ');
    } finally {
      await connection.close();
    }

    const res = await search(key, kbId, 'How long is the kettle warranty?');
    expect(res.vectorMode).toBe(process.env.DATABASE_URL ? 'array' : 'pgvector');
    // the path was chosen at start-up and logged
    expect(stack.logLines.some((l) => l.includes(process.env.DATABASE_URL ? 'knowledge base: no pgvector in this database' : 'knowledge base: pgvector available'))).toBe(true);
    expect(res.vectorUsed).toBe(true);
    expect(res.items.length).toBeGreaterThan(0);
    expect(res.items[0]!.text).toContain('36 months');
    expect(res.items[0]!.scores.fullText).toBeGreaterThan(0);
    expect(res.items[0]!.scores.vector).toBeGreaterThan(0);
    // fused by normalized score: each list's score over its best, vectors weighted 0.3 (KNOWLEDGE_VECTOR_WEIGHT)
    const wide = await search(key, kbId, 'How long is the kettle warranty?', 20);
    expect(wide.items.slice(0, res.items.length)).toEqual(res.items);
    const best = (list: 'fullText' | 'vector') => wide.items.find((i) => i.ranks[list] === 1)!.scores[list]!;
    for (const item of wide.items) {
      expect(item.scores.fused).toBeCloseTo((item.scores.fullText ?? 0) / best('fullText') + (0.3 * (item.scores.vector ?? 0)) / best('vector'), 10);
    }
    expect(res.items[0]!.scores.fused).toBeGreaterThan(1);
    expect((await search(key, kbId, 'Which cards do you take for payment?')).items[0]!.text).toContain('Mastercard');

    // the same content again: the same document, no new work
    const again = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).send({ title: 'FAQ copy', text: LONG_TEXT }).expect(200);
    expect(again.body).toMatchObject({ id: doc.id, status: 'ready', title: 'FAQ' });
    const list = await stack.api.get(`/v1/knowledge-bases/${kbId}/documents?limit=10`).set(auth(key)).expect(200);
    expect(list.body.items).toHaveLength(1);
    expect((await stack.api.get(`/v1/knowledge-bases/${kbId}`).set(auth(key)).expect(200)).body.documentCount).toBe(1);
  });

  test('url (HTML from a local server, through a redirect), PDF and HTML uploads are indexed; a bad PDF and a 404 fail with their error', async () => {
    const key = await newTenant();
    const kbId = await newKb(key);
    const byUrl = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).send({ title: 'Returns', url: `${siteUrl}/moved` }).expect(202);
    const pdf = await stack.api
      .post(`/v1/knowledge-bases/${kbId}/documents`)
      .set(auth(key))
      .attach('file', tinyPdf(['Quokka boots are resoled free of charge for two years.', 'Bring them to any Quokka store.']), { filename: 'care.pdf', contentType: 'application/pdf' })
      .expect(202);
    expect(pdf.body).toMatchObject({ title: 'care.pdf', sourceKind: 'file', mimeType: 'application/pdf' });
    const html = await stack.api
      .post(`/v1/knowledge-bases/${kbId}/documents`)
      .set(auth(key))
      .field('title', 'Stores')
      .attach('file', Buffer.from('<h2>Opening hours</h2><p>The Camden store opens at <i>nine</i> on Sundays.</p>'), { filename: 'stores.html', contentType: 'text/html' })
      .expect(202);
    expect(html.body).toMatchObject({ title: 'Stores', mimeType: 'text/html' });
    const badPdf = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).attach('file', Buffer.from('%PDF-1.7 this is not a pdf'), { filename: 'broken.pdf', contentType: 'application/pdf' }).expect(202);
    const missing = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).send({ title: 'Gone', url: `${siteUrl}/missing` }).expect(202);

    expect(await settled(key, kbId, byUrl.body.id)).toMatchObject({ status: 'ready', mimeType: 'text/html' });
    expect(await settled(key, kbId, pdf.body.id)).toMatchObject({ status: 'ready', chunkCount: 1 });
    expect(await settled(key, kbId, html.body.id)).toMatchObject({ status: 'ready', chunkCount: 1 });
    const failedPdf = await settled(key, kbId, badPdf.body.id);
    expect(failedPdf).toMatchObject({ status: 'failed', chunkCount: 0 });
    expect(failedPdf.error).toMatch(/knowledge_document_rejected: the PDF could not be read/);
    const failedUrl = await settled(key, kbId, missing.body.id);
    expect(failedUrl).toMatchObject({ status: 'failed' });
    expect(failedUrl.error).toMatch(/answered 404/);

    const returns = await search(key, kbId, 'Can I return boots for a refund?');
    expect(returns.items[0]).toMatchObject({ documentId: byUrl.body.id });
    expect(returns.items[0]!.text).toContain('45 days');
    expect(returns.items[0]!.text).not.toMatch(/var x|p\{\}/); // script and style dropped
    expect((await search(key, kbId, 'resoled boots')).items[0]).toMatchObject({ documentId: pdf.body.id });
    expect((await search(key, kbId, 'Sunday opening hours Camden')).items[0]).toMatchObject({ documentId: html.body.id });

    // re-index: every document again under generation 1; the failed ones fail again
    const re = await stack.api.post(`/v1/knowledge-bases/${kbId}/reindex`).set(auth(key)).send({ all: true }).expect(202);
    expect(re.body).toEqual({ started: 5, alreadyRunning: 0, failed: 0, failedDocumentIds: [], queued: 5, embeddingModel: 'text-embedding-3-small@256' });
    const { client, connection } = await connectTemporalClient(stack.config.temporal, { payloadCodec: stack.core.payloadCodec });
    try {
      const r = await client.workflow.getHandle(knowledgeDocumentWorkflowId(pdf.body.id, 1)).result();
      expect(r).toEqual({ status: 'ready', chunkCount: 1 });
    } finally {
      await connection.close();
    }
    expect(await settled(key, kbId, pdf.body.id)).toMatchObject({ status: 'ready' });
    // nothing left to re-index with the same model but the failed ones
    await waitFor(async () => (await settled(key, kbId, missing.body.id)).status === 'failed' && (await settled(key, kbId, byUrl.body.id)).status === 'ready');
  });

  test('a PDF bomb fails its document for good (one attempt), out of the worker process; the worker keeps indexing', async () => {
    const key = await newTenant();
    const kbId = await newKb(key);
    const bomb = await flateBombPdf(512 * 1024 * 1024, 2); // 512 MB of spaces in ~2 KB
    expect(bomb.length).toBeLessThan(MAX_FILE);
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 5);
    let doc: Doc;
    let bombId: string;
    try {
      const up = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).attach('file', bomb, { filename: 'bomb.pdf', contentType: 'application/pdf' }).expect(202);
      bombId = up.body.id as string;
      doc = await settled(key, kbId, bombId);
    } finally {
      clearInterval(sampler);
    }
    expect(doc).toMatchObject({ status: 'failed', chunkCount: 0, error: 'knowledge_parse_limit: the PDF is too complex to parse within 256 MB and 30 s (it needed more than 256 MB)' });
    // the worker runs in this process: it did not hold the inflated stream
    expect(peak - before).toBeLessThan(96 * 1024 * 1024);
    const { client, connection } = await connectTemporalClient(stack.config.temporal, { payloadCodec: stack.core.payloadCodec });
    try {
      const handle = client.workflow.getHandle(knowledgeDocumentWorkflowId(bombId, 0));
      expect(await handle.result()).toMatchObject({ status: 'failed' });
      const started = (await handle.fetchHistory()).events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
      // prepare once (not retried), then the finish activity
      expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1, 1]);
    } finally {
      await connection.close();
    }
    const pdf = await stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key)).attach('file', tinyPdf(['Laces are replaced free of charge.']), { filename: 'laces.pdf', contentType: 'application/pdf' }).expect(202);
    expect(await settled(key, kbId, pdf.body.id)).toMatchObject({ status: 'ready', chunkCount: 1 });
  });

  test('uploads are refused with 400, 413 and 415 as they should', async () => {
    const key = await newTenant();
    const kbId = await newKb(key);
    const post = () => stack.api.post(`/v1/knowledge-bases/${kbId}/documents`).set(auth(key));
    expect((await post().send({ title: 'x', text: 'a', url: 'https://example.com' }).expect(400)).body.error.code).toBe('validation_failed');
    expect((await post().send({ text: 'no title' }).expect(400)).body.error.code).toBe('validation_failed');
    expect((await post().send({ title: 'x', url: 'ftp://example.com/a' }).expect(400)).body.error.message).toMatch(/url refused/);
    expect((await post().attach('file', Buffer.alloc(MAX_FILE + 10, 'a'), { filename: 'big.txt', contentType: 'text/plain' }).expect(413)).body.error.code).toBe('payload_too_large');
    expect((await post().attach('file', Buffer.from([0x89, 0x50, 0x4e, 0x47]), { filename: 'logo.png', contentType: 'image/png' }).expect(415)).body.error.code).toBe('unsupported_media_type');
    expect((await post().field('title', 'no file').expect(400)).body.error.code).toBe('validation_failed');
    expect((await post().attach('other', Buffer.from('x'), { filename: 'a.txt', contentType: 'text/plain' }).expect(400)).body.error.code).toBe('bad_request');
    // a markdown file sent as octet-stream: its type from the file name
    const md = await post().attach('file', Buffer.from('# Delivery\n\nWe deliver **everywhere** in [Wales](https://example.com).'), { filename: 'delivery.md', contentType: 'application/octet-stream' }).expect(202);
    expect(md.body.mimeType).toBe('text/markdown');
    expect(await settled(key, kbId, md.body.id)).toMatchObject({ status: 'ready' });

    // the embeddings endpoint: a 503 is retried, a 401 (bad key) fails the document at once
    stack.llm.failNext({ status: 503, times: 1, model: 'text-embedding-3-small' });
    const retried = await post().send({ title: 'Retried', text: 'Gift cards never expire and can be used online.' }).expect(202);
    expect(await settled(key, kbId, retried.body.id)).toMatchObject({ status: 'ready' });
    stack.llm.failNext({ status: 401, times: 1, model: 'text-embedding-3-small' });
    const refused = await post().send({ title: 'Refused', text: 'Store credit is issued within five days.' }).expect(202);
    const failed = await settled(key, kbId, refused.body.id);
    expect(failed).toMatchObject({ status: 'failed', chunkCount: 0 });
    expect(failed.error).toMatch(/^llm_config: embeddings endpoint: 401/);
  });

  test("another tenant's knowledge base is a 404 everywhere, and agents take only the tenant's own", async () => {
    const a = await newTenant();
    const b = await newKb(a, 'A private');
    const other = await newTenant();
    const doc = await stack.api.post(`/v1/knowledge-bases/${b}/documents`).set(auth(a)).send({ title: 'Secret', text: 'The launch code of project Heron is tangerine.' }).expect(202);
    await settled(a, b, doc.body.id);
    await stack.api.get(`/v1/knowledge-bases/${b}`).set(auth(other)).expect(404);
    await stack.api.patch(`/v1/knowledge-bases/${b}`).set(auth(other)).send({ name: 'mine' }).expect(404);
    await stack.api.get(`/v1/knowledge-bases/${b}/documents`).set(auth(other)).expect(404);
    await stack.api.get(`/v1/knowledge-bases/${b}/documents/${doc.body.id}`).set(auth(other)).expect(404);
    await stack.api.post(`/v1/knowledge-bases/${b}/documents`).set(auth(other)).send({ title: 'x', text: 'y' }).expect(404);
    await stack.api.post(`/v1/knowledge-bases/${b}/search`).set(auth(other)).send({ query: 'launch code' }).expect(404);
    await stack.api.delete(`/v1/knowledge-bases/${b}`).set(auth(other)).expect(404);
    expect((await stack.api.get('/v1/knowledge-bases').set(auth(other)).expect(200)).body.items).toEqual([]);
    // the service ignores another tenant's ids too
    expect(await stack.core.services.knowledge.searchKnowledge({ tenantId: '00000000-0000-4000-8000-000000000000', kbIds: [b], query: 'launch code', limit: 3 })).toEqual([]);

    const agentBody = { name: 'Bot', systemPrompt: 'Help.', model: 'gpt-4o-mini' };
    expect((await stack.api.post('/v1/agents').set(auth(other)).send({ ...agentBody, knowledgeBaseIds: [b] }).expect(400)).body.error.code).toBe('validation_failed');
    const own = await newKb(other, 'Own');
    const agent = await stack.api.post('/v1/agents').set(auth(other)).send({ ...agentBody, knowledgeBaseIds: [own] }).expect(201);
    expect(agent.body.knowledgeBaseIds).toEqual([own]);
    await stack.api.patch(`/v1/agents/${agent.body.id}`).set(auth(other)).send({ knowledgeBaseIds: [b] }).expect(400);
    const second = await newKb(other, 'Second');
    const patched = await stack.api.patch(`/v1/agents/${agent.body.id}`).set(auth(other)).send({ knowledgeBaseIds: [own, second] }).expect(200);
    expect(patched.body).toMatchObject({ knowledgeBaseIds: [own, second], version: 2 });
    // deleting a knowledge base takes it off the agents that used it
    await stack.api.delete(`/v1/knowledge-bases/${own}`).set(auth(other)).expect(200);
    expect((await stack.api.get(`/v1/agents/${agent.body.id}`).set(auth(other)).expect(200)).body.knowledgeBaseIds).toEqual([second]);

    // deleting a document removes its chunks from search
    expect((await search(a, b, 'launch code Heron')).items).toHaveLength(1);
    await stack.api.delete(`/v1/knowledge-bases/${b}/documents/${doc.body.id}`).set(auth(a)).expect(200);
    expect((await search(a, b, 'launch code Heron')).items).toHaveLength(0);
  });
});
