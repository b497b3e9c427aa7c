/**
 * Security review: one document cannot make the worker embed an unbounded number of chunks
 * (embedding cost, rows). A document over the chunk limit fails, final (not retried), with no
 * chunk stored and no embedding request made.
 */
import { ApplicationFailure } from '@temporalio/common';
import { sql } from 'drizzle-orm';
import OpenAI from 'openai';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { createKnowledgeActivities, MAX_DOCUMENT_CHUNKS } from '../../activities/knowledge/ingest';
import { parseDocument } from '../../activities/knowledge/parse';
import { createLogger } from '../../lib/logger';
import { rowsOf } from '../../services/db-util';
import { createEmbedder } from '../../services/embeddings';
import { createKnowledgeService, KNOWLEDGE_LIMITS } from '../../services/knowledge';
import { AppError } from '../../lib/errors';

jest.setTimeout(120_000);

let database: Database;
beforeAll(async () => {
  database = await openDatabase({ pgliteDataDir: 'memory://' });
  await migrateDatabase(database);
});
afterAll(async () => {
  await database?.close();
});

async function setup(maxChunks?: number) {
  let embedCalls = 0;
  const embedder = createEmbedder({ model: 'm', dimensions: 4, batchSize: 64 }, async (texts) => {
    embedCalls += texts.length;
    return texts.map(() => [1, 0, 0, 0]);
  });
  const service = createKnowledgeService(database.db, { vectorMode: 'array', embedder });
  const [tenant] = rowsOf<{ id: string }>(await database.db.execute(sql`insert into tenants (name) values ('Limits') returning id`));
  const kb = await service.createKnowledgeBase(tenant!.id, { name: 'KB' });
  const log = createLogger({ level: 'silent', name: 'test' });
  const activities = createKnowledgeActivities({ knowledge: service, embedder, log, maxBytes: 50 * 1024 * 1024, fetchTimeoutMs: 1000, allowLocalUrls: false, ...(maxChunks ? { maxChunks } : {}) });
  return { service, tenantId: tenant!.id, kbId: kb.id, activities, embedCalls: () => embedCalls };
}

const paragraphs = (n: number) => Array.from({ length: n }, (_, i) => `Paragraph ${i}: ${'the quick brown fox jumps over the lazy dog. '.repeat(20)}`).join('\n\n');

test('a document over the chunk limit is refused (non-retryable) before any chunk is stored or embedded', async () => {
  const { service, tenantId, kbId, activities, embedCalls } = await setup(10);
  const { document } = await service.createDocument(tenantId, kbId, { title: 'big', sourceKind: 'text', mimeType: 'text/plain', content: Buffer.from(paragraphs(40)) });
  const err = await activities.prepareKnowledgeDocument({ documentId: document.id, generation: 0 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as ApplicationFailure).message).toMatch(/over 10 chunks/);
  const [count] = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from kb_chunks where document_id = ${document.id}`));
  expect(Number(count!.n)).toBe(0);
  expect(embedCalls()).toBe(0);
});

test('a document within the limit is chunked as before', async () => {
  const { service, tenantId, kbId, activities } = await setup(10);
  const { document } = await service.createDocument(tenantId, kbId, { title: 'small', sourceKind: 'text', mimeType: 'text/plain', content: Buffer.from(paragraphs(5)) });
  const r = await activities.prepareKnowledgeDocument({ documentId: document.id, generation: 0 });
  expect(r).toMatchObject({ gone: false });
  expect((r as { chunkCount: number }).chunkCount).toBeGreaterThan(1);
  expect((r as { chunkCount: number }).chunkCount).toBeLessThanOrEqual(10);
});

test('the default limit bounds a plain 10 MB text upload (the default KNOWLEDGE_MAX_FILE_BYTES)', async () => {
  const { service, tenantId, kbId, activities } = await setup();
  const content = Buffer.from('word '.repeat(2 * 1024 * 1024)); // 10 MB of text: ~8,700 chunks unbounded
  const { document } = await service.createDocument(tenantId, kbId, { title: 'ten megabytes', sourceKind: 'text', mimeType: 'text/plain', content });
  const err = await activities.prepareKnowledgeDocument({ documentId: document.id, generation: 0 }).catch((e: unknown) => e);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as ApplicationFailure).message).toMatch(new RegExp(`over ${MAX_DOCUMENT_CHUNKS} chunks`));
});

describe("a tenant's document quota", () => {
  const saved = KNOWLEDGE_LIMITS.documentsPerTenant;
  afterEach(() => {
    KNOWLEDGE_LIMITS.documentsPerTenant = saved;
  });

  test('documents over the per-tenant limit are refused with 409 knowledge_quota_exceeded, across knowledge bases; a re-upload and other tenants are not', async () => {
    KNOWLEDGE_LIMITS.documentsPerTenant = 3;
    const a = await setup();
    const other = await a.service.createKnowledgeBase(a.tenantId, { name: 'second' });
    const add = (kbId: string, text: string) => a.service.createDocument(a.tenantId, kbId, { title: text, sourceKind: 'text', mimeType: 'text/plain', content: Buffer.from(text) });
    expect((await add(a.kbId, 'one')).created).toBe(true);
    expect((await add(a.kbId, 'two')).created).toBe(true);
    expect((await add(other.id, 'three')).created).toBe(true);
    const err = await add(other.id, 'four').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).httpStatus).toBe(409);
    expect((err as AppError).message).toMatch(/limit \(3\)/);
    // the same content again is the existing document, not a new one
    expect(await add(a.kbId, 'two')).toMatchObject({ created: false });
    // concurrent adders cannot race past the limit
    const b = await setup();
    const results = await Promise.allSettled(['p', 'q', 'r', 's', 't'].map((t) => b.service.createDocument(b.tenantId, b.kbId, { title: t, sourceKind: 'text', mimeType: 'text/plain', content: Buffer.from(t) })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
  });
});

test("an embeddings error that echoes the platform's API key does not put it in the document's error (tenant-visible)", async () => {
  const embedder = createEmbedder({ model: 'm', dimensions: 4, batchSize: 64 }, async () => {
    throw OpenAI.APIError.generate(401, { error: { message: 'Incorrect API key provided: sk-proj-abcdEFGH1234****************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.' } }, undefined, new Headers());
  });
  const service = createKnowledgeService(database.db, { vectorMode: 'array', embedder });
  const [tenant] = rowsOf<{ id: string }>(await database.db.execute(sql`insert into tenants (name) values ('Keys') returning id`));
  const kb = await service.createKnowledgeBase(tenant!.id, { name: 'KB' });
  const activities = createKnowledgeActivities({ knowledge: service, embedder, log: createLogger({ level: 'silent', name: 'test' }), maxBytes: 1024 * 1024, fetchTimeoutMs: 1000, allowLocalUrls: false });
  const { document } = await service.createDocument(tenant!.id, kb.id, { title: 't', sourceKind: 'text', mimeType: 'text/plain', content: Buffer.from('Some words to embed.') });
  const ref = { documentId: document.id, generation: 0 };
  await activities.prepareKnowledgeDocument(ref);
  const err = (await activities.embedKnowledgeChunks({ ...ref, from: 0, to: 64 }).catch((e: unknown) => e)) as ApplicationFailure;
  expect(err.nonRetryable).toBe(true);
  expect(err.message).toMatch(/^embeddings endpoint: 401 /);
  expect(err.message).not.toMatch(/sk-proj|wxyz|abcdEFGH/);
  expect(err.message).toContain('[redacted key]');
});

test('deeply nested HTML does not overflow the stack (a RangeError would be retried as if transient)', async () => {
  const n = 100_000;
  const html = `<p>Opening hours: 9 to 5.</p>${'<div>'.repeat(n)}deep${'</div>'.repeat(n)}`;
  // htmlparser2 is quadratic in the nesting (12-45 s here, by machine load): past the default 30 s deadline it would be refused (final too)
  const text = await parseDocument(Buffer.from(html), 'text/html', { timeoutMs: 110_000 });
  expect(text).toContain('Opening hours: 9 to 5.');
});
