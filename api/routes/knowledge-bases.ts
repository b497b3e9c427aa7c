/**
 * Knowledge bases (issue 11): a tenant's knowledge bases, their documents (text, url or an
 * uploaded file; indexed by `knowledgeDocumentWorkflow`), re-indexing and search. Managers change
 * them, setup readers read and search them.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { knowledgeMimeType } from '../../activities/knowledge/parse';
import { checkWebhookUrlForm } from '../../activities/webhooks/url-guard';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import type { KbDocumentView } from '../../services/knowledge';
import type { ParleyTemporal } from '../../temporal/client';
import { allow, MANAGERS, SETUP_READERS } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, parseOr400, validate } from '../middleware/validate';
import { doc } from '../openapi';
import { pageOf } from '../schemas/common';
import { kbDocumentSchema, knowledgeBaseSchema, knowledgeSearchSchema, reindexSchema } from '../schemas/knowledge';

/** The longest text document given as JSON (characters); longer: upload it as a file. */
export const MAX_TEXT_CHARS = 1_000_000;

const name = z.string().trim().min(1).max(200);
const description = z.string().trim().max(2000);
const createBody = z.strictObject({ name, description: description.optional() });
const patchBody = z
  .strictObject({ name: name.optional(), description: description.nullable().optional() })
  .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change');
const kbParams = z.object({ kbId: z.string().max(100) });
const docParams = z.object({ kbId: z.string().max(100), docId: z.string().max(100) });
const title = z.string().trim().min(1).max(300);
const textDocument = z.strictObject({ title, text: z.string().min(1).max(MAX_TEXT_CHARS) });
const urlDocument = z.strictObject({ title, url: z.string().trim().max(2000) });
const documentBody = z.union([textDocument, urlDocument]).meta({ description: '`{ title, text }` or `{ title, url }`' });
const uploadFields = z.strictObject({ title: title.optional() });
const uploadBody = z
  .strictObject({ file: z.string().meta({ format: 'binary', description: 'text/plain, text/markdown, text/html or application/pdf' }), title: title.optional().meta({ description: "Default: the file's name" }) })
  .meta({ id: 'KnowledgeDocumentUpload' });
const searchBody = z.strictObject({
  query: z.string().trim().min(1).max(2000),
  limit: z.number().int().min(1).max(50).default(5),
});
const reindexBody = z.strictObject({ all: z.boolean().default(false).meta({ description: 'true: every document; default: those not indexed with the configured embedding model, failed ones and pending ones whose indexing never started. Either way a document whose indexing is running is not started again' }) });

/** Documents a re-index checks and starts at once. */
const REINDEX_CONCURRENCY = 8;
/** The most ids of documents that could not be started a re-index answers. */
export const REINDEX_FAILED_IDS_MAX = 100;

type ReindexCandidate = Awaited<ReturnType<Services['knowledge']['reindexCandidates']>>[number];

/** `fn` over `items`, at most `limit` at a time; the results in the order of `items`. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

export interface KnowledgeRouterDeps {
  services: Services;
  temporal: Pick<ParleyTemporal, 'startKnowledgeDocument' | 'knowledgeDocumentRun'>;
  log: Logger;
  /** KNOWLEDGE_MAX_FILE_BYTES */
  maxFileBytes: number;
  /** Outside production: http and loopback urls (a local server in development and tests). */
  allowLocalUrls: boolean;
  /** The configured embedding `model@dimensions` (reindex compares documents with it). */
  embeddingKey: string;
}

export function createKnowledgeBaseRouter(deps: KnowledgeRouterDeps): Router {
  const { services } = deps;
  const knowledge = services.knowledge;
  const r = Router();
  r.use('/v1/knowledge-bases', tenantAuth(services));

  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: deps.maxFileBytes, files: 1, fields: 4, fieldSize: 4000, parts: 6 } }).single('file');
  /** multipart/form-data: the file in memory (bounded); its errors as 413 / 400. */
  const multipart = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('multipart/form-data')) return next();
    upload(req, res, (err: unknown) => {
      if (!err) return next();
      if (err instanceof multer.MulterError) {
        if (err.code === 'LIMIT_FILE_SIZE') return next(new AppError('payload_too_large', `the file is over the ${deps.maxFileBytes}-byte limit (KNOWLEDGE_MAX_FILE_BYTES)`));
        return next(new AppError('bad_request', `multipart upload refused: ${err.message}${err.field ? ` (${err.field})` : ''}; send one file in the field \`file\``));
      }
      next(new AppError('bad_request', `the multipart body could not be read: ${(err as Error).message}`));
    });
  };

  async function startIndexing(tenantId: string, document: KbDocumentView, generation = 0): Promise<void> {
    try {
      await deps.temporal.startKnowledgeDocument({ tenantId, knowledgeBaseId: document.knowledgeBaseId, documentId: document.id, generation }, document.sourceKind);
    } catch (err) {
      // nothing will index it: forget it, so the same upload can be repeated
      if (generation === 0) await knowledge.discardDocument(document.id).catch(() => undefined);
      deps.log.error({ documentId: document.id, err: (err as Error).message }, 'could not start indexing a knowledge document');
      throw new AppError('unavailable', 'indexing could not be started; try again');
    }
  }

  // ---- knowledge bases
  r.post('/v1/knowledge-bases', allow(...MANAGERS), validate({ body: createBody }), doc({ summary: 'Create a knowledge base', responses: { 201: knowledgeBaseSchema } }), async (_req, res) => {
    res.status(201).json(await knowledge.createKnowledgeBase(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/knowledge-bases', allow(...SETUP_READERS), validate({ query: pageQuery }), doc({ summary: 'List knowledge bases', description: 'Oldest first.', responses: { 200: pageOf(knowledgeBaseSchema) } }), async (_req, res) => {
    res.json(await knowledge.listKnowledgeBases(res.locals.tenantId, res.locals.query));
  });
  r.get('/v1/knowledge-bases/:kbId', allow(...SETUP_READERS), validate({ params: kbParams }), doc({ summary: 'Get a knowledge base', responses: { 200: knowledgeBaseSchema } }), async (_req, res) => {
    res.json(await knowledge.getKnowledgeBase(res.locals.tenantId, res.locals.params.kbId));
  });
  r.patch('/v1/knowledge-bases/:kbId', allow(...MANAGERS), validate({ params: kbParams, body: patchBody }), doc({ summary: 'Change a knowledge base', responses: { 200: knowledgeBaseSchema } }), async (_req, res) => {
    const { before, after } = await knowledge.updateKnowledgeBase(res.locals.tenantId, res.locals.params.kbId, res.locals.body);
    res.locals.audit = { before, after };
    res.json(after);
  });
  r.delete(
    '/v1/knowledge-bases/:kbId',
    allow(...MANAGERS),
    validate({ params: kbParams }),
    doc({ summary: 'Delete a knowledge base', description: 'With its documents and chunks; agents that used it no longer do (it leaves their `knowledgeBaseIds`).', responses: { 200: knowledgeBaseSchema } }),
    async (_req, res) => {
      res.json(await knowledge.deleteKnowledgeBase(res.locals.tenantId, res.locals.params.kbId));
    },
  );

  // ---- documents
  r.post(
    '/v1/knowledge-bases/:kbId/documents',
    allow(...MANAGERS),
    validate({ params: kbParams }),
    doc({
      summary: 'Add a document to a knowledge base',
      description: [
        'JSON `{ title, text }` (at most 1,000,000 characters) or `{ title, url }` (fetched by the worker: https and public addresses only in production, at most 3 redirects, KNOWLEDGE_MAX_FILE_BYTES), or a multipart upload: one file in the field `file` (text/plain, text/markdown, text/html, application/pdf; the type from the part, else from the file name) and an optional `title`.',
        '202 with the document `pending`: a workflow (`kb-document:{documentId}:{generation}`) fetches, parses, chunks and embeds it; poll GET …/documents/:docId for `ready` or `failed` (with `error`).',
        'The same content (or url) already in this knowledge base: 200 with that document, nothing new is done. A file over the limit → 413, an unsupported type → 415; the tenant’s 1,000 documents (all its knowledge bases) reached → 409 `knowledge_quota_exceeded`. A document over 2,000 chunks ends `failed` before anything is embedded.',
      ].join('\n\n'),
      requestBody: { contentType: 'application/json', schema: documentBody, alternatives: [{ contentType: 'multipart/form-data', schema: uploadBody }] },
      responses: { 202: kbDocumentSchema, 200: kbDocumentSchema },
    }),
    multipart,
    async (req, res) => {
      const tenantId = res.locals.tenantId as string;
      const kbId = res.locals.params.kbId as string;
      let input: Parameters<typeof knowledge.createDocument>[2];
      if (req.is('multipart/form-data')) {
        const fields = parseOr400(uploadFields, { ...(req.body as object) }, 'form fields');
        const file = req.file;
        if (!file) throw new AppError('validation_failed', 'no file: send it in the multipart field `file`', [{ path: 'file', message: 'required', code: 'invalid_type' }]);
        if (file.size === 0) throw new AppError('validation_failed', 'the file is empty', [{ path: 'file', message: 'empty', code: 'too_small' }]);
        const mimeType = knowledgeMimeType(file.mimetype, file.originalname, file.buffer);
        if (!mimeType) throw new AppError('unsupported_media_type', `unsupported file type ${file.mimetype || '(none)'}: text/plain, text/markdown, text/html or application/pdf`);
        const fileTitle = fields.title ?? (file.originalname.trim().slice(0, 300) || 'Untitled document');
        input = { title: fileTitle, sourceKind: 'file', mimeType, content: file.buffer };
        res.locals.body = { title: fileTitle, file: { name: file.originalname.slice(0, 300), mimeType, sizeBytes: file.size } };
      } else {
        if (!req.is('application/json')) throw new AppError('unsupported_media_type', 'send JSON ({ title, text } or { title, url }) or a multipart/form-data upload');
        const body = parseOr400(documentBody, req.body ?? {}, 'body');
        if ('url' in body) {
          const v = checkWebhookUrlForm(body.url, { allowLocal: deps.allowLocalUrls });
          if (!v.ok) throw new AppError('validation_failed', `url refused: ${v.reason}`, [{ path: 'url', message: v.reason, code: 'custom' }]);
          input = { title: body.title, sourceKind: 'url', sourceUrl: new URL(body.url).toString() };
          res.locals.body = { title: body.title, url: body.url };
        } else {
          input = { title: body.title, sourceKind: 'text', mimeType: 'text/plain', content: Buffer.from(body.text, 'utf8') };
          res.locals.body = { title: body.title, text: { chars: body.text.length } };
        }
      }
      const { document, created } = await knowledge.createDocument(tenantId, kbId, input);
      if (created) await startIndexing(tenantId, document);
      res.status(created ? 202 : 200).json(document);
    },
  );
  r.get(
    '/v1/knowledge-bases/:kbId/documents',
    allow(...SETUP_READERS),
    validate({ params: kbParams, query: pageQuery }),
    doc({ summary: "List a knowledge base's documents", description: 'Oldest first, with their indexing status.', responses: { 200: pageOf(kbDocumentSchema) } }),
    async (_req, res) => {
      res.json(await knowledge.listDocuments(res.locals.tenantId, res.locals.params.kbId, res.locals.query));
    },
  );
  r.get('/v1/knowledge-bases/:kbId/documents/:docId', allow(...SETUP_READERS), validate({ params: docParams }), doc({ summary: 'Get a knowledge document', responses: { 200: kbDocumentSchema } }), async (_req, res) => {
    res.json(await knowledge.getDocument(res.locals.tenantId, res.locals.params.kbId, res.locals.params.docId));
  });
  r.delete(
    '/v1/knowledge-bases/:kbId/documents/:docId',
    allow(...MANAGERS),
    validate({ params: docParams }),
    doc({ summary: 'Delete a knowledge document', description: 'With its chunks; a run still indexing it stops.', responses: { 200: kbDocumentSchema } }),
    async (_req, res) => {
      res.json(await knowledge.deleteDocument(res.locals.tenantId, res.locals.params.kbId, res.locals.params.docId));
    },
  );
  /**
   * Re-index one document, on its own (its failure is its own): a workflow already running for its
   * generation is left alone; a pending one whose workflow never started (a start that failed) is
   * started under its generation; any other moves to the next generation (if no other request moved
   * it first) and is started.
   */
  async function reindexDocument(tenantId: string, kbId: string, d: ReindexCandidate): Promise<'started' | 'running' | 'failed'> {
    try {
      let generation = d.generation;
      const inFlight = d.status === 'pending' || d.status === 'indexing';
      const run = inFlight ? await deps.temporal.knowledgeDocumentRun(d.id, d.generation) : 'closed';
      if (run === 'running') return 'running';
      if (!(run === 'none' && d.status === 'pending')) {
        const next = await knowledge.nextGeneration(d.id, d.generation);
        if (next === undefined) return 'running'; // another request moved it on (and starts it)
        generation = next;
      }
      const { started } = await deps.temporal.startKnowledgeDocument({ tenantId, knowledgeBaseId: kbId, documentId: d.id, generation }, d.sourceKind);
      return started ? 'started' : 'running';
    } catch (err) {
      deps.log.error({ documentId: d.id, err: (err as Error).message }, 'could not start re-indexing a knowledge document');
      return 'failed';
    }
  }

  r.post(
    '/v1/knowledge-bases/:kbId/reindex',
    allow(...MANAGERS),
    validate({ params: kbParams, body: reindexBody }),
    doc({
      summary: 'Re-index a knowledge base',
      description: [
        'Index again the documents not indexed with the configured embedding model and dimensions (OPENAI_EMBEDDING_MODEL, OPENAI_EMBEDDING_DIMENSIONS), the failed ones, and pending ones whose indexing never started; `all: true`: every document. Each goes back to `pending` under a new generation (url documents are fetched again). Until then, retrieval finds them by full text only.',
        'Safe to repeat: a document whose indexing workflow is still running is not started again (`alreadyRunning`). Each document is started on its own: one that could not be started (`failed`, `failedDocumentIds`) is left as it was or `pending` without a workflow, and the next re-index (without `all`) starts the pending ones.',
      ].join('\n\n'),
      responses: { 202: reindexSchema },
    }),
    async (_req, res) => {
      const tenantId = res.locals.tenantId as string;
      const kbId = res.locals.params.kbId as string;
      const docs = await knowledge.reindexCandidates(tenantId, kbId, { embeddingKey: deps.embeddingKey, all: res.locals.body.all });
      const outcomes = await mapBounded(docs, REINDEX_CONCURRENCY, (d) => reindexDocument(tenantId, kbId, d));
      const failedIds = docs.filter((_, i) => outcomes[i] === 'failed').map((d) => d.id);
      const started = outcomes.filter((o) => o === 'started').length;
      res.status(202).json({
        started,
        alreadyRunning: outcomes.filter((o) => o === 'running').length,
        failed: failedIds.length,
        failedDocumentIds: failedIds.slice(0, REINDEX_FAILED_IDS_MAX),
        queued: started,
        embeddingModel: deps.embeddingKey,
      });
    },
  );

  // ---- search
  r.post(
    '/v1/knowledge-bases/:kbId/search',
    allow(...SETUP_READERS),
    validate({ params: kbParams, body: searchBody }),
    doc({
      summary: 'Search a knowledge base',
      description:
        'Hybrid retrieval, for tuning and debugging: the chunks ranked by full text (PostgreSQL, english configuration, the query words OR-ed) and by vector (cosine similarity of embeddings), fused by normalized score (the score of each list divided by its best, vectors weighted KNOWLEDGE_VECTOR_WEIGHT, default 0.3, against 1 for full text). Each item carries both scores and ranks and its document.',
      responses: { 200: knowledgeSearchSchema },
    }),
    async (_req, res) => {
      const tenantId = res.locals.tenantId as string;
      const kbId = res.locals.params.kbId as string;
      await knowledge.getKnowledgeBase(tenantId, kbId); // 404 for another tenant's
      res.json(await knowledge.search({ tenantId, kbIds: [kbId], query: res.locals.body.query, limit: res.locals.body.limit }));
    },
  );
  return r;
}
