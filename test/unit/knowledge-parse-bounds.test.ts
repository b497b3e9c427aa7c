/**
 * Security review (issue 11): a PDF bomb (a small file whose FlateDecode content stream inflates
 * to hundreds of MB) is parsed in a child process with a memory bound and a deadline, not in the
 * worker: it is refused for good (knowledge_parse_limit, not retried), the document keeps no
 * chunks, and this process's memory does not grow with the bomb. Page and text limits too; normal
 * PDFs and HTML still parse.
 */
import { ApplicationFailure } from '@temporalio/common';
import { sql } from 'drizzle-orm';
import { migrateDatabase, openDatabase, type Database } from '../../db/client';
import { createKnowledgeActivities } from '../../activities/knowledge/ingest';
import { DEFAULT_PARSE_LIMITS, DocumentRejected, ParseLimitExceeded, parseDocument } from '../../activities/knowledge/parse';
import { sandboxStats } from '../../activities/knowledge/parse-sandbox';
import { FailureType, KNOWLEDGE_NON_RETRYABLE } from '../../contract/failures';
import { createLogger } from '../../lib/logger';
import { rowsOf } from '../../services/db-util';
import { createEmbedder } from '../../services/embeddings';
import { createKnowledgeService } from '../../services/knowledge';
import { flateBombPdf, multiPagePdf, tinyPdf } from '../support/pdf';

jest.setTimeout(120_000);

const MB = 1024 * 1024;
/** The bomb's inflated content stream: twice the default memory limit. */
const INFLATED = 512 * MB;
let bomb: Buffer;
let database: Database;

beforeAll(async () => {
  bomb = await flateBombPdf(INFLATED, 2);
  database = await openDatabase({ pgliteDataDir: 'memory://' });
  await migrateDatabase(database);
});
afterAll(async () => {
  await database?.close();
});

/** `fn`'s result and the most this process's resident memory grew while it ran (sampled every 5 ms). */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ result: T; grewBy: number }> {
  const before = process.memoryUsage.rss();
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const result = await fn();
    return { result, grewBy: Math.max(peak, process.memoryUsage.rss()) - before };
  } finally {
    clearInterval(timer);
  }
}

const pages = (n: number, lines = 40) => Array.from({ length: n }, (_, p) => Array.from({ length: lines }, (_, l) => `Page ${p + 1} line ${l + 1}: Quokka boots are resoled free of charge.`));

describe('parsing out of the worker', () => {
  test('a PDF bomb of a few KB is stopped at the memory limit; this process does not grow with it', async () => {
    expect(bomb.length).toBeLessThan(64 * 1024);
    const started = Date.now();
    const { result: err, grewBy } = await withPeakRss(() => parseDocument(bomb, 'application/pdf').catch((e: unknown) => e));
    expect(err).toBeInstanceOf(ParseLimitExceeded);
    expect((err as Error).message).toBe(`the PDF is too complex to parse within ${DEFAULT_PARSE_LIMITS.memoryMb} MB and 30 s (it needed more than ${DEFAULT_PARSE_LIMITS.memoryMb} MB)`);
    // the kernel refused the child's allocations at the limit (ulimit -d), long before the stream was inflated
    expect(sandboxStats.lastPeakRssBytes).toBeGreaterThan(100 * MB);
    expect(sandboxStats.lastPeakRssBytes).toBeLessThanOrEqual(DEFAULT_PARSE_LIMITS.memoryMb * MB);
    expect(Date.now() - started).toBeLessThan(DEFAULT_PARSE_LIMITS.timeoutMs);
    // in this process (as before), the stream alone would be 512 MB of array buffers
    expect(grewBy).toBeLessThan(64 * MB);
  });

  test('without the kernel limits, the resident memory watch kills the child just past the limit', async () => {
    const { result: err, grewBy } = await withPeakRss(() => parseDocument(bomb, 'application/pdf', { kernelLimits: false }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(ParseLimitExceeded);
    expect((err as Error).message).toMatch(/needed more than 256 MB/);
    expect(sandboxStats.lastPeakRssBytes).toBeGreaterThan(DEFAULT_PARSE_LIMITS.memoryMb * MB);
    expect(sandboxStats.lastPeakRssBytes).toBeLessThan(DEFAULT_PARSE_LIMITS.memoryMb * MB + 128 * MB);
    expect(grewBy).toBeLessThan(64 * MB);
  });

  test('a parse past the deadline is killed', async () => {
    const started = Date.now();
    const err = await parseDocument(bomb, 'application/pdf', { memoryMb: 4096, timeoutMs: 1_500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParseLimitExceeded);
    expect((err as Error).message).toBe('the PDF is too complex to parse within 4096 MB and 1.5 s (it took longer than 1.5 s)');
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  test('more pages than the limit are refused; so is more text than the limit', async () => {
    const three = multiPagePdf(pages(3, 2));
    await expect(parseDocument(three, 'application/pdf', { maxPages: 2 })).rejects.toThrow(new ParseLimitExceeded('the PDF has 3 pages, over the 2-page limit (KNOWLEDGE_PDF_MAX_PAGES)'));
    expect(await parseDocument(three, 'application/pdf', { maxPages: 3 })).toContain('Page 3 line 2');
    await expect(parseDocument(three, 'application/pdf', { maxChars: 100 })).rejects.toBeInstanceOf(ParseLimitExceeded);
    await expect(parseDocument(Buffer.from(`<p>${'word '.repeat(100)}</p>`), 'text/html', { maxChars: 100 })).rejects.toThrow(/HTML's text is over 100 characters/);
  });

  test('after a bomb, normal PDFs (1 and 30 pages) and HTML still parse, in page order', async () => {
    await parseDocument(bomb, 'application/pdf').catch(() => undefined);
    expect(await parseDocument(tinyPdf(['Hello PDF world.']), 'application/pdf')).toBe('Hello PDF world.');
    const text = await parseDocument(multiPagePdf(pages(30)), 'application/pdf');
    const first = text.indexOf('Page 1 line 1:');
    const last = text.indexOf('Page 30 line 40:');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(last).toBeGreaterThan(text.indexOf('Page 29 line 40:'));
    expect(text.indexOf('Page 29 line 40:')).toBeGreaterThan(first);
    expect(text).not.toMatch(/-- \d+ of \d+ --/);
    expect(await parseDocument(Buffer.from('<h1>Title</h1><p>Hello <a href="https://x">there</a>.</p><script>1</script>'), 'text/html')).toBe('Title\n\nHello there.');
    await expect(parseDocument(Buffer.from('%PDF-1.4 nothing'), 'application/pdf')).rejects.toThrow(DocumentRejected);
  });

  test('parses beyond the concurrency limit wait their turn', async () => {
    sandboxStats.peakRunning = 0;
    const texts = await Promise.all([1, 2, 3].map((i) => parseDocument(tinyPdf([`Document ${i}.`]), 'application/pdf', { concurrency: 1 })));
    expect(texts).toEqual(['Document 1.', 'Document 2.', 'Document 3.']);
    expect(sandboxStats.peakRunning).toBe(1);
    sandboxStats.peakRunning = 0;
    await Promise.all([1, 2, 3].map((i) => parseDocument(tinyPdf([`Document ${i}.`]), 'application/pdf', { concurrency: 3 })));
    expect(sandboxStats.peakRunning).toBe(3);
  });
});

test('the ingestion activity fails the bomb for good (knowledge_parse_limit, non-retryable) and stores no chunk', async () => {
  const embedder = createEmbedder({ model: 'm', dimensions: 4, batchSize: 64 }, async (texts) => texts.map(() => [1, 0, 0, 0]));
  const service = createKnowledgeService(database.db, { vectorMode: 'array', embedder });
  const [tenant] = rowsOf<{ id: string }>(await database.db.execute(sql`insert into tenants (name) values ('Bombs') returning id`));
  const kb = await service.createKnowledgeBase(tenant!.id, { name: 'KB' });
  const activities = createKnowledgeActivities({ knowledge: service, embedder, log: createLogger({ level: 'silent', name: 'test' }), maxBytes: 10 * MB, fetchTimeoutMs: 1000, allowLocalUrls: false, parseLimits: { memoryMb: 192 } });
  const { document } = await service.createDocument(tenant!.id, kb.id, { title: 'bomb.pdf', sourceKind: 'file', mimeType: 'application/pdf', content: bomb });
  const err = await activities.prepareKnowledgeDocument({ documentId: document.id, generation: 0 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: FailureType.KnowledgeParseLimit, nonRetryable: true, message: 'the PDF is too complex to parse within 192 MB and 30 s (it needed more than 192 MB)' });
  expect(KNOWLEDGE_NON_RETRYABLE).toContain(FailureType.KnowledgeParseLimit);
  const [count] = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from kb_chunks where document_id = ${document.id}`));
  expect(Number(count!.n)).toBe(0);
  // what the workflow does next (workflows/knowledge.ts): the document is failed with the error
  await activities.finishKnowledgeDocument({ documentId: document.id, generation: 0, status: 'failed', error: `${FailureType.KnowledgeParseLimit}: ${(err as Error).message}` });
  expect(await service.getDocument(tenant!.id, kb.id, document.id)).toMatchObject({ status: 'failed', error: 'knowledge_parse_limit: the PDF is too complex to parse within 192 MB and 30 s (it needed more than 192 MB)' });
});
